"""Statements of the org tree. No authorization and no audit here: the service decides.

Reads are plain SQL returning named tuples with the columns of `org_units` (the lean
read path); writes are SQLAlchemy Core statements over the table models. Row-level
security confines every statement to the transaction's tenants whatever it says.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import func, update
from sqlalchemy.dialects.postgresql import insert

from service.authz import ReadablePaths
from service.db import Transaction
from service.pagination import Page, PageRequest, keyset
from service.tenants.models import OrgUnit, Tenant
from service.tenants.rules import TENANT_KINDS, OrgUnitKind

# Every column of org_units, as the model declares them: a unit row reads the same
# whether a plain read or a RETURNING produced it.
FIELDS = tuple(column.name for column in OrgUnit.__table__.columns)
COLUMNS = ", ".join(FIELDS)
_C_COLUMNS = ", ".join(f"c.{name}" for name in FIELDS)
_TENANT_KINDS = tuple(sorted(k.value for k in TENANT_KINDS))


async def get_unit(tx: Transaction, unit_id: int) -> Any | None:
    return await tx.first(f"SELECT {COLUMNS} FROM org_units WHERE id = %(id)s", {"id": unit_id})


async def get_units(tx: Transaction, ids: Sequence[int]) -> dict[int, Any]:
    """Units by id, one statement (DataLoaders)."""
    rows = await tx.rows(
        f"SELECT {COLUMNS} FROM org_units WHERE id = ANY(%(ids)s::bigint[])",
        {"ids": sorted(set(ids))},
    )
    return {row.id: row for row in rows}


async def children_page(
    tx: Transaction, parent_id: int, page: PageRequest, *, include_archived: bool
) -> tuple[str, Page[Any]] | None:
    """The parent's path and a page of its direct children, in one statement; None
    when the parent is not visible. Each child row also carries `parent_path`."""
    rows = await tx.rows(
        f"""
        SELECT p.path AS parent_path, {_C_COLUMNS}
        FROM org_units p LEFT JOIN LATERAL (
          SELECT {COLUMNS} FROM org_units
          WHERE parent_id = p.id AND parent_tenant_id = p.tenant_id
            AND (%(archived)s OR archived_at IS NULL)
            AND {keyset()}
        ) c ON true
        WHERE p.id = %(parent)s
        """,
        {"parent": parent_id, "archived": include_archived, **page.params},
    )
    if not rows:
        return None
    children = [row for row in rows if row.id is not None]
    return rows[0].parent_path, Page.of(children, page)


async def tenants_page(
    tx: Transaction,
    readable: ReadablePaths,
    page: PageRequest,
    *,
    kind: OrgUnitKind | None,
    name_contains: str | None,
    include_archived: bool,
) -> Page[Any]:
    """Tenant top units (乡镇、开发区、新区、县直部门) under the readable paths."""
    within, params = readable.sql("path")
    conditions = ["id = tenant_id", "kind = ANY(%(kinds)s)", within]
    params |= {"kinds": [kind.value] if kind is not None else list(_TENANT_KINDS)}
    if name_contains:
        conditions.append("strpos(name, %(name)s) > 0")
        params["name"] = name_contains
    if not include_archived:
        conditions.append("archived_at IS NULL")
    rows = await tx.rows(
        f"SELECT {COLUMNS} FROM org_units WHERE {' AND '.join(conditions)} AND {keyset()}",
        params | page.params,
    )
    return Page.of(rows, page)


async def count_active_children(tx: Transaction, unit_id: int) -> int:
    return int(
        await tx.scalar(
            "SELECT count(*) FROM org_units WHERE parent_id = %(id)s AND archived_at IS NULL",
            {"id": unit_id},
        )
    )


async def next_unit_id(tx: Transaction) -> int:
    return int(await tx.scalar("SELECT nextval('org_unit_id_seq')"))


async def insert_tenant(
    tx: Transaction, *, tenant_id: int, parent_id: int, kind: OrgUnitKind, code: str, path: str
) -> bool:
    """Register a tenant scope; False when the code is taken under that parent."""
    inserted = await tx.first(
        insert(Tenant)
        .values(id=tenant_id, parent_id=parent_id, kind=kind.value, code=code, path=path)
        .on_conflict_do_nothing()
        .returning(Tenant.id)
    )
    return inserted is not None


async def insert_unit(tx: Transaction, **values: Any) -> Any | None:
    """Insert a unit; None when its code is taken in the tenant."""
    return await tx.first(
        insert(OrgUnit)
        .values(**values)
        .on_conflict_do_nothing()
        .returning(*OrgUnit.__table__.columns)
    )


async def rename_unit(
    tx: Transaction, unit: Any, *, name: str, expected_version: int
) -> Any | None:
    """The renamed unit; None when its version is no longer `expected_version`."""
    return await tx.first(
        update(OrgUnit)
        .where(
            OrgUnit.tenant_id == unit.tenant_id,
            OrgUnit.id == unit.id,
            OrgUnit.version == expected_version,
        )
        .values(name=name, version=OrgUnit.version + 1, updated_at=func.now())
        .returning(*OrgUnit.__table__.columns)
    )


async def archive_unit(tx: Transaction, unit: Any) -> Any | None:
    """The archived unit; None when it was archived already."""
    return await tx.first(
        update(OrgUnit)
        .where(
            OrgUnit.tenant_id == unit.tenant_id,
            OrgUnit.id == unit.id,
            OrgUnit.archived_at.is_(None),
        )
        .values(archived_at=func.now(), version=OrgUnit.version + 1, updated_at=func.now())
        .returning(*OrgUnit.__table__.columns)
    )


async def archive_tenant(tx: Transaction, tenant_id: int) -> None:
    await tx.execute(update(Tenant).where(Tenant.id == tenant_id).values(archived_at=func.now()))


async def root_unit(tx: Transaction) -> Any:
    return await tx.one(f"SELECT {COLUMNS} FROM org_units WHERE kind = 'root'")


async def county_by_code(tx: Transaction, code: str) -> Any | None:
    return await tx.first(
        f"SELECT {COLUMNS} FROM org_units WHERE kind = 'county' AND code = %(code)s",
        {"code": code},
    )
