"""GraphQL of approval chains (审批): `ApprovalRequest` and `ApprovalStep` nodes, the
decider's inbox, the overdue list of the level below, one request by id, and
`decideApprovalStep`. Requests are submitted by the domains (evaluations, cases), not
through a mutation of their own."""

from __future__ import annotations

import json
from datetime import datetime
from enum import Enum
from typing import Any

import strawberry
from strawberry.types import Info

from service.authz.graphql import Role
from service.schema.context import Context
from service.schema.ids import from_global_id, to_global_id
from service.schema.relay import Connection, Node, connection, register_node
from service.tenants.graphql import OrgUnit, load_org_units

from . import rules, service

ApprovalKind = strawberry.enum(
    Enum("ApprovalKind", {m.name: m.value for m in rules.ApprovalKind}),  # type: ignore[misc]
    description="审批事项类别：民主评议结果、不合格党员处置、处置备案",
)
ApprovalDecision = strawberry.enum(
    Enum("ApprovalDecision", {m.name: m.value for m in rules.Decision}),  # type: ignore[misc]
    description="审批意见：同意、不同意（退回支部）、退回补充材料",
)
ApprovalRequestState = strawberry.enum(
    Enum("ApprovalRequestState", {m.name: m.value for m in rules.RequestState}),  # type: ignore[misc]
    description="审批事项状态：审批中、已批准、未批准、退回补充材料、已撤回",
)
ApprovalStepState = strawberry.enum(
    Enum("ApprovalStepState", {m.name: m.value for m in rules.StepState}),  # type: ignore[misc]
    description="审批步骤状态：待审批、同意、不同意、退回、已撤回",
)
_KINDS = {m.value: ApprovalKind(m.value) for m in rules.ApprovalKind}
_DECISIONS = {m.value: ApprovalDecision(m.value) for m in rules.Decision}
_REQUEST_STATES = {m.value: ApprovalRequestState(m.value) for m in rules.RequestState}
_STEP_STATES = {m.value: ApprovalStepState(m.value) for m in rules.StepState}
_ROLES = {r.value: Role(r.value) for r in rules.DECIDING_ROLES}


async def load_requests(context: Context, ids: Any) -> list[Any | None]:
    return await service.load_requests(context.tx, context.principal, ids)


async def load_request_steps(context: Context, ids: Any) -> list[list[Any]]:
    return await service.request_steps(context.tx, context.principal, ids)


async def _unit(info: Info[Context, None], unit_id: int | None) -> OrgUnit | None:
    if unit_id is None:
        return None
    row = await info.context.loader(load_org_units).load(unit_id)
    return OrgUnit.of(row) if row is not None else None


@strawberry.type(description="审批事项：从支部逐级报送的一件事（如一次民主评议的结果）")
class ApprovalRequest(Node):
    id: strawberry.ID
    kind: ApprovalKind  # type: ignore[valid-type]
    subject_type: str = strawberry.field(description="审批对象的类型（如 EvaluationRound）")
    subject_id: strawberry.ID = strawberry.field(description="审批对象的全局 id")
    state: ApprovalRequestState  # type: ignore[valid-type]
    digest: str = strawberry.field(description="报送内容的摘要；审批时须与之一致")
    summary: str = strawberry.field(description="报送内容概要（JSON 文本）")
    to_county: bool = strawberry.field(description="是否报县委组织部审批")
    step_days: int = strawberry.field(description="每级审批期限（天）")
    attempt: int = strawberry.field(description="第几次报送（退回补充材料后重新报送加一）")
    submitted_by: str
    submitted_at: datetime
    resubmitted_at: datetime | None
    decided_at: datetime | None = strawberry.field(description="批准或不批准的时间")
    row: strawberry.Private[Any]

    @classmethod
    def of(cls, row: Any) -> ApprovalRequest:
        return cls(
            id=strawberry.ID(to_global_id("ApprovalRequest", row.id)),
            kind=_KINDS[row.kind],
            subject_type=row.subject_type,
            subject_id=strawberry.ID(to_global_id(row.subject_type, row.subject_id)),
            state=_REQUEST_STATES[row.state],
            digest=row.digest,
            summary=json.dumps(row.summary, ensure_ascii=False, sort_keys=True),
            to_county=row.to_county,
            step_days=row.step_days,
            attempt=row.attempt,
            submitted_by=row.submitted_by_name,
            submitted_at=row.submitted_at,
            resubmitted_at=row.resubmitted_at,
            decided_at=row.decided_at,
            row=row,
        )

    @strawberry.field(description="报送的支部；无权查看时为 null")
    async def branch(self, info: Info[Context, None]) -> OrgUnit | None:
        return await _unit(info, self.row.branch_id)

    @strawberry.field(description="各级审批步骤（含退回前的历次审批），按报送次数、层级排列")
    async def steps(self, info: Info[Context, None]) -> list[ApprovalStep]:
        rows = await info.context.loader(load_request_steps).load(self.row.id)
        return [ApprovalStep.of(r) for r in rows]


@strawberry.type(description="审批步骤：某一级组织的某一角色作出的一次审批")
class ApprovalStep(Node):
    id: strawberry.ID
    position: int = strawberry.field(description="层级：1 为党（工）委，2 为县委组织部")
    attempt: int = strawberry.field(description="属于第几次报送")
    role: Role  # type: ignore[valid-type]
    opened_at: datetime
    due_at: datetime = strawberry.field(description="审批期限")
    overdue: bool = strawberry.field(description="待审批且已过期限")
    state: ApprovalStepState  # type: ignore[valid-type]
    decision: ApprovalDecision | None  # type: ignore[valid-type]
    reason: str | None
    decided_by: str | None = strawberry.field(description="审批人账号")
    decided_role: Role | None  # type: ignore[valid-type]
    decided_at: datetime | None = strawberry.field(description="审批时间（数据库时间）")
    digest: str | None = strawberry.field(description="审批时所依据内容的摘要")
    row: strawberry.Private[Any]

    @classmethod
    def of(cls, row: Any) -> ApprovalStep:
        return cls(
            id=strawberry.ID(to_global_id("ApprovalStep", row.id)),
            position=row.position,
            attempt=row.attempt,
            role=_ROLES[row.role],
            opened_at=row.opened_at,
            due_at=row.due_at,
            overdue=bool(row.overdue),
            state=_STEP_STATES[row.state],
            decision=_DECISIONS[row.decision] if row.decision else None,
            reason=row.reason,
            decided_by=row.decided_by_name,
            decided_role=_ROLES[row.decided_role] if row.decided_role else None,
            decided_at=row.decided_at,
            digest=row.digest,
            row=row,
        )

    @strawberry.field(description="审批的组织；无权查看时为 null")
    async def org_unit(self, info: Info[Context, None]) -> OrgUnit | None:
        return await _unit(info, self.row.org_unit_id)

    @strawberry.field(description="作出审批的组织；无权查看时为 null")
    async def decided_unit(self, info: Info[Context, None]) -> OrgUnit | None:
        return await _unit(info, self.row.decided_unit_id)

    @strawberry.field(description="所属审批事项")
    async def request(self, info: Info[Context, None]) -> ApprovalRequest | None:
        row = await info.context.loader(load_requests).load(self.row.request_id)
        return ApprovalRequest.of(row) if row is not None else None


async def request_by_id(context: Context, request_id: int) -> ApprovalRequest:
    return ApprovalRequest.of(await service.get_request(context.tx, context.principal, request_id))


async def step_by_id(context: Context, step_id: int) -> ApprovalStep:
    return ApprovalStep.of(await service.get_step(context.tx, context.principal, step_id))


register_node("ApprovalRequest", request_by_id)
register_node("ApprovalStep", step_by_id)


@strawberry.type
class ApprovalsQuery:
    @strawberry.field(description="待我审批的步骤（本人在该组织担任审批角色）")
    async def approval_inbox(
        self, info: Info[Context, None], first: int | None = None, after: str | None = None
    ) -> Connection[ApprovalStep]:
        ctx = info.context
        page = await service.inbox(ctx.tx, ctx.principal, ctx.page(first, after))
        return connection(page, ApprovalStep.of)  # type: ignore[no-any-return]

    @strawberry.field(description="下级逾期未审批的步骤")
    async def overdue_approvals(
        self, info: Info[Context, None], first: int | None = None, after: str | None = None
    ) -> Connection[ApprovalStep]:
        ctx = info.context
        page = await service.overdue(ctx.tx, ctx.principal, ctx.page(first, after))
        return connection(page, ApprovalStep.of)  # type: ignore[no-any-return]

    @strawberry.field(description="按 id 取审批事项")
    async def approval_request(
        self, info: Info[Context, None], id: strawberry.ID
    ) -> ApprovalRequest:
        return await request_by_id(info.context, from_global_id(id, "ApprovalRequest")[1])


@strawberry.input(description="审批一个步骤；不同意或退回须写明理由")
class DecideApprovalStepInput:
    step_id: strawberry.ID
    decision: ApprovalDecision  # type: ignore[valid-type]
    reason: str | None = None
    digest: str = strawberry.field(description="所审批内容的摘要（取自 ApprovalRequest.digest）")


@strawberry.type
class DecideApprovalStepPayload:
    step: ApprovalStep
    request: ApprovalRequest | None


@strawberry.type
class ApprovalsMutation:
    @strawberry.mutation(description="审批：同意、不同意（退回支部）或退回补充材料")
    async def decide_approval_step(
        self, info: Info[Context, None], input: DecideApprovalStepInput
    ) -> DecideApprovalStepPayload:
        ctx = info.context
        row = await service.decide(
            ctx.tx,
            ctx.principal,
            step_id=from_global_id(input.step_id, "ApprovalStep")[1],
            decision=rules.Decision(input.decision.value),
            reason=input.reason,
            digest=input.digest,
        )
        request = await service.load_requests(ctx.tx, ctx.principal, [row.request_id])
        return DecideApprovalStepPayload(
            step=ApprovalStep.of(row),
            request=ApprovalRequest.of(request[0]) if request[0] is not None else None,
        )
