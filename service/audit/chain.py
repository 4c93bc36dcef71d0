"""The hash chain's one definition: what an event's hash covers, and how it is written.

The database computes every event's `seq`, `occurred_at`, `prev_hash` and `hash` in a
BEFORE INSERT trigger (migrations/versions/0005_audit.py, `pingyi_audit_canonical`);
the application only sends the business columns, so it cannot forge the chain.
`pingyi audit verify` recomputes the hashes here, independently of the database. The
two definitions are one specification, written out below; change both together (the
test tests/audit/test_audit_log.py compares them on real rows).

Canonical text (UTF-8), hashed with SHA-256, hex:

    "pingyi-audit-v1;" + F(tenant_id) + F(seq) + F(occurred_at) + F(actor_account_id)
      + F(actor) + F(action) + F(object_type) + F(object_id) + F(outcome)
      + F(request_id) + F(details) + F(prev_hash)

where F(NULL) = "N;" and F(v) = "<octet length of v in UTF-8>:<v>;" (a length prefix,
so no value can spill into its neighbour); integers in decimal; `occurred_at` in UTC as
"YYYY-MM-DDTHH:MM:SS.ffffffZ"; `details` as PostgreSQL's own text of the jsonb value
(`details::text`, deterministic for a given value: verification reads it from the
database as text rather than re-serialising it). The first event of a tenant has
`prev_hash` = 64 zeros (GENESIS).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

GENESIS = "0" * 64
VERSION_TAG = "pingyi-audit-v1;"


def canonical_time(at: datetime) -> str:
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _field(value: str | int | None) -> str:
    if value is None:
        return "N;"
    text = str(value)
    return f"{len(text.encode())}:{text};"


@dataclass(frozen=True)
class ChainRow:
    """The columns of one event that its hash covers (`details` as jsonb text)."""

    tenant_id: int
    seq: int
    occurred_at: datetime
    actor_account_id: int | None
    actor: str
    action: str
    object_type: str
    object_id: str
    outcome: str
    request_id: str | None
    details_text: str
    prev_hash: str


def canonical_text(row: ChainRow) -> str:
    return VERSION_TAG + "".join(
        _field(v)
        for v in (
            row.tenant_id,
            row.seq,
            canonical_time(row.occurred_at),
            row.actor_account_id,
            row.actor,
            row.action,
            row.object_type,
            row.object_id,
            row.outcome,
            row.request_id,
            row.details_text,
            row.prev_hash,
        )
    )


def event_hash(row: ChainRow) -> str:
    return hashlib.sha256(canonical_text(row).encode()).hexdigest()


# The columns a verifier selects, in ChainRow's order (details as the database's text).
CHAIN_COLUMNS = (
    "tenant_id, seq, occurred_at, actor_account_id, actor, action, object_type, "
    "object_id, outcome, request_id, details::text AS details_text, prev_hash, hash"
)


@dataclass(frozen=True)
class Break:
    """The first place a tenant's chain does not hold."""

    tenant_id: int
    seq: int
    reason: str


@dataclass
class ChainCheck:
    """One tenant's chain, walked in seq order."""

    tenant_id: int
    checked: int = 0
    head_seq: int = 0
    head_hash: str = GENESIS
    broken: Break | None = None

    def feed(self, row: ChainRow, stored_hash: str) -> bool:
        """Check the next event; False once the chain is broken (stop feeding)."""
        if self.broken is not None:
            return False
        self.checked += 1
        expected = self.head_seq + 1
        reason = None
        if row.seq != expected:
            reason = f"序号不连续：应为 {expected}，实为 {row.seq}"
        elif row.prev_hash != self.head_hash:
            reason = "前一事件的哈希不符"
        elif stored_hash != event_hash(row):
            reason = "事件内容与其哈希不符（记录被改动）"
        if reason:
            self.broken = Break(self.tenant_id, row.seq, reason)
            return False
        self.head_seq, self.head_hash = row.seq, stored_hash
        return True


def row_from(r: Any) -> tuple[ChainRow, str]:
    """A selected row (CHAIN_COLUMNS, attribute access) -> (ChainRow, its stored hash)."""
    return (
        ChainRow(
            tenant_id=int(r.tenant_id),
            seq=int(r.seq),
            occurred_at=r.occurred_at,
            actor_account_id=r.actor_account_id,
            actor=r.actor,
            action=r.action,
            object_type=r.object_type,
            object_id=r.object_id,
            outcome=r.outcome,
            request_id=r.request_id,
            details_text=r.details_text,
            prev_hash=r.prev_hash,
        ),
        r.hash,
    )
