"""The county's view of a half-year's evaluation (评议情况总览) and its result table
(民主评议结果汇总表) as .xlsx.

Why it looks the way it does:

- One row per branch under the unit asked for, whether or not it has opened its
  round (a branch without a round is what the county organization department chases),
  with the round's stage and the distribution of grades; and one row per tenant that
  adds its branches up. Both come from one statement each, whatever the county's size:
  the grades are counted in SQL, not in Python.
- The grade counted for a member is the most decided one the round has: the final
  grade, else the committee's proposal (初定), else the computed proposal; entries
  without any (before the tally, or still to be settled) count as pending. So the
  same table serves a round in progress and a finished one, and says which it is by
  the stage beside it.
- Grades, never ballot counts: the distribution says how many members got each grade,
  which every reader of the round sees anyway; the counts of ballots stay behind the
  secrecy threshold (service.evaluations.service).
- Reading takes `evaluation:read` at the unit; the rows are limited to the branches
  the principal reads (`readable_paths`), so a township sees its own branches even
  when it asks for the county. Exporting takes `evaluation:export` there and is
  audited with the row count.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from service.audit.service import record
from service.auth.principal import Principal
from service.authz import readable_paths, require
from service.db import Transaction
from service.errors import not_found
from service.evaluations.actions import EvaluationAction
from service.evaluations.rules import GRADE_LABELS, Grade
from service.evaluations.stages import STAGE_LABELS, Period, Stage
from service.members.excel import write_members_xlsx
from service.pagination import Page, PageRequest, fits_bigint, keyset
from service.tenants import repository as units

# The grades a distribution counts, in the order of the result table.
COUNTED = (
    Grade.EXCELLENT,
    Grade.QUALIFIED,
    Grade.BASIC,
    Grade.UNQUALIFIED,
    Grade.NOT_GRADED,
)
PENDING = "pending"  # no grade yet (before the tally, or awaiting the committee)

_DECIDED = "coalesce(e.final_grade, e.committee_grade, e.computed_grade)"
_COUNTS = ", ".join(
    f"count(e.id) FILTER (WHERE {_DECIDED} = '{g.value}')::int AS {g.value}" for g in COUNTED
)
_PENDING = (
    f"count(e.id) FILTER (WHERE {_DECIDED} IS NULL OR {_DECIDED} = 'needs_decision')::int"
    f" AS {PENDING}"
)
# Branches (党支部) under a unit, each with its round of the half-year, if any.
_BRANCHES = f"""
SELECT u.tenant_id, u.id, u.name, u.path, t.name AS tenant_name,
       r.id AS round_id, r.stage, count(e.id)::int AS roster, {_COUNTS}, {_PENDING}
FROM org_units u
JOIN org_units t ON t.tenant_id = u.tenant_id AND t.id = u.tenant_id
LEFT JOIN evaluation_rounds r
  ON r.tenant_id = u.tenant_id AND r.branch_id = u.id
 AND r.year = %(year)s AND r.half = %(half)s
LEFT JOIN evaluation_entries e ON e.tenant_id = r.tenant_id AND e.round_id = r.id
WHERE u.kind = 'branch' AND u.archived_at IS NULL
  AND starts_with(u.path, %(within)s) AND {{readable}}
GROUP BY u.tenant_id, u.id, u.name, u.path, t.name, r.id, r.stage
"""
_STAGE_COUNTS = ", ".join(
    f"count(DISTINCT r.id) FILTER (WHERE r.stage = '{s.value}')::int AS {s.value}" for s in Stage
)
# Tenants under a unit, adding their branches up (keyed by the tenant's top unit id).
_TENANTS = f"""
SELECT t.tenant_id, t.tenant_id AS id, t.name, t.path,
       count(DISTINCT u.id)::int AS branches,
       count(DISTINCT r.id)::int AS rounds, {_STAGE_COUNTS},
       count(e.id)::int AS roster, {_COUNTS}, {_PENDING}
FROM org_units t
JOIN org_units u ON u.tenant_id = t.tenant_id AND u.kind = 'branch' AND u.archived_at IS NULL
LEFT JOIN evaluation_rounds r
  ON r.tenant_id = u.tenant_id AND r.branch_id = u.id
 AND r.year = %(year)s AND r.half = %(half)s
LEFT JOIN evaluation_entries e ON e.tenant_id = r.tenant_id AND e.round_id = r.id
WHERE t.id = t.tenant_id AND t.archived_at IS NULL
  AND starts_with(u.path, %(within)s) AND {{readable}}
GROUP BY t.tenant_id, t.name, t.path
"""


async def _scope(
    tx: Transaction, principal: Principal, org_unit_id: int, action: EvaluationAction
) -> tuple[Any, tuple[str, dict[str, Any]]]:
    unit = await units.get_unit(tx, org_unit_id) if fits_bigint(org_unit_id) else None
    if unit is None:
        raise not_found("组织")
    require(principal, action, unit.path, what="组织")
    # Rows follow what the principal may read, which `require` above does not narrow.
    return unit, readable_paths(principal, EvaluationAction.READ).sql("u.path")


async def branch_overview(
    tx: Transaction, principal: Principal, org_unit_id: int, period: Period, page: PageRequest
) -> Page[Any]:
    """The branches under the unit, each with its round's stage and grade counts."""
    unit, (readable, params) = await _scope(tx, principal, org_unit_id, EvaluationAction.READ)
    p = period.checked()
    rows = await tx.rows(
        f"SELECT * FROM ({_BRANCHES.format(readable=readable)}) b WHERE {keyset('b.id')}",
        params | page.params | {"within": unit.path, "year": p.year, "half": p.half},
    )
    return Page.of(rows, page)


async def tenant_overview(
    tx: Transaction, principal: Principal, org_unit_id: int, period: Period, page: PageRequest
) -> Page[Any]:
    """The tenants under the unit (or the unit's own), their branches added up."""
    unit, (readable, params) = await _scope(tx, principal, org_unit_id, EvaluationAction.READ)
    p = period.checked()
    rows = await tx.rows(
        f"SELECT * FROM ({_TENANTS.format(readable=readable)}) s WHERE {keyset('s.id')}",
        params | page.params | {"within": unit.path, "year": p.year, "half": p.half},
    )
    return Page.of(rows, page)


# --- the result table ------------------------------------------------------------------

HEADERS = (
    "序号",
    "乡镇（单位）",
    "党支部",
    "评议阶段",
    "参评党员",
    *(GRADE_LABELS[g] for g in COUNTED),
    "待定",
    "优秀率",
    "不合格率",
)


def _percent(part: int, whole: int) -> str:
    return f"{part * 100 / whole:.1f}%" if whole else "—"


def table_rows(branches: Iterable[Any]) -> list[list[object]]:
    """The table's lines: a line per branch, a subtotal after each tenant's branches
    and a grand total (pure: the rows come in tenant, then branch order)."""
    lines: list[list[object]] = []
    total = [0] * (len(COUNTED) + 2)
    tenant_sum: list[int] | None = None
    tenant_name: str | None = None

    def counts(row: Any) -> list[int]:
        return [row.roster, *(getattr(row, g.value) for g in COUNTED), getattr(row, PENDING)]

    def closing(name: str, sums: list[int]) -> list[object]:
        roster, excellent, *_ = sums
        unqualified = sums[1 + COUNTED.index(Grade.UNQUALIFIED)]
        return [
            None,
            name,
            "小计" if name != "合计" else None,
            None,
            *sums,
            _percent(excellent, roster),
            _percent(unqualified, roster),
        ]

    serial = 0
    for row in branches:
        if row.tenant_name != tenant_name:
            if tenant_sum is not None and tenant_name is not None:
                lines.append(closing(tenant_name, tenant_sum))
            tenant_name, tenant_sum = row.tenant_name, [0] * len(total)
        values = counts(row)
        assert tenant_sum is not None
        tenant_sum = [a + b for a, b in zip(tenant_sum, values, strict=True)]
        total = [a + b for a, b in zip(total, values, strict=True)]
        serial += 1
        stage = STAGE_LABELS[Stage(row.stage)] if row.stage else "未启动评议"
        lines.append(
            [
                serial,
                row.tenant_name,
                row.name,
                stage,
                *values,
                _percent(values[1], values[0]),
                _percent(values[1 + COUNTED.index(Grade.UNQUALIFIED)], values[0]),
            ]
        )
    if tenant_sum is not None and tenant_name is not None:
        lines.append(closing(tenant_name, tenant_sum))
    lines.append(closing("合计", total))
    return lines


@dataclass(frozen=True)
class ResultTable:
    filename: str
    content: bytes
    branches: int


async def export_results(
    tx: Transaction, principal: Principal, org_unit_id: int, period: Period
) -> ResultTable:
    """民主评议结果汇总表 of the branches under the unit, as .xlsx; audited."""
    unit, (readable, params) = await _scope(tx, principal, org_unit_id, EvaluationAction.EXPORT)
    p = period.checked()
    rows: Sequence[Any] = await tx.rows(
        f"SELECT * FROM ({_BRANCHES.format(readable=readable)}) b"
        " ORDER BY b.tenant_name, b.tenant_id, b.path",
        params | {"within": unit.path, "year": p.year, "half": p.half},
    )
    title = f"{unit.name}{p.label}民主评议党员结果汇总表"
    content = write_members_xlsx(HEADERS, table_rows(rows), title=title)
    await record(
        tx,
        principal,
        tenant_id=unit.tenant_id,
        action="evaluation.export",
        object_type="OrgUnit",
        object_id=unit.id,
        details={"year": p.year, "half": p.half, "branches": len(rows)},
    )
    return ResultTable(filename=f"{title}.xlsx", content=content, branches=len(rows))
