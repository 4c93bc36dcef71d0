"""Use cases of approval chains (逐级审批): submit, decide, resubmit; the inbox and the
overdue list; the handler registry through which a domain learns the outcome.

Who sees a request and its steps: whoever may read approvals at the branch it comes
from (`approval:read`: the branch secretary, the tenant's committee, the county).
Who decides a step: a principal holding the step's role at the step's unit, with
`approval:decide` there, who did not submit the matter, and only while the step is
the request's pending one: no skipping a level, no deciding for another unit. A step
is decided exactly once (a conditional UPDATE on its state and version; the loser of
a race is told it was already decided). Each decision stores who, in which role and
unit, the database time and the digest of the content it was taken on; deciding on
a digest other than the request's current one is refused.

A domain submits (having authorized its own action), registers a handler per kind
with `on_outcome`, and is told `approved`, `rejected` (back to the branch) or
`returned` (more material wanted: it resubmits with the new digest, and the step that
returned it is decided again).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from service.audit.service import record
from service.auth.principal import Principal
from service.authz import authorizer, readable_paths, require
from service.authz.enforcer import DeniedAt
from service.db import Transaction
from service.errors import forbidden, not_found
from service.pagination import Page, PageRequest
from service.tenants.rules import OrgUnitKind

from . import repository, rules
from .actions import ApprovalAction
from .errors import (
    APPROVAL_ALREADY_DECIDED,
    APPROVAL_ALREADY_SUBMITTED,
    APPROVAL_CONTENT_CHANGED,
    APPROVAL_DIGEST_INVALID,
    APPROVAL_NOT_RETURNED,
    APPROVAL_ORIGIN_INVALID,
    APPROVAL_OWN_MATTER,
    APPROVAL_REASON_REQUIRED,
    APPROVAL_STEP_DAYS_INVALID,
    APPROVAL_SUBJECT_INVALID,
    REQUEST,
    STEP,
)
from .rules import ApprovalKind, Decision, Outcome, RequestState, StepSpec, StepState

EVENT_TOPIC = "approval_step"
_KINDS = frozenset(k.value for k in OrgUnitKind)

# --- outcome handlers ------------------------------------------------------------------

Handler = Callable[[Transaction, Principal, Any, str, str | None], Awaitable[None]]
_handlers: dict[ApprovalKind, list[Handler]] = {}


def on_outcome(kind: ApprovalKind, handler: Handler) -> Handler:
    """Register `handler(tx, principal, request_row, outcome, reason)` for requests of
    `kind`: called in the deciding transaction when a request is approved (after its
    last step), rejected or returned. Registering the same function again is a no-op."""
    handlers = _handlers.setdefault(ApprovalKind(kind), [])
    if handler not in handlers:
        handlers.append(handler)
    return handler


def remove_outcome_handler(kind: ApprovalKind, handler: Handler) -> None:
    """Forget a handler (tests register their own for a while)."""
    handlers = _handlers.get(ApprovalKind(kind), [])
    if handler in handlers:
        handlers.remove(handler)


# --- subject locks ---------------------------------------------------------------------

SubjectLocker = Callable[[Transaction, int, str, int], Awaitable[None]]
_lockers: dict[ApprovalKind, list[SubjectLocker]] = {}


def lock_subjects_with(kind: ApprovalKind, locker: SubjectLocker) -> SubjectLocker:
    """Register `locker(tx, tenant_id, subject_type, subject_id)` for requests of `kind`:
    `decide` calls it before it touches the step. A domain that locks its subject and
    then its requests (a case: submit, resubmit, drop) and whose outcome handler locks
    the subject again thereby keeps one order everywhere (subject, step, request), and
    a decision racing such a change waits instead of deadlocking."""
    lockers = _lockers.setdefault(ApprovalKind(kind), [])
    if locker not in lockers:
        lockers.append(locker)
    return locker


async def _tell(
    tx: Transaction, principal: Principal, request: Any, outcome: Outcome, reason: str | None
) -> None:
    for handler in list(_handlers.get(ApprovalKind(request.kind), ())):
        await handler(tx, principal, request, outcome.value, reason)


# --- events ----------------------------------------------------------------------------


async def _publish(tx: Transaction, step: Any, change: str) -> None:
    """Tell subscribers (inboxes) that a step became pending or was decided; delivered
    at the commit (NOTIFY inside the transaction)."""
    from service.events import publish  # the events package imports domains lazily too

    await publish(
        tx,
        EVENT_TOPIC,
        {
            "step_id": step.id,
            "request_id": step.request_id,
            "tenant_id": step.tenant_id,
            "org_unit_id": step.org_unit_id,
            "org_path": step.org_path,
            "role": step.role,
            "state": step.state,
            "decision": step.decision,
            "kind": step.request_kind,
            "change": change,
        },
    )


# --- who sees, who decides -------------------------------------------------------------


def sees(principal: Principal, branch_path: str) -> bool:
    """Whether the principal reads approvals of the branch (the request and its steps)."""
    return authorizer().allowed(principal, ApprovalAction.READ, branch_path)


def may_decide(principal: Principal, step: Any) -> bool:
    """Whether the principal holds the step's role at the step's unit with
    `approval:decide` there. Pure but for the (cached) Casbin decision; says nothing
    about the step's state or who submitted (`decide` checks those)."""
    if not authorizer().allowed(principal, ApprovalAction.DECIDE, step.org_path):
        return False
    return any(g.role == step.role and g.org_unit_id == step.org_unit_id for g in principal.grants)


async def get_request(tx: Transaction, principal: Principal, request_id: int) -> Any:
    """The request, if the principal may see it; NOT_FOUND otherwise."""
    row = await repository.get_request(tx, request_id)
    if row is None or not sees(principal, row.branch_path):
        raise not_found(REQUEST)
    return row


async def load_requests(
    tx: Transaction, principal: Principal, ids: Sequence[int]
) -> list[Any | None]:
    by_id = await repository.get_requests(tx, ids)
    found = (by_id.get(i) for i in ids)
    return [r if r is not None and sees(principal, r.branch_path) else None for r in found]


async def get_step(tx: Transaction, principal: Principal, step_id: int) -> Any:
    """The step (joined with its request), if the principal may see it; NOT_FOUND
    otherwise."""
    row = await repository.get_step(tx, step_id)
    if row is None or not sees(principal, row.branch_path):
        raise not_found(STEP)
    return row


async def load_steps(tx: Transaction, principal: Principal, ids: Sequence[int]) -> list[Any | None]:
    by_id = await repository.get_steps(tx, ids)
    found = (by_id.get(i) for i in ids)
    return [s if s is not None and sees(principal, s.branch_path) else None for s in found]


async def request_steps(
    tx: Transaction, principal: Principal, request_ids: Sequence[int]
) -> list[list[Any]]:
    """The steps of each request (already shown to the principal), in order."""
    by_request = await repository.steps_of_requests(tx, request_ids)
    return [
        [s for s in by_request.get(i, []) if sees(principal, s.branch_path)] for i in request_ids
    ]


async def requests_with_steps(
    tx: Transaction, request_ids: Sequence[int]
) -> list[tuple[Any, list[Any]]]:
    """Requests and all their steps, in order, WITHOUT the reader's approval:read filter:
    for a domain whose own check has authorized the subject they decide (a disposal
    case's archive must hold every approval of the case, whoever exports it)."""
    by_id = await repository.get_requests(tx, request_ids)
    steps = await repository.steps_of_requests(tx, request_ids)
    return [(by_id[i], steps.get(i, [])) for i in request_ids if i in by_id]


async def latest_request(
    tx: Transaction,
    principal: Principal,
    *,
    tenant_id: int,
    kind: ApprovalKind,
    subject_type: str,
    subject_id: int,
) -> Any | None:
    """The subject's newest request of `kind` (None: never submitted, or not visible)."""
    row = await repository.latest_request(tx, tenant_id, kind.value, subject_type, subject_id)
    return row if row is not None and sees(principal, row.branch_path) else None


def is_approved(request: Any | None, digest: str) -> bool:
    """Whether `request` approves exactly the content of `digest`: content changed
    after the approval needs a new one."""
    return (
        request is not None
        and request.state == RequestState.APPROVED.value
        and request.digest == digest
    )


# --- submitting ------------------------------------------------------------------------


def _check_content(digest: str, summary: dict[str, Any]) -> None:
    if not isinstance(digest, str) or not rules.valid_digest(digest):
        raise APPROVAL_DIGEST_INVALID.error()
    if not isinstance(summary, dict):
        raise APPROVAL_SUBJECT_INVALID.error("审批摘要应为对象")


async def _chain(
    tx: Transaction, branch: Any, *, to_county: bool, step_days: int
) -> list[StepSpec]:
    ids = rules.path_ids(branch.path)
    above = [
        rules.UnitRef(u.id, OrgUnitKind(u.kind), u.path)
        for u in await repository.scope_units(tx, ids[:-1])
        if u.kind in _KINDS
    ]
    origin = rules.UnitRef(branch.id, OrgUnitKind(branch.kind), branch.path)
    try:
        return rules.chain_for([*above, origin], to_county=to_county, step_days=step_days)
    except rules.ChainError as exc:
        raise APPROVAL_ORIGIN_INVALID.error() from exc


async def submit(
    tx: Transaction,
    principal: Principal,
    *,
    kind: ApprovalKind,
    subject_type: str,
    subject_id: int,
    branch_unit: int | Any,
    digest: str,
    summary: dict[str, Any],
    to_county: bool,
    step_days: int,
) -> Any:
    """Open a request from `branch_unit` (an id or a row with `id`) and its first step.

    The caller has authorized its own action (e.g. the branch secretary closing a
    round); this checks only that the principal sees approvals of the branch. A
    subject has at most one open request per kind (APPROVAL_ALREADY_SUBMITTED)."""
    unit_id = branch_unit if isinstance(branch_unit, int) else branch_unit.id
    branch = await repository.branch_unit(tx, unit_id)
    if branch is None:
        raise not_found("组织")
    require(principal, ApprovalAction.READ, branch.path, what="组织", seen_with=ApprovalAction.READ)
    if not 1 <= step_days <= rules.MAX_STEP_DAYS:
        raise APPROVAL_STEP_DAYS_INVALID.error(maximum=rules.MAX_STEP_DAYS)
    if not subject_type or len(subject_type) > rules.MAX_SUBJECT_TYPE or subject_id < 0:
        raise APPROVAL_SUBJECT_INVALID.error()
    _check_content(digest, summary)
    chain = await _chain(tx, branch, to_county=to_county, step_days=step_days)
    request = await repository.insert_request(
        tx,
        {
            "tenant_id": branch.tenant_id,
            "kind": ApprovalKind(kind).value,
            "subject_type": subject_type,
            "subject_id": subject_id,
            "branch_id": branch.id,
            "branch_path": branch.path,
            "digest": digest,
            "summary": summary,
            "chain": [s.to_json() for s in chain],
            "to_county": to_county,
            "step_days": step_days,
            "submitted_by": principal.account_id,
            "submitted_by_name": principal.actor,
        },
    )
    if request is None:
        raise APPROVAL_ALREADY_SUBMITTED.error()
    first = chain[0]
    step = await repository.open_step(
        tx,
        request,
        attempt=1,
        position=first.position,
        org_unit_id=first.org_unit_id,
        org_path=first.org_path,
        role=first.role.value,
        days=first.days,
    )
    await record(
        tx,
        principal,
        tenant_id=request.tenant_id,
        action="approval.submit",
        object_type="ApprovalRequest",
        object_id=request.id,
        details={
            "kind": request.kind,
            "subject_type": subject_type,
            "subject_id": subject_id,
            "branch_id": branch.id,
            "digest": digest,
            "to_county": to_county,
            "steps": len(chain),
        },
    )
    await _publish(tx, step, "pending")
    return request


async def resubmit(
    tx: Transaction,
    principal: Principal,
    *,
    request_id: int,
    digest: str,
    summary: dict[str, Any],
) -> Any:
    """Submit a returned request again with its new content: the step that returned it
    opens again (a new step row, `attempt` + 1), with a fresh deadline."""
    request = await get_request(tx, principal, request_id)
    _check_content(digest, summary)
    if request.state != RequestState.RETURNED.value:
        raise APPROVAL_NOT_RETURNED.error()
    again = await repository.resubmit_request(
        tx, request, digest=digest, summary=summary, account_id=principal.account_id
    )
    if again is None:
        raise APPROVAL_NOT_RETURNED.error()
    spec = StepSpec.from_json(again.chain[again.current_position - 1])
    step = await repository.open_step(
        tx,
        again,
        attempt=again.attempt,
        position=spec.position,
        org_unit_id=spec.org_unit_id,
        org_path=spec.org_path,
        role=spec.role.value,
        days=spec.days,
    )
    await record(
        tx,
        principal,
        tenant_id=again.tenant_id,
        action="approval.resubmit",
        object_type="ApprovalRequest",
        object_id=again.id,
        details={"digest": digest, "attempt": again.attempt, "position": spec.position},
    )
    await _publish(tx, step, "pending")
    return again


# --- deciding --------------------------------------------------------------------------


async def decide(
    tx: Transaction,
    principal: Principal,
    *,
    step_id: int,
    decision: Decision,
    reason: str | None,
    digest: str,
) -> Any:
    """Decide the request's pending step: approve (the next step opens, or the request
    is approved), reject or return (both with a reason). Returns the decided step."""
    step = await repository.get_step(tx, step_id)
    if step is None:
        raise not_found(STEP)
    # Unseen: NOT_FOUND; seen without any power to decide: FORBIDDEN.
    require(
        principal,
        ApprovalAction.DECIDE,
        step.branch_path,
        what=STEP,
        seen_with=ApprovalAction.READ,
    )
    if not may_decide(principal, step):
        # Seen, and a decider somewhere, but not of this step (another level or unit):
        # refused like `require` refuses, so the view audits the denial.
        raise DeniedAt(forbidden(), action=str(ApprovalAction.DECIDE), org_path=step.org_path)
    if principal.account_id is not None and principal.account_id in (
        step.submitted_by,
        step.resubmitted_by,
    ):
        raise APPROVAL_OWN_MATTER.error()
    decision = Decision(decision)
    if decision not in rules.allowed_decisions(StepState(step.state)):
        raise APPROVAL_ALREADY_DECIDED.error()
    said = rules.clean_reason(reason)
    if said is not None and len(said) > rules.MAX_REASON:
        raise APPROVAL_REASON_REQUIRED.error(limit=rules.MAX_REASON)
    if rules.needs_reason(decision) and said is None:
        raise APPROVAL_REASON_REQUIRED.error(limit=rules.MAX_REASON)
    if digest != step.request_digest:
        raise APPROVAL_CONTENT_CHANGED.error()
    chain = [StepSpec.from_json(s) for s in step.chain]
    move = rules.transition(decision, step.position, len(chain))
    for locker in _lockers.get(ApprovalKind(step.request_kind), ()):
        await locker(tx, step.tenant_id, step.subject_type, step.subject_id)
    decided = await repository.decide_step(
        tx,
        step,
        state=move.step_state.value,
        decision=decision.value,
        reason=said,
        account_id=principal.account_id,
        username=principal.actor,
        role=step.role,
        unit_id=step.org_unit_id,
        digest=digest,
    )
    if decided is None:
        raise APPROVAL_ALREADY_DECIDED.error()
    values: dict[str, Any] = {"state": move.request_state.value}
    if move.next_position is not None:
        values["current_position"] = move.next_position
    if move.request_state in (RequestState.APPROVED, RequestState.REJECTED):
        values["decided_now"] = True
    request = await repository.move_request(
        tx, step.tenant_id, step.request_id, version=step.request_version, **values
    )
    if request is None:  # the request moved under us: someone decided first
        raise APPROVAL_ALREADY_DECIDED.error()
    await record(
        tx,
        principal,
        tenant_id=step.tenant_id,
        action="approval.decide",
        object_type="ApprovalStep",
        object_id=step.id,
        details={
            "request_id": step.request_id,
            "kind": step.request_kind,
            "position": step.position,
            "attempt": step.attempt,
            "decision": decision.value,
            "reason": said,
            "role": step.role,
            "org_unit_id": step.org_unit_id,
            "digest": digest,
        },
    )
    await _publish(tx, decided, "decided")
    if move.next_position is not None:
        spec = chain[move.next_position - 1]
        opened = await repository.open_step(
            tx,
            request,
            attempt=request.attempt,
            position=spec.position,
            org_unit_id=spec.org_unit_id,
            org_path=spec.org_path,
            role=spec.role.value,
            days=spec.days,
        )
        await _publish(tx, opened, "pending")
    if move.outcome is not None:
        await _tell(tx, principal, request, move.outcome, said)
    return decided


async def withdraw_open(
    tx: Transaction,
    principal: Principal,
    *,
    tenant_id: int,
    kind: ApprovalKind,
    subject_type: str,
    subject_id: int,
    reason: str,
) -> Any | None:
    """Withdraw the subject's open request of `kind` (pending, or returned for more
    material) with its pending step: the matter was dropped before anyone decided it,
    so it leaves the decider's inbox (their subscription is told). The caller has
    authorized its own action, as for `submit`. Returns the withdrawn request, or None
    when none was open; APPROVAL_ALREADY_DECIDED when a decision came first."""
    request = await repository.latest_request(
        tx, tenant_id, ApprovalKind(kind).value, subject_type, subject_id
    )
    if request is None or request.state not in (
        RequestState.PENDING.value,
        RequestState.RETURNED.value,
    ):
        return None
    require(
        principal,
        ApprovalAction.READ,
        request.branch_path,
        what="组织",
        seen_with=ApprovalAction.READ,
    )
    said = rules.clean_reason(reason) or "事项已撤销"
    # The step, then the request, as `decide` takes them (after the subject, which a
    # domain that withdraws holds already: see `lock_subjects_with`).
    step_id = await repository.withdraw_pending_step(
        tx,
        request.tenant_id,
        request.id,
        reason=said[: rules.MAX_REASON],
        account_id=principal.account_id,
        username=principal.actor,
    )
    # Still open if still at the version read: every write of a request bumps it.
    withdrawn = await repository.move_request(
        tx,
        request.tenant_id,
        request.id,
        version=request.version,
        state=RequestState.WITHDRAWN.value,
    )
    if withdrawn is None:  # decided (or moved) since it was read
        raise APPROVAL_ALREADY_DECIDED.error()
    await record(
        tx,
        principal,
        tenant_id=request.tenant_id,
        action="approval.withdraw",
        object_type="ApprovalRequest",
        object_id=request.id,
        details={"kind": request.kind, "step_id": step_id, "reason": said},
    )
    if step_id is not None:
        step = await repository.get_step(tx, step_id)
        if step is not None:
            await _publish(tx, step, "withdrawn")
    return withdrawn


# --- lists -----------------------------------------------------------------------------


async def inbox(tx: Transaction, principal: Principal, page: PageRequest) -> Page[Any]:
    """Pending steps the principal decides: their role at their unit (待办审批)."""
    auth = authorizer()
    pairs = sorted(
        {
            (g.org_unit_id, g.role)
            for g in principal.grants
            if g.role in rules.DECIDING_ROLES
            and auth.allowed(principal, ApprovalAction.DECIDE, g.org_path)
        }
    )
    if not pairs:
        return Page.empty()
    readable = readable_paths(principal, ApprovalAction.DECIDE)
    return await repository.inbox_page(tx, readable, pairs, page)


async def overdue(tx: Transaction, principal: Principal, page: PageRequest) -> Page[Any]:
    """Pending steps past their deadline at units strictly below the principal's own
    (逾期未办): the level above watches the level below."""
    readable = readable_paths(principal, ApprovalAction.READ)
    if not readable:
        return Page.empty()
    return await repository.overdue_page(tx, readable, page)
