"""Pure rules of the hash chain: what an event's hash covers."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from typing import Any

GENESIS = "0" * 64


def canonical_time(at: datetime) -> str:
    return at.astimezone(UTC).isoformat(timespec="microseconds")


def event_hash(
    *,
    tenant_id: int,
    seq: int,
    occurred_at: datetime,
    actor_account_id: int | None,
    actor: str,
    action: str,
    object_type: str,
    object_id: str,
    request_id: str | None,
    details: dict[str, Any],
    prev_hash: str,
) -> str:
    """sha256 over a canonical JSON of every column but the hash itself."""
    body = json.dumps(
        [
            tenant_id,
            seq,
            canonical_time(occurred_at),
            actor_account_id,
            actor,
            action,
            object_type,
            object_id,
            request_id,
            details,
            prev_hash,
        ],
        ensure_ascii=False,
        sort_keys=True,
        separators=(",", ":"),
    )
    return hashlib.sha256(body.encode()).hexdigest()
