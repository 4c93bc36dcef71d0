"""Statements of role assignments. No authorization, no audit here."""

from __future__ import annotations

from typing import Any

import psycopg
from sqlalchemy import delete
from sqlalchemy.dialects.postgresql import insert

from service.authz.enforcer import ReadablePaths
from service.authz.models import RoleAssignment
from service.db import Transaction
from service.pagination import Page, PageRequest, keyset

COLUMNS = "tenant_id, id, account_id, role, org_unit_id, org_path, created_at, created_by"
_ALL = RoleAssignment.__table__.columns


async def get_assignment(tx: Transaction, assignment_id: int) -> Any | None:
    return await tx.first(
        f"SELECT {COLUMNS} FROM role_assignments WHERE id = %(id)s", {"id": assignment_id}
    )


class DutyConflict(Exception):
    """The database refused a grant of another duty class than the account holds
    (三员分立, migration 0004): a racing grant passed the service's check first."""


async def duties_held(tx: Transaction, account_id: int) -> frozenset[str]:
    """The account's duty class (an admin role or `business`), from `account_duties`,
    which sees every tenant's grants (role_assignments shows only those in scope)."""
    rows = await tx.rows(
        "SELECT duty FROM account_duties WHERE account_id = %(account)s", {"account": account_id}
    )
    return frozenset(row.duty for row in rows)


async def grant_exists(tx: Transaction, account_id: int, role: str, unit: Any) -> bool:
    found = await tx.first(
        "SELECT 1 FROM role_assignments WHERE tenant_id = %(tenant)s AND account_id = %(account)s"
        " AND role = %(role)s AND org_unit_id = %(unit)s",
        {"tenant": unit.tenant_id, "account": account_id, "role": role, "unit": unit.id},
    )
    return found is not None


async def insert_assignment(tx: Transaction, **values: Any) -> Any | None:
    """The new assignment; None when a unique rule stopped it (a repeat, or a second
    administrator role: the service tells which). Raises DutyConflict when the duty
    trigger refused it (the transaction is then failed and will roll back)."""
    try:
        return await tx.first(
            insert(RoleAssignment).values(**values).on_conflict_do_nothing().returning(*_ALL)
        )
    except psycopg.errors.ExclusionViolation as exc:
        raise DutyConflict() from exc


async def delete_assignment(tx: Transaction, assignment: Any) -> bool:
    deleted = await tx.first(
        delete(RoleAssignment)
        .where(RoleAssignment.tenant_id == assignment.tenant_id, RoleAssignment.id == assignment.id)
        .returning(RoleAssignment.id)
    )
    return deleted is not None


async def account_roles_page(
    tx: Transaction, account_id: int, page: PageRequest, readable: ReadablePaths | None
) -> Page[Any]:
    """An account's grants; only those under `readable` unless it is None (one's own)."""
    conditions, params = ["account_id = %(account)s"], {"account": account_id}
    if readable is not None:
        within, extra = readable.sql("org_path")
        conditions.append(within)
        params |= extra
    rows = await tx.rows(
        f"SELECT {COLUMNS} FROM role_assignments WHERE {' AND '.join(conditions)} AND {keyset()}",
        params | page.params,
    )
    return Page.of(rows, page)
