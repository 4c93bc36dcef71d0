"""Live approval inbox (待办审批实时推送): `subscription { approvalInbox { change step {...} } }`.

Every step that becomes pending (ARRIVED) or is decided (DECIDED) is announced by the
approvals service on the topic `approval_step` (service/approvals/service.py,
`_publish`), from whichever process made the change. A subscriber receives the events
of the steps it decides: its role held at the step's unit with `approval:decide`
there (`may_decide`), the same steps `approvalInbox(first, after)` lists. The event's
ids are only a hint: the step is read again in the event's own transaction, with the
subscriber's principal and scope (service/schema/subscriptions.py), so what arrives
is what the subscriber may see now.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator
from enum import Enum
from typing import Any

import strawberry
from strawberry.types import Info

from service.approvals import service
from service.approvals.graphql import ApprovalStep
from service.auth.principal import Principal
from service.schema.context import Context
from service.schema.subscriptions import deliveries


@strawberry.enum(description="待办审批的变化")
class ApprovalInboxChange(Enum):
    ARRIVED = "arrived"  # a step became pending where the subscriber decides it
    DECIDED = "decided"  # such a step was decided (by anyone): it leaves the inbox
    WITHDRAWN = "withdrawn"  # its matter was withdrawn undecided: it leaves the inbox


@strawberry.type(description="待办审批的一次变化")
class ApprovalInboxEvent:
    step: ApprovalStep
    change: ApprovalInboxChange


# The approvals service's change names -> the subscription's.
_CHANGES = {
    "pending": ApprovalInboxChange.ARRIVED,
    "decided": ApprovalInboxChange.DECIDED,
    "withdrawn": ApprovalInboxChange.WITHDRAWN,
}


def concerns(principal: Principal, payload: dict[str, Any]) -> bool:
    """Pre-filter without a statement: a step of one of the principal's tenants, at a
    unit where it holds the step's role. `select` decides for real."""
    return (
        payload.get("change") in _CHANGES
        and payload.get("tenant_id") in principal.tenant_ids
        and any(
            g.role == payload.get("role") and g.org_unit_id == payload.get("org_unit_id")
            for g in principal.grants
        )
    )


async def inbox_event(context: Context, payload: dict[str, Any]) -> ApprovalInboxEvent | None:
    """The event as this subscriber sees it, read now with its scope; None when the
    step is not (or no longer) one it decides."""
    change = _CHANGES.get(payload.get("change", ""))
    step_id = payload.get("step_id")
    if change is None or not isinstance(step_id, int):
        return None
    row = await service.get_step(context.tx, context.principal, step_id)
    if not service.may_decide(context.principal, row):
        return None
    if change is ApprovalInboxChange.ARRIVED and row.state != "pending":
        return None  # decided meanwhile: its DECIDED event follows
    return ApprovalInboxEvent(step=ApprovalStep.of(row), change=change)


@strawberry.type
class ApprovalsSubscription:
    @strawberry.subscription(
        description=(
            "待我审批的步骤的变化：新到（ARRIVED）、已审批（DECIDED）或事项撤回（WITHDRAWN），"
            "经 WebSocket 推送"
        )
    )
    async def approval_inbox(
        self, info: Info[Any, None]
    ) -> AsyncGenerator[ApprovalInboxEvent, None]:
        async for delivery in deliveries(
            info, service.EVENT_TOPIC, select=inbox_event, accept=concerns
        ):
            # A Delivery: the executor resolves its value in its own transaction.
            yield delivery
