"""GraphQL of party dues (党费): `DuesPayment`, the dues fields of `Member`, and the
`recordDuesPayment` / `agreeDuesSchedule` mutations.

The `Member` fields are resolvers over the member's row (`member_*`, attached in
service/members/graphql.py): `duesPayments` is a connection, `latestDuesMonth` and
`duesSchedule` go through DataLoaders, one statement for a whole page of members.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime
from enum import Enum
from typing import TYPE_CHECKING, Annotated, Any

import strawberry
from strawberry.types import Info

from service.dues import rules, service
from service.dues.rules import Month
from service.members.service import MemberKey
from service.schema.context import Context
from service.schema.ids import from_global_id, to_global_id
from service.schema.relay import Connection, Node, connection, register_node

if TYPE_CHECKING:
    from service.members.graphql import Member


def _enum(name: str, domain: type[Enum], description: str) -> Any:
    return strawberry.enum(
        Enum(name, {m.name: m.value for m in domain}),  # type: ignore[misc]
        description=description,
    )


PaidBy = _enum("PaidBy", rules.PaidBy, "交纳人：本人、亲属代缴")
DuesSchedule = _enum("DuesSchedule", rules.DuesSchedule, "交纳方式：按月、按季（支部同意）")
_PAID_BY = {m.value: PaidBy(m.value) for m in rules.PaidBy}
_SCHEDULES = {m.value: DuesSchedule(m.value) for m in rules.DuesSchedule}

MemberRef = Annotated["Member", strawberry.lazy("service.members.graphql")]


@strawberry.type(description="一笔党费（或补缴）")
class DuesPayment(Node):
    id: strawberry.ID
    paid_on: date = strawberry.field(description="交纳日期")
    amount_fen: int = strawberry.field(description="金额（分）")
    paid_by: PaidBy  # type: ignore[valid-type]
    months: list[str] = strawberry.field(description="所交月份（2026-03），由早到晚")
    is_back_payment: bool = strawberry.field(description="补缴（含交纳月份之前的月份）")
    note: str | None
    recorded_by: str
    created_at: datetime

    @classmethod
    def of(cls, row: Any) -> DuesPayment:
        return cls(
            id=strawberry.ID(to_global_id("DuesPayment", row.id)),
            paid_on=row.paid_on,
            amount_fen=row.amount_fen,
            paid_by=_PAID_BY[row.paid_by],
            months=[str(Month.from_ordinal(m)) for m in row.months],
            is_back_payment=row.is_back_payment,
            note=row.note,
            recorded_by=row.recorded_by,
            created_at=row.created_at,
        )


async def payment_by_id(context: Context, payment_id: int) -> DuesPayment:
    return DuesPayment.of(await service.get_payment(context.tx, context.principal, payment_id))


register_node("DuesPayment", payment_by_id)


# --- fields of Member ---------------------------------------------------------------


async def load_latest_months(context: Context, members: Sequence[Any]) -> list[Month | None]:
    return await service.latest_months(context.tx, context.principal, members)


async def load_schedules(context: Context, members: Sequence[Any]) -> list[Any]:
    return await service.schedules_now(context.tx, context.principal, members)


async def dues_payments(
    root: Any, info: Info[Context, None], first: int | None = None, after: str | None = None
) -> Connection[DuesPayment]:
    ctx = info.context
    page = await service.member_payments(ctx.tx, ctx.principal, root.row, ctx.page(first, after))
    return connection(page, DuesPayment.of)  # type: ignore[no-any-return]


async def latest_dues_month(root: Any, info: Info[Context, None]) -> str | None:
    month = await info.context.loader(load_latest_months).load(MemberKey.of(root.row))
    return None if month is None else str(month)


async def dues_schedule(root: Any, info: Info[Context, None]) -> DuesSchedule | None:  # type: ignore[valid-type]
    schedule = await info.context.loader(load_schedules).load(MemberKey.of(root.row))
    return None if schedule is None else _SCHEDULES[schedule.value]


# Attached to `Member` in service/members/graphql.py.
member_dues_payments = strawberry.field(resolver=dues_payments, description="党费交纳记录")
member_latest_dues_month = strawberry.field(
    resolver=latest_dues_month, description="已交党费的最近月份（2026-03）；未交过为 null"
)
member_dues_schedule = strawberry.field(resolver=dues_schedule, description="本月的党费交纳方式")


# --- mutations ----------------------------------------------------------------------


@strawberry.input(description="登记一笔党费（含补缴、亲属代缴）")
class RecordDuesPaymentInput:
    member_id: strawberry.ID
    paid_on: date
    amount_fen: int
    paid_by: PaidBy  # type: ignore[valid-type]
    months: list[str] = strawberry.field(description="所交月份，如 2026-03")
    note: str | None = None


@strawberry.input(description="约定党员的党费交纳方式（按月、按季），自某月起")
class AgreeDuesScheduleInput:
    member_id: strawberry.ID
    schedule: DuesSchedule  # type: ignore[valid-type]
    from_month: str = strawberry.field(description="起始月份，如 2026-04")
    agreed_on: date
    note: str | None = None


@strawberry.type
class RecordDuesPaymentPayload:
    dues_payment: DuesPayment


@strawberry.type(description="党费交纳方式的约定")
class DuesArrangement:
    schedule: DuesSchedule  # type: ignore[valid-type]
    from_month: str
    member: MemberRef


@strawberry.type
class AgreeDuesSchedulePayload:
    arrangement: DuesArrangement


def _member_id(global_id: strawberry.ID) -> int:
    return from_global_id(global_id, "Member")[1]


@strawberry.type
class DuesMutation:
    @strawberry.mutation(description="登记一笔党费（含补缴、亲属代缴）")
    async def record_dues_payment(
        self, info: Info[Context, None], input: RecordDuesPaymentInput
    ) -> RecordDuesPaymentPayload:
        ctx = info.context
        row = await service.record_payment(
            ctx.tx,
            ctx.principal,
            member_id=_member_id(input.member_id),
            paid_on=input.paid_on,
            amount_fen=input.amount_fen,
            paid_by=rules.PaidBy(input.paid_by.value),
            months=input.months,
            note=input.note,
        )
        return RecordDuesPaymentPayload(dues_payment=DuesPayment.of(row))

    @strawberry.mutation(description="约定党费交纳方式（按月、按季）")
    async def agree_dues_schedule(
        self, info: Info[Context, None], input: AgreeDuesScheduleInput
    ) -> AgreeDuesSchedulePayload:
        from service.members.graphql import Member  # the Member type imports this module

        ctx = info.context
        member, created = await service.agree_schedule(
            ctx.tx,
            ctx.principal,
            member_id=_member_id(input.member_id),
            schedule=rules.DuesSchedule(input.schedule.value),
            from_month=input.from_month,
            agreed_on=input.agreed_on,
            note=input.note,
        )
        return AgreeDuesSchedulePayload(
            arrangement=DuesArrangement(
                schedule=_SCHEDULES[created.schedule],
                from_month=str(Month.from_ordinal(created.from_month)),
                member=Member.of(member),
            )
        )
