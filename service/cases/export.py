"""Disposal cases as .xlsx (处置不合格党员工作台账) for the county organizer: every case
under a unit that the principal reads, with its tenant, branch, origin, stage,
disposal, dates, outcome and what is overdue. Written with the member export's xlsx
helper (`write_members_xlsx`: streamed, no cell can become a formula); audited with
the row count. Exporting is its own action (`case:export`, county and tenant
committees), as exporting the ledger or the evaluation results is."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Final

from service.audit.service import record
from service.auth.principal import Principal
from service.authz.actions import Action
from service.cases import overview
from service.cases.rules import (
    DISPOSAL_LABELS,
    ORIGIN_LABELS,
    OUTCOME_LABELS,
    STAGE_LABELS,
    CaseOrigin,
    CaseOutcome,
    CaseStage,
    Disposal,
)
from service.clock import today as business_today
from service.db import Transaction
from service.members.excel import write_members_xlsx


class CaseExportAction(Action):
    EXPORT = "case:export"  # the cases under a unit as .xlsx (audited)


HEADERS: Final = (
    "序号",
    "乡镇（单位）",
    "党支部",
    "党员",
    "案件来源",
    "阶段",
    "处置方式",
    "立案日期",
    "结案日期",
    "结果",
    "改正期满日",
    "逾期事项",
)
OVERDUE_LABELS: Final = {
    "approval_step": "审批超期",
    "correction_deadline": "改正期满未评定",
    "education_week": "教育转化缺周",
}


def _label(labels: dict[Any, str], enum: type, value: str | None) -> str:
    return labels[enum(value)] if value else ""


def table_rows(rows: Iterable[Any]) -> list[list[object]]:
    """The sheet's lines (pure), in the order given."""
    lines: list[list[object]] = []
    for serial, row in enumerate(rows, start=1):
        overdue = "、".join(
            OVERDUE_LABELS[k] + (f"（{row.missed_weeks} 周）" if k == "education_week" else "")
            for k in overview.overdue_kinds(row)
        )
        lines.append(
            [
                serial,
                row.tenant_name,
                row.branch_name,
                row.member_name,
                _label(ORIGIN_LABELS, CaseOrigin, row.origin),
                _label(STAGE_LABELS, CaseStage, row.stage),
                _label(DISPOSAL_LABELS, Disposal, row.disposal),
                row.opened_on.isoformat(),
                row.closed_on.isoformat() if row.closed_on else "",
                _label(OUTCOME_LABELS, CaseOutcome, row.outcome),
                row.correction_deadline.isoformat() if row.correction_deadline else "",
                overdue,
            ]
        )
    return lines


@dataclass(frozen=True)
class CaseTable:
    filename: str
    content: bytes
    cases: int


async def export_cases(tx: Transaction, principal: Principal, org_unit_id: int) -> CaseTable:
    unit = await overview.scope(tx, principal, org_unit_id, CaseExportAction.EXPORT)
    readable, params = overview.readable_sql(principal, "c.branch_path")
    rows: Sequence[Any] = await tx.rows(
        f"SELECT k.*, b.name AS branch_name, t.name AS tenant_name"
        f" FROM ({overview.per_case_sql(readable)}) k"
        " JOIN org_units b ON b.tenant_id = k.tenant_id AND b.id = k.branch_id"
        " JOIN org_units t ON t.tenant_id = k.tenant_id AND t.id = k.tenant_id"
        " ORDER BY t.name, k.tenant_id, b.path, k.opened_on, k.id",
        params | overview.request_params(tx, unit.path),
    )
    day = business_today(tx)
    title = f"{unit.name}处置不合格党员工作台账（{day:%Y年%m月%d日}）"
    content = write_members_xlsx(HEADERS, table_rows(rows), title=title)
    await record(
        tx,
        principal,
        tenant_id=unit.tenant_id,
        action="case.export",
        object_type="OrgUnit",
        object_id=unit.id,
        details={"cases": len(rows)},
    )
    return CaseTable(filename=f"{title}.xlsx", content=content, cases=len(rows))
