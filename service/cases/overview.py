"""The county's view of disposal cases (处置不合格党员工作情况): per tenant, the cases by
stage and by origin, and what is overdue; and the list of overdue cases.

Why it is shaped this way:

- One row per tenant under the unit asked for (a township without cases shows zeros:
  that is news too), each from ONE statement whatever the county's size: the counts
  are SQL aggregates over `disposal_cases`, limited to the branches the principal
  reads (`readable_paths(case:read)` over `branch_path`), with RLS beneath.
- "Overdue" has three kinds, all in Asia/Shanghai business dates of the request's
  clock (service.clock) except approval steps, whose deadline is an instant:
  * an approval step of the case (filing or disposal) still pending past `due_at`
    (service/approvals' deadline, compared with the request's instant);
  * a correction period (限期改正) over: stage `correcting` and
    `correction_deadline` before today;
  * an education week without a session: the same weeks as
    `service.cases.rules.missed_weeks` (week i is [start + 7i, start + 7i + 6], only
    finished weeks count), computed in SQL so the overview stays one statement; a
    test holds the SQL against the pure rule.
- Reading takes `case:read` at the unit (NOT_FOUND when the unit is not visible).
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any, Final

from service.auth.principal import Principal
from service.authz import readable_paths, require
from service.cases.actions import CaseAction
from service.cases.rules import CaseOrigin, CaseStage
from service.clock import business_today
from service.clock import now as clock_now
from service.db import Transaction
from service.errors import not_found
from service.pagination import Page, PageRequest, fits_bigint, keyset
from service.tenants import repository as units

# Per case: the number of finished education weeks without a session (0 outside
# education), the case's oldest overdue approval step, and whether its correction
# period is over. `%(today)s` is the business date, `%(now)s` the instant.
_PER_CASE = """
SELECT c.tenant_id, c.id, c.branch_id, c.branch_path, c.member_name, c.origin, c.stage,
       c.disposal, c.outcome, c.opened_on, c.closed_on, c.correction_deadline,
       c.education_started_on,
       CASE WHEN c.stage = 'educating' AND c.education_started_on IS NOT NULL THEN (
         SELECT count(*) FROM generate_series(0, GREATEST(
                  (LEAST(coalesce(c.education_ended_on, %(today)s), %(today)s)
                   - c.education_started_on) / 7, 0)) AS w(i)
         WHERE c.education_started_on + 7 * w.i + 6
               < LEAST(coalesce(c.education_ended_on, %(today)s), %(today)s)
           AND NOT EXISTS (
             SELECT 1 FROM education_sessions s
             WHERE s.tenant_id = c.tenant_id AND s.case_id = c.id
               AND s.held_on BETWEEN c.education_started_on + 7 * w.i
                                 AND c.education_started_on + 7 * w.i + 6))
       ELSE 0 END::int AS missed_weeks,
       (SELECT min(st.due_at) FROM approval_requests r
          JOIN approval_steps st ON st.tenant_id = r.tenant_id AND st.request_id = r.id
        WHERE r.tenant_id = c.tenant_id AND r.kind IN ('case_filing', 'case_disposal')
          AND r.subject_type = 'DisposalCase' AND r.subject_id = c.id
          AND st.state = 'pending' AND st.due_at < %(now)s) AS step_overdue_since,
       (c.stage = 'correcting' AND c.correction_deadline < %(today)s) AS correction_overdue
FROM disposal_cases c
WHERE starts_with(c.branch_path, %(within)s) AND {readable}
"""

_STAGE_COUNTS = ", ".join(
    f"count(k.id) FILTER (WHERE k.stage = '{s.value}')::int AS stage_{s.value}" for s in CaseStage
)
_ORIGIN_COUNTS = ", ".join(
    f"count(k.id) FILTER (WHERE k.origin = '{o.value}')::int AS origin_{o.value}"
    for o in CaseOrigin
)
_TENANTS = f"""
SELECT t.tenant_id, t.tenant_id AS id, t.name, t.path,
       count(k.id)::int AS total,
       count(k.id) FILTER (WHERE k.stage <> 'closed')::int AS open,
       {_STAGE_COUNTS}, {_ORIGIN_COUNTS},
       count(k.id) FILTER (WHERE k.step_overdue_since IS NOT NULL)::int AS steps_overdue,
       count(k.id) FILTER (WHERE k.correction_overdue)::int AS corrections_overdue,
       count(k.id) FILTER (WHERE k.missed_weeks > 0)::int AS cases_missing_weeks,
       coalesce(sum(k.missed_weeks), 0)::int AS missed_weeks
FROM org_units t
LEFT JOIN ({_PER_CASE}) k ON k.tenant_id = t.tenant_id
WHERE t.id = t.tenant_id AND t.archived_at IS NULL AND t.kind NOT IN ('root', 'county')
  AND (starts_with(t.path, %(within)s) OR starts_with(%(within)s, t.path))
GROUP BY t.tenant_id, t.name, t.path
"""


async def scope(
    tx: Transaction, principal: Principal, org_unit_id: int, action: Any = CaseAction.READ
) -> Any:
    unit = await units.get_unit(tx, org_unit_id) if fits_bigint(org_unit_id) else None
    if unit is None:
        raise not_found("组织")
    require(principal, action, unit.path, what="组织", seen_with=CaseAction.READ)
    return unit


def request_params(tx: Transaction, within: str) -> dict[str, Any]:
    at: datetime = clock_now(tx)
    today: date = business_today(at)
    return {"within": within, "today": today, "now": at}


def readable_sql(principal: Principal, column: str) -> tuple[str, dict[str, Any]]:
    return readable_paths(principal, CaseAction.READ).sql(column)


async def tenant_overview(
    tx: Transaction, principal: Principal, org_unit_id: int, page: PageRequest
) -> Page[Any]:
    """The tenants under the unit (or the unit's own), their cases counted."""
    unit = await scope(tx, principal, org_unit_id)
    readable, params = readable_sql(principal, "c.branch_path")
    sql = _TENANTS.format(readable=readable)
    rows = await tx.rows(
        f"SELECT * FROM ({sql}) s WHERE {keyset('s.id')}",
        params | page.params | request_params(tx, unit.path),
    )
    return Page.of(rows, page)


OVERDUE_WHERE: Final = (
    "(k.step_overdue_since IS NOT NULL OR k.correction_overdue OR k.missed_weeks > 0)"
)


async def overdue_cases(
    tx: Transaction, principal: Principal, org_unit_id: int, page: PageRequest
) -> Page[Any]:
    """The cases under the unit with anything overdue, oldest id first (keyset)."""
    unit = await scope(tx, principal, org_unit_id)
    readable, params = readable_sql(principal, "c.branch_path")
    rows = await tx.rows(
        f"SELECT * FROM ({_PER_CASE.format(readable=readable)}) k"
        f" WHERE {OVERDUE_WHERE} AND {keyset('k.id')}",
        params | page.params | request_params(tx, unit.path),
    )
    return Page.of(rows, page)


def overdue_kinds(row: Any) -> list[str]:
    """What is overdue in a row of `overdue_cases` / the export, in a fixed order: approval_step,
    correction_deadline, education_week."""
    kinds = []
    if row.step_overdue_since is not None:
        kinds.append("approval_step")
    if row.correction_overdue:
        kinds.append("correction_deadline")
    if row.missed_weeks > 0:
        kinds.append("education_week")
    return kinds


def per_case_sql(readable: str) -> str:
    """The per-case statement (the export reads every case under the unit with it)."""
    return _PER_CASE.format(readable=readable)
