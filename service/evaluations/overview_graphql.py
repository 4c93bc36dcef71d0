"""GraphQL of the evaluation overview (评议情况总览): `evaluationOverview` per tenant and
branch, and `exportEvaluationResults` (民主评议结果汇总表, .xlsx)."""

from __future__ import annotations

import base64
from typing import Any

import strawberry
from strawberry.types import Info

from service.evaluations import overview
from service.evaluations.graphql import EvaluationRound, EvaluationStage, load_rounds
from service.evaluations.overview import PENDING
from service.evaluations.stages import Period, Stage
from service.schema.context import Context
from service.schema.ids import from_global_id
from service.schema.relay import Connection, connection
from service.tenants.graphql import OrgUnit, load_org_units


@strawberry.type(description="等次分布（人数）：已结束的评议按最终等次，进行中的按初定或建议等次")
class GradeDistribution:
    roster: int = strawberry.field(description="参评党员")
    excellent: int = strawberry.field(description="优秀")
    qualified: int = strawberry.field(description="合格")
    basic: int = strawberry.field(description="基本合格")
    unqualified: int = strawberry.field(description="不合格")
    not_graded: int = strawberry.field(description="不定等次（只写评语）")
    pending: int = strawberry.field(description="尚无等次（未计票或待研究确定）")

    @classmethod
    def of(cls, row: Any) -> GradeDistribution:
        return cls(
            roster=row.roster,
            excellent=row.excellent,
            qualified=row.qualified,
            basic=row.basic,
            unqualified=row.unqualified,
            not_graded=row.not_graded,
            pending=getattr(row, PENDING),
        )


@strawberry.type(description="某阶段的评议数")
class StageCount:
    stage: EvaluationStage  # type: ignore[valid-type]
    rounds: int


@strawberry.type(description="一个党支部本半年度的评议情况")
class BranchEvaluationSummary:
    stage: EvaluationStage | None = strawberry.field(  # type: ignore[valid-type]
        description="评议阶段；尚未发起为 null"
    )
    distribution: GradeDistribution
    row: strawberry.Private[Any]

    @strawberry.field(description="党支部")
    async def branch(self, info: Info[Context, None]) -> OrgUnit | None:
        unit = await info.context.loader(load_org_units).load(self.row.id)
        return OrgUnit.of(unit) if unit is not None else None

    @strawberry.field(description="本半年度的评议；尚未发起为 null")
    async def round(self, info: Info[Context, None]) -> EvaluationRound | None:
        if self.row.round_id is None:
            return None
        found = await info.context.loader(load_rounds).load(self.row.round_id)
        return EvaluationRound.of(found) if found is not None else None


@strawberry.type(description="一个乡镇（单位）本半年度的评议情况：各党支部合计")
class TenantEvaluationSummary:
    branches: int = strawberry.field(description="党支部数")
    rounds: int = strawberry.field(description="已发起评议的党支部数")
    stages: list[StageCount] = strawberry.field(description="各阶段的评议数（只列非零）")
    distribution: GradeDistribution
    row: strawberry.Private[Any]

    @strawberry.field(description="乡镇（单位）")
    async def tenant(self, info: Info[Context, None]) -> OrgUnit | None:
        unit = await info.context.loader(load_org_units).load(self.row.id)
        return OrgUnit.of(unit) if unit is not None else None


def _branch(row: Any) -> BranchEvaluationSummary:
    return BranchEvaluationSummary(
        stage=EvaluationStage(row.stage) if row.stage else None,
        distribution=GradeDistribution.of(row),
        row=row,
    )


def _tenant(row: Any) -> TenantEvaluationSummary:
    return TenantEvaluationSummary(
        branches=row.branches,
        rounds=row.rounds,
        stages=[
            StageCount(stage=EvaluationStage(s.value), rounds=getattr(row, s.value))
            for s in Stage
            if getattr(row, s.value)
        ],
        distribution=GradeDistribution.of(row),
        row=row,
    )


@strawberry.type(description="评议情况总览（某组织下某半年度）")
class EvaluationOverview:
    year: int
    half: int
    org_unit_id: strawberry.Private[int]

    @strawberry.field(description="各乡镇（单位）合计")
    async def tenants(
        self, info: Info[Context, None], first: int | None = None, after: str | None = None
    ) -> Connection[TenantEvaluationSummary]:
        ctx = info.context
        page = await overview.tenant_overview(
            ctx.tx,
            ctx.principal,
            self.org_unit_id,
            Period(self.year, self.half),
            ctx.page(first, after),
        )
        return connection(page, _tenant)  # type: ignore[no-any-return]

    @strawberry.field(description="各党支部")
    async def branches(
        self, info: Info[Context, None], first: int | None = None, after: str | None = None
    ) -> Connection[BranchEvaluationSummary]:
        ctx = info.context
        page = await overview.branch_overview(
            ctx.tx,
            ctx.principal,
            self.org_unit_id,
            Period(self.year, self.half),
            ctx.page(first, after),
        )
        return connection(page, _branch)  # type: ignore[no-any-return]


@strawberry.type(description="民主评议结果汇总表（.xlsx）")
class EvaluationResultExport:
    filename: str
    content_base64: str
    branch_count: int


@strawberry.input(description="导出民主评议结果汇总表")
class ExportEvaluationResultsInput:
    org_unit_id: strawberry.ID
    year: int
    half: int = strawberry.field(description="1 上半年，2 下半年")


@strawberry.type
class OverviewQuery:
    @strawberry.field(description="评议情况总览：各乡镇（单位）和党支部的评议阶段与等次分布")
    def evaluation_overview(
        self, org_unit_id: strawberry.ID, year: int, half: int
    ) -> EvaluationOverview:
        unit = from_global_id(org_unit_id, "OrgUnit")[1]
        Period(year, half).checked()
        return EvaluationOverview(year=year, half=half, org_unit_id=unit)


@strawberry.type
class OverviewMutation:
    @strawberry.mutation(description="导出民主评议结果汇总表（.xlsx，记入审计）")
    async def export_evaluation_results(
        self, info: Info[Context, None], input: ExportEvaluationResultsInput
    ) -> EvaluationResultExport:
        ctx = info.context
        made = await overview.export_results(
            ctx.tx,
            ctx.principal,
            from_global_id(input.org_unit_id, "OrgUnit")[1],
            Period(input.year, input.half),
        )
        return EvaluationResultExport(
            filename=made.filename,
            content_base64=base64.b64encode(made.content).decode(),
            branch_count=made.branches,
        )
