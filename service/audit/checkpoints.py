"""Signed checkpoints: each tenant's chain head, signed with a key the database lacks.

Whoever can write the database as its owner could delete a chain's tail, or rewrite
the chain and recompute every hash so that it verifies again. A checkpoint names the
head of each tenant's chain (tenant, seq, hash, time), signed with an Ed25519 key kept
in a file (never in the database) and appended to a JSON-lines file outside the
database (a county may ship it to a log sink it keeps). `pingyi audit verify` then
requires every tenant's last checkpointed (seq, hash) to still be in the chain.
"""

from __future__ import annotations

import base64
import json
import os
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)

from service.config import Settings

# The heads of every chain: read with every tenant in scope (the caller sets it).
HEADS_SQL = """
SELECT DISTINCT ON (tenant_id) tenant_id, seq, hash
FROM audit_events ORDER BY tenant_id, seq DESC
"""


def key_file(settings: Settings) -> Path:
    return settings.audit_signing_key_file or settings.data_dir / "audit-signing-key.pem"


def checkpoint_file(settings: Settings) -> Path:
    return settings.audit_checkpoint_file or settings.data_dir / "audit-checkpoints.jsonl"


def load_or_create_signing_key(path: Path) -> Ed25519PrivateKey:
    """The Ed25519 key in `path` (PEM, PKCS#8); generated there (mode 0600) when missing."""
    if path.exists():
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
        if not isinstance(key, Ed25519PrivateKey):
            raise ValueError(f"{path}: not an Ed25519 private key")
        return key
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(pem)
    return key


@dataclass(frozen=True)
class Checkpoint:
    tenant_id: int
    seq: int
    hash: str
    at: str  # ISO time in UTC

    def payload(self) -> bytes:
        """What is signed: a canonical JSON of the four fields."""
        body = {"tenant_id": self.tenant_id, "seq": self.seq, "hash": self.hash, "at": self.at}
        return json.dumps(body, sort_keys=True, separators=(",", ":")).encode()


def sign(key: Ed25519PrivateKey, checkpoint: Checkpoint) -> dict[str, Any]:
    return {
        "tenant_id": checkpoint.tenant_id,
        "seq": checkpoint.seq,
        "hash": checkpoint.hash,
        "at": checkpoint.at,
        "signature": base64.b64encode(key.sign(checkpoint.payload())).decode(),
    }


def write_checkpoints(
    settings: Settings, heads: Iterable[tuple[int, int, str]], *, now: datetime | None = None
) -> list[Checkpoint]:
    """Sign `heads` ((tenant, seq, hash) each) and append them to the checkpoint file."""
    key = load_or_create_signing_key(key_file(settings))
    at = (now or datetime.now(UTC)).astimezone(UTC).isoformat(timespec="microseconds")
    made = [Checkpoint(int(t), int(s), str(h), at) for t, s, h in heads]
    path = checkpoint_file(settings)
    path.parent.mkdir(parents=True, exist_ok=True)
    # Append-only: one line per head, flushed and synced before returning.
    with path.open("a", encoding="utf-8") as fh:
        for checkpoint in made:
            fh.write(json.dumps(sign(key, checkpoint), sort_keys=True) + "\n")
        fh.flush()
        os.fsync(fh.fileno())
    return made


@dataclass(frozen=True)
class CheckpointProblem:
    tenant_id: int | None
    seq: int | None
    reason: str


def last_checkpoints(
    settings: Settings,
) -> tuple[dict[int, Checkpoint], list[CheckpointProblem]]:
    """Every tenant's last checkpoint whose signature holds, and every line that fails
    to parse or verify (a forged or damaged line is a finding, never trusted)."""
    path = checkpoint_file(settings)
    if not path.exists():
        return {}, []
    public: Ed25519PublicKey = load_or_create_signing_key(key_file(settings)).public_key()
    last: dict[int, Checkpoint] = {}
    problems: list[CheckpointProblem] = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            raw = json.loads(line)
            checkpoint = Checkpoint(
                int(raw["tenant_id"]), int(raw["seq"]), str(raw["hash"]), str(raw["at"])
            )
            public.verify(base64.b64decode(raw["signature"]), checkpoint.payload())
        except InvalidSignature:
            problems.append(CheckpointProblem(None, None, f"检查点文件第 {number} 行签名无效"))
            continue
        except (ValueError, KeyError, TypeError):
            problems.append(CheckpointProblem(None, None, f"检查点文件第 {number} 行无法解析"))
            continue
        last[checkpoint.tenant_id] = checkpoint
    return last, problems


def compare_with_checkpoint(
    checkpoint: Checkpoint, hash_at_seq: str | None, head_seq: int
) -> CheckpointProblem | None:
    """A chain against its tenant's last checkpoint: the checkpointed event must still
    be there with the same hash (a deleted tail or a re-hashed chain is not)."""
    if hash_at_seq is None or head_seq < checkpoint.seq:
        return CheckpointProblem(
            checkpoint.tenant_id,
            checkpoint.seq,
            f"与最后检查点不符：检查点在第 {checkpoint.seq} 条，"
            f"链只到第 {head_seq} 条（尾部被删除）",
        )
    if hash_at_seq != checkpoint.hash:
        return CheckpointProblem(
            checkpoint.tenant_id,
            checkpoint.seq,
            f"与最后检查点不符：第 {checkpoint.seq} 条的哈希与检查点不同（链被改写）",
        )
    return None
