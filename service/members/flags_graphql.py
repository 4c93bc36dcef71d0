"""GraphQL of 三不 and the export: `Member.lapse` and `Member.excuses`, the `flagged`
list, `recordExcuse` and `exportMembers`.

Kept apart from `graphql.py`, which imports this module for the two `Member` fields;
so this one names `Member` and its enums lazily and never imports `graphql.py` at load.
`Member.lapse` goes through one DataLoader: a page of members costs one statement
(service/members/flags.py); a `flagged` list hands the loader the assessments it
already made, so it costs none.
"""

from __future__ import annotations

import base64
from collections.abc import Sequence
from datetime import date, datetime
from enum import Enum
from typing import TYPE_CHECKING, Annotated, Any

import strawberry
from strawberry.types import Info

from service.members import export, flags, lapse, rules
from service.members.service import MemberQuery, load_members
from service.pagination import PageRequest, encode_cursor
from service.schema.context import Context
from service.schema.ids import from_global_id
from service.schema.relay import Connection, LazyEdge, PageInfo, connection

if TYPE_CHECKING:
    from service.members.graphql import Member, MemberCategory, MemberStatus

_Member = Annotated["Member", strawberry.lazy("service.members.graphql")]
_Category = Annotated["MemberCategory", strawberry.lazy("service.members.graphql")]
_Status = Annotated["MemberStatus", strawberry.lazy("service.members.graphql")]


LapseKind = strawberry.enum(
    Enum("LapseKind", {m.name: m.value for m in lapse.LapseKind}),  # type: ignore[misc]
    description="三不：不交纳党费、不参加组织生活、不做党员工作",
)
ExcuseKind = strawberry.enum(
    Enum("ExcuseKind", {m.name: m.value for m in lapse.ExcuseKind}),  # type: ignore[misc]
    description="正当理由涵盖：党费、组织生活、党员工作、全部",
)
_LAPSE_KINDS = {m.value: LapseKind(m.value) for m in lapse.LapseKind}
_EXCUSE_KINDS = {m.value: ExcuseKind(m.value) for m in lapse.ExcuseKind}


def _months(months: Sequence[Any]) -> list[str]:
    return [str(m) for m in months]


@strawberry.type(description="一项“三不”提示（提示支部核实，并非处置决定）")
class LapseFlag:
    kind: LapseKind  # type: ignore[valid-type]
    label: str
    months: list[str] = strawberry.field(description="连续计入的月份（YYYY-MM），由远及近")
    reached_window: bool = strawberry.field(
        description="连续情形超出查看范围（24 个月）：至少 months 个月"
    )


@strawberry.type(description="“三不”情况（截至上一个已结束的月份）")
class LapseAssessment:
    flagged: bool
    flags: list[LapseFlag]
    dues_warning: list[str] | None = strawberry.field(
        description="连续未交党费满 3 个月的月份（批评教育、限期改正）；不足 3 个月为 null"
    )
    family_paid_months: list[str] = strawberry.field(description="查看范围内由亲属代缴的月份")
    unpaid_run: int = strawberry.field(description="连续未交党费月数")
    life_run: int = strawberry.field(description="连续未参加组织生活月数（未开会的月份不计）")
    task_run: int = strawberry.field(description="连续未完成组织分配任务月数")
    last_closed_month: str
    window_start: str

    @classmethod
    def of(cls, found: lapse.LapseAssessment) -> LapseAssessment:
        return cls(
            flagged=found.flagged,
            flags=[
                LapseFlag(
                    kind=_LAPSE_KINDS[f.kind.value],
                    label=f.label,
                    months=_months(f.months),
                    reached_window=f.reached_window,
                )
                for f in found.flags
            ],
            dues_warning=_months(found.dues_warning) if found.dues_warning else None,
            family_paid_months=_months(found.family_paid_months),
            unpaid_run=found.unpaid_run,
            life_run=found.life_run,
            task_run=found.task_run,
            last_closed_month=str(found.last_closed),
            window_start=str(found.window_start),
        )


@strawberry.type(description="记录在案的正当理由")
class MemberExcuse:
    kind: ExcuseKind  # type: ignore[valid-type]
    from_month: str
    to_month: str | None = strawberry.field(description="为空即至今")
    reason: str
    recorded_by: str
    created_at: datetime

    @classmethod
    def of(cls, row: Any) -> MemberExcuse:
        def month(value: int | None) -> str | None:
            return None if value is None else str(lapse.Month.from_ordinal(value))

        return cls(
            kind=_EXCUSE_KINDS[row.kind],
            from_month=str(month(row.from_month)),
            to_month=month(row.to_month),
            reason=row.reason,
            recorded_by=row.recorded_by,
            created_at=row.created_at,
        )


# --- Member fields (graphql.py attaches them) -----------------------------------------


async def load_lapse(context: Context, ids: Sequence[int]) -> list[lapse.LapseAssessment | None]:
    found = await flags.assessments(context.tx, ids)
    return [found.get(member_id) for member_id in ids]


async def member_lapse(root: Any, info: Info[Context, None]) -> LapseAssessment | None:
    found = await info.context.loader(load_lapse).load(root.row.id)
    return LapseAssessment.of(found) if found is not None else None


async def member_excuses(
    root: Any, info: Info[Context, None], first: int | None = None, after: str | None = None
) -> Connection[MemberExcuse]:
    ctx = info.context
    page = await flags.excuses_page(ctx.tx, root.row, ctx.page(first, after))
    return connection(page, MemberExcuse.of)  # type: ignore[no-any-return]


LAPSE_FIELD = strawberry.field(
    resolver=member_lapse,
    description="“三不”提示：无正当理由连续六个月不交纳党费、不参加组织生活或不做党员工作；"
    "不在册（去世、退党等）为 null",
)
EXCUSES_FIELD = strawberry.field(resolver=member_excuses, description="记录在案的正当理由")


async def flagged_connection(ctx: Context, page: PageRequest, query: MemberQuery) -> Any:
    """The `members(flagged:)` list: the loader is primed with the assessments made."""
    from service.members.graphql import Member

    found = await flags.flagged_page(ctx.tx, ctx.principal, page, query)
    loader = ctx.loader(load_lapse)
    for member_id, assessment in found.assessments.items():
        loader.prime(member_id, assessment)
    items = found.page.items
    return Connection(
        edges=[LazyEdge(item.id, Member.of(item)) for item in items],  # type: ignore[misc]
        page_info=PageInfo(
            has_next_page=found.page.has_next_page,
            has_previous_page=found.page.has_previous_page,
            start_cursor=encode_cursor(items[0].id) if items else None,
            end_cursor=encode_cursor(found.resume_after) if found.resume_after else None,
        ),
    )


# --- mutations --------------------------------------------------------------------------


@strawberry.input(description="记录正当理由：所涵盖月份不计入“三不”连续月数")
class RecordExcuseInput:
    member_id: strawberry.ID
    kind: ExcuseKind  # type: ignore[valid-type]
    from_month: str = strawberry.field(description="起始月份，如 2026-03")
    reason: str
    to_month: str | None = strawberry.field(default=None, description="截止月份；为空即至今")


@strawberry.type
class RecordExcusePayload:
    excuse: MemberExcuse
    member: _Member


@strawberry.input(description="导出党员名册（.xlsx）；填写事由即导出完整身份证号与电话")
class ExportMembersInput:
    org_unit_id: strawberry.ID | None = None
    category: _Category | None = None
    statuses: list[_Status] | None = None
    is_mobile: bool | None = None
    flagged: bool | None = None
    name_contains: str | None = None
    reason: str | None = strawberry.field(
        default=None, description="导出完整信息的事由（须有查看权限，记入审计）；为空即脱敏导出"
    )


@strawberry.type(description="导出的名册文件")
class MemberExport:
    filename: str
    content_base64: str
    row_count: int
    masked: bool


@strawberry.type
class FlagsMutation:
    @strawberry.mutation(description="记录正当理由（打断“三不”连续月数，记入审计）")
    async def record_excuse(
        self, info: Info[Context, None], input: RecordExcuseInput
    ) -> RecordExcusePayload:
        from service.members.graphql import Member

        ctx = info.context
        row = await flags.record_excuse(
            ctx.tx,
            ctx.principal,
            member_id=from_global_id(input.member_id, "Member")[1],
            kind=lapse.ExcuseKind(input.kind.value),
            from_month=input.from_month,
            to_month=input.to_month,
            reason=input.reason,
        )
        [member] = await load_members(ctx.tx, ctx.principal, [row.member_id])
        return RecordExcusePayload(excuse=MemberExcuse.of(row), member=Member.of(member))

    @strawberry.mutation(description="导出党员名册（.xlsx，记入审计）")
    async def export_members(
        self, info: Info[Context, None], input: ExportMembersInput
    ) -> MemberExport:
        ctx = info.context
        query = MemberQuery(
            org_unit_id=from_global_id(input.org_unit_id, "OrgUnit")[1]
            if input.org_unit_id
            else None,
            category=rules.MemberCategory(input.category.value) if input.category else None,
            statuses=tuple(rules.MemberStatus(s.value) for s in input.statuses or ()),
            is_mobile=input.is_mobile,
            name_contains=input.name_contains,
            flagged=input.flagged,
        )
        made = await export.export_members(ctx.tx, ctx.principal, query, reason=input.reason)
        return MemberExport(
            filename=f"党员名册-{date.today():%Y%m%d}.xlsx",
            content_base64=base64.b64encode(made.content).decode(),
            row_count=made.count,
            masked=made.masked,
        )
