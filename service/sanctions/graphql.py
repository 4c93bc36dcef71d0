"""GraphQL of discipline sanctions: the `Sanction` node, `Member.sanctions` (its
resolver lives here; service/members/graphql.py only names it) and `recordSanction`."""

from __future__ import annotations

from datetime import date, datetime
from enum import Enum
from typing import TYPE_CHECKING, Annotated, Any

import strawberry
from strawberry.types import Info

from service.sanctions import rules, service
from service.schema.context import Context
from service.schema.ids import from_global_id, to_global_id
from service.schema.relay import Connection, Node, connection, register_node

if TYPE_CHECKING:
    from service.members.graphql import Member

LazyMember = Annotated["Member", strawberry.lazy("service.members.graphql")]

SanctionKind = strawberry.enum(
    Enum("SanctionKind", {m.name: m.value for m in rules.SanctionKind}),  # type: ignore[misc]
    description="党纪处分种类：警告、严重警告、撤销党内职务、留党察看一年、留党察看二年、开除党籍",
)
_KINDS = {m.value: SanctionKind(m.value) for m in rules.SanctionKind}


@strawberry.type(description="党纪处分")
class Sanction(Node):
    id: strawberry.ID
    kind: SanctionKind  # type: ignore[valid-type]
    decided_on: date = strawberry.field(description="处分决定日期")
    probation_ends_on: date | None = strawberry.field(description="留党察看期满之日")
    decided_by: str = strawberry.field(description="作出处分决定的党组织")
    matter: str = strawberry.field(description="处分事由")
    recorded_by: str
    created_at: datetime
    row: strawberry.Private[Any]

    @classmethod
    def of(cls, row: Any) -> Sanction:
        return cls(
            id=strawberry.ID(to_global_id("Sanction", row.id)),
            kind=_KINDS[row.kind],
            decided_on=row.decided_on,
            probation_ends_on=row.probation_ends_on,
            decided_by=row.decided_by,
            matter=row.matter,
            recorded_by=row.recorded_by,
            created_at=row.created_at,
            row=row,
        )

    @strawberry.field(description="受处分的党员；无权查看时为 null")
    async def member(self, info: Info[Context, None]) -> LazyMember | None:
        from service.members.graphql import Member, load_members

        row = await info.context.loader(load_members).load(self.row.member_id)
        return Member.of(row) if row is not None else None


async def sanction_by_id(context: Context, sanction_id: int) -> Sanction:
    return Sanction.of(await service.get_sanction(context.tx, context.principal, sanction_id))


register_node("Sanction", sanction_by_id)


async def _member_sanctions(
    root: Any, info: Info[Context, None], first: int | None = None, after: str | None = None
) -> Connection[Sanction]:
    """`Member.sanctions`: the member's sanctions, oldest record first."""
    ctx = info.context
    page = await service.member_sanctions(ctx.tx, ctx.principal, root.row, ctx.page(first, after))
    return connection(page, Sanction.of)  # type: ignore[no-any-return]


member_sanctions: Any = strawberry.field(resolver=_member_sanctions, description="党纪处分")


@strawberry.input(description="记录党纪处分（开除党籍同时将党员状态改为开除党籍）")
class RecordSanctionInput:
    member_id: strawberry.ID
    kind: SanctionKind  # type: ignore[valid-type]
    decided_on: date
    decided_by: str = strawberry.field(description="作出处分决定的党组织")
    matter: str = strawberry.field(description="处分事由")


@strawberry.type
class SanctionPayload:
    sanction: Sanction


@strawberry.type
class SanctionsMutation:
    @strawberry.mutation(description="记录党纪处分")
    async def record_sanction(
        self, info: Info[Context, None], input: RecordSanctionInput
    ) -> SanctionPayload:
        ctx = info.context
        row = await service.record_sanction(
            ctx.tx,
            ctx.principal,
            member_id=from_global_id(input.member_id, "Member")[1],
            kind=rules.SanctionKind(input.kind.value),
            decided_on=input.decided_on,
            decided_by=input.decided_by,
            matter=input.matter,
        )
        return SanctionPayload(sanction=Sanction.of(row))
