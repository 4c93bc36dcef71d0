"""三不 on the member list: the facts `lapse.py` judges, read in one statement per page,
the `flagged` filter, and recorded reasons (正当理由) that break a run.

Why it looks the way it does:

- `lapse.py` is pure; this module only feeds it. One statement reads, for a page of
  members, everything `MemberMonthFacts` holds over the window (the last 24 closed
  months): paid months and who paid (dues_months), schedule periods
  (dues_arrangements), recorded reasons (ledger_excuses), per-month meeting counts
  (meeting_attendance) and per-month task counts (member_tasks), each a `json_agg`
  in a LATERAL subquery per member. A page of 50 costs one statement, not 250.
- Only members on the rolls (正常, 限期改正中) are judged: a member who died or left has
  no lapse to prompt the branch about, so their assessment is None.
- `flagged` cannot be a SQL condition (the runs are computed here), so a flagged list
  walks the readable list in chunks of `SCAN_CHUNK`, each chunk one statement that
  selects the members *and* their facts, until the page is full or `SCAN_LIMIT`
  members were looked at. Cost: at most SCAN_LIMIT / SCAN_CHUNK statements (10) per
  request, each a round trip; a page that is not full when the bound is hit says
  `hasNextPage` and its end cursor resumes after the last member looked at.
- Attendance rows belong to the meeting's branch (no tenant follows the member), so
  they are matched by member id alone; RLS keeps them to the request's tenants.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from sqlalchemy import insert

from service.audit.service import record
from service.auth.principal import Principal
from service.authz import readable_paths
from service.db import Transaction
from service.dues.rules import DuesSchedule, Month, PaidBy
from service.members import repository, rules
from service.members.actions import MemberAction
from service.members.errors import (
    EXCUSE_MONTH_INVALID,
    EXCUSE_MONTHS_REVERSED,
    EXCUSE_REASON_INVALID,
)
from service.members.lapse import (
    WINDOW_MONTHS,
    Excuse,
    ExcuseKind,
    LapseAssessment,
    LifeMonth,
    MemberMonthFacts,
    SchedulePeriod,
    TaskMonth,
    assess_lapse,
    last_closed_month,
)
from service.members.models import LedgerExcuse
from service.members.repository import COLUMNS, MemberFilter
from service.members.service import MemberQuery, get_member, member_filter
from service.pagination import Page, PageRequest, keyset

SCAN_CHUNK = 500  # members looked at per statement by the `flagged` filter
SCAN_LIMIT = 5_000  # members looked at per request by the `flagged` filter
MAX_REASON_LENGTH = 500


def window(as_of: date) -> tuple[Month, Month]:
    """The months read for an assessment as of `as_of`: the last WINDOW_MONTHS closed."""
    last = last_closed_month(as_of)
    return last - (WINDOW_MONTHS - 1), last


# The facts of every member `source` selects (it must select the members' `id`,
# `tenant_id`, `status`, `joined_on` and `tracked_since`), in `source`'s order.
_FACTS = """
SELECT m.*, f.paid, f.schedules, f.excuses, f.life, f.tasks
FROM ({source}) AS m
CROSS JOIN LATERAL (
  SELECT
    (SELECT json_agg(json_build_array(d.month, d.paid_by))
       FROM dues_months d
      WHERE d.tenant_id = m.tenant_id AND d.member_id = m.id
        AND d.month BETWEEN %(w_first)s AND %(w_last)s) AS paid,
    (SELECT json_agg(json_build_array(a.from_month, a.to_month, a.schedule)
                     ORDER BY a.agreed_on, a.id)
       FROM dues_arrangements a
      WHERE a.tenant_id = m.tenant_id AND a.member_id = m.id
        AND a.from_month <= %(w_last)s
        AND (a.to_month IS NULL OR a.to_month >= %(w_first)s)) AS schedules,
    (SELECT json_agg(json_build_array(e.from_month, e.to_month, e.kind))
       FROM ledger_excuses e
      WHERE e.tenant_id = m.tenant_id AND e.member_id = m.id
        AND e.from_month <= %(w_last)s
        AND (e.to_month IS NULL OR e.to_month >= %(w_first)s)) AS excuses,
    (SELECT json_agg(json_build_array(l.month, l.expected, l.attended, l.excused))
       FROM (SELECT at.month, count(*) AS expected,
                    count(*) FILTER (WHERE at.presence = 'attended') AS attended,
                    count(*) FILTER (WHERE at.presence = 'excused') AS excused
               FROM meeting_attendance at
              WHERE at.member_id = m.id AND at.month BETWEEN %(w_first)s AND %(w_last)s
              GROUP BY at.month) AS l) AS life,
    (SELECT json_agg(json_build_array(k.due_month, k.due, k.done, k.excused))
       FROM (SELECT t.due_month, count(*) AS due,
                    count(*) FILTER (WHERE t.outcome = 'done') AS done,
                    count(*) FILTER (WHERE t.outcome = 'excused') AS excused
               FROM member_tasks t
              WHERE t.tenant_id = m.tenant_id AND t.member_id = m.id
                AND t.due_month BETWEEN %(w_first)s AND %(w_last)s
              GROUP BY t.due_month) AS k) AS tasks
) AS f
ORDER BY m.id
"""


def _window_params(as_of: date) -> dict[str, int]:
    first, last = window(as_of)
    return {"w_first": first.ordinal, "w_last": last.ordinal}


def _months(value: int | None) -> Month | None:
    return None if value is None else Month.from_ordinal(value)


def facts_of(row: Any) -> MemberMonthFacts:
    """The facts of one row of `_FACTS`."""
    since = max(Month.of(row.tracked_since), Month.of(row.joined_on))
    return MemberMonthFacts(
        tracked_since=since,
        paid={Month.from_ordinal(m): PaidBy(by) for m, by in row.paid or ()},
        schedule_periods=tuple(
            SchedulePeriod(Month.from_ordinal(a), _months(b), DuesSchedule(s))
            for a, b, s in row.schedules or ()
        ),
        excuses=tuple(
            Excuse(Month.from_ordinal(a), _months(b), ExcuseKind(k))
            for a, b, k in row.excuses or ()
        ),
        life={Month.from_ordinal(m): LifeMonth(e, a, x) for m, e, a, x in row.life or ()},
        tasks={Month.from_ordinal(m): TaskMonth(d, n, x) for m, d, n, x in row.tasks or ()},
    )


def assess(row: Any, as_of: date) -> LapseAssessment | None:
    """The row's assessment; None for a member no longer on the rolls."""
    if rules.MemberStatus(row.status) not in rules.ON_ROLLS:
        return None
    return assess_lapse(facts_of(row), as_of=as_of)


async def assessments(
    tx: Transaction, member_ids: Sequence[int], *, as_of: date | None = None
) -> dict[int, LapseAssessment | None]:
    """Assessments of members by id, one statement (the caller has authorized them;
    members RLS hides are absent)."""
    day = as_of or date.today()
    source = (
        "SELECT id, tenant_id, status, joined_on, tracked_since FROM members"
        " WHERE id = ANY(%(ids)s::bigint[])"
    )
    rows = await tx.rows(
        _FACTS.format(source=source), {"ids": sorted(set(member_ids)), **_window_params(day)}
    )
    return {row.id: assess(row, day) for row in rows}


async def readable_chunk(
    tx: Transaction,
    readable: Any,
    where: MemberFilter,
    *,
    after: int | None,
    limit: int,
    as_of: date,
    secrets: bool = False,
) -> list[Any]:
    """The next `limit` readable members after `after` with their facts: one statement.
    With `secrets`, also their ciphertexts (exports that open them)."""
    columns = COLUMNS + (", id_number_enc, phone_enc" if secrets else "")
    text, params = repository.readable_members(readable, where, columns=columns)
    source = f"{text} AND {keyset()}"
    return await tx.rows(
        _FACTS.format(source=source),
        params | {"after": after, "limit": limit} | _window_params(as_of),
    )


def matches(assessment: LapseAssessment | None, flagged: bool) -> bool:
    """Whether a member passes the `flagged` filter (members off the rolls never flag)."""
    is_flagged = assessment is not None and assessment.flagged
    return is_flagged is flagged


@dataclass(frozen=True)
class FlaggedPage:
    """A page of the `flagged` list, the assessments already made for it, and where the
    next page starts (`resume_after`: the last member looked at, when the scan bound cut
    the page short; otherwise the page's last member)."""

    page: Page[Any]
    assessments: dict[int, LapseAssessment | None] = field(default_factory=dict)
    resume_after: int | None = None


async def flagged_page(
    tx: Transaction,
    principal: Principal,
    page: PageRequest,
    query: MemberQuery,
    *,
    as_of: date | None = None,
    scan_limit: int = SCAN_LIMIT,
    chunk: int = SCAN_CHUNK,
) -> FlaggedPage:
    """Members of `query` with (flagged=True) or without (False) a 三不 flag."""
    assert query.flagged is not None
    readable = readable_paths(principal, MemberAction.READ)
    if not readable:
        return FlaggedPage(Page.empty())
    where = await member_filter(tx, principal, query)
    day = as_of or date.today()
    found: list[Any] = []
    judged: dict[int, LapseAssessment | None] = {}
    after, scanned, cut_short = page.after, 0, False
    while True:
        if scanned >= scan_limit:
            cut_short = True
            break
        size = min(chunk, scan_limit - scanned)
        rows = await readable_chunk(tx, readable, where, after=after, limit=size, as_of=day)
        for row in rows:
            after = row.id
            scanned += 1
            assessment = assess(row, day)
            if matches(assessment, query.flagged):
                found.append(row)
                judged[row.id] = assessment
                if len(found) > page.first:
                    break
        if len(found) > page.first or len(rows) < size:
            break
    result = Page.of(found, page)
    if cut_short and len(found) <= page.first:
        return FlaggedPage(
            Page(result.items, True, result.has_previous_page), judged, resume_after=after
        )
    last = result.items[-1].id if result.items else None
    return FlaggedPage(result, judged, resume_after=last)


# --- recorded reasons ---------------------------------------------------------------


def parse_month(text: str | None, what: str) -> Month:
    try:
        return Month.parse((text or "").strip())
    except ValueError:
        raise EXCUSE_MONTH_INVALID.error(what=what) from None


async def record_excuse(
    tx: Transaction,
    principal: Principal,
    *,
    member_id: int,
    kind: ExcuseKind,
    from_month: str,
    to_month: str | None,
    reason: str,
) -> Any:
    """Record a valid reason (正当理由) for months `from_month .. to_month` (None: open);
    it breaks the member's 三不 run of `kind` (ALL: every kind) for those months."""
    member = await get_member(tx, principal, member_id, MemberAction.EXCUSE)
    first = parse_month(from_month, "起始月份")
    last = parse_month(to_month, "截止月份") if to_month is not None else None
    if last is not None and last < first:
        raise EXCUSE_MONTHS_REVERSED.error()
    stated = " ".join((reason or "").split())
    if not 1 <= len(stated) <= MAX_REASON_LENGTH:
        raise EXCUSE_REASON_INVALID.error(limit=MAX_REASON_LENGTH)
    row = await tx.one(
        insert(LedgerExcuse)
        .values(
            tenant_id=member.tenant_id,
            member_id=member.id,
            kind=kind.value,
            from_month=first.ordinal,
            to_month=last.ordinal if last is not None else None,
            reason=stated,
            recorded_by=principal.actor,
        )
        .returning(*EXCUSE_COLUMNS)
    )
    await record(
        tx,
        principal,
        tenant_id=member.tenant_id,
        action="member.excuse",
        object_type="Member",
        object_id=member.id,
        details={
            "excuse_id": row.id,
            "kind": kind.value,
            "from": str(first),
            "to": str(last) if last is not None else None,
            "reason": stated,
        },
    )
    return row


EXCUSE_COLUMNS = [
    LedgerExcuse.tenant_id,
    LedgerExcuse.id,
    LedgerExcuse.member_id,
    LedgerExcuse.kind,
    LedgerExcuse.from_month,
    LedgerExcuse.to_month,
    LedgerExcuse.reason,
    LedgerExcuse.recorded_by,
    LedgerExcuse.created_at,
]
_EXCUSE_SELECT = ", ".join(c.name for c in EXCUSE_COLUMNS)


async def excuses_page(tx: Transaction, member: Any, page: PageRequest) -> Page[Any]:
    """A readable member's recorded reasons, oldest first (the caller has the member)."""
    rows = await tx.rows(
        f"SELECT {_EXCUSE_SELECT} FROM ledger_excuses"
        f" WHERE tenant_id = %(tenant)s AND member_id = %(member)s AND {keyset()}",
        {"tenant": member.tenant_id, "member": member.id, **page.params},
    )
    return Page.of(rows, page)
