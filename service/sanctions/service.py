"""Use cases of discipline sanctions (党纪处分): record one, read a member's.

Recording takes `sanction:record` at the member's branch (the tenant's committee or
the county decides sanctions; the ledger keeps them). Expulsion (开除党籍) also ends
the membership: the member's status moves to expelled in the same transaction, with a
history entry and its own audit event, written by `members.service.set_status` (not
`change_status`, which takes `member:update`: a committee secretary who records the
decision does not hold it).
"""

from __future__ import annotations

from datetime import date
from typing import Any

from service.audit.service import record
from service.auth.principal import Principal
from service.db import Transaction
from service.errors import not_found
from service.members.mobile import clean_text
from service.members.rules import STATUS_LABELS, STATUS_MOVES, MemberStatus, may_move
from service.members.service import (
    MemberOwner,
    get_member,
    require_own_or_readable,
    set_status,
)
from service.pagination import Page, PageRequest
from service.sanctions import repository, rules
from service.sanctions.actions import SanctionAction
from service.sanctions.errors import (
    DECIDED_BY_MISSING,
    DECIDED_IN_FUTURE,
    MATTER_MISSING,
    MEMBER_HAS_LEFT,
    SANCTION,
)
from service.sanctions.rules import SanctionKind


async def record_sanction(
    tx: Transaction,
    principal: Principal,
    *,
    member_id: int,
    kind: SanctionKind,
    decided_on: date,
    decided_by: str,
    matter: str,
) -> Any:
    """Record a sanction decided by `decided_by` on `decided_on`."""
    member = await get_member(tx, principal, member_id, SanctionAction.RECORD)
    status = MemberStatus(member.status)
    # Whoever has left the party (removed, withdrew, expelled, deceased, moved out of
    # the county) is no longer sanctioned here; expulsion needs a status it can end.
    if not STATUS_MOVES[status] or (
        kind is SanctionKind.EXPULSION and not may_move(status, MemberStatus.EXPELLED)
    ):
        raise MEMBER_HAS_LEFT.error(status=STATUS_LABELS[status])
    if decided_on > date.today():
        raise DECIDED_IN_FUTURE.error()
    organ = clean_text(decided_by, rules.MAX_DECIDED_BY)
    if organ is None:
        raise DECIDED_BY_MISSING.error()
    what = clean_text(matter, rules.MAX_MATTER)
    if what is None:
        raise MATTER_MISSING.error()
    sanction = await repository.insert_sanction(
        tx,
        tenant_id=member.tenant_id,
        member_id=member.id,
        kind=kind.value,
        decided_on=decided_on,
        probation_ends_on=rules.probation_ends_on(kind, decided_on),
        decided_by=organ,
        matter=what,
        recorded_by=principal.actor,
    )
    await record(
        tx,
        principal,
        tenant_id=member.tenant_id,
        action="sanction.record",
        object_type="Sanction",
        object_id=sanction.id,
        details={
            "member_id": member.id,
            "kind": kind.value,
            "decided_on": decided_on.isoformat(),
            "decided_by": organ,
        },
    )
    if kind is SanctionKind.EXPULSION:
        await _expel(tx, principal, member, decided_on)
    return sanction


async def _expel(tx: Transaction, principal: Principal, member: Any, decided_on: date) -> None:
    await set_status(
        tx,
        principal,
        member,
        status=MemberStatus.EXPELLED,
        effective_on=decided_on,
        note="开除党籍处分",
    )


async def get_sanction(tx: Transaction, principal: Principal, sanction_id: int) -> Any:
    """A sanction the principal may see (the member's own, or a reader of the branch)."""
    row = await repository.get_sanction(tx, sanction_id)
    if row is None:
        raise not_found(SANCTION)
    require_own_or_readable(principal, MemberOwner.of_joined(row), SANCTION)
    return row


async def member_sanctions(
    tx: Transaction, principal: Principal, member: Any, page: PageRequest
) -> Page[Any]:
    """The sanctions of a member already shown to the principal."""
    require_own_or_readable(principal, member, SANCTION)
    return await repository.sanctions_page(tx, member.id, page)
