"""Statements of attachments. No authorization, no audit (service.py does those).
Reads of metadata never select `content`: only a download reads the bytes."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Final

from service.db import Transaction

META: Final = (
    "tenant_id, id, branch_id, branch_path, owner_kind, owner_id, filename, content_type,"
    " size_bytes, sha256, uploaded_by, uploaded_at, linked_by, linked_at"
)


async def insert(tx: Transaction, **values: Any) -> Any:
    return await tx.one(
        "INSERT INTO attachments (tenant_id, branch_id, branch_path, filename, content_type,"
        " size_bytes, sha256, content, uploaded_by) VALUES (%(tenant_id)s, %(branch_id)s,"
        " %(branch_path)s, %(filename)s, %(content_type)s, %(size_bytes)s, %(sha256)s,"
        f" %(content)s, %(uploaded_by)s) RETURNING {META}",
        values,
    )


async def get_many(tx: Transaction, ids: Sequence[int]) -> dict[int, Any]:
    """Metadata by id (within the request's tenant scope), one statement, rows locked
    against a concurrent link (FOR UPDATE) when `tx` writes."""
    lock = " FOR UPDATE" if tx.write else ""
    rows = await tx.rows(
        f"SELECT {META} FROM attachments WHERE id = ANY(%(ids)s::bigint[]) ORDER BY id{lock}",
        {"ids": sorted(set(ids))},
    )
    return {row.id: row for row in rows}


async def get_with_content(tx: Transaction, attachment_id: int) -> Any | None:
    return await tx.first(
        f"SELECT {META}, content FROM attachments WHERE id = %(id)s", {"id": attachment_id}
    )


async def contents(tx: Transaction, ids: Sequence[int]) -> dict[int, bytes]:
    rows = await tx.rows(
        "SELECT id, content FROM attachments WHERE id = ANY(%(ids)s::bigint[])",
        {"ids": sorted(set(ids))},
    )
    return {row.id: bytes(row.content) for row in rows}


async def set_owner(
    tx: Transaction,
    ids: Sequence[int],
    *,
    owner_kind: str,
    owner_id: int,
    linked_by: int | None,
) -> list[Any]:
    """Link the still-unlinked ones; those already linked (to anything) are left as
    they are and not returned."""
    return await tx.rows(
        "UPDATE attachments SET owner_kind = %(kind)s, owner_id = %(owner)s,"
        " linked_by = %(by)s, linked_at = now()"
        " WHERE id = ANY(%(ids)s::bigint[]) AND owner_id IS NULL"
        f" RETURNING {META}",
        {"ids": sorted(set(ids)), "kind": owner_kind, "owner": owner_id, "by": linked_by},
    )


async def of_owners(tx: Transaction, owner_kind: str, owner_ids: Sequence[int]) -> list[Any]:
    """Metadata of the attachments of some owners of one kind, by owner then id."""
    return await tx.rows(
        f"SELECT {META} FROM attachments WHERE owner_kind = %(kind)s"
        " AND owner_id = ANY(%(owners)s::bigint[]) ORDER BY owner_id, id",
        {"kind": owner_kind, "owners": sorted(set(owner_ids))},
    )
