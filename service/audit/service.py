"""Appending to, reading, exporting and verifying the audit log (审计日志).

Every event is one INSERT of its business columns; the database numbers, stamps and
hashes it (service/audit/chain.py says how), so the application cannot forge the chain.
Outcomes: `success` (written with the work, in its transaction), `denied` (a FORBIDDEN
answer, written after the request in a short transaction of its own, since the
request's own transaction is read-only or rolled back) and `failed` (security events
such as a wrong password, written by the login flow which commits its failures).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from graphql import GraphQLError
from psycopg.types.json import Jsonb

from service.audit.actions import AuditAction
from service.audit.chain import CHAIN_COLUMNS, Break, ChainCheck, row_from
from service.audit.checkpoints import (
    HEADS_SQL,
    Checkpoint,
    CheckpointProblem,
    compare_with_checkpoint,
    last_checkpoints,
    write_checkpoints,
)
from service.auth.principal import Principal
from service.authz.enforcer import readable_paths, require
from service.clock import business_time
from service.config import Settings
from service.db import Database, Scope, Transaction, TransactionFailed
from service.errors import FORBIDDEN, DomainError, forbidden, not_found
from service.pagination import fits_bigint

log = logging.getLogger("pingyi.audit")


class Outcome(StrEnum):
    SUCCESS = "success"
    DENIED = "denied"
    FAILED = "failed"


async def record(
    tx: Transaction,
    principal: Principal,
    *,
    tenant_id: int,
    action: str,
    object_type: str,
    object_id: int | str,
    details: dict[str, Any] | None = None,
    outcome: Outcome = Outcome.SUCCESS,
) -> None:
    """Append one event to `tenant_id`'s chain, in the caller's (writing) transaction:
    it commits or rolls back with the work it describes."""
    await _append(
        tx,
        tenant_id=tenant_id,
        actor_account_id=principal.account_id,
        actor=principal.actor,
        request_id=principal.request_id,
        action=action,
        object_type=object_type,
        object_id=object_id,
        details=details,
        outcome=outcome,
    )


@dataclass(frozen=True)
class Event:
    """One event of `record_many`: what `record` takes but the principal."""

    tenant_id: int
    action: str
    object_type: str
    object_id: int | str
    details: dict[str, Any] | None = None
    outcome: Outcome = Outcome.SUCCESS


# Many events in one statement: the chain's trigger runs for each row in the order
# given (a row-level trigger's queries see the rows the same statement inserted before
# it), so each tenant's events get consecutive seqs, each hashed over the one before.
_INSERT = """
INSERT INTO audit_events (tenant_id, actor_account_id, actor, action, object_type, object_id,
  outcome, request_id, details)
SELECT e.tenant_id, %(actor_account_id)s, %(actor)s, e.action, e.object_type, e.object_id,
  e.outcome, %(request_id)s, e.details
FROM unnest(%(tenant_ids)s::bigint[], %(actions)s::text[], %(object_types)s::text[],
            %(object_ids)s::text[], %(outcomes)s::text[], %(details)s::jsonb[])
     WITH ORDINALITY AS e(tenant_id, action, object_type, object_id, outcome, details, n)
ORDER BY e.n
"""


async def record_many(tx: Transaction, principal: Principal, events: Sequence[Event]) -> None:
    """Append `events` (in order) to their tenants' chains as `record` appends one, in
    one statement: bulk work (a county's 2,000 rounds opened or closed at once) pays
    one statement, not one per event. Deferred to the COMMIT like `record`."""
    await _defer_events(
        tx,
        actor_account_id=principal.account_id,
        actor=principal.actor,
        request_id=principal.request_id,
        events=events,
    )


async def _append(
    tx: Transaction,
    *,
    tenant_id: int,
    actor_account_id: int | None,
    actor: str,
    request_id: str,
    action: str,
    object_type: str,
    object_id: int | str,
    details: dict[str, Any] | None,
    outcome: Outcome,
) -> None:
    await _defer_events(
        tx,
        actor_account_id=actor_account_id,
        actor=actor,
        request_id=request_id,
        events=[Event(tenant_id, action, object_type, object_id, details, outcome)],
    )


async def _defer_events(
    tx: Transaction,
    *,
    actor_account_id: int | None,
    actor: str,
    request_id: str,
    events: Sequence[Event],
) -> None:
    """The one way events are written: one statement for all of them, deferred to the
    COMMIT, so the chain's per-tenant lock (taken by the insert's trigger) is held for
    one step on the server, not across this request's round trips."""
    if not tx.write:
        raise TransactionFailed("audit events are written in a writing transaction")
    if not events:
        return
    await tx.defer(
        _INSERT,
        {
            "actor_account_id": actor_account_id,
            "actor": actor,
            "request_id": request_id or None,
            "tenant_ids": [int(e.tenant_id) for e in events],
            "actions": [e.action for e in events],
            "object_types": [e.object_type for e in events],
            "object_ids": [str(e.object_id) for e in events],
            "outcomes": [str(e.outcome) for e in events],
            "details": [Jsonb(e.details or {}) for e in events],
        },
    )


# The platform tenant never changes once the first migration made it.
_platform_tenant: int | None = None


async def platform_tenant_id(tx: Transaction) -> int:
    global _platform_tenant
    if _platform_tenant is None:
        _platform_tenant = int(await tx.scalar("SELECT id FROM tenants WHERE kind = 'platform'"))
    return _platform_tenant


async def record_security_event(
    tx: Transaction,
    *,
    action: str,
    outcome: Outcome,
    username: str,
    account_id: int | None = None,
    tenant_id: int | None = None,
    object_type: str = "Account",
    object_id: int | str | None = None,
    request_id: str = "",
    details: dict[str, Any] | None = None,
) -> None:
    """An authentication event (login failure, lockout, logout, MFA, password change,
    session revocation). Events of a known account go to its home tenant's chain; those
    of an unknown username to the platform tenant's (visible to an auditor at the root).
    The username is the actor as typed (trimmed, lower case): never the password.

    Call it in a transaction that commits even when the request is refused (the login
    flow commits its counted failures)."""
    if tenant_id is None:
        tenant_id = await platform_tenant_id(tx)
    tx.widen([tenant_id])
    await _append(
        tx,
        tenant_id=tenant_id,
        actor_account_id=account_id,
        actor=username[:150],
        request_id=request_id,
        action=action,
        object_type=object_type,
        object_id=object_id if object_id is not None else (account_id or username[:150]),
        details=details,
        outcome=outcome,
    )


# --- denials -----------------------------------------------------------------------


@dataclass(frozen=True)
class Denial:
    """A FORBIDDEN answer: the Casbin action and the org path it was refused at (when
    `require` refused it), and the GraphQL field that asked."""

    action: str | None
    org_path: str | None
    field: str = ""


def tenant_of_path(principal: Principal, org_path: str | None) -> int | None:
    """The deepest tenant of `org_path` that the principal's scope holds (an org path
    is `/<unit id>/.../`, and a tenant's id is its top unit's id)."""
    if not org_path:
        return None
    for part in reversed([p for p in org_path.split("/") if p]):
        if part.isdigit() and int(part) in principal.tenant_ids:
            return int(part)
    return None


async def record_denials(db: Database, principal: Principal, denials: Sequence[Denial]) -> None:
    """Write the request's denials in one short transaction of their own (the request's
    own was read-only, or rolled back). Each goes to the chain of the tenant it was
    refused in, or the principal's home tenant (or the platform's)."""
    async with db.transaction(principal.scope, write=True) as tx:
        home = principal.account.home_tenant_id if principal.account else None
        for denial in denials:
            tenant = tenant_of_path(principal, denial.org_path) or home
            if tenant is None:
                tenant = await platform_tenant_id(tx)
            tx.widen([tenant])
            unit = _last_id(denial.org_path)
            await record(
                tx,
                principal,
                tenant_id=tenant,
                action=denial.action or f"graphql:{denial.field}",
                object_type="OrgUnit" if unit is not None else "Operation",
                object_id=unit if unit is not None else (denial.field or "-"),
                details={"field": denial.field, "code": "FORBIDDEN"},
                outcome=Outcome.DENIED,
            )


def _last_id(org_path: str | None) -> int | None:
    parts = [p for p in (org_path or "").split("/") if p]
    return int(parts[-1]) if parts and parts[-1].isdigit() else None


# --- reading -----------------------------------------------------------------------


@dataclass(frozen=True)
class AuditFilter:
    tenant_path: str | None = None  # the tenant's top unit path (already authorized)
    tenant_id: int | None = None
    org_path: str | None = None  # events whose object is this unit or below it
    actor: str | None = None
    action: str | None = None
    outcome: Outcome | None = None
    since: datetime | None = None
    until: datetime | None = None


@dataclass(frozen=True)
class EventsPage:
    items: list[Any]
    has_next_page: bool


def _key_cursor(row: Any) -> tuple[datetime, int, int]:
    return (row.occurred_at, int(row.tenant_id), int(row.seq))


async def resolve_filter(
    tx: Transaction,
    principal: Principal,
    *,
    tenant_id: int | None = None,
    org_unit_id: int | None = None,
    actor: str | None = None,
    action: str | None = None,
    outcome: Outcome | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
) -> AuditFilter:
    """A filter with its tenant and unit looked up and authorized (AuditAction.READ).

    Anyone without the auditor's grant is refused first, whatever the filter names, so
    the answer never depends on whether an id exists; an auditor gets NOT_FOUND alike
    for a missing unit and one outside their reach."""
    if not readable_paths(principal, AuditAction.READ):
        raise forbidden()
    tenant_path = org_path = None
    if tenant_id is not None:
        row = await tx.first("SELECT id, path FROM tenants WHERE id = %(id)s", {"id": tenant_id})
        if row is None:
            raise not_found("组织")
        tenant_path = row.path
    if org_unit_id is not None:
        unit = await tx.first(
            "SELECT tenant_id, path FROM org_units WHERE id = %(id)s", {"id": org_unit_id}
        )
        if unit is None:
            raise not_found("组织")
        require(principal, AuditAction.READ, unit.path, what="组织")
        if tenant_id is not None and int(unit.tenant_id) != tenant_id:
            raise not_found("组织")
        org_path = unit.path
    return AuditFilter(
        tenant_path=tenant_path,
        tenant_id=tenant_id,
        org_path=org_path,
        actor=actor,
        action=action,
        outcome=outcome,
        since=business_time(since),
        until=business_time(until),
    )


async def readable_tenant_ids(tx: Transaction, principal: Principal) -> list[int]:
    """Every tenant whose chain the principal may read (the auditor's reach)."""
    readable = readable_paths(principal, AuditAction.READ)
    if not readable:
        raise forbidden()
    where, params = readable.sql("path")
    rows = await tx.rows(f"SELECT id FROM tenants WHERE {where} ORDER BY id", params)
    return [int(r.id) for r in rows]


async def authorized_tenants(
    tx: Transaction, principal: Principal, wanted: AuditFilter
) -> list[int]:
    """The tenants whose events the principal may read under the filter. Only the
    auditor's grant (AuditAction.READ) opens any; everyone else is refused."""
    if wanted.tenant_path is not None:
        require(principal, AuditAction.READ, wanted.tenant_path, what="组织")
        return [int(wanted.tenant_id or 0)]
    return await readable_tenant_ids(tx, principal)


async def list_events(
    tx: Transaction,
    tenants: Sequence[int],
    wanted: AuditFilter,
    *,
    first: int,
    after: tuple[datetime, int, int] | None,
) -> EventsPage:
    """Events newest first, keyset-paginated on (occurred_at, tenant_id, seq), of
    `tenants` (from `authorized_tenants`: the caller authorizes before anything else)."""
    if not tenants:
        return EventsPage([], False)
    rows = await tx.rows(*_events_sql(wanted, tenants, after, first + 1))
    return EventsPage(rows[:first], len(rows) > first)


def _events_sql(
    wanted: AuditFilter,
    tenants: Iterable[int],
    after: tuple[datetime, int, int] | None,
    limit: int | None,
) -> tuple[str, dict[str, Any]]:
    clauses = ["e.tenant_id = ANY(%(tenants)s)"]
    params: dict[str, Any] = {"tenants": [int(t) for t in tenants]}
    if wanted.org_path is not None:
        # The object is an org unit at or below the path (its id is the path's last part).
        clauses.append(
            "e.object_type = 'OrgUnit' AND EXISTS (SELECT 1 FROM org_units u "
            "WHERE u.tenant_id = e.tenant_id AND u.id::text = e.object_id "
            "AND u.path LIKE %(org_prefix)s)"
        )
        escaped = wanted.org_path.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        params["org_prefix"] = escaped + "%"
    if wanted.actor is not None:
        clauses.append("e.actor = %(actor)s")
        params["actor"] = wanted.actor
    if wanted.action is not None:
        clauses.append("e.action = %(action)s")
        params["action"] = wanted.action
    if wanted.outcome is not None:
        clauses.append("e.outcome = %(outcome)s")
        params["outcome"] = str(wanted.outcome)
    if wanted.since is not None:
        clauses.append("e.occurred_at >= %(since)s")
        params["since"] = wanted.since
    if wanted.until is not None:
        clauses.append("e.occurred_at < %(until)s")
        params["until"] = wanted.until
    if after is not None:
        clauses.append("(e.occurred_at, e.tenant_id, e.seq) < (%(a_at)s, %(a_t)s, %(a_s)s)")
        params.update(a_at=after[0], a_t=after[1], a_s=after[2])
    sql = (
        "SELECT e.tenant_id, e.seq, e.occurred_at, e.actor_account_id, e.actor, e.action, "
        "e.object_type, e.object_id, e.outcome, e.request_id, e.details, e.hash "
        f"FROM audit_events e WHERE {' AND '.join(clauses)} "
        "ORDER BY e.occurred_at DESC, e.tenant_id DESC, e.seq DESC"
    )
    if limit is not None:
        sql += " LIMIT %(limit)s"
        params["limit"] = limit
    return sql, params


async def export_events(
    tx: Transaction, principal: Principal, wanted: AuditFilter, *, max_rows: int
) -> list[Any]:
    """Every event under the filter (at most `max_rows`, newest first) for an export."""
    tenants = await authorized_tenants(tx, principal, wanted)
    if not tenants:
        return []
    return await tx.rows(*_events_sql(wanted, tenants, None, max_rows))


def valid_key(key: tuple[datetime, int, int]) -> bool:
    return fits_bigint(key[1]) and fits_bigint(key[2])


# --- verifying ---------------------------------------------------------------------


@dataclass
class TenantVerification:
    tenant_id: int
    checked: int
    head_seq: int
    broken: Break | None
    checkpoint: CheckpointProblem | None = None


@dataclass
class Verification:
    tenants: list[TenantVerification] = field(default_factory=list)
    problems: list[CheckpointProblem] = field(default_factory=list)

    @property
    def checked(self) -> int:
        return sum(t.checked for t in self.tenants)

    @property
    def ok(self) -> bool:
        return not self.problems and all(
            t.broken is None and t.checkpoint is None for t in self.tenants
        )


async def verify_tenants(
    tx: Transaction,
    tenant_ids: Iterable[int],
    checkpoints: dict[int, Checkpoint],
    problems: Sequence[CheckpointProblem] = (),
    *,
    chunk: int = 5000,
) -> Verification:
    """Recompute each tenant's chain (in chunks of `chunk` events) and hold its head
    against the tenant's last signed checkpoint. The transaction's scope must hold
    the tenants."""
    result = Verification(problems=list(problems))
    for tenant_id in tenant_ids:
        check = ChainCheck(int(tenant_id))
        hash_at_checkpoint: str | None = None
        wanted = checkpoints.get(int(tenant_id))
        while check.broken is None:
            rows = await tx.rows(
                f"SELECT {CHAIN_COLUMNS} FROM audit_events WHERE tenant_id = %(t)s "
                "AND seq > %(after)s ORDER BY seq LIMIT %(n)s",
                {"t": int(tenant_id), "after": check.head_seq, "n": chunk},
            )
            for record in rows:
                row, stored = row_from(record)
                if not check.feed(row, stored):
                    break
                if wanted is not None and row.seq == wanted.seq:
                    hash_at_checkpoint = stored
            if len(rows) < chunk:
                break
        verdict = TenantVerification(check.tenant_id, check.checked, check.head_seq, check.broken)
        if wanted is not None and check.broken is None:
            verdict.checkpoint = compare_with_checkpoint(wanted, hash_at_checkpoint, check.head_seq)
        result.tenants.append(verdict)
    return result


async def verify_readable(
    tx: Transaction, principal: Principal, settings: Settings
) -> Verification:
    """Verify the chains of every tenant the principal may audit, against the last
    signed checkpoints."""
    tenant_ids = await readable_tenant_ids(tx, principal)
    checkpoints, problems = last_checkpoints(settings)
    return await verify_tenants(tx, tenant_ids, checkpoints, problems)


async def all_tenant_ids(tx: Transaction) -> list[int]:
    return [int(r.id) for r in await tx.rows("SELECT id FROM tenants ORDER BY id")]


async def chain_heads(db: Database) -> list[tuple[int, int, str]]:
    """(tenant, seq, hash) of every tenant's chain head, read with every tenant in scope."""
    async with db.transaction(Scope.of(None, ()), write=False) as tx:
        tenants = await all_tenant_ids(tx)
        tx.rescope(Scope.of(None, tenants))
        rows = await tx.rows(HEADS_SQL)
    return [(int(r.tenant_id), int(r.seq), str(r.hash)) for r in rows]


async def audit_denials(
    db: Database, principal: Principal, errors: Sequence[GraphQLError] | None
) -> None:
    """Audit the FORBIDDEN answers among a GraphQL result's errors, if any (a request
    without one costs nothing here). A failure to write them is logged, never turned
    into another answer: the refusal stands either way."""
    denials = [
        Denial(
            action=getattr(error.original_error, "action", None),
            org_path=getattr(error.original_error, "org_path", None),
            field=str(error.path[0]) if error.path else "",
        )
        for error in errors or ()
        if isinstance(error.original_error, DomainError)
        and error.original_error.code == FORBIDDEN.code
    ]
    if not denials:
        return
    try:
        await record_denials(db, principal, denials)
    except Exception as exc:  # the database refused or went away: say so, keep the answer
        log.error("could not audit %d denied operation(s)", len(denials), exc_info=exc)


async def checkpoint_now(db: Database, settings: Settings) -> list[Checkpoint]:
    """Sign every tenant's chain head and append it outside the database (the periodic
    task and tests call this; `pingyi audit checkpoint` does the same as the operator)."""
    heads = await chain_heads(db)
    return await asyncio.to_thread(write_checkpoints, settings, heads)


async def checkpoint_periodically(db: Database, settings: Settings) -> None:
    """The app's background task: a checkpoint every interval, until cancelled. A
    failed round is logged and retried at the next tick."""
    interval = settings.audit_checkpoint_interval_seconds
    while True:
        await asyncio.sleep(interval)
        try:
            await checkpoint_now(db, settings)
        except Exception as exc:  # the database or the disk: try again next time
            log.error("audit checkpoint failed", exc_info=exc)
