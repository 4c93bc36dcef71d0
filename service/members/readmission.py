"""Re-admission (重新入党) of a person who left the Party: a NEW member record linked to
the old one, never a revival of the old record.

Why it is shaped this way:

- DOMAIN.md / issue 9: "a person persuaded to withdraw or removed cannot re-join
  within 5 years; after that they can be re-admitted, linking the old record". The bar
  is the pure rule `rejoin_allowed_from` below; it applies to records that left by
  removal (除名) or persuasion (劝退). A voluntary withdrawal (`left_by` 'withdrawal')
  has no bar. A record whose status is `removed` without `left_by` (set by hand before
  cases existed) is treated as removed on its `status_changed_on`: the bar is kept
  rather than silently skipped (with no day at all, refused); a `withdrew` record
  without `left_by` is taken as a voluntary withdrawal (nothing says it was
  persuasion).
- Calendar years, by the Civil Code's rule for periods in years (民法典第二百零二条:
  the period ends on the corresponding day of the last year; without one, on the last
  day of that month): left 2020-03-10 → allowed from 2025-03-10, refused on
  2025-03-09 (4 years 364 days); left 2020-02-29 → allowed from 2025-02-28.
- The old record is untouched (status, `left_on`, history, personal file). The new one
  names it in `previous_member_id`, carries the same person's ID number (re-sealed to
  the new row) and `generation` = old + 1, so the tenant's ID-number key admits both
  records and still refuses a second re-admission of the same old record (0013).
- Re-joining is a new joining: a new joining date and, by default, probationary
  membership (预备党员), in any branch the principal may add members to. The
  principal must also be able to read the old record (the county for a move between
  townships).
- Dates are business dates (Asia/Shanghai) of the request's clock (service.clock).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any, Final

from psycopg.types.json import Jsonb

from service.audit.service import record
from service.auth.principal import Principal
from service.clock import today as business_today
from service.db import Transaction
from service.errors import ErrorCode, not_found
from service.members import repository, rules
from service.members.actions import MemberAction
from service.members.errors import JOINED_UNDER_18, MEMBER
from service.members.service import (
    checked_branch,
    checked_name,
    checked_phone,
    get_member,
    open_pii,
    sealed_pii,
)
from service.sanctions.rules import add_years

BAR_YEARS: Final = 5
BARRED_WAYS: Final = frozenset({"removal", "persuasion"})

REJOIN_BARRED = ErrorCode(
    "REJOIN_BARRED", "被{way}者 5 年内不得重新入党：{left_on} 离党，{allowed_from} 起方可重新接收"
)
REJOIN_NOT_LEFT = ErrorCode("REJOIN_NOT_LEFT", "该党员记录的状态为“{status}”，不是已离党的记录")
ALREADY_READMITTED = ErrorCode("ALREADY_READMITTED", "该离党记录已重新接收过，不能重复接收")
READMISSION_DATE_INVALID = ErrorCode(
    "READMISSION_DATE_INVALID", "重新入党日期不能早于离党日期，也不能晚于今天"
)
WAY_LABELS: Final = {"removal": "除名", "persuasion": "劝退"}


# --- the pure rule ---------------------------------------------------------------------


# The corresponding day so many calendar years later; 29 February in a year without
# one is 28 February, the last day of that month (民法典第二百零二条).
years_later = add_years


def rejoin_allowed_from(left_on: date) -> date:
    """The first day a person removed or persuaded to withdraw on `left_on` may be
    re-admitted: five calendar years later."""
    return years_later(left_on, BAR_YEARS)


def rejoin_barred(left_by: str | None, left_on: date | None, on: date) -> bool:
    """Whether re-admission on `on` is refused for a record that left `left_by` on
    `left_on`. No way of leaving that bars it: never; a barring way without a known
    day: always (five years cannot be shown to have passed)."""
    if left_by not in BARRED_WAYS:
        return False
    return left_on is None or on < rejoin_allowed_from(left_on)


def how_it_left(row: Any) -> tuple[str | None, date | None]:
    """(left_by, left_on) of an old record, as the bar reads it (see the module doc)."""
    left_by = getattr(row, "left_by", None)
    left_on = getattr(row, "left_on", None) or row.status_changed_on
    if left_by is None and row.status == rules.MemberStatus.REMOVED:
        left_by = "removal"
    if left_by is None and row.status == rules.MemberStatus.WITHDREW:
        left_by = "withdrawal"
    return left_by, left_on


# --- the service -----------------------------------------------------------------------


@dataclass(frozen=True)
class Readmission:
    previous_member_id: int
    branch_id: int
    joined_on: date
    category: rules.MemberCategory = rules.MemberCategory.PROBATIONARY
    name: str | None = None  # the old record's name unless given (a changed name)
    phone: str | None = None
    note: str | None = None


_OLD_RECORD = (
    "SELECT tenant_id, id, name, gender, birth_date, status, status_changed_on, left_on,"
    " left_by, generation, branch_path,"
    " EXISTS (SELECT 1 FROM members n WHERE n.previous_member_id = m.id) AS readmitted"
    " FROM members m WHERE id = %(id)s"
)


async def readmit_member(
    tx: Transaction, principal: Principal, new: Readmission, *, today: date | None = None
) -> Any:
    """Create the new record; returns it (the members repository's row)."""
    on = today if today is not None else business_today(tx)
    await get_member(tx, principal, new.previous_member_id, MemberAction.READ)
    old = await tx.first(_OLD_RECORD, {"id": new.previous_member_id})
    if old is None:  # pragma: no cover - get_member found it in this transaction
        raise not_found(MEMBER)
    branch = await checked_branch(tx, principal, new.branch_id, MemberAction.CREATE)
    if old.status not in (rules.MemberStatus.REMOVED, rules.MemberStatus.WITHDREW):
        raise REJOIN_NOT_LEFT.error(status=rules.STATUS_LABELS[rules.MemberStatus(old.status)])
    if old.readmitted:
        raise ALREADY_READMITTED.error()
    left_by, left_on = how_it_left(old)
    if rejoin_barred(left_by, left_on, on):
        assert left_by is not None
        if left_on is None:
            raise REJOIN_BARRED.error(
                f"被{WAY_LABELS[left_by]}者 5 年内不得重新入党：离党日期不详，无法确认已满 5 年"
            )
        raise REJOIN_BARRED.error(
            way=WAY_LABELS[left_by],
            left_on=left_on.isoformat(),
            allowed_from=rejoin_allowed_from(left_on).isoformat(),
        )
    if new.joined_on > on or (left_on is not None and new.joined_on < left_on):
        raise READMISSION_DATE_INVALID.error()
    # The name, the phone and the age at joining as `add_member` checks them: one person
    # is accepted or refused the same way by both.
    if rules.joined_under_18(old.birth_date, new.joined_on):
        raise JOINED_UNDER_18.error()
    pii = await open_pii(tx, old.id)
    phone = checked_phone(new.phone) or pii.phone
    name = checked_name(new.name or old.name)
    member_id = await repository.next_id(tx)
    sealed = sealed_pii(
        tenant_id=branch.tenant_id, member_id=member_id, id_number=pii.id_number, phone=phone
    )
    inserted = await tx.first(
        "INSERT INTO members (tenant_id, id, branch_id, branch_path, name, gender, birth_date,"
        " id_number_enc, id_number_hmac, id_number_mask, phone_enc, phone_mask, joined_on,"
        " category, tracked_since, previous_member_id, generation)"
        " VALUES (%(tenant)s, %(id)s, %(branch)s, %(path)s, %(name)s, %(gender)s, %(birth)s,"
        " %(id_number_enc)s, %(id_number_hmac)s, %(id_number_mask)s, %(phone_enc)s,"
        " %(phone_mask)s, %(joined)s, %(category)s, %(today)s, %(previous)s, %(generation)s)"
        " ON CONFLICT DO NOTHING RETURNING id",
        {
            "tenant": branch.tenant_id,
            "id": member_id,
            "branch": branch.id,
            "path": branch.path,
            "name": name,
            "gender": old.gender,
            "birth": old.birth_date,
            "joined": new.joined_on,
            "category": new.category.value,
            "today": on,
            "previous": old.id,
            "generation": old.generation + 1,
            **sealed,
        },
    )
    if inserted is None:  # a concurrent re-admission of the same record won
        raise ALREADY_READMITTED.error()
    member = await repository.get_member(tx, member_id)
    details = {"branch_id": branch.id, "previous_member_id": old.id, "left_by": left_by}
    await repository.add_history(
        tx, member, kind="created", effective_on=on, actor=principal.actor, details=details
    )
    title = f"重新入党（原党员记录 {old.id}）"
    body = (new.note or "").strip()[:2000]
    await tx.execute(
        "INSERT INTO member_file_entries (tenant_id, member_id, kind, occurred_on, title,"
        " body, data, recorded_by) VALUES (%(tenant)s, %(member)s, 'readmission', %(on)s,"
        " %(title)s, %(body)s, %(data)s, %(by)s)",
        {
            "tenant": branch.tenant_id,
            "member": member_id,
            "on": new.joined_on,
            "title": title,
            "body": body,
            "data": Jsonb(
                {
                    "previous_member_id": old.id,
                    "previous_tenant_id": old.tenant_id,
                    "left_by": left_by,
                    "left_on": left_on.isoformat() if left_on else None,
                }
            ),
            "by": principal.actor,
        },
    )
    await record(
        tx,
        principal,
        tenant_id=branch.tenant_id,
        action="member.readmit",
        object_type="Member",
        object_id=member_id,
        details=details,
    )
    return member
