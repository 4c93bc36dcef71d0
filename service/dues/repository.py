"""Statements of party dues. No authorization and no audit: the service decides.

Lookups by id name the request's tenants (`tenant_ids`) so the primary key serves
them; row-level security confines them as well. Each payment is read with the
months it covers (`months`, ordinals, oldest first) and its member's `branch_path`,
which is what authorization looks at.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import date
from typing import Any

from sqlalchemy import update
from sqlalchemy.dialects.postgresql import insert

from service.db import Transaction
from service.dues.models import DuesArrangement, DuesMonth, DuesPayment
from service.dues.rules import DuesSchedule
from service.pagination import Page, PageRequest, keyset

_PAYMENT = """
SELECT p.tenant_id, p.id, p.member_id, p.paid_on, p.amount_fen, p.paid_by,
  p.is_back_payment, p.note, p.recorded_by, p.created_at, m.branch_path,
  ARRAY(SELECT d.month FROM dues_months d WHERE d.tenant_id = p.tenant_id
        AND d.member_id = p.member_id AND d.payment_id = p.id ORDER BY d.month) AS months
FROM dues_payments p
JOIN members m ON m.tenant_id = p.tenant_id AND m.id = p.member_id
"""


async def get_payment(tx: Transaction, tenant_ids: Iterable[int], payment_id: int) -> Any | None:
    return await tx.first(
        f"{_PAYMENT} WHERE p.tenant_id = ANY(%(tenants)s::bigint[]) AND p.id = %(id)s",
        {"tenants": sorted(tenant_ids), "id": payment_id},
    )


async def payments_page(tx: Transaction, member: Any, page: PageRequest) -> Page[Any]:
    """A member's payments in the order they were recorded."""
    rows = await tx.rows(
        f"{_PAYMENT} WHERE p.tenant_id = %(tenant)s AND p.member_id = %(member)s"
        f" AND {keyset('p.id')}",
        {"tenant": member.tenant_id, "member": member.id, **page.params},
    )
    return Page.of(rows, page)


async def latest_paid_months(tx: Transaction, keys: Sequence[tuple[int, int]]) -> dict[int, int]:
    """The latest paid month (ordinal) of each (tenant_id, member_id), one statement:
    one backward step on the key (tenant_id, member_id, month) per member, not a scan
    of the tenant's dues."""
    pairs = sorted(set(keys))
    rows = await tx.rows(
        "SELECT k.member_id, (SELECT d.month FROM dues_months d"
        "   WHERE d.tenant_id = k.tenant_id AND d.member_id = k.member_id"
        "   ORDER BY d.month DESC LIMIT 1) AS latest"
        " FROM unnest(%(tenants)s::bigint[], %(ids)s::bigint[]) AS k(tenant_id, member_id)",
        {"tenants": [t for t, _ in pairs], "ids": [m for _, m in pairs]},
    )
    return {row.member_id: row.latest for row in rows if row.latest is not None}


async def paid_months(tx: Transaction, member: Any, months: Sequence[int]) -> list[int]:
    """Which of `months` (ordinals) the member has paid already."""
    rows = await tx.rows(
        "SELECT month FROM dues_months WHERE tenant_id = %(tenant)s AND member_id = %(member)s"
        " AND month = ANY(%(months)s::int[]) ORDER BY month",
        {"tenant": member.tenant_id, "member": member.id, "months": list(months)},
    )
    return [row.month for row in rows]


_SCHEDULE_AT = """
SELECT DISTINCT ON (member_id) member_id, schedule FROM dues_arrangements
WHERE tenant_id = ANY(%(tenants)s::bigint[]) AND member_id = ANY(%(ids)s::bigint[])
  AND from_month <= %(month)s AND (to_month IS NULL OR to_month >= %(month)s)
ORDER BY member_id, from_month DESC, id DESC
"""


async def schedules_at(
    tx: Transaction, keys: Sequence[tuple[int, int]], month: int
) -> dict[int, DuesSchedule]:
    """The schedule in force in `month` of each (tenant_id, member_id) that has an
    arrangement covering it (monthly where none does), one statement."""
    rows = await tx.rows(
        _SCHEDULE_AT,
        {
            "tenants": sorted({t for t, _ in keys}),
            "ids": sorted({m for _, m in keys}),
            "month": month,
        },
    )
    return {row.member_id: DuesSchedule(row.schedule) for row in rows}


async def open_arrangement(tx: Transaction, member: Any) -> Any | None:
    """The member's open arrangement (no `to_month`), locked for the change."""
    return await tx.first(
        "SELECT tenant_id, id, schedule, from_month FROM dues_arrangements"
        " WHERE tenant_id = %(tenant)s AND member_id = %(member)s AND to_month IS NULL"
        " ORDER BY from_month DESC LIMIT 1 FOR UPDATE",
        {"tenant": member.tenant_id, "member": member.id},
    )


async def close_arrangement(tx: Transaction, arrangement: Any, *, to_month: int) -> None:
    await tx.execute(
        update(DuesArrangement)
        .where(
            DuesArrangement.tenant_id == arrangement.tenant_id,
            DuesArrangement.id == arrangement.id,
        )
        .values(to_month=to_month)
    )


async def insert_arrangement(tx: Transaction, **values: Any) -> Any:
    return await tx.one(
        insert(DuesArrangement)
        .values(**values)
        .returning(DuesArrangement.id, DuesArrangement.schedule, DuesArrangement.from_month)
    )


async def insert_payment(
    tx: Transaction,
    member: Any,
    *,
    paid_on: date,
    amount_fen: int,
    paid_by: str,
    is_back_payment: bool,
    note: str | None,
    recorded_by: str,
) -> int:
    return int(
        await tx.scalar(
            insert(DuesPayment)
            .values(
                tenant_id=member.tenant_id,
                member_id=member.id,
                paid_on=paid_on,
                amount_fen=amount_fen,
                paid_by=paid_by,
                is_back_payment=is_back_payment,
                note=note,
                recorded_by=recorded_by,
            )
            .returning(DuesPayment.id)
        )
    )


async def insert_months(
    tx: Transaction, member: Any, *, payment_id: int, months: Sequence[int], paid_by: str
) -> int:
    """Insert the months a payment covers; how many were new (a month paid meanwhile
    by a concurrent payment is left alone, and the count says so)."""
    rows = await tx.rows(
        insert(DuesMonth)
        .values(
            [
                {
                    "tenant_id": member.tenant_id,
                    "member_id": member.id,
                    "month": month,
                    "payment_id": payment_id,
                    "paid_by": paid_by,
                }
                for month in months
            ]
        )
        .on_conflict_do_nothing()
        .returning(DuesMonth.month)
    )
    return len(rows)
