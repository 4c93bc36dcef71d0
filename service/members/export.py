"""The member list as .xlsx: whatever list a user may read, filtered as on screen.

Why it looks the way it does:

- Everyone who may read the list (`member:read`) may export it, masked: the same
  masks every reader sees. Full ID and phone numbers only for `member:read_pii` at
  *every* exported member's branch and a stated reason, checked member by member
  while the file is built (one branch short and the whole export is FORBIDDEN; no
  half file). Both kinds are audited (`member.export`) with the count, and the
  reason when unmasked; never a number.
- The columns are the import's (`excel.COLUMNS`, after 序号), then 状态 and 三不提示,
  so an unmasked export re-imports as it is.
- The list is read in chunks of `CHUNK` members, each one statement that also
  carries the 三不 facts and, unmasked, the ciphertexts (opened here with the same
  binding as `service.open_pii`). 40,000 members are 40 statements; the workbook is
  written by openpyxl's write-only mode. The rows themselves are kept as small
  tuples until the writer runs (the writer is synchronous, the reads are not).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from typing import Any, NamedTuple

from service.audit.service import record
from service.auth.principal import Principal
from service.authz import authorizer, readable_paths
from service.crypto import SealBroken, field_cipher
from service.db import Transaction
from service.errors import forbidden
from service.members import excel, flags
from service.members.actions import MemberAction
from service.members.errors import PII_UNREADABLE
from service.members.lapse import LapseAssessment, LapseKind
from service.members.rules import (
    CATEGORY_LABELS,
    GENDER_LABELS,
    STATUS_LABELS,
    Gender,
    MemberCategory,
    MemberStatus,
)
from service.members.service import TABLE, MemberQuery, member_filter, stated_reason

CHUNK = 1_000
SERIAL = "序号"
STATUS = "状态"
LAPSE = "三不提示"
HEADERS = (SERIAL, *excel.COLUMNS, STATUS, LAPSE)


class Export(NamedTuple):
    content: bytes
    count: int
    masked: bool


def lapse_text(assessment: LapseAssessment | None) -> str:
    """`不交纳党费（连续6个月：2025-09 至 2026-02）；…`; the dues warning when not
    flagged; empty when nothing to say."""
    if assessment is None:
        return ""
    parts = []
    for flag in assessment.flags:
        count = f"至少{len(flag.months)}" if flag.reached_window else f"{len(flag.months)}"
        parts.append(f"{flag.label}（连续{count}个月：{flag.months[0]} 至 {flag.months[-1]}）")
    warning = assessment.dues_warning
    if warning and assessment.flag(LapseKind.DUES) is None:
        parts.append(f"未交党费{len(warning)}个月（{warning[0]} 至 {warning[-1]}）")
    return "；".join(parts)


def _checked_reason(reason: str | None) -> str | None:
    return None if reason is None else stated_reason(reason)


async def export_members(
    tx: Transaction,
    principal: Principal,
    query: MemberQuery,
    *,
    reason: str | None,
    as_of: date | None = None,
    progress: Callable[[int], None] | None = None,
) -> Export:
    """The members of `query` as .xlsx; unmasked when `reason` is given (see above)."""
    readable = readable_paths(principal, MemberAction.READ)
    if not readable:
        raise forbidden()
    stated = _checked_reason(reason)
    where = await member_filter(tx, principal, query)
    masked = stated is None
    if not masked and not readable_paths(principal, MemberAction.READ_PII):
        raise forbidden()
    day = as_of or date.today()
    auth = authorizer()
    cipher = field_cipher()
    unit_names: dict[int, str] = {}
    per_tenant: dict[int, int] = {}
    rows: list[tuple[Any, ...]] = []
    after: int | None = None
    while True:
        chunk = await flags.readable_chunk(
            tx, readable, where, after=after, limit=CHUNK, as_of=day, secrets=not masked
        )
        new_units = {r.branch_id for r in chunk} - unit_names.keys()
        if new_units:
            found = await tx.rows(
                "SELECT id, name FROM org_units WHERE id = ANY(%(ids)s::bigint[])",
                {"ids": sorted(new_units)},
            )
            unit_names |= {u.id: u.name for u in found}
        for member in chunk:
            after = member.id
            assessment = flags.assess(member, day)
            if query.flagged is not None and not flags.matches(assessment, query.flagged):
                continue
            if masked:
                id_number, phone = member.id_number_mask, member.phone_mask
            else:
                if not auth.allowed(principal, MemberAction.READ_PII, member.branch_path):
                    raise forbidden()
                id_number, phone = _open(cipher, member)
            per_tenant[member.tenant_id] = per_tenant.get(member.tenant_id, 0) + 1
            rows.append(
                (
                    len(rows) + 1,
                    member.name,
                    GENDER_LABELS[Gender(member.gender)],
                    id_number,
                    member.birth_date,
                    member.joined_on,
                    member.confirmed_on,
                    CATEGORY_LABELS[MemberCategory(member.category)],
                    unit_names.get(member.branch_id, ""),
                    phone,
                    "是" if member.is_mobile else "否",
                    member.mobile_location,
                    STATUS_LABELS[MemberStatus(member.status)],
                    lapse_text(assessment),
                )
            )
        if progress is not None:
            progress(len(rows))
        if len(chunk) < CHUNK:
            break
    content = excel.write_members_xlsx(HEADERS, rows, title="党员名册")
    details: dict[str, Any] = {
        "masked": masked,
        "filter": {
            "org_unit_id": query.org_unit_id,
            "category": query.category.value if query.category else None,
            "statuses": [s.value for s in query.statuses],
            "is_mobile": query.is_mobile,
            "flagged": query.flagged,
            "name_contains": query.name_contains,
        },
    }
    if stated is not None:
        details["reason"] = stated
    # One event in each tenant whose members left in the file, with that tenant's count;
    # an empty export is recorded where the principal's first grant is.
    targets = per_tenant or {principal.grants[0].tenant_id: 0}
    for tenant_id, count in sorted(targets.items()):
        await record(
            tx,
            principal,
            tenant_id=tenant_id,
            action="member.export",
            object_type="MemberList",
            object_id=query.org_unit_id or "all",
            details=details | {"count": count, "total": len(rows)},
        )
    return Export(content, len(rows), masked)


def _open(cipher: Any, member: Any) -> tuple[str, str | None]:
    bound = {"tenant_id": member.tenant_id, "table": TABLE, "row_id": member.id}
    try:
        id_number = cipher.open(member.id_number_enc, column="id_number", **bound)
        phone = cipher.open(member.phone_enc, column="phone", **bound) if member.phone_enc else None
    except SealBroken:
        raise PII_UNREADABLE.error() from None
    return id_number, phone
