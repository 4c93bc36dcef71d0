"""The archive of a disposal case (立卷归档): one zip bundle the county can keep, and
the decision entered into the member's personal file.

The bundle holds:
- `summary.html`: a readable Chinese summary (UTF-8, no script, no external resource):
  the case, every step with its date, people and text, the votes and the defence, the
  educators and their sessions, every approval step with who decided and why, and the
  list of attached documents;
- `attachments/…`: every document attached to the case or to one of its records;
- `manifest.json`: the case, when and by whom the bundle was generated, and every
  other file of the bundle with its size and SHA-256, so a keeper can check the bundle
  is whole years later without this service.

Exporting is reading (a reader of the branch's cases: case:read) and is audited. The
first export of a CLOSED case also archives it, once: a case record of kind `archive`
(naming the bundle's digest) and a `case_decision` entry in the member's personal file
(`member_file_entries`, 0013; the ledger's `member_history` keeps field changes, the
personal file the decisions). A later export of the same closed case writes nothing
but its audit event; an export of an open case is an interim bundle (marked so).
If the member's record has since moved to another tenant, the personal-file entry is
left to that tenant's own file (the archive record says so).
"""

from __future__ import annotations

import hashlib
import html
import io
import zipfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

import orjson
from psycopg.types.json import Jsonb

from service.attachments import repository as files
from service.audit.service import record
from service.auth.principal import Principal
from service.cases import repository as case_repository
from service.cases.actions import CaseAction
from service.cases.rules import (
    DISPOSAL_LABELS,
    ORIGIN_LABELS,
    OUTCOME_LABELS,
    RECORD_KIND_LABELS,
    STAGE_LABELS,
    CaseOrigin,
    CaseOutcome,
    CaseStage,
    Disposal,
    RecordKind,
)
from service.cases.service import CaseArchiveData, case_for_archive
from service.clock import business_today
from service.clock import now as clock_now
from service.db import Transaction
from service.schema.ids import to_global_id
from service.tenants import repository as units

SUMMARY: Final = "summary.html"
MANIFEST: Final = "manifest.json"
# Labels of what case records keep in `data` (cases-core's keys), in display order.
DATA_LABELS: Final[dict[str, str]] = {
    "origin": "案由",
    "disposal": "处置方式",
    "level": "预审层级",
    "agreed": "是否同意",
    "present": "到会人数",
    "expected_voters": "应到人数",
    "votes_for": "赞成票",
    "votes_against": "反对票",
    "votes_abstain": "弃权票",
    "passed": "是否通过",
    "exclusions": "不计入人员及理由",
    "defence": "本人申辩意见",
    "member_statement": "本人陈述",
    "wants_to_stay": "本人是否愿意留在党内",
    "mass_representatives": "群众代表意见",
    "correction_months": "改正期限（月）",
    "deadline": "改正期满日",
    "corrected": "是否改正",
    "accepted": "是否接受",
    "response": "本人答复",
    "outcome": "结果",
    "approval_request_id": "审批单号",
    "educator_member_ids": "联系人（党员记录）",
    "kind": "类别",
}
_STEP_STATES: Final = {
    "pending": "待审批",
    "approved": "同意",
    "rejected": "不同意",
    "returned": "退回",
    "withdrawn": "已撤回",
}


def _decider(step: Any) -> str:
    """Who decided the step; for a withdrawn one, who withdrew it (not a decider)."""
    if step.state == "withdrawn":
        return f"（{step.decided_by_name}撤回）"
    return str(step.decided_by_name or "—")


_ROLES: Final = {"committee_secretary": "党（工）委书记", "county_organizer": "县委组织部"}
_REQUEST_KINDS: Final = {"case_filing": "事前备案", "case_disposal": "处置审批"}


@dataclass(frozen=True)
class CaseArchive:
    filename: str
    content: bytes
    sha256: str
    manifest: dict[str, Any]
    archived_now: bool  # this export archived the closed case (record + personal file)


@dataclass(frozen=True)
class _File:
    path: str
    data: bytes


async def export_case_archive(
    tx: Transaction, principal: Principal, *, case_id: int
) -> CaseArchive:
    # Archiving (the first export of a closed case writes the record and the member's
    # file) is the exporters' action, not every reader's.
    data = await case_for_archive(tx, principal, case_id=case_id, action=CaseAction.ARCHIVE)
    case = data.case
    record_ids = [r.id for r in data.records]
    attached = await files.of_owners(tx, "case", [case.id])
    if record_ids:
        attached += await files.of_owners(tx, "case_record", record_ids)
    contents = await files.contents(tx, [a.id for a in attached]) if attached else {}
    branch = await units.get_unit(tx, case.branch_id)
    at = clock_now(tx)
    placed = _attachment_paths(attached)
    summary = render_summary(
        data,
        branch_name=branch.name if branch is not None else "",
        attachments=[(a, placed[a.id]) for a in attached],
        generated_at=at,
        generated_by=principal.actor,
    )
    bundle_files = [_File(SUMMARY, summary.encode("utf-8"))]
    bundle_files += [_File(placed[a.id], contents[a.id]) for a in attached]
    manifest = {
        "case_id": to_global_id("DisposalCase", case.id),
        "case_number": case.id,
        "member_name": case.member_name,
        "stage": case.stage,
        "outcome": case.outcome,
        "final": case.stage == CaseStage.CLOSED,
        "generated_at": at.isoformat(),
        "generated_by": principal.actor,
        "files": [
            {"path": f.path, "size": len(f.data), "sha256": hashlib.sha256(f.data).hexdigest()}
            for f in bundle_files
        ],
    }
    content = build_zip(bundle_files, manifest, at)
    digest = hashlib.sha256(content).hexdigest()
    archived_now = False
    if case.stage == CaseStage.CLOSED and not any(
        r.kind == RecordKind.ARCHIVE for r in data.records
    ):
        archived_now = await _archive(tx, principal, case, digest, manifest, at)
    await record(
        tx,
        principal,
        tenant_id=case.tenant_id,
        action="case.archive_export",
        object_type="DisposalCase",
        object_id=case.id,
        details={"sha256": digest, "files": len(bundle_files), "archived": archived_now},
    )
    day = business_today(at)
    return CaseArchive(
        filename=f"处置案件-{case.id}-{day:%Y%m%d}.zip",
        content=content,
        sha256=digest,
        manifest=manifest,
        archived_now=archived_now,
    )


async def _archive(
    tx: Transaction,
    principal: Principal,
    case: Any,
    digest: str,
    manifest: dict[str, Any],
    at: datetime,
) -> bool:
    """The `archive` record and the personal-file entry; False when a concurrent export
    archived the case first (the case row is locked for the check)."""
    locked = await case_repository.get_case(tx, case.id, lock=True)
    already = await tx.scalar(
        "SELECT count(*) FROM case_records WHERE tenant_id = %(t)s AND case_id = %(c)s"
        " AND kind = 'archive'",
        {"t": case.tenant_id, "c": case.id},
    )
    if locked is None or already:
        return False
    day = business_today(at)
    member = await tx.first(
        "SELECT tenant_id, id FROM members WHERE id = %(id)s", {"id": case.member_id}
    )
    in_file = member is not None and member.tenant_id == case.tenant_id
    await case_repository.add_record(
        tx,
        case,
        kind=RecordKind.ARCHIVE.value,
        occurred_on=day,
        people=[principal.actor],
        body="案件材料已立卷归档，处理决定已存入本人档案"
        if in_file
        else "案件材料已立卷归档；本人组织关系已转出，处理决定由其所在组织存入档案",
        data={"bundle_sha256": digest, "files": len(manifest["files"]), "member_file": in_file},
        account_id=principal.account_id,
        actor=principal.actor,
    )
    if in_file:
        outcome = OUTCOME_LABELS[CaseOutcome(case.outcome)] if case.outcome else ""
        disposal = DISPOSAL_LABELS[Disposal(case.disposal)] if case.disposal else ""
        await tx.execute(
            "INSERT INTO member_file_entries (tenant_id, member_id, kind, case_id, occurred_on,"
            " title, body, data, recorded_by) VALUES (%(t)s, %(m)s, 'case_decision', %(c)s,"
            " %(on)s, %(title)s, %(body)s, %(data)s, %(by)s) ON CONFLICT DO NOTHING",
            {
                "t": case.tenant_id,
                "m": case.member_id,
                "c": case.id,
                "on": case.closed_on or day,
                "title": f"处置不合格党员：{disposal or '—'}，{outcome}",
                "body": f"案由：{ORIGIN_LABELS[CaseOrigin(case.origin)]}。{case.facts}"[:8000],
                "data": Jsonb(
                    {
                        "case_id": case.id,
                        "disposal": case.disposal,
                        "outcome": case.outcome,
                        "closed_on": case.closed_on.isoformat() if case.closed_on else None,
                        "bundle_sha256": digest,
                    }
                ),
                "by": principal.actor,
            },
        )
    return True


def _attachment_paths(attached: Sequence[Any]) -> dict[int, str]:
    """`attachments/<owner>-<id>-<filename>`: unique by id, readable by name."""
    paths: dict[int, str] = {}
    for row in attached:
        owner = "case" if row.owner_kind == "case" else f"record{row.owner_id}"
        paths[row.id] = f"attachments/{owner}-{row.id}-{row.filename}"
    return paths


def build_zip(bundle_files: Iterable[_File], manifest: dict[str, Any], at: datetime) -> bytes:
    """The zip, with the manifest first; entries dated `at` (UTC), UTF-8 names."""
    stamp = (at.year, at.month, at.day, at.hour, at.minute, at.second)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as bundle:
        entries = [
            _File(MANIFEST, orjson.dumps(manifest, option=orjson.OPT_INDENT_2)),
            *bundle_files,
        ]
        for f in entries:
            info = zipfile.ZipInfo(f.path, date_time=stamp)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            bundle.writestr(info, f.data)
    return buffer.getvalue()


# --- the readable summary ------------------------------------------------------------------


def _e(value: Any) -> str:
    return html.escape("" if value is None else str(value), quote=True)


def _value(value: Any) -> str:
    if isinstance(value, bool):
        return "是" if value else "否"
    if isinstance(value, list):
        return "；".join(_value(v) for v in value) or "—"
    if isinstance(value, dict):
        return "，".join(f"{DATA_LABELS.get(k, k)}：{_value(v)}" for k, v in value.items())
    if value is None:
        return "—"
    if isinstance(value, str):
        for labels in (DISPOSAL_LABELS, ORIGIN_LABELS, OUTCOME_LABELS):
            for key, label in labels.items():
                if value == key.value:
                    return label
    return str(value)


def _data_rows(data: dict[str, Any]) -> str:
    if not data:
        return ""
    known = [k for k in DATA_LABELS if k in data]
    rest = sorted(k for k in data if k not in DATA_LABELS)
    items = "".join(
        f"<li>{_e(DATA_LABELS.get(k, k))}：{_e(_value(data[k]))}</li>" for k in [*known, *rest]
    )
    return f"<ul>{items}</ul>"


def _label(labels: dict[Any, str], enum: type, value: str | None) -> str:
    if value is None:
        return "—"
    try:
        return labels[enum(value)]
    except ValueError:
        return value


def render_summary(
    data: CaseArchiveData,
    *,
    branch_name: str,
    attachments: Sequence[tuple[Any, str]],
    generated_at: datetime,
    generated_by: str,
) -> str:
    case = data.case
    final = case.stage == CaseStage.CLOSED
    facts = [
        ("案件编号", case.id),
        ("党员", case.member_name),
        ("所在党支部", branch_name),
        ("案由", _label(ORIGIN_LABELS, CaseOrigin, case.origin)),
        ("处置方式", _label(DISPOSAL_LABELS, Disposal, case.disposal)),
        ("当前阶段", _label(STAGE_LABELS, CaseStage, case.stage)),
        ("结果", _label(OUTCOME_LABELS, CaseOutcome, case.outcome)),
        ("立案日期", case.opened_on),
        ("结案日期", case.closed_on or "—"),
        ("改正期满日", getattr(case, "correction_deadline", None) or "—"),
        ("立案人", case.opened_by),
    ]
    parts = [
        "<!DOCTYPE html>",
        '<html lang="zh-CN"><head><meta charset="utf-8">',
        '<meta http-equiv="Content-Security-Policy" content="default-src \'none\'; '
        "style-src 'unsafe-inline'\">",
        f"<title>处置不合格党员案件材料：{_e(case.member_name)}</title>",
        "<style>body{font-family:sans-serif;margin:2em;line-height:1.6}"
        "table{border-collapse:collapse;width:100%}td,th{border:1px solid #999;"
        "padding:4px 8px;vertical-align:top;text-align:left}th{background:#eee}</style>",
        "</head><body>",
        f"<h1>处置不合格党员案件材料{'' if final else '（未结案，阶段性材料）'}</h1>",
        f"<p>生成时间：{_e(generated_at.isoformat())}；生成人：{_e(generated_by)}</p>",
        "<h2>一、案件基本情况</h2><table>",
        *(f"<tr><th>{_e(k)}</th><td>{_e(v)}</td></tr>" for k, v in facts),
        f"<tr><th>主要事实</th><td>{_e(case.facts)}</td></tr></table>",
        "<h2>二、办理过程</h2>",
        "<table><tr><th>日期</th><th>步骤</th><th>参加人员</th><th>内容</th><th>记录人</th></tr>",
    ]
    for r in data.records:
        people = "、".join(_e(p if isinstance(p, str) else _value(p)) for p in r.people or [])
        parts.append(
            f"<tr><td>{_e(r.occurred_on)}</td>"
            f"<td>{_e(_label(RECORD_KIND_LABELS, RecordKind, r.kind))}</td>"
            f"<td>{people or '—'}</td><td>{_e(r.body)}{_data_rows(r.data or {})}</td>"
            f"<td>{_e(r.recorded_by_name)}</td></tr>"
        )
    parts.append("</table><h2>三、教育转化</h2>")
    if data.educators:
        names = "、".join(f"{_e(e.name)}（{_e(e.assigned_on)} 确定）" for e in data.educators)
        parts.append(f"<p>联系人：{names}</p>")
    else:
        parts.append("<p>未确定教育转化联系人。</p>")
    if data.sessions:
        by_member = {e.member_id: e.name for e in data.educators}
        parts.append("<table><tr><th>日期</th><th>联系人</th><th>谈心谈话情况</th></tr>")
        for s in data.sessions:
            parts.append(
                f"<tr><td>{_e(s.held_on)}</td>"
                f"<td>{_e(by_member.get(s.educator_member_id, s.educator_member_id))}</td>"
                f"<td>{_e(s.summary)}</td></tr>"
            )
        parts.append("</table>")
    parts.append("<h2>四、备案与审批</h2>")
    if not data.approval_requests:
        parts.append("<p>无。</p>")
    for request, steps in data.approval_requests:
        kind = _REQUEST_KINDS.get(request.kind, request.kind)
        parts.append(
            f"<h3>{_e(kind)}（审批单 {_e(request.id)}，"
            f"{_e(_STEP_STATES.get(request.state, request.state))}）</h3>"
            "<table><tr><th>次序</th><th>审批层级</th><th>结果</th><th>审批人</th>"
            "<th>时间</th><th>意见</th></tr>"
        )
        for step in steps:
            parts.append(
                f"<tr><td>{_e(step.attempt)}-{_e(step.position)}</td>"
                f"<td>{_e(_ROLES.get(step.role, step.role))}</td>"
                f"<td>{_e(_STEP_STATES.get(step.state, step.state))}</td>"
                f"<td>{_e(_decider(step))}</td>"
                f"<td>{_e(step.decided_at.isoformat() if step.decided_at else '—')}</td>"
                f"<td>{_e(step.reason or '—')}</td></tr>"
            )
        parts.append("</table>")
    parts.append("<h2>五、附件</h2>")
    if attachments:
        parts.append(
            "<table><tr><th>文件</th><th>大小（字节）</th><th>SHA-256</th><th>所附记录</th></tr>"
        )
        for row, path in attachments:
            owner = "案件" if row.owner_kind == "case" else f"办理记录 {row.owner_id}"
            parts.append(
                f"<tr><td>{_e(path)}</td><td>{_e(row.size_bytes)}</td>"
                f"<td><code>{_e(row.sha256)}</code></td><td>{_e(owner)}</td></tr>"
            )
        parts.append("</table>")
    else:
        parts.append("<p>无。</p>")
    parts.append("</body></html>")
    return "\n".join(parts)
