"""GraphQL of the county's view of disposal cases: `caseOverview(orgUnitId)` with the
tenants' counts by stage and origin and the overdue cases, and `exportCases` (.xlsx).
See service/cases/overview.py for what counts as overdue."""

from __future__ import annotations

import base64
from collections.abc import Sequence
from datetime import date, datetime
from enum import Enum
from typing import Any

import strawberry
from strawberry.types import Info

from service.cases import export, overview
from service.cases import service as cases_service
from service.cases.graphql import CaseOriginEnum, CaseStageEnum, DisposalCase
from service.cases.rules import CaseOrigin, CaseStage
from service.schema.context import Context
from service.schema.ids import from_global_id
from service.schema.relay import Connection, connection
from service.tenants.graphql import OrgUnit, load_org_units


@strawberry.enum(description="逾期事项")
class CaseOverdueKind(Enum):
    APPROVAL_STEP = "approval_step"  # 审批超期
    CORRECTION_DEADLINE = "correction_deadline"  # 改正期满未评定
    EDUCATION_WEEK = "education_week"  # 教育转化缺周


async def load_case_rows(ctx: Context, ids: Sequence[int]) -> list[Any | None]:
    return await cases_service.load_cases(ctx.tx, ctx.principal, list(ids))


@strawberry.type(description="某阶段的案件数")
class CaseStageCount:
    stage: CaseStageEnum  # type: ignore[valid-type]
    cases: int


@strawberry.type(description="某来源的案件数")
class CaseOriginCount:
    origin: CaseOriginEnum  # type: ignore[valid-type]
    cases: int


@strawberry.type(description="一个乡镇（单位）的处置不合格党员工作情况")
class TenantCaseSummary:
    total: int = strawberry.field(description="案件总数")
    open: int = strawberry.field(description="未结案件数")
    stages: list[CaseStageCount] = strawberry.field(description="各阶段案件数（只列非零）")
    origins: list[CaseOriginCount] = strawberry.field(description="各来源案件数（只列非零）")
    approval_steps_overdue: int = strawberry.field(description="审批超期的案件数")
    corrections_overdue: int = strawberry.field(description="改正期满未评定的案件数")
    cases_missing_weeks: int = strawberry.field(description="教育转化有缺周的案件数")
    missed_weeks: int = strawberry.field(description="缺周总数")
    row: strawberry.Private[Any]

    @strawberry.field(description="乡镇（单位）")
    async def tenant(self, info: Info[Context, None]) -> OrgUnit | None:
        unit = await info.context.loader(load_org_units).load(self.row.id)
        return OrgUnit.of(unit) if unit is not None else None

    @classmethod
    def of(cls, row: Any) -> TenantCaseSummary:
        return cls(
            total=row.total,
            open=row.open,
            stages=[
                CaseStageCount(stage=CaseStageEnum(s.value), cases=n)  # type: ignore[misc]
                for s in CaseStage
                if (n := getattr(row, f"stage_{s.value}"))
            ],
            origins=[
                CaseOriginCount(origin=CaseOriginEnum(o.value), cases=n)  # type: ignore[misc]
                for o in CaseOrigin
                if (n := getattr(row, f"origin_{o.value}"))
            ],
            approval_steps_overdue=row.steps_overdue,
            corrections_overdue=row.corrections_overdue,
            cases_missing_weeks=row.cases_missing_weeks,
            missed_weeks=row.missed_weeks,
            row=row,
        )


@strawberry.type(description="有逾期事项的案件")
class OverdueCase:
    member_name: str
    stage: CaseStageEnum  # type: ignore[valid-type]
    overdue: list[CaseOverdueKind]
    step_overdue_since: datetime | None = strawberry.field(description="最早一个超期审批步骤的期限")
    correction_deadline: date | None
    missed_weeks: int = strawberry.field(description="教育转化缺周数")
    row: strawberry.Private[Any]

    @strawberry.field(description="案件")
    async def case(self, info: Info[Context, None]) -> DisposalCase | None:
        found = await info.context.loader(load_case_rows).load(self.row.id)
        return DisposalCase.of(found) if found is not None else None

    @classmethod
    def of(cls, row: Any) -> OverdueCase:
        return cls(
            member_name=row.member_name,
            stage=CaseStageEnum(row.stage),  # type: ignore[misc]
            overdue=[CaseOverdueKind(k) for k in overview.overdue_kinds(row)],
            step_overdue_since=row.step_overdue_since,
            correction_deadline=row.correction_deadline,
            missed_weeks=row.missed_weeks,
            row=row,
        )


@strawberry.type(description="处置不合格党员工作情况（某组织以下）")
class CaseOverview:
    org_unit_id: strawberry.Private[int]

    @strawberry.field(description="各乡镇（单位）的案件数与逾期情况")
    async def tenants(
        self, info: Info[Context, None], first: int | None = None, after: str | None = None
    ) -> Connection[TenantCaseSummary]:
        ctx = info.context
        page = await overview.tenant_overview(
            ctx.tx, ctx.principal, self.org_unit_id, ctx.page(first, after)
        )
        return connection(page, TenantCaseSummary.of)  # type: ignore[no-any-return]

    @strawberry.field(description="有逾期事项的案件（审批超期、改正期满、教育缺周）")
    async def overdue_cases(
        self, info: Info[Context, None], first: int | None = None, after: str | None = None
    ) -> Connection[OverdueCase]:
        ctx = info.context
        page = await overview.overdue_cases(
            ctx.tx, ctx.principal, self.org_unit_id, ctx.page(first, after)
        )
        return connection(page, OverdueCase.of)  # type: ignore[no-any-return]


@strawberry.input(description="导出处置不合格党员工作台账")
class ExportCasesInput:
    org_unit_id: strawberry.ID


@strawberry.type(description="处置不合格党员工作台账（.xlsx）")
class CaseExport:
    filename: str
    content_base64: str
    case_count: int


@strawberry.type
class CaseOverviewQuery:
    @strawberry.field(
        description="处置不合格党员工作情况：各乡镇（单位）按阶段、来源统计与逾期事项"
    )
    def case_overview(self, org_unit_id: strawberry.ID) -> CaseOverview:
        return CaseOverview(org_unit_id=from_global_id(org_unit_id, "OrgUnit")[1])


@strawberry.type
class CaseOverviewMutation:
    @strawberry.mutation(description="导出处置不合格党员工作台账（.xlsx，记入审计）")
    async def export_cases(self, info: Info[Context, None], input: ExportCasesInput) -> CaseExport:
        ctx = info.context
        made = await export.export_cases(
            ctx.tx, ctx.principal, from_global_id(input.org_unit_id, "OrgUnit")[1]
        )
        return CaseExport(
            filename=made.filename,
            content_base64=base64.b64encode(made.content).decode(),
            case_count=made.cases,
        )
