"""审批 (hierarchical approvals): a matter climbs from a branch to its committee and,
where the policy says so, to the county organization department; each step is decided
once, by the role that holds it. Generic: evaluations and disposal cases use it.

The surface other domains use (see `service.py` for the rules each keeps)::

    from service.approvals import ApprovalKind, Decision, submit, resubmit, on_outcome
"""

from service.approvals.rules import (
    ApprovalKind,
    Decision,
    Outcome,
    RequestState,
    StepSpec,
    StepState,
    chain_for,
    digest_of,
)
from service.approvals.service import (
    EVENT_TOPIC,
    decide,
    get_request,
    get_step,
    inbox,
    is_approved,
    latest_request,
    load_requests,
    load_steps,
    lock_subjects_with,
    may_decide,
    on_outcome,
    overdue,
    remove_outcome_handler,
    request_steps,
    requests_with_steps,
    resubmit,
    submit,
    withdraw_open,
)

__all__ = [
    "EVENT_TOPIC",
    "ApprovalKind",
    "Decision",
    "Outcome",
    "RequestState",
    "StepSpec",
    "StepState",
    "chain_for",
    "decide",
    "digest_of",
    "get_request",
    "get_step",
    "inbox",
    "is_approved",
    "latest_request",
    "load_requests",
    "load_steps",
    "lock_subjects_with",
    "may_decide",
    "on_outcome",
    "overdue",
    "remove_outcome_handler",
    "request_steps",
    "requests_with_steps",
    "resubmit",
    "submit",
    "withdraw_open",
]
