"""Appending to and verifying the audit log."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from psycopg.types.json import Jsonb
from sqlalchemy import Connection, select, text

from service.audit.chain import GENESIS, event_hash
from service.audit.models import AuditEvent
from service.auth.principal import Principal
from service.db import Transaction, TransactionFailed

# Appends to one tenant's chain take turns (pg_advisory_xact_lock(class, tenant)).
AUDIT_LOCK_CLASS = 7301

_INSERT = """
INSERT INTO audit_events (tenant_id, seq, occurred_at, actor_account_id, actor, action,
  object_type, object_id, request_id, details, prev_hash, hash)
VALUES (%(tenant_id)s, %(seq)s, %(occurred_at)s, %(actor_account_id)s, %(actor)s, %(action)s,
  %(object_type)s, %(object_id)s, %(request_id)s, %(details)s, %(prev_hash)s, %(hash)s)
"""


async def record(
    tx: Transaction,
    principal: Principal,
    *,
    tenant_id: int,
    action: str,
    object_type: str,
    object_id: int | str,
    details: dict[str, Any] | None = None,
) -> None:
    """Append one event to `tenant_id`'s chain, in the caller's transaction (a writing
    one: the lock must hold from the read of the chain's head to the insert)."""
    if not tx.write:
        raise TransactionFailed("audit events are written in a writing transaction")
    # The lock and the read are two statements on purpose: the read must take its
    # snapshot after the lock is held, or it could miss the previous holder's event.
    await tx.execute(
        "SELECT pg_advisory_xact_lock(%(cls)s, %(tenant)s)",
        {"cls": AUDIT_LOCK_CLASS, "tenant": int(tenant_id)},
    )
    last = await tx.first(
        "SELECT seq, hash FROM audit_events WHERE tenant_id = %(tenant)s ORDER BY seq DESC LIMIT 1",
        {"tenant": int(tenant_id)},
    )
    seq, prev_hash = (last.seq + 1, last.hash) if last else (1, GENESIS)
    event = {
        "tenant_id": int(tenant_id),
        "seq": seq,
        "occurred_at": datetime.now(UTC),
        "actor_account_id": principal.account_id,
        "actor": principal.actor,
        "action": action,
        "object_type": object_type,
        "object_id": str(object_id),
        "request_id": principal.request_id or None,
        "details": details or {},
        "prev_hash": prev_hash,
    }
    digest = event_hash(**event)
    await tx.execute(_INSERT, {**event, "details": Jsonb(event["details"]), "hash": digest})


@dataclass(frozen=True)
class BrokenLink:
    tenant_id: int
    seq: int
    reason: str


def verify_chains(conn: Connection) -> tuple[int, list[BrokenLink]]:
    """Recompute every tenant's chain; return (events checked, first break per tenant).

    Runs on an owner connection (the CLI); the scope is widened to every tenant so
    the check also works where the owner is bound by the forced RLS policies.
    """
    tenant_ids = [r[0] for r in conn.execute(text("SELECT id FROM tenants ORDER BY id"))]
    ids = ",".join(str(int(t)) for t in tenant_ids)
    conn.execute(text(f"SET LOCAL app.tenant_ids = '{ids}'"))
    checked = 0
    broken: list[BrokenLink] = []
    for tenant_id in tenant_ids:
        prev_hash, expected_seq = GENESIS, 1
        table = AuditEvent.__table__
        rows = conn.execute(
            select(table).where(table.c.tenant_id == tenant_id).order_by(table.c.seq)
        )
        for ev in rows:
            checked += 1
            reason = None
            if ev.seq != expected_seq:
                reason = f"序号不连续：应为 {expected_seq}，实为 {ev.seq}"
            elif ev.prev_hash != prev_hash:
                reason = "前一事件的哈希不符"
            elif ev.hash != event_hash(
                tenant_id=ev.tenant_id,
                seq=ev.seq,
                occurred_at=ev.occurred_at,
                actor_account_id=ev.actor_account_id,
                actor=ev.actor,
                action=ev.action,
                object_type=ev.object_type,
                object_id=ev.object_id,
                request_id=ev.request_id,
                details=ev.details,
                prev_hash=ev.prev_hash,
            ):
                reason = "事件内容与其哈希不符（记录被改动）"
            if reason:
                broken.append(BrokenLink(tenant_id, ev.seq, reason))
                break
            prev_hash, expected_seq = ev.hash, ev.seq + 1
    return checked, broken
