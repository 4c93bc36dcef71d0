"""Use cases of party dues (党费): record a payment, agree a schedule, read payments.

A payment is recorded by the branch (`dues:record` at the member's branch) for a
member on the rolls; `rules.check_payment` decides which months it may name (the
schedule in force is read from the member's arrangements), a month is paid once
(the key of dues_months says so too), and months before the member joined are
refused. Every write leaves one audit event in its transaction.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from typing import Any

from service.audit.service import record
from service.auth.principal import Principal
from service.authz import require
from service.db import Transaction
from service.dues import repository
from service.dues.actions import DuesAction
from service.dues.errors import (
    DUES_MONTH_ALREADY_PAID,
    DUES_MONTH_BEFORE_JOINED,
    MONTH_INVALID,
    NOTE_TOO_LONG,
    PAYMENT,
    PROBLEMS,
    SCHEDULE_FROM_MONTH_INVALID,
)
from service.dues.rules import DuesSchedule, Month, PaidBy, check_payment
from service.errors import not_found
from service.members.actions import MemberAction
from service.members.errors import MEMBER_NOT_ON_ROLLS
from service.members.rules import ON_ROLLS, STATUS_LABELS, MemberStatus
from service.members.service import get_member, own_or_readable
from service.pagination import Page, PageRequest

MAX_NOTE_LENGTH = 500


def _note(note: str | None) -> str | None:
    cleaned = " ".join((note or "").split())
    if len(cleaned) > MAX_NOTE_LENGTH:
        raise NOTE_TOO_LONG.error()
    return cleaned or None


def _month(text: str) -> Month:
    try:
        return Month.parse(text)
    except ValueError:
        raise MONTH_INVALID.error() from None


def on_rolls(member: Any, doing: str) -> None:
    """MEMBER_NOT_ON_ROLLS unless the member is active or correcting."""
    status = MemberStatus(member.status)
    if status not in ON_ROLLS:
        raise MEMBER_NOT_ON_ROLLS.error(status=STATUS_LABELS[status], doing=doing)


async def schedule_at(tx: Transaction, member: Any, month: Month) -> DuesSchedule:
    found = await repository.schedules_at(tx, [(member.tenant_id, member.id)], month.ordinal)
    return found.get(member.id, DuesSchedule.MONTHLY)


async def record_payment(
    tx: Transaction,
    principal: Principal,
    *,
    member_id: int,
    paid_on: date,
    amount_fen: int,
    paid_by: PaidBy,
    months: Sequence[str],
    note: str | None = None,
) -> Any:
    """Record one payment (or back-payment) for the months it names."""
    member = await get_member(tx, principal, member_id, DuesAction.RECORD)
    on_rolls(member, "交纳党费")
    named = [_month(m) for m in months]
    schedule = await schedule_at(tx, member, Month.of(paid_on))
    problems = check_payment(paid_on, named, schedule=schedule, amount_fen=amount_fen)
    if problems:
        raise PROBLEMS[problems[0]].error()
    joined = Month.of(member.joined_on)
    early = [m for m in named if m < joined]
    if early:
        raise DUES_MONTH_BEFORE_JOINED.error(month=min(early).label)
    ordinals = sorted(m.ordinal for m in named)
    already = await repository.paid_months(tx, member, ordinals)
    if already:
        raise DUES_MONTH_ALREADY_PAID.error(months=_labels(already))
    current = Month.of(paid_on)
    payment_id = await repository.insert_payment(
        tx,
        member,
        paid_on=paid_on,
        amount_fen=amount_fen,
        paid_by=paid_by.value,
        is_back_payment=any(m < current for m in named),
        note=_note(note),
        recorded_by=principal.actor,
    )
    inserted = await repository.insert_months(
        tx, member, payment_id=payment_id, months=ordinals, paid_by=paid_by.value
    )
    if inserted != len(ordinals):  # a concurrent payment took a month meanwhile
        taken = await repository.paid_months(tx, member, ordinals)
        raise DUES_MONTH_ALREADY_PAID.error(months=_labels(taken))
    await record(
        tx,
        principal,
        tenant_id=member.tenant_id,
        action="dues.record",
        object_type="DuesPayment",
        object_id=payment_id,
        details={
            "member_id": member.id,
            "paid_on": paid_on.isoformat(),
            "amount_fen": amount_fen,
            "paid_by": paid_by.value,
            "months": [str(Month.from_ordinal(m)) for m in ordinals],
        },
    )
    payment = await repository.get_payment(tx, [member.tenant_id], payment_id)
    assert payment is not None
    return payment


def _labels(ordinals: Sequence[int]) -> str:
    return "、".join(Month.from_ordinal(m).label for m in ordinals)


async def agree_schedule(
    tx: Transaction,
    principal: Principal,
    *,
    member_id: int,
    schedule: DuesSchedule,
    from_month: str,
    agreed_on: date,
    note: str | None = None,
) -> Any:
    """The branch agrees the member pays on `schedule` from `from_month` on: the open
    arrangement ends the month before, the new one stays open."""
    member = await get_member(tx, principal, member_id, DuesAction.RECORD)
    on_rolls(member, "约定党费交纳方式")
    start = _month(from_month)
    current = await repository.open_arrangement(tx, member)
    if current is not None:
        if current.from_month >= start.ordinal:
            raise SCHEDULE_FROM_MONTH_INVALID.error()
        await repository.close_arrangement(tx, current, to_month=(start - 1).ordinal)
    created = await repository.insert_arrangement(
        tx,
        tenant_id=member.tenant_id,
        member_id=member.id,
        schedule=schedule.value,
        from_month=start.ordinal,
        agreed_on=agreed_on,
        note=_note(note),
        recorded_by=principal.actor,
    )
    await record(
        tx,
        principal,
        tenant_id=member.tenant_id,
        action="dues.schedule",
        object_type="Member",
        object_id=member.id,
        details={
            "schedule": schedule.value,
            "from_month": str(start),
            "agreed_on": agreed_on.isoformat(),
            "previous": current.schedule if current is not None else None,
        },
    )
    return member, created


async def get_payment(tx: Transaction, principal: Principal, payment_id: int) -> Any:
    """A payment, for whoever reads the ledger at its member's branch; NOT_FOUND else."""
    payment = await repository.get_payment(tx, tx.scope.tenant_ids, payment_id)
    if payment is None:
        raise not_found(PAYMENT)
    require(
        principal, MemberAction.READ, payment.branch_path, what=PAYMENT, seen_with=MemberAction.READ
    )
    return payment


async def member_payments(
    tx: Transaction, principal: Principal, member: Any, page: PageRequest
) -> Page[Any]:
    if not own_or_readable(principal, member):
        return Page.empty()
    return await repository.payments_page(tx, member, page)


async def latest_months(
    tx: Transaction, principal: Principal, members: Sequence[Any]
) -> list[Month | None]:
    """The latest paid month of each member (None: none paid, or not readable)."""
    readable = [m for m in members if own_or_readable(principal, m)]
    found = (
        await repository.latest_paid_months(tx, [(m.tenant_id, m.id) for m in readable])
        if readable
        else {}
    )
    return [
        Month.from_ordinal(found[m.id]) if m.id in found and own_or_readable(principal, m) else None
        for m in members
    ]


async def schedules_now(
    tx: Transaction, principal: Principal, members: Sequence[Any], *, today: date | None = None
) -> list[DuesSchedule | None]:
    """The schedule in force this month of each member (None where not readable)."""
    month = Month.of(today or date.today())
    readable = [m for m in members if own_or_readable(principal, m)]
    found = (
        await repository.schedules_at(tx, [(m.tenant_id, m.id) for m in readable], month.ordinal)
        if readable
        else {}
    )
    return [
        found.get(m.id, DuesSchedule.MONTHLY) if own_or_readable(principal, m) else None
        for m in members
    ]
