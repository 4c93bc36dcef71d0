"""GraphQL of mobile members (流动党员): the contact log (`Member.mobileContacts`, its
resolver here), `recordMobileContact` and `unreachedMobileMembers`."""

from __future__ import annotations

from datetime import date, datetime
from enum import Enum
from typing import TYPE_CHECKING, Annotated, Any

import strawberry
from strawberry.types import Info

from service.members import mobile
from service.schema.context import Context
from service.schema.ids import from_global_id
from service.schema.relay import Connection, connection

if TYPE_CHECKING:
    from service.members.graphql import Member

LazyMember = Annotated["Member", strawberry.lazy("service.members.graphql")]

ContactChannel = strawberry.enum(
    Enum("ContactChannel", {m.name: m.value for m in mobile.ContactChannel}),  # type: ignore[misc]
    description="联系方式：电话、短信、微信、走访",
)
_CHANNELS = {m.value: ContactChannel(m.value) for m in mobile.ContactChannel}


@strawberry.type(description="流动党员联系记录")
class MobileContact:
    contacted_on: date
    channel: ContactChannel  # type: ignore[valid-type]
    contacted_by: str = strawberry.field(description="联系人")
    reached: bool = strawberry.field(description="是否联系上")
    outcome: str = strawberry.field(description="联系情况")
    recorded_by: str
    created_at: datetime

    @classmethod
    def of(cls, row: Any) -> MobileContact:
        return cls(
            contacted_on=row.contacted_on,
            channel=_CHANNELS[row.channel],
            contacted_by=row.contacted_by,
            reached=row.reached,
            outcome=row.outcome,
            recorded_by=row.recorded_by,
            created_at=row.created_at,
        )


@strawberry.type(description="近期未联系上的流动党员")
class UnreachedMobileMember:
    member: LazyMember
    last_reached_on: date | None = strawberry.field(description="最近一次联系上的日期；从未为 null")


async def _member_mobile_contacts(
    root: Any, info: Info[Context, None], first: int | None = None, after: str | None = None
) -> Connection[MobileContact]:
    """`Member.mobileContacts`: the contact log, oldest record first."""
    ctx = info.context
    page = await mobile.member_contacts(ctx.tx, ctx.principal, root.row, ctx.page(first, after))
    return connection(page, MobileContact.of)  # type: ignore[no-any-return]


member_mobile_contacts: Any = strawberry.field(
    resolver=_member_mobile_contacts, description="流动党员联系记录"
)


@strawberry.type
class MobileQuery:
    @strawberry.field(description="某组织以下近 months 个月未联系上的流动党员")
    async def unreached_mobile_members(
        self,
        info: Info[Context, None],
        org_unit_id: strawberry.ID,
        first: int | None = None,
        after: str | None = None,
        months: Annotated[
            int | None, strawberry.argument(description="月数（1–24），默认 3")
        ] = mobile.DEFAULT_MONTHS,
    ) -> Connection[UnreachedMobileMember]:
        from service.members.graphql import Member

        ctx = info.context
        page = await mobile.unreached_mobile_members(
            ctx.tx,
            ctx.principal,
            org_unit_id=from_global_id(org_unit_id, "OrgUnit")[1],
            page=ctx.page(first, after),
            months=mobile.DEFAULT_MONTHS if months is None else months,
        )
        return connection(  # type: ignore[no-any-return]
            page,
            lambda row: UnreachedMobileMember(
                member=Member.of(row), last_reached_on=row.last_reached_on
            ),
        )


@strawberry.input(description="记录与流动党员的一次联系")
class RecordMobileContactInput:
    member_id: strawberry.ID
    contacted_on: date
    channel: ContactChannel  # type: ignore[valid-type]
    contacted_by: str
    reached: bool
    outcome: str


@strawberry.type
class MobileContactPayload:
    contact: MobileContact


@strawberry.type
class MobileMutation:
    @strawberry.mutation(description="记录与流动党员的一次联系")
    async def record_mobile_contact(
        self, info: Info[Context, None], input: RecordMobileContactInput
    ) -> MobileContactPayload:
        ctx = info.context
        row = await mobile.record_contact(
            ctx.tx,
            ctx.principal,
            member_id=from_global_id(input.member_id, "Member")[1],
            contacted_on=input.contacted_on,
            channel=mobile.ContactChannel(input.channel.value),
            contacted_by=input.contacted_by,
            reached=input.reached,
            outcome=input.outcome,
        )
        return MobileContactPayload(contact=MobileContact.of(row))
