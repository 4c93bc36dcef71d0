"""Pure rules of hierarchical approvals (逐级审批): the chain of steps a request climbs,
deadlines, which decisions a step allows and what each does to the request. No I/O.

A request comes from a branch (党支部, or a general branch 党总支). Its chain is built
from the org tree and the policy, never chosen by the submitter:

1. the branch's superior committee: the tenant's top unit (乡镇党委、开发区党工委 ...),
   decided by its committee secretary (党(工)委书记);
2. where the policy routes this kind of request to the county (`to_county`), the
   county organization department (县委组织部), decided by a county organizer.

Each step gets a deadline of `step_days` business days (Asia/Shanghai) from the day it
becomes pending, by the service's clock (`due_at`).
A decider approves (the next step opens, or the request is approved after the last),
rejects (back to the branch, with reasons: the request ends rejected) or returns it
for more material (the request waits for the branch to resubmit; the same step is
then decided again, on the new content).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from enum import StrEnum
from typing import Any

from service.authz.roles import Role
from service.clock import BUSINESS_ZONE, business_today
from service.tenants.rules import TENANT_KINDS, OrgUnitKind

MAX_STEP_DAYS = 365
MAX_REASON = 1000
MAX_DIGEST = 200
MAX_SUBJECT_TYPE = 64


class ApprovalKind(StrEnum):
    """What is being approved."""

    EVALUATION_RESULT = "evaluation_result"  # 民主评议结果
    CASE_DISPOSAL = "case_disposal"  # 不合格党员处置决定
    CASE_FILING = "case_filing"  # 处置事前备案 / 退党备案


KIND_LABELS: dict[ApprovalKind, str] = {
    ApprovalKind.EVALUATION_RESULT: "民主评议结果",
    ApprovalKind.CASE_DISPOSAL: "不合格党员处置",
    ApprovalKind.CASE_FILING: "处置备案",
}


class Decision(StrEnum):
    APPROVE = "approve"  # 同意
    REJECT = "reject"  # 不同意（退回支部，写明理由）
    RETURN = "return"  # 退回补充材料


DECISION_LABELS: dict[Decision, str] = {
    Decision.APPROVE: "同意",
    Decision.REJECT: "不同意",
    Decision.RETURN: "退回补充材料",
}


class RequestState(StrEnum):
    PENDING = "pending"  # 审批中
    APPROVED = "approved"  # 已批准
    REJECTED = "rejected"  # 未批准（退回支部）
    RETURNED = "returned"  # 退回补充材料，待重新提交
    WITHDRAWN = "withdrawn"  # 已撤回（事项撤销，未作决定）


class StepState(StrEnum):
    PENDING = "pending"  # 待审批
    APPROVED = "approved"
    REJECTED = "rejected"
    RETURNED = "returned"
    WITHDRAWN = "withdrawn"  # 事项撤回，未作决定


# A decided step's state is named after its decision.
STEP_STATE_OF: dict[Decision, StepState] = {
    Decision.APPROVE: StepState.APPROVED,
    Decision.REJECT: StepState.REJECTED,
    Decision.RETURN: StepState.RETURNED,
}

# The roles that decide steps, and the outcome names handlers are told.
DECIDING_ROLES = frozenset({Role.COMMITTEE_SECRETARY, Role.COUNTY_ORGANIZER})


class Outcome(StrEnum):
    """What a request's handler is told (the domain acts on it)."""

    APPROVED = "approved"
    REJECTED = "rejected"
    RETURNED = "returned"


@dataclass(frozen=True)
class UnitRef:
    """An org unit on the branch's path (root first): what the chain is built from."""

    id: int
    kind: OrgUnitKind
    path: str


@dataclass(frozen=True)
class StepSpec:
    """One planned step: who decides it (a role at an org unit) and its time allowance."""

    position: int
    org_unit_id: int
    org_path: str
    role: Role
    days: int

    def to_json(self) -> dict[str, Any]:
        return {
            "position": self.position,
            "org_unit_id": self.org_unit_id,
            "org_path": self.org_path,
            "role": self.role.value,
            "days": self.days,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> StepSpec:
        return cls(
            position=int(data["position"]),
            org_unit_id=int(data["org_unit_id"]),
            org_path=str(data["org_path"]),
            role=Role(data["role"]),
            days=int(data["days"]),
        )


class ChainError(ValueError):
    """The units given cannot carry a chain (not a branch, no tenant or county above)."""


ORIGIN_KINDS = frozenset({OrgUnitKind.BRANCH, OrgUnitKind.GENERAL_BRANCH})


def chain_for(
    branch_path_units: Sequence[UnitRef], *, to_county: bool, step_days: int
) -> list[StepSpec]:
    """The steps of a request from the last unit of `branch_path_units` (root first,
    ending with the branch itself): the tenant's committee, then, with `to_county`,
    the county organization department.

    >>> K = OrgUnitKind
    >>> units = [UnitRef(1, K.ROOT, "/1/"), UnitRef(2, K.COUNTY, "/1/2/"),
    ...          UnitRef(3, K.TOWNSHIP, "/1/2/3/"), UnitRef(9, K.BRANCH, "/1/2/3/9/")]
    >>> steps = chain_for(units, to_county=True, step_days=10)
    >>> [(s.position, s.org_unit_id, s.role.value) for s in steps]
    [(1, 3, 'committee_secretary'), (2, 2, 'county_organizer')]
    >>> [s.org_path for s in chain_for(units, to_county=False, step_days=10)]
    ['/1/2/3/']
    """
    if not 1 <= step_days <= MAX_STEP_DAYS:
        raise ChainError(f"step_days must be 1..{MAX_STEP_DAYS}")
    if not branch_path_units or branch_path_units[-1].kind not in ORIGIN_KINDS:
        raise ChainError("a request comes from a branch or a general branch")
    origin = branch_path_units[-1]
    above = [u for u in branch_path_units[:-1] if origin.path.startswith(u.path)]
    tenants = [u for u in above if u.kind in TENANT_KINDS]
    counties = [u for u in above if u.kind is OrgUnitKind.COUNTY]
    if len(tenants) != 1 or len(counties) != 1:
        raise ChainError("a branch sits under exactly one tenant and one county")
    tenant, county = tenants[0], counties[0]
    if not tenant.path.startswith(county.path):
        raise ChainError("the tenant is not under the county")
    steps = [StepSpec(1, tenant.id, tenant.path, Role.COMMITTEE_SECRETARY, step_days)]
    if to_county:
        steps.append(StepSpec(2, county.id, county.path, Role.COUNTY_ORGANIZER, step_days))
    return steps


def path_ids(path: str) -> list[int]:
    """The unit ids of a materialised path, root first.

    >>> path_ids("/1/22/305/")
    [1, 22, 305]
    """
    return [int(part) for part in path.strip("/").split("/") if part]


def due_at(opened_at: datetime, days: int) -> datetime:
    """A step's deadline: the end of the business day (Asia/Shanghai) `days` days after
    the day it became pending. A step opened on Monday at 23:30 Beijing time with 7 days
    is due when the next Monday ends, like one opened at 08:00 that Monday (examples in
    tests/approvals/test_rules.py)."""
    day = business_today(opened_at) + timedelta(days=days + 1)
    return datetime.combine(day, time(0), tzinfo=BUSINESS_ZONE)


def is_overdue(due: datetime, now: datetime, state: StepState) -> bool:
    """Only a pending step can be overdue; one decided late is history, not a prompt."""
    return state is StepState.PENDING and now > due


def allowed_decisions(state: StepState) -> frozenset[Decision]:
    """What a step allows: every decision while pending, none once decided."""
    return frozenset(Decision) if state is StepState.PENDING else frozenset()


def needs_reason(decision: Decision) -> bool:
    """A rejection or a return tells the branch why; an approval may say nothing."""
    return decision is not Decision.APPROVE


@dataclass(frozen=True)
class Transition:
    """What a decision at `position` does: the step's new state, the request's new
    state, the next position to open (None: no step opens) and the outcome handlers
    are told (None: the request still climbs)."""

    step_state: StepState
    request_state: RequestState
    next_position: int | None
    outcome: Outcome | None


def transition(decision: Decision, position: int, chain_length: int) -> Transition:
    """The effect of `decision` on step `position` of a chain of `chain_length` steps.

    >>> move = transition(Decision.APPROVE, 1, 2)
    >>> (move.step_state.value, move.request_state.value, move.next_position, move.outcome)
    ('approved', 'pending', 2, None)
    >>> transition(Decision.APPROVE, 2, 2).outcome
    <Outcome.APPROVED: 'approved'>
    >>> transition(Decision.RETURN, 2, 2).request_state
    <RequestState.RETURNED: 'returned'>
    """
    if not 1 <= position <= chain_length:
        raise ValueError("position outside the chain")
    step_state = STEP_STATE_OF[decision]
    if decision is Decision.REJECT:
        return Transition(step_state, RequestState.REJECTED, None, Outcome.REJECTED)
    if decision is Decision.RETURN:
        return Transition(step_state, RequestState.RETURNED, None, Outcome.RETURNED)
    if position < chain_length:
        return Transition(step_state, RequestState.PENDING, position + 1, None)
    return Transition(step_state, RequestState.APPROVED, None, Outcome.APPROVED)


def digest_of(content: Any) -> str:
    """A digest of what is approved: SHA-256 of the canonical JSON of `content` (sorted
    keys, no spaces, non-ASCII kept). Domains may compute their own; the approval
    stores and compares strings.

    >>> digest_of({"b": 1, "a": "甲"}) == digest_of({"a": "甲", "b": 1})
    True
    """
    text = json.dumps(content, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode()).hexdigest()


def clean_reason(reason: str | None) -> str | None:
    """The reason as stored: trimmed, None when empty (the service refuses one longer
    than MAX_REASON)."""
    if reason is None:
        return None
    text = reason.strip()
    return text or None


def valid_digest(digest: str) -> bool:
    return 1 <= len(digest) <= MAX_DIGEST and digest.isprintable() and digest.strip() == digest
