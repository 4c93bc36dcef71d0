"""Use cases of the org tree: read, list, create, rename, archive.

Every operation authorizes through `authz.require` and every write appends one audit
event in the same transaction. Row-level security (the transaction's tenant scope)
hides other tenants' rows whatever this code does.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from service.audit.service import record
from service.auth.principal import Principal
from service.authz import authorizer, readable_paths, require
from service.authz.actions import Action
from service.db import Transaction
from service.errors import VERSION_CONFLICT, not_found
from service.pagination import Page, PageRequest
from service.tenants import repository, rules
from service.tenants.actions import OrgUnitAction
from service.tenants.errors import (
    CANNOT_ARCHIVE_ROOT,
    DUPLICATE_CODE,
    INVALID_CODE,
    INVALID_NAME,
    INVALID_PARENT_KIND,
    ORG_UNIT_ARCHIVED,
    ORG_UNIT_HAS_ACTIVE_CHILDREN,
)
from service.tenants.rules import KIND_LABELS, OrgUnitKind

WHAT = "组织"


async def get_org_unit(
    tx: Transaction,
    principal: Principal,
    unit_id: int,
    action: Action = OrgUnitAction.READ,
) -> Any:
    """The unit, if the principal may do `action` there; NOT_FOUND otherwise."""
    unit = await repository.get_unit(tx, unit_id)
    if unit is None:
        raise not_found(WHAT)
    require(principal, action, unit.path)
    return unit


async def load_org_units(
    tx: Transaction, principal: Principal, ids: Sequence[int]
) -> list[Any | None]:
    """Batch read for DataLoaders: one statement; unreadable units come back as None."""
    by_id = await repository.get_units(tx, ids)
    auth = authorizer()
    result: list[Any | None] = []
    for unit_id in ids:
        unit = by_id.get(unit_id)
        if unit is not None and not auth.allowed(principal, OrgUnitAction.READ, unit.path):
            unit = None
        result.append(unit)
    return result


async def list_children(
    tx: Transaction,
    principal: Principal,
    parent_id: int,
    page: PageRequest,
    *,
    include_archived: bool = False,
) -> Page[Any]:
    """Direct children of a unit (下级组织); reading the parent covers all of them.

    The parent and the page come in one statement; the page is dropped unread when the
    principal may not read the parent (RLS already kept it inside their tenants)."""
    found = await repository.children_page(tx, parent_id, page, include_archived=include_archived)
    if found is None:
        raise not_found(WHAT)
    parent_path, children = found
    require(principal, OrgUnitAction.READ, parent_path)
    return children


async def list_tenants(
    tx: Transaction,
    principal: Principal,
    page: PageRequest,
    *,
    kind: OrgUnitKind | None = None,
    name_contains: str | None = None,
    include_archived: bool = False,
) -> Page[Any]:
    """The tenants (乡镇、开发区、新区、县直部门) the principal may read."""
    readable = readable_paths(principal, OrgUnitAction.READ)
    if not readable:
        return Page.empty()
    return await repository.tenants_page(
        tx,
        readable,
        page,
        kind=kind,
        name_contains=name_contains,
        include_archived=include_archived,
    )


def _checked_name(name: str) -> str:
    cleaned = rules.clean_name(name)
    if cleaned is None:
        raise INVALID_NAME.error()
    return cleaned


def ensure_active(unit: Any, doing: str = "修改") -> None:
    """Refuse to act on an archived unit (归档的组织只读)."""
    if unit.archived_at is not None:
        raise ORG_UNIT_ARCHIVED.error(doing=doing)


async def create_org_unit(
    tx: Transaction,
    principal: Principal,
    *,
    parent_id: int,
    kind: OrgUnitKind,
    code: str,
    name: str,
) -> Any:
    """Create a unit under `parent_id`. A tenant kind under a county opens a new tenant."""
    parent = await get_org_unit(tx, principal, parent_id, OrgUnitAction.CREATE)
    ensure_active(parent)
    parent_kind = OrgUnitKind(parent.kind)
    if not rules.may_contain(parent_kind, kind):
        raise INVALID_PARENT_KIND.error(parent=KIND_LABELS[parent_kind], child=KIND_LABELS[kind])
    if not rules.valid_code(code):
        raise INVALID_CODE.error()
    clean = _checked_name(name)

    new_id = await repository.next_unit_id(tx)
    path = rules.child_path(parent.path, new_id)
    tenant_id = parent.tenant_id
    if rules.opens_tenant(kind):
        registered = await repository.insert_tenant(
            tx, tenant_id=new_id, parent_id=parent.tenant_id, kind=kind, code=code, path=path
        )
        if not registered:
            raise DUPLICATE_CODE.error(code=code)
        tenant_id = new_id
        tx.auth_changed("tenants")  # principals above it reach one tenant more
        # The principal's grant at the parent covers the new tenant: widen this
        # transaction's scope to it (lock 1 has just allowed this).
        tx.widen([new_id])
    unit = await repository.insert_unit(
        tx,
        tenant_id=tenant_id,
        id=new_id,
        parent_tenant_id=parent.tenant_id,
        parent_id=parent.id,
        kind=kind.value,
        code=code,
        name=clean,
        path=path,
    )
    if unit is None:
        raise DUPLICATE_CODE.error(code=code)
    await record(
        tx,
        principal,
        tenant_id=tenant_id,
        action="orgunit.create",
        object_type="OrgUnit",
        object_id=new_id,
        details={"kind": kind.value, "code": code, "name": clean, "parent_id": parent.id},
    )
    return unit


async def rename_org_unit(
    tx: Transaction,
    principal: Principal,
    *,
    unit_id: int,
    name: str,
    expected_version: int | None = None,
) -> Any:
    unit = await get_org_unit(tx, principal, unit_id, OrgUnitAction.UPDATE)
    ensure_active(unit)
    clean = _checked_name(name)
    version = unit.version if expected_version is None else expected_version
    if clean == unit.name:
        # Nothing changes: no write, no version bump, no event (a stale version still
        # answers as a conflict, as any write would).
        if version != unit.version:
            raise VERSION_CONFLICT.error(what=WHAT)
        return unit
    renamed = await repository.rename_unit(tx, unit, name=clean, expected_version=version)
    if renamed is None:
        raise VERSION_CONFLICT.error(what=WHAT)
    await record(
        tx,
        principal,
        tenant_id=unit.tenant_id,
        action="orgunit.rename",
        object_type="OrgUnit",
        object_id=unit.id,
        details={"old_name": unit.name, "new_name": clean},
    )
    return renamed


async def archive_org_unit(tx: Transaction, principal: Principal, *, unit_id: int) -> Any:
    """Archive instead of delete (归档): the unit and its history stay readable."""
    unit = await get_org_unit(tx, principal, unit_id, OrgUnitAction.ARCHIVE)
    ensure_active(unit)
    if unit.kind == OrgUnitKind.ROOT:
        raise CANNOT_ARCHIVE_ROOT.error()
    active_children = await repository.count_active_children(tx, unit.id)
    if active_children:
        raise ORG_UNIT_HAS_ACTIVE_CHILDREN.error(count=active_children)
    archived = await repository.archive_unit(tx, unit)
    if archived is None:
        raise ORG_UNIT_ARCHIVED.error(doing="修改")
    if unit.id == unit.tenant_id and rules.opens_tenant(OrgUnitKind(unit.kind)):
        await repository.archive_tenant(tx, unit.id)
    await record(
        tx,
        principal,
        tenant_id=unit.tenant_id,
        action="orgunit.archive",
        object_type="OrgUnit",
        object_id=unit.id,
        details={"name": unit.name},
    )
    return archived
