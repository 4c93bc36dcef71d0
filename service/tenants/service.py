"""Operations on the org tree: read, list, create, rename, archive.

Every operation authorizes through `authz.require` and every write appends one audit
event in the same transaction. Row-level security (the transaction's tenant scope)
hides other tenants' rows whatever this code does.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import func, insert, or_, select, text, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from service.audit.service import record
from service.auth.principal import Principal
from service.authz import authorizer, readable_paths, require
from service.db import set_scope
from service.errors import invalid, not_found
from service.pagination import Page, PageRequest, fetch_page
from service.tenants import rules
from service.tenants.models import OrgUnit, Tenant
from service.tenants.rules import KIND_LABELS, TENANT_KINDS, OrgUnitKind


async def _visible_unit(session: AsyncSession, unit_id: int) -> OrgUnit:
    unit = await session.scalar(select(OrgUnit).where(OrgUnit.id == unit_id))
    if unit is None:
        raise not_found("组织")
    return unit


async def get_org_unit(
    session: AsyncSession, principal: Principal, unit_id: int, action: str = "orgunit:read"
) -> OrgUnit:
    """The unit, if the principal may do `action` there; NOT_FOUND otherwise."""
    unit = await _visible_unit(session, unit_id)
    require(principal, action, unit.path)
    return unit


async def load_org_units(
    session: AsyncSession, principal: Principal, ids: Sequence[int]
) -> list[OrgUnit | None]:
    """Batch read for DataLoaders: one query, unreadable units come back as None."""
    rows = await session.scalars(select(OrgUnit).where(OrgUnit.id.in_(set(ids))))
    by_id = {u.id: u for u in rows}
    result: list[OrgUnit | None] = []
    for unit_id in ids:
        unit = by_id.get(unit_id)
        if unit is not None:
            if not authorizer().allowed(principal, "orgunit:read", unit.path):
                unit = None
        result.append(unit)
    return result


async def list_children(
    session: AsyncSession,
    principal: Principal,
    parent_id: int,
    page: PageRequest,
    *,
    include_archived: bool = False,
) -> Page[OrgUnit]:
    """Direct children of a unit (下级组织); reading the parent covers all of them."""
    parent = await get_org_unit(session, principal, parent_id)
    stmt = select(OrgUnit).where(OrgUnit.parent_id == parent.id)
    if not include_archived:
        stmt = stmt.where(OrgUnit.archived_at.is_(None))
    return await fetch_page(session, stmt, OrgUnit.id, page)


async def list_tenants(
    session: AsyncSession,
    principal: Principal,
    page: PageRequest,
    *,
    kind: OrgUnitKind | None = None,
    name_contains: str | None = None,
    include_archived: bool = False,
) -> Page[OrgUnit]:
    """The tenants (乡镇、开发区、新区、县直部门) the principal may read."""
    prefixes = readable_paths(principal, "orgunit:read")
    if not prefixes:
        return Page(items=[], has_next_page=False, has_previous_page=False)
    stmt = select(OrgUnit).where(
        OrgUnit.id == OrgUnit.tenant_id,
        OrgUnit.kind.in_([k.value for k in TENANT_KINDS]),
        or_(*[OrgUnit.path.startswith(p, autoescape=True) for p in prefixes]),
    )
    if kind is not None:
        stmt = stmt.where(OrgUnit.kind == kind.value)
    if name_contains:
        stmt = stmt.where(OrgUnit.name.contains(name_contains, autoescape=True))
    if not include_archived:
        stmt = stmt.where(OrgUnit.archived_at.is_(None))
    return await fetch_page(session, stmt, OrgUnit.id, page)


def _checked_name(name: str) -> str:
    cleaned = rules.clean_name(name)
    if cleaned is None:
        raise invalid("INVALID_NAME", "名称不能为空，且不超过 100 个字")
    return cleaned


def _ensure_active(unit: OrgUnit) -> None:
    if unit.archived_at is not None:
        raise invalid("ORG_UNIT_ARCHIVED", "该组织已归档，不能再修改")


async def create_org_unit(
    session: AsyncSession,
    principal: Principal,
    *,
    parent_id: int,
    kind: OrgUnitKind,
    code: str,
    name: str,
) -> OrgUnit:
    """Create a unit under `parent_id`. A tenant kind under a county opens a new tenant."""
    parent = await get_org_unit(session, principal, parent_id, "orgunit:create")
    _ensure_active(parent)
    parent_kind = OrgUnitKind(parent.kind)
    if not rules.may_contain(parent_kind, kind):
        raise invalid(
            "INVALID_PARENT_KIND",
            f"{KIND_LABELS[parent_kind]}下不能设立{KIND_LABELS[kind]}",
        )
    if not rules.valid_code(code):
        raise invalid("INVALID_CODE", "编码只能由字母、数字、下划线或连字符组成，长度 1–32")
    clean = _checked_name(name)

    new_id = int(await session.scalar(text("SELECT nextval('org_unit_id_seq')")))
    path = rules.child_path(parent.path, new_id)
    tenant_id = parent.tenant_id
    duplicate = invalid("DUPLICATE_CODE", f"编码“{code}”已被使用")
    try:
        async with session.begin_nested():
            if rules.opens_tenant(kind):
                await session.execute(
                    insert(Tenant).values(
                        id=new_id, parent_id=parent.tenant_id, kind=kind.value, code=code, path=path
                    )
                )
                tenant_id = new_id
                # The principal's grant at the parent covers the new tenant: widen the
                # transaction's scope to it (lock 1 has just allowed this).
                principal.tenant_ids.add(new_id)
                await set_scope(
                    session, account_id=principal.account_id, tenant_ids=principal.tenant_ids
                )
            await session.execute(
                insert(OrgUnit).values(
                    tenant_id=tenant_id,
                    id=new_id,
                    parent_tenant_id=parent.tenant_id,
                    parent_id=parent.id,
                    kind=kind.value,
                    code=code,
                    name=clean,
                    path=path,
                )
            )
    except IntegrityError as exc:
        raise duplicate from exc
    await record(
        session,
        principal,
        tenant_id=tenant_id,
        action="orgunit.create",
        object_type="OrgUnit",
        object_id=new_id,
        details={"kind": kind.value, "code": code, "name": clean, "parent_id": parent.id},
    )
    return await _visible_unit(session, new_id)


async def rename_org_unit(
    session: AsyncSession,
    principal: Principal,
    *,
    unit_id: int,
    name: str,
    expected_version: int | None = None,
) -> OrgUnit:
    unit = await get_org_unit(session, principal, unit_id, "orgunit:update")
    _ensure_active(unit)
    clean = _checked_name(name)
    version = unit.version if expected_version is None else expected_version
    updated = await session.execute(
        update(OrgUnit)
        .where(
            OrgUnit.tenant_id == unit.tenant_id,
            OrgUnit.id == unit.id,
            OrgUnit.version == version,
        )
        .values(name=clean, version=OrgUnit.version + 1, updated_at=func.now())
        .returning(OrgUnit.id)
    )
    if updated.first() is None:
        raise invalid("VERSION_CONFLICT", "该组织已被他人修改，请刷新后重试")
    await record(
        session,
        principal,
        tenant_id=unit.tenant_id,
        action="orgunit.rename",
        object_type="OrgUnit",
        object_id=unit.id,
        details={"old_name": unit.name, "new_name": clean},
    )
    await session.refresh(unit)
    return unit


async def archive_org_unit(session: AsyncSession, principal: Principal, *, unit_id: int) -> OrgUnit:
    """Archive instead of delete (归档): the unit and its history stay readable."""
    unit = await get_org_unit(session, principal, unit_id, "orgunit:archive")
    _ensure_active(unit)
    if unit.kind == OrgUnitKind.ROOT:
        raise invalid("CANNOT_ARCHIVE_ROOT", "平台根节点不能归档")
    active_children = await session.scalar(
        select(func.count())
        .select_from(OrgUnit)
        .where(OrgUnit.parent_id == unit.id, OrgUnit.archived_at.is_(None))
    )
    if active_children:
        raise invalid(
            "ORG_UNIT_HAS_ACTIVE_CHILDREN", f"该组织还有 {active_children} 个未归档的下级组织"
        )
    updated = await session.execute(
        update(OrgUnit)
        .where(
            OrgUnit.tenant_id == unit.tenant_id,
            OrgUnit.id == unit.id,
            OrgUnit.archived_at.is_(None),
        )
        .values(archived_at=func.now(), version=OrgUnit.version + 1, updated_at=func.now())
        .returning(OrgUnit.id)
    )
    if updated.first() is None:
        raise invalid("ORG_UNIT_ARCHIVED", "该组织已归档，不能再修改")
    if unit.id == unit.tenant_id and rules.opens_tenant(OrgUnitKind(unit.kind)):
        await session.execute(
            update(Tenant).where(Tenant.id == unit.id).values(archived_at=func.now())
        )
    await record(
        session,
        principal,
        tenant_id=unit.tenant_id,
        action="orgunit.archive",
        object_type="OrgUnit",
        object_id=unit.id,
        details={"name": unit.name},
    )
    await session.refresh(unit)
    return unit
