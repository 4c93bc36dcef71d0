"""Statements of discipline sanctions. No authorization and no audit: the service
decides. A sanction is read with its member's branch path and account, which are
what authorization looks at."""

from __future__ import annotations

from typing import Any

from sqlalchemy.dialects.postgresql import insert

from service.db import Transaction
from service.pagination import Page, PageRequest, keyset
from service.sanctions.models import Sanction

FIELDS = tuple(c.name for c in Sanction.__table__.columns)
COLUMNS = ", ".join(FIELDS)
_S_COLUMNS = ", ".join(f"s.{name}" for name in FIELDS)


async def get_sanction(tx: Transaction, sanction_id: int) -> Any | None:
    """The sanction with `branch_path` and `member_account_id` of its member."""
    return await tx.first(
        f"SELECT {_S_COLUMNS}, m.branch_path, m.account_id AS member_account_id"
        " FROM sanctions s JOIN members m ON m.tenant_id = s.tenant_id AND m.id = s.member_id"
        " WHERE s.id = %(id)s",
        {"id": sanction_id},
    )


async def sanctions_page(tx: Transaction, member_id: int, page: PageRequest) -> Page[Any]:
    rows = await tx.rows(
        f"SELECT {COLUMNS} FROM sanctions WHERE member_id = %(member)s AND {keyset()}",
        {"member": member_id, **page.params},
    )
    return Page.of(rows, page)


async def insert_sanction(tx: Transaction, **values: Any) -> Any:
    return await tx.one(insert(Sanction).values(**values).returning(*Sanction.__table__.columns))
