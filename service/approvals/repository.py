"""Statements of approval chains. No authorization and no audit: the service decides.

A step is read joined with its request (`branch_path`, who submitted, the request's
digest, chain and version), which is what authorization and the rules look at. Lists
start from readable paths: the inbox from the decider's (unit, role) pairs, the
overdue list from the paths strictly below the principal's grants.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from psycopg.types.json import Jsonb

from service.authz import ReadablePaths
from service.clock import now
from service.db import Transaction
from service.pagination import Page, PageRequest, keyset

from . import rules
from .models import ApprovalRequest, ApprovalStep

REQUEST_FIELDS = tuple(c.name for c in ApprovalRequest.__table__.columns)
STEP_FIELDS = tuple(c.name for c in ApprovalStep.__table__.columns)
_R_COLUMNS = ", ".join(f"r.{name}" for name in REQUEST_FIELDS)
_S_COLUMNS = ", ".join(f"s.{name}" for name in STEP_FIELDS)
_REQUEST = f"SELECT {_R_COLUMNS} FROM approval_requests r"
_STEP = (
    f"SELECT {_S_COLUMNS}, r.branch_id, r.branch_path, r.kind AS request_kind,"
    " r.state AS request_state, r.digest AS request_digest, r.submitted_by,"
    " r.resubmitted_by, r.attempt AS request_attempt, r.version AS request_version,"
    " r.chain, r.step_days, r.subject_type, r.subject_id,"
    " (s.state = 'pending' AND s.due_at < %(now)s) AS overdue"
    " FROM approval_steps s"
    " JOIN approval_requests r ON r.tenant_id = s.tenant_id AND r.id = s.request_id"
)


# --- the org tree (the chain is built from it) ---------------------------------------


async def branch_unit(tx: Transaction, unit_id: int) -> Any | None:
    """The unit a request comes from (RLS: within the caller's scope)."""
    return await tx.first(
        "SELECT tenant_id, id, kind, path, archived_at FROM org_units WHERE id = %(id)s",
        {"id": unit_id},
    )


async def scope_units(tx: Transaction, ids: Sequence[int]) -> list[Any]:
    """The tenant registry's rows (root, county, tenants) among `ids`: no names, no
    business data, readable before any scope, so a branch secretary's request can name
    the county without reading the county's tenant."""
    return await tx.rows(
        "SELECT id, kind, path FROM tenants WHERE id = ANY(%(ids)s::bigint[]) ORDER BY path",
        {"ids": list(ids)},
    )


# --- requests --------------------------------------------------------------------------


async def insert_request(tx: Transaction, values: dict[str, Any]) -> Any | None:
    """The new request; None when the subject already has an open one."""
    columns = ", ".join(values)
    placeholders = ", ".join(f"%({name})s" for name in values)
    params = {k: Jsonb(v) if k in ("summary", "chain") else v for k, v in values.items()}
    return await tx.first(
        f"INSERT INTO approval_requests ({columns}) VALUES ({placeholders})"
        " ON CONFLICT (tenant_id, kind, subject_type, subject_id)"
        " WHERE state IN ('pending', 'returned') DO NOTHING"
        f" RETURNING {', '.join(REQUEST_FIELDS)}",
        params,
    )


async def get_request(tx: Transaction, request_id: int) -> Any | None:
    return await tx.first(f"{_REQUEST} WHERE r.id = %(id)s", {"id": request_id})


async def get_requests(tx: Transaction, ids: Sequence[int]) -> dict[int, Any]:
    rows = await tx.rows(
        f"{_REQUEST} WHERE r.id = ANY(%(ids)s::bigint[])", {"ids": sorted(set(ids))}
    )
    return {row.id: row for row in rows}


async def latest_request(
    tx: Transaction, tenant_id: int, kind: str, subject_type: str, subject_id: int
) -> Any | None:
    return await tx.first(
        f"{_REQUEST} WHERE r.tenant_id = %(tenant)s AND r.kind = %(kind)s"
        " AND r.subject_type = %(type)s AND r.subject_id = %(subject)s"
        " ORDER BY r.id DESC LIMIT 1",
        {"tenant": tenant_id, "kind": kind, "type": subject_type, "subject": subject_id},
    )


async def move_request(
    tx: Transaction, tenant_id: int, request_id: int, *, version: int, **values: Any
) -> Any | None:
    """The request with `values` set, if it is still at `version`; None otherwise.
    `decided_now=True` stamps `decided_at` with the database's time."""
    decided_now = values.pop("decided_now", False)
    sets = [f"{name} = %({name})s" for name in values]
    sets.append("version = version + 1")
    if decided_now:
        sets.append("decided_at = now()")
    params = {k: Jsonb(v) if k == "summary" else v for k, v in values.items()}
    return await tx.first(
        f"UPDATE approval_requests SET {', '.join(sets)}"
        " WHERE tenant_id = %(tenant_id_)s AND id = %(id_)s AND version = %(version_)s"
        f" RETURNING {', '.join(REQUEST_FIELDS)}",
        params | {"tenant_id_": tenant_id, "id_": request_id, "version_": version},
    )


async def resubmit_request(
    tx: Transaction,
    request: Any,
    *,
    digest: str,
    summary: dict[str, Any],
    account_id: int | None,
) -> Any | None:
    """The returned request pending again with new content; None unless it is still
    returned and unchanged since it was read."""
    return await tx.first(
        "UPDATE approval_requests SET state = 'pending', digest = %(digest)s,"
        " summary = %(summary)s, attempt = attempt + 1, resubmitted_by = %(account)s,"
        " resubmitted_at = now(), version = version + 1"
        " WHERE tenant_id = %(tenant)s AND id = %(id)s AND state = 'returned'"
        " AND version = %(version)s"
        f" RETURNING {', '.join(REQUEST_FIELDS)}",
        {
            "digest": digest,
            "summary": Jsonb(summary),
            "account": account_id,
            "tenant": request.tenant_id,
            "id": request.id,
            "version": request.version,
        },
    )


# --- steps -----------------------------------------------------------------------------


async def open_step(
    tx: Transaction,
    request: Any,
    *,
    attempt: int,
    position: int,
    org_unit_id: int,
    org_path: str,
    role: str,
    days: int,
) -> Any:
    """A pending step, due at the end of the business day `days` days after the
    request's business date (Asia/Shanghai, by the service's clock: `rules.due_at`)."""
    row = await tx.one(
        "INSERT INTO approval_steps (tenant_id, request_id, attempt, position, org_unit_id,"
        " org_path, role, due_at) VALUES (%(tenant)s, %(request)s, %(attempt)s,"
        " %(position)s, %(unit)s, %(path)s, %(role)s, %(due)s) RETURNING id",
        {
            "tenant": request.tenant_id,
            "request": request.id,
            "attempt": attempt,
            "position": position,
            "unit": org_unit_id,
            "path": org_path,
            "role": role,
            "due": rules.due_at(now(tx), days),
        },
    )
    step = await get_step(tx, row.id)
    assert step is not None
    return step


async def get_step(tx: Transaction, step_id: int) -> Any | None:
    return await tx.first(f"{_STEP} WHERE s.id = %(id)s", {"id": step_id, "now": now(tx)})


async def get_steps(tx: Transaction, ids: Sequence[int]) -> dict[int, Any]:
    rows = await tx.rows(
        f"{_STEP} WHERE s.id = ANY(%(ids)s::bigint[])", {"ids": sorted(set(ids)), "now": now(tx)}
    )
    return {row.id: row for row in rows}


async def steps_of_requests(tx: Transaction, request_ids: Sequence[int]) -> dict[int, list[Any]]:
    """Every step of each request, oldest attempt and lowest position first."""
    rows = await tx.rows(
        f"{_STEP} WHERE s.request_id = ANY(%(ids)s::bigint[])"
        " ORDER BY s.request_id, s.attempt, s.position",
        {"ids": sorted(set(request_ids)), "now": now(tx)},
    )
    out: dict[int, list[Any]] = {i: [] for i in request_ids}
    for row in rows:
        out.setdefault(row.request_id, []).append(row)
    return out


async def decide_step(
    tx: Transaction,
    step: Any,
    *,
    state: str,
    decision: str,
    reason: str | None,
    account_id: int | None,
    username: str,
    role: str,
    unit_id: int,
    digest: str,
) -> Any | None:
    """The decided step, if it was still pending at the version read; None when someone
    else decided it first (the row lock makes the loser re-check and find it decided).
    `decided_at` and `version` are set by the table's trigger."""
    row = await tx.first(
        "UPDATE approval_steps SET state = %(state)s, decision = %(decision)s,"
        " reason = %(reason)s, decided_by = %(account)s, decided_by_name = %(username)s,"
        " decided_role = %(role)s, decided_unit_id = %(unit)s, digest = %(digest)s,"
        " decided_at = now()"
        " WHERE tenant_id = %(tenant)s AND id = %(id)s AND state = 'pending'"
        " AND version = %(version)s RETURNING id",
        {
            "state": state,
            "decision": decision,
            "reason": reason,
            "account": account_id,
            "username": username,
            "role": role,
            "unit": unit_id,
            "digest": digest,
            "tenant": step.tenant_id,
            "id": step.id,
            "version": step.version,
        },
    )
    return None if row is None else await get_step(tx, row.id)


def _pairs_sql(pairs: Sequence[tuple[int, str]]) -> tuple[str, dict[str, Any]]:
    if not pairs:
        return "FALSE", {}
    params: dict[str, Any] = {}
    tests = []
    for i, (unit_id, role) in enumerate(pairs):
        params[f"unit{i}"] = unit_id
        params[f"role{i}"] = role
        tests.append(f"(s.org_unit_id = %(unit{i})s AND s.role = %(role{i})s)")
    return "(" + " OR ".join(tests) + ")", params


async def inbox_page(
    tx: Transaction,
    readable: ReadablePaths,
    pairs: Sequence[tuple[int, str]],
    page: PageRequest,
) -> Page[Any]:
    """Pending steps held by one of the (unit, role) pairs, under the decidable paths."""
    within, params = readable.sql("s.org_path")
    held, held_params = _pairs_sql(pairs)
    rows = await tx.rows(
        f"{_STEP} WHERE s.state = 'pending' AND {within} AND {held} AND {keyset('s.id')}",
        params | held_params | page.params | {"now": now(tx)},
    )
    return Page.of(rows, page)


async def overdue_page(tx: Transaction, readable: ReadablePaths, page: PageRequest) -> Page[Any]:
    """Pending steps past their deadline at units strictly below the readable paths."""
    within, params = readable.sql("s.org_path")
    rows = await tx.rows(
        f"{_STEP} WHERE s.state = 'pending' AND s.due_at < %(now)s AND {within}"
        f" AND NOT s.org_path = ANY(%(tops)s::text[]) AND {keyset('s.id')}",
        params | page.params | {"tops": list(readable.prefixes), "now": now(tx)},
    )
    return Page.of(rows, page)


async def withdraw_pending_step(
    tx: Transaction,
    tenant_id: int,
    request_id: int,
    *,
    reason: str,
    account_id: int | None,
    username: str,
) -> int | None:
    """The request's pending step withdrawn (no decision; `decided_at` by the trigger);
    its id, or None when none is pending (returned, or decided meanwhile)."""
    return await tx.scalar(
        "UPDATE approval_steps SET state = 'withdrawn', reason = %(reason)s,"
        " decided_by = %(account)s, decided_by_name = %(username)s"
        " WHERE tenant_id = %(tenant)s AND request_id = %(request)s AND state = 'pending'"
        " RETURNING id",
        {
            "reason": reason,
            "account": account_id,
            "username": username,
            "tenant": tenant_id,
            "request": request_id,
        },
    )
