"""Statements of the member ledger. No authorization and no audit: the service decides.

Reads return named tuples with `FIELDS` (every column but the ciphertexts and the
search key, which only the statements that need them select). Every list starts from
`readable_members`, the one scoped statement: the readable paths of the request (made
by authz alone) over `branch_path`, with row-level security beneath.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from typing import Any

from psycopg.types.json import Jsonb
from sqlalchemy import func, update
from sqlalchemy.dialects.postgresql import insert

from service.authz import ReadablePaths
from service.db import Transaction
from service.members.models import Member, MemberHistory
from service.pagination import Page, PageRequest, keyset

_SECRET = {"id_number_enc", "id_number_hmac", "phone_enc"}
FIELDS = tuple(c.name for c in Member.__table__.columns if c.name not in _SECRET)
COLUMNS = ", ".join(FIELDS)
_RETURNING = [c for c in Member.__table__.columns if c.name not in _SECRET]


async def next_id(tx: Transaction) -> int:
    return int(await tx.scalar("SELECT nextval('ledger_id_seq')"))


async def get_member(tx: Transaction, member_id: int) -> Any | None:
    return await tx.first(f"SELECT {COLUMNS} FROM members WHERE id = %(id)s", {"id": member_id})


async def get_members(tx: Transaction, ids: Sequence[int]) -> dict[int, Any]:
    """Members by id, one statement (DataLoaders)."""
    rows = await tx.rows(
        f"SELECT {COLUMNS} FROM members WHERE id = ANY(%(ids)s::bigint[])",
        {"ids": sorted(set(ids))},
    )
    return {row.id: row for row in rows}


async def member_of_account(tx: Transaction, account_id: int) -> Any | None:
    return await tx.first(
        f"SELECT {COLUMNS} FROM members WHERE account_id = %(account)s", {"account": account_id}
    )


async def members_of_accounts(tx: Transaction, account_ids: Sequence[int]) -> dict[int, Any]:
    rows = await tx.rows(
        f"SELECT {COLUMNS} FROM members WHERE account_id = ANY(%(ids)s::bigint[])",
        {"ids": sorted(set(account_ids))},
    )
    return {row.account_id: row for row in rows}


async def get_secrets(tx: Transaction, member_id: int) -> Any | None:
    """The ciphertexts of one member, with the keys that bind them."""
    return await tx.first(
        "SELECT tenant_id, id, id_number_enc, phone_enc FROM members WHERE id = %(id)s",
        {"id": member_id},
    )


async def find_by_id_number(tx: Transaction, tenant_id: int, search_key: bytes) -> Any | None:
    return await tx.first(
        f"SELECT {COLUMNS} FROM members WHERE tenant_id = %(tenant)s AND id_number_hmac = %(key)s",
        {"tenant": tenant_id, "key": search_key},
    )


async def existing_search_keys(
    tx: Transaction, tenant_id: int, keys: Sequence[bytes]
) -> set[bytes]:
    """Which of `keys` (ID-number search keys) a member of the tenant already has."""
    if not keys:
        return set()
    rows = await tx.rows(
        "SELECT id_number_hmac FROM members"
        " WHERE tenant_id = %(tenant)s AND id_number_hmac = ANY(%(keys)s::bytea[])",
        {"tenant": tenant_id, "keys": list(keys)},
    )
    return {bytes(row.id_number_hmac) for row in rows}


class MemberFilter:
    """What a list of members may be narrowed by (all optional)."""

    __slots__ = ("category", "id_search_keys", "is_mobile", "name_contains", "statuses", "within")

    def __init__(
        self,
        *,
        within: str | None = None,
        category: str | None = None,
        statuses: Sequence[str] | None = None,
        is_mobile: bool | None = None,
        name_contains: str | None = None,
        id_search_keys: Sequence[bytes] | None = None,
    ) -> None:
        self.within = within  # an org path: members of branches at or below it
        self.category = category
        self.statuses = statuses
        self.is_mobile = is_mobile
        self.name_contains = name_contains
        # search keys of one ID number, one per tenant in scope (they are per tenant)
        self.id_search_keys = id_search_keys

    def sql(self) -> tuple[list[str], dict[str, Any]]:
        conditions: list[str] = []
        params: dict[str, Any] = {}
        if self.within is not None:
            conditions.append("starts_with(branch_path, %(within)s)")
            params["within"] = self.within
        if self.category is not None:
            conditions.append("category = %(category)s")
            params["category"] = self.category
        if self.statuses:
            conditions.append("status = ANY(%(statuses)s)")
            params["statuses"] = list(self.statuses)
        if self.is_mobile is not None:
            conditions.append("is_mobile = %(is_mobile)s")
            params["is_mobile"] = self.is_mobile
        if self.name_contains:
            conditions.append("strpos(name, %(name)s) > 0")
            params["name"] = self.name_contains
        if self.id_search_keys is not None:
            conditions.append("id_number_hmac = ANY(%(id_keys)s::bytea[])")
            params["id_keys"] = list(self.id_search_keys)
        return conditions, params


def readable_members(
    readable: ReadablePaths, where: MemberFilter, *, columns: str = COLUMNS
) -> tuple[str, dict[str, Any]]:
    """The one scoped statement of the ledger: members under the readable paths that
    match `where`, without ORDER or LIMIT (callers add the keyset tail)."""
    within, params = readable.sql("branch_path")
    conditions, filter_params = where.sql()
    text = f"SELECT {columns} FROM members WHERE {' AND '.join([within, *conditions])}"
    return text, params | filter_params


async def members_page(
    tx: Transaction, readable: ReadablePaths, where: MemberFilter, page: PageRequest
) -> Page[Any]:
    text, params = readable_members(readable, where)
    rows = await tx.rows(f"{text} AND {keyset()}", params | page.params)
    return Page.of(rows, page)


async def members_page_under(
    tx: Transaction,
    readable: ReadablePaths,
    where: MemberFilter,
    page: PageRequest,
    *,
    unit_id: int,
) -> tuple[str, Page[Any]] | None:
    """The unit's path and a page of the members at or below it, in one statement (the
    unit folded into the list, as `children` does); None when the unit is not visible.
    The caller checks the path before using the page."""
    text, params = readable_members(readable, where)
    rows = await tx.rows(
        f"""
        SELECT u.path AS unit_path, m.*
        FROM org_units u LEFT JOIN LATERAL (
          {text} AND starts_with(branch_path, u.path) AND {keyset()}
        ) m ON true
        WHERE u.id = %(unit)s
        """,
        params | page.params | {"unit": unit_id},
    )
    if not rows:
        return None
    return rows[0].unit_path, Page.of([row for row in rows if row.id is not None], page)


async def insert_member(tx: Transaction, **values: Any) -> Any | None:
    """The new member; None when the tenant has a member with that ID number."""
    return await tx.first(
        insert(Member).values(**values).on_conflict_do_nothing().returning(*_RETURNING)
    )


async def update_member(
    tx: Transaction, member: Any, *, expected_version: int, **values: Any
) -> Any | None:
    """The updated member; None when its version is no longer `expected_version`."""
    return await tx.first(
        update(Member)
        .where(
            Member.tenant_id == member.tenant_id,
            Member.id == member.id,
            Member.version == expected_version,
        )
        .values(**values, version=Member.version + 1, updated_at=func.now())
        .returning(*_RETURNING)
    )


async def add_history(
    tx: Transaction,
    member: Any,
    *,
    kind: str,
    effective_on: date,
    actor: str,
    details: dict[str, Any] | None = None,
    tenant_id: int | None = None,
) -> None:
    await tx.execute(
        insert(MemberHistory).values(
            tenant_id=member.tenant_id if tenant_id is None else tenant_id,
            member_id=member.id,
            kind=kind,
            effective_on=effective_on,
            details=Jsonb(details or {}),
            actor=actor,
        )
    )


async def history_page(tx: Transaction, member_id: int, page: PageRequest) -> Page[Any]:
    rows = await tx.rows(
        "SELECT tenant_id, id, member_id, kind, effective_on, details, actor, created_at"
        f" FROM member_history WHERE member_id = %(member)s AND {keyset()}",
        {"member": member_id, **page.params},
    )
    return Page.of(rows, page)


async def has_open_case(tx: Transaction, tenant_id: int, member_id: int) -> bool:
    """Whether a disposal case about the member is still open (处置案件未结)."""
    row = await tx.first(
        "SELECT 1 AS open FROM disposal_cases WHERE tenant_id = %(t)s AND member_id = %(m)s"
        " AND stage <> 'closed' LIMIT 1",
        {"t": tenant_id, "m": member_id},
    )
    return row is not None
