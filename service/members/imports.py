"""Importing a township's existing .xlsx ledger, in two steps: see the report, then write.

Why it is shaped this way:

- DOMAIN.md: "an import reports every bad row with its row number and reason and writes
  nothing unless the user asks to import the good rows". `preview_import` parses the
  file (service.members.excel, pure), checks what only the database knows (所在支部 names
  against the tenant's branches, ID numbers already in the ledger), and stages the
  accepted rows; `confirm_import` writes them. The staged rows hold ID and phone
  numbers, so they are stored sealed (SM4-GCM bound to the import's row) and expire
  after an hour; a confirmed import keeps its report and drops its rows.
- A county ledger has tens of thousands of rows: the writes go in chunks of
  `CHUNK_ROWS`, two statements per chunk (the ids, then one INSERT of the members that
  also writes their history), and one audit event for the whole batch. The per-row
  rules are the ones `service.add_member` applies, checked by the reader in bulk.
- A member whose ID number is already in the tenant is counted, not rejected: the
  INSERT says ON CONFLICT DO NOTHING, so importing the same file twice, or a member
  added by hand meanwhile, never makes a second record.
- Confirming is an UPDATE … WHERE confirmed_at IS NULL: a double click or two
  organizers racing write the rows once; the loser is told IMPORT_ALREADY_CONFIRMED.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
import zlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date
from typing import Any, Final

import orjson
from psycopg.types.json import Jsonb

from service.audit.service import record
from service.auth.principal import Principal
from service.authz import require
from service.config import Settings
from service.crypto import SealBroken, field_cipher
from service.db import Transaction
from service.errors import ErrorCode, not_found
from service.members import excel, repository, rules
from service.members.actions import MemberAction
from service.members.errors import BRANCH_ARCHIVED
from service.members.excel import LedgerRow, ProblemCode, RowProblem
from service.tenants import repository as units
from service.tenants.actions import OrgUnitAction
from service.tenants.rules import OrgUnitKind, opens_tenant

IMPORT_EXPIRED = ErrorCode("IMPORT_EXPIRED", "该导入已超过 1 小时未确认而失效，请重新上传文件")
IMPORT_ALREADY_CONFIRMED = ErrorCode("IMPORT_ALREADY_CONFIRMED", "该导入已确认过，不能重复导入")
IMPORT_UNREADABLE = ErrorCode("IMPORT_UNREADABLE", "暂存的导入数据无法解密，请重新上传文件", 500)

IMPORT = "导入批次"
TENANT = "租户"
TABLE: Final = "member_imports"
CHUNK_ROWS: Final = 1000
EXPIRES_AFTER: Final = "1 hour"
_COLUMN_ORDER: Final = {column: index for index, column in enumerate(excel.COLUMNS)}

Progress = Callable[[int, int], None]


# --- what the user sees -------------------------------------------------------------


@dataclass(frozen=True)
class ImportReport:
    """What the file holds: data rows read, rows to import, rows already in the ledger,
    and an entry per problem (ALREADY_PRESENT entries say which rows were skipped)."""

    rows: int
    accepted: int
    already_present: int
    rejected: tuple[RowProblem, ...]
    import_id: int | None = None

    def as_json(self) -> dict[str, Any]:
        return {
            "rows": self.rows,
            "accepted": self.accepted,
            "already_present": self.already_present,
            "rejected": [
                {"row": p.row, "column": p.column, "code": p.code, "message": p.message}
                for p in self.rejected
            ],
        }

    @classmethod
    def of_json(cls, data: dict[str, Any], import_id: int | None = None) -> ImportReport:
        return cls(
            rows=data["rows"],
            accepted=data["accepted"],
            already_present=data["already_present"],
            rejected=tuple(
                RowProblem(p["row"], p["column"], p["code"], p["message"]) for p in data["rejected"]
            ),
            import_id=import_id,
        )


@dataclass(frozen=True)
class ImportResult:
    import_id: int | None
    imported: int
    already_present: int


@dataclass(frozen=True)
class _Checked:
    """A file checked against the tenant: its report and the rows to write."""

    tenant: Any  # the tenant's top org unit
    report: ImportReport
    rows: list[_Staged] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class _Staged:
    """An accepted row with its branch resolved (what is sealed between the steps)."""

    row: int
    name: str
    gender: str
    id_number: str
    birth_date: date
    joined_on: date
    confirmed_on: date | None
    category: str
    branch_id: int
    phone: str | None
    is_mobile: bool
    mobile_location: str | None

    def packed(self) -> list[Any]:
        return [
            self.row,
            self.name,
            self.gender,
            self.id_number,
            self.birth_date.isoformat(),
            self.joined_on.isoformat(),
            self.confirmed_on.isoformat() if self.confirmed_on else None,
            self.category,
            self.branch_id,
            self.phone,
            self.is_mobile,
            self.mobile_location,
        ]

    @classmethod
    def unpacked(cls, item: list[Any]) -> _Staged:
        (row, name, gender, number, born, joined, confirmed, category, branch, phone) = item[:10]
        return cls(
            row=row,
            name=name,
            gender=gender,
            id_number=number,
            birth_date=date.fromisoformat(born),
            joined_on=date.fromisoformat(joined),
            confirmed_on=date.fromisoformat(confirmed) if confirmed else None,
            category=category,
            branch_id=branch,
            phone=phone,
            is_mobile=item[10],
            mobile_location=item[11],
        )


# --- the use cases ------------------------------------------------------------------


async def preview_import(
    tx: Transaction,
    principal: Principal,
    *,
    tenant_unit_id: int,
    data: bytes,
    filename: str | None = None,
    settings: Settings | None = None,
) -> ImportReport:
    """Check `data` (an .xlsx ledger) for the tenant whose top unit is `tenant_unit_id`,
    stage the accepted rows for `confirm_import`, and return the report with the
    import's id. Writes no member."""
    checked = await _check(
        tx, principal, tenant_unit_id=tenant_unit_id, data=data, settings=settings
    )
    tenant_id = checked.tenant.tenant_id
    import_id = int(await tx.scalar("SELECT nextval('ledger_id_seq')"))
    payload = zlib.compress(orjson.dumps([row.packed() for row in checked.rows]), 6)
    sealed = field_cipher().seal_bytes(
        payload, tenant_id=tenant_id, table=TABLE, column="sealed_rows", row_id=import_id
    )
    report = checked.report
    await tx.execute(
        "INSERT INTO member_imports"
        " (tenant_id, id, file_sha256, report, sealed_rows, created_by, expires_at)"
        " VALUES (%(tenant)s, %(id)s, %(sha)s, %(report)s, %(sealed)s, %(actor)s,"
        f" now() + interval '{EXPIRES_AFTER}')",
        {
            "tenant": tenant_id,
            "id": import_id,
            "sha": hashlib.sha256(data).hexdigest(),
            "report": Jsonb(report.as_json()),
            "sealed": sealed,
            "actor": principal.actor,
        },
    )
    await record(
        tx,
        principal,
        tenant_id=tenant_id,
        action="member.import_preview",
        object_type="MemberImport",
        object_id=import_id,
        details=_counts(report) | {"file": _file_label(filename)},
    )
    return ImportReport(
        rows=report.rows,
        accepted=report.accepted,
        already_present=report.already_present,
        rejected=report.rejected,
        import_id=import_id,
    )


async def confirm_import(
    tx: Transaction, principal: Principal, *, import_id: int, progress: Progress | None = None
) -> ImportResult:
    """Write the rows a preview staged. Once only; not after an hour."""
    staged = await tx.first(
        "SELECT i.tenant_id, i.id, i.report, i.sealed_rows, i.confirmed_at,"
        " i.expires_at <= now() AS expired, u.path AS tenant_path"
        " FROM member_imports i JOIN org_units u ON u.tenant_id = i.tenant_id"
        " AND u.id = i.tenant_id WHERE i.id = %(id)s",
        {"id": import_id},
    )
    if staged is None:
        raise not_found(IMPORT)
    require(
        principal, MemberAction.IMPORT, staged.tenant_path, what=IMPORT, seen_with=MemberAction.READ
    )
    if staged.confirmed_at is not None:
        raise IMPORT_ALREADY_CONFIRMED.error()
    if staged.expired:
        raise IMPORT_EXPIRED.error()
    # The rows are dropped with the confirmation: the report stays, the numbers go.
    claimed = await tx.first(
        "UPDATE member_imports SET confirmed_at = now(), sealed_rows = ''::bytea"
        " WHERE tenant_id = %(tenant)s AND id = %(id)s AND confirmed_at IS NULL"
        " AND expires_at > now() RETURNING id",
        {"tenant": staged.tenant_id, "id": import_id},
    )
    if claimed is None:  # another confirmation committed first (or the hour just ended)
        raise IMPORT_ALREADY_CONFIRMED.error()
    try:
        payload = field_cipher().open_bytes(
            staged.sealed_rows,
            tenant_id=staged.tenant_id,
            table=TABLE,
            column="sealed_rows",
            row_id=import_id,
        )
    except SealBroken:
        raise IMPORT_UNREADABLE.error() from None
    rows = [_Staged.unpacked(item) for item in orjson.loads(zlib.decompress(payload))]
    report = ImportReport.of_json(staged.report)
    imported = await _write(
        tx, principal, tenant_id=staged.tenant_id, import_id=import_id, rows=rows, progress=progress
    )
    result = ImportResult(
        import_id=import_id,
        imported=imported,
        already_present=report.already_present + len(rows) - imported,
    )
    await _audit_import(tx, principal, staged.tenant_id, import_id, report, result)
    return result


async def import_file(
    tx: Transaction,
    principal: Principal,
    *,
    tenant_unit_id: int,
    data: bytes,
    filename: str | None = None,
    settings: Settings | None = None,
    dry_run: bool = False,
    progress: Progress | None = None,
) -> tuple[ImportReport, ImportResult | None]:
    """Check and write in one go (the CLI): the report, and what was written (None for
    a dry run, which writes nothing at all)."""
    checked = await _check(
        tx, principal, tenant_unit_id=tenant_unit_id, data=data, settings=settings
    )
    if dry_run:
        return checked.report, None
    tenant_id = checked.tenant.tenant_id
    imported = await _write(
        tx, principal, tenant_id=tenant_id, import_id=None, rows=checked.rows, progress=progress
    )
    report = checked.report
    result = ImportResult(
        import_id=None,
        imported=imported,
        already_present=report.already_present + len(checked.rows) - imported,
    )
    await _audit_import(
        tx, principal, tenant_id, f"file:{hashlib.sha256(data).hexdigest()[:16]}", report, result
    )
    return report, result


# --- checking -----------------------------------------------------------------------


async def _tenant_unit(tx: Transaction, principal: Principal, unit_id: int) -> Any:
    """The tenant's top unit, if the principal may import there; NOT_FOUND for a unit
    that is missing, unreadable, or not the top of a tenant (all say the same)."""
    unit = await units.get_unit(tx, unit_id)
    if unit is None:
        raise not_found(TENANT)
    require(principal, MemberAction.IMPORT, unit.path, what=TENANT, seen_with=OrgUnitAction.READ)
    if unit.id != unit.tenant_id or not opens_tenant(OrgUnitKind(unit.kind)):
        raise not_found(TENANT)
    return unit


async def _check(
    tx: Transaction,
    principal: Principal,
    *,
    tenant_unit_id: int,
    data: bytes,
    settings: Settings | None,
) -> _Checked:
    tenant = await _tenant_unit(tx, principal, tenant_unit_id)
    limits = settings or Settings()
    ledger = excel.read_ledger(
        data, max_bytes=limits.max_upload_bytes, max_rows=limits.max_import_rows
    )
    problems = list(ledger.problems)
    branches = await _branches_by_name(tx, tenant.tenant_id)
    placed: list[tuple[LedgerRow, int]] = []
    for row in ledger.rows:
        branch_id = branches.get(row.branch_name)
        if branch_id is None:
            problems.append(
                excel.problem(
                    row.row, excel.BRANCH, ProblemCode.BRANCH_UNKNOWN, branch=row.branch_name
                )
            )
        else:
            placed.append((row, branch_id))
    cipher = field_cipher()
    keys = [cipher.index(row.id_number, tenant_id=tenant.tenant_id) for row, _ in placed]
    present = await repository.existing_search_keys(tx, tenant.tenant_id, keys)
    accepted: list[_Staged] = []
    already = 0
    for (row, branch_id), key in zip(placed, keys, strict=True):
        if key in present:
            already += 1
            problems.append(excel.problem(row.row, excel.ID_NUMBER, ProblemCode.ALREADY_PRESENT))
            continue
        accepted.append(_staged(row, branch_id))
    problems.sort(key=lambda p: (p.row, _COLUMN_ORDER.get(p.column, len(_COLUMN_ORDER))))
    report = ImportReport(
        rows=ledger.total_rows,
        accepted=len(accepted),
        already_present=already,
        rejected=tuple(problems),
    )
    return _Checked(tenant=tenant, report=report, rows=accepted)


def _staged(row: LedgerRow, branch_id: int) -> _Staged:
    return _Staged(
        row=row.row,
        name=row.name,
        gender=(row.gender or excel.gender_from_id(row.id_number)).value,
        id_number=row.id_number,
        birth_date=row.birth_date,
        joined_on=row.joined_date,
        confirmed_on=row.confirmed_date,
        category=row.category.value,
        branch_id=branch_id,
        phone=row.phone,
        is_mobile=row.is_mobile,
        mobile_location=row.mobile_location,
    )


async def _branches_by_name(tx: Transaction, tenant_id: int) -> dict[str, int]:
    """The tenant's active branches by cleaned name (the reader's cleaning, applied to
    both sides). A name two branches share after cleaning matches neither."""
    found = await tx.rows(
        "SELECT id, name FROM org_units WHERE tenant_id = %(tenant)s"
        " AND kind = %(kind)s AND archived_at IS NULL",
        {"tenant": tenant_id, "kind": OrgUnitKind.BRANCH.value},
    )
    by_name: dict[str, int] = {}
    shared: set[str] = set()
    for branch in found:
        name = excel.clean_branch_name(branch.name)
        if name in by_name:
            shared.add(name)
        by_name[name] = branch.id
    for name in shared:
        del by_name[name]
    return by_name


# --- writing ------------------------------------------------------------------------

# One statement per chunk writes the members (arrays unnested: a handful of parameters
# however many rows) and, for those actually inserted, their history entries.
_INSERT_CHUNK = """
WITH incoming AS (
  SELECT * FROM unnest(
    %(ids)s::bigint[], %(branch_ids)s::bigint[], %(names)s::text[], %(genders)s::text[],
    %(births)s::date[], %(id_encs)s::bytea[], %(id_keys)s::bytea[], %(id_masks)s::text[],
    %(phone_encs)s::bytea[], %(phone_masks)s::text[], %(joined)s::date[],
    %(confirmed)s::date[], %(categories)s::text[], %(mobile)s::boolean[],
    %(locations)s::text[]
  ) AS r(id, branch_id, name, gender, birth_date, id_number_enc, id_number_hmac,
         id_number_mask, phone_enc, phone_mask, joined_on, confirmed_on, category,
         is_mobile, mobile_location)
), inserted AS (
  INSERT INTO members (tenant_id, id, branch_id, branch_path, name, gender, birth_date,
    id_number_enc, id_number_hmac, id_number_mask, phone_enc, phone_mask, joined_on,
    confirmed_on, category, is_mobile, mobile_location, tracked_since)
  SELECT %(tenant)s, r.id, r.branch_id, b.path, r.name, r.gender, r.birth_date,
    r.id_number_enc, r.id_number_hmac, r.id_number_mask, r.phone_enc, r.phone_mask,
    r.joined_on, r.confirmed_on, r.category, r.is_mobile, r.mobile_location, %(today)s
  FROM incoming r JOIN org_units b ON b.tenant_id = %(tenant)s AND b.id = r.branch_id
  ORDER BY r.id
  -- the key is per generation since 0013 (re-admission); a new row is generation 0
  ON CONFLICT (tenant_id, id_number_hmac, generation) DO NOTHING
  RETURNING tenant_id, id, branch_id
), history AS (
  INSERT INTO member_history (tenant_id, member_id, kind, effective_on, details, actor)
  SELECT tenant_id, id, 'imported', %(today)s,
    jsonb_build_object('branch_id', branch_id, 'import_id', %(import)s::bigint), %(actor)s
  FROM inserted
)
SELECT count(*) AS imported FROM inserted
"""


async def _write(
    tx: Transaction,
    principal: Principal,
    *,
    tenant_id: int,
    import_id: int | None,
    rows: list[_Staged],
    progress: Progress | None,
) -> int:
    """Insert `rows` as members of the tenant; how many were new (the others' ID
    numbers were in the ledger by then)."""
    if not rows:
        if progress is not None:
            progress(0, 0)
        return 0
    await _check_branches(tx, tenant_id, {row.branch_id for row in rows})
    id_rows = await tx.rows(
        "SELECT nextval('ledger_id_seq') AS id FROM generate_series(1, %(n)s)",
        {"n": len(rows)},
    )
    ids = [r.id for r in id_rows]
    fixed = {
        "tenant": tenant_id,
        "today": date.today(),
        "import": import_id,
        "actor": principal.actor,
    }
    imported = 0
    in_flight: asyncio.Future[Any] | None = None
    for start in range(0, len(rows), CHUNK_ROWS):
        chunk = rows[start : start + CHUNK_ROWS]
        # Sealing the next chunk (CPU here) overlaps the database inserting this one
        # (CPU there): one INSERT in flight at a time, in order.
        params = _chunk_params(tenant_id, ids[start : start + len(chunk)], chunk) | fixed
        if in_flight is not None:
            imported += int(await in_flight)
            if progress is not None:
                progress(start, len(rows))
        in_flight = asyncio.ensure_future(tx.scalar(_INSERT_CHUNK, params))
        for _ in range(_YIELDS_TO_SEND):
            await asyncio.sleep(0)
    assert in_flight is not None
    imported += int(await in_flight)
    if progress is not None:
        progress(len(rows), len(rows))
    return imported


# Turns of the event loop a statement takes to reach the wire (the transaction's lock,
# its same-tick batching, the write); after them the database works while we seal.
_YIELDS_TO_SEND = 3


def _chunk_params(tenant_id: int, ids: list[int], chunk: list[_Staged]) -> dict[str, Any]:
    """The INSERT's arrays for one chunk: numbers sealed to their rows, search keys,
    masks."""
    cipher = field_cipher()
    columns: dict[str, list[Any]] = {
        name: []
        for name in (
            "branch_ids",
            "names",
            "genders",
            "births",
            "id_encs",
            "id_keys",
            "id_masks",
            "phone_encs",
            "phone_masks",
            "joined",
            "confirmed",
            "categories",
            "mobile",
            "locations",
        )
    }
    for member_id, row in zip(ids, chunk, strict=True):
        bound = {"tenant_id": tenant_id, "table": "members", "row_id": member_id}
        columns["branch_ids"].append(row.branch_id)
        columns["names"].append(row.name)
        columns["genders"].append(row.gender)
        columns["births"].append(row.birth_date)
        columns["id_encs"].append(cipher.seal(row.id_number, column="id_number", **bound))
        columns["id_keys"].append(cipher.index(row.id_number, tenant_id=tenant_id))
        columns["id_masks"].append(rules.mask_id_number(row.id_number))
        columns["phone_encs"].append(
            cipher.seal(row.phone, column="phone", **bound) if row.phone else None
        )
        columns["phone_masks"].append(rules.mask_phone(row.phone))
        columns["joined"].append(row.joined_on)
        columns["confirmed"].append(row.confirmed_on)
        columns["categories"].append(row.category)
        columns["mobile"].append(row.is_mobile)
        columns["locations"].append(row.mobile_location)
    return {**columns, "ids": ids}


async def _check_branches(tx: Transaction, tenant_id: int, branch_ids: Iterable[int]) -> None:
    """Every target branch is still an active branch of the tenant (one may have been
    archived between the preview and the confirmation: then nothing is written)."""
    wanted = sorted(set(branch_ids))
    active = await tx.rows(
        "SELECT id FROM org_units WHERE tenant_id = %(tenant)s AND id = ANY(%(ids)s::bigint[])"
        " AND kind = %(kind)s AND archived_at IS NULL",
        {"tenant": tenant_id, "ids": wanted, "kind": OrgUnitKind.BRANCH.value},
    )
    if len(active) != len(wanted):
        raise BRANCH_ARCHIVED.error(
            "导入涉及的党支部在预览后已归档或撤销，未写入任何党员，请重新上传文件"
        )


async def _audit_import(
    tx: Transaction,
    principal: Principal,
    tenant_id: int,
    object_id: int | str,
    report: ImportReport,
    result: ImportResult,
) -> None:
    await record(
        tx,
        principal,
        tenant_id=tenant_id,
        action="member.import",
        object_type="MemberImport",
        object_id=object_id,
        details=_counts(report)
        | {"imported": result.imported, "already_present": result.already_present},
    )


def _counts(report: ImportReport) -> dict[str, Any]:
    return {
        "rows": report.rows,
        "accepted": report.accepted,
        "already_present": report.already_present,
        "problems": len(report.rejected),
    }


_LONG_NUMBER = re.compile(r"\d{7,}[\dXx]?")


def _file_label(filename: str | None) -> str | None:
    """The uploaded file's name for the audit log: bounded, and with any long run of
    digits (someone may name a file after an ID or phone number) blanked out."""
    if not filename:
        return None
    label = _LONG_NUMBER.sub("…", " ".join(str(filename).split()))[:100]
    return label or None
