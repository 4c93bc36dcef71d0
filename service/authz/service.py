"""Assigning and revoking roles (任免角色), with the rules that Casbin alone cannot say."""

from __future__ import annotations

from sqlalchemy import delete, insert, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from service.audit.service import record
from service.auth.principal import Principal
from service.auth.service import get_account
from service.authz.enforcer import readable_paths, require
from service.authz.models import RoleAssignment
from service.authz.roles import ADMIN_ROLES, ROLE_LABELS, Role, conflicting_admin_role, may_hold_at
from service.errors import DomainError, invalid
from service.pagination import Page, PageRequest, fetch_page
from service.tenants.rules import KIND_LABELS, OrgUnitKind
from service.tenants.service import get_org_unit


def _not_found() -> DomainError:
    return DomainError("NOT_FOUND", "角色任命不存在或无权访问", http_status=404)


async def assign_role(
    session: AsyncSession, principal: Principal, *, account_id: int, role: Role, org_unit_id: int
) -> RoleAssignment:
    if role is Role.PLATFORM_OPERATOR:
        raise invalid("ROLE_NOT_ASSIGNABLE", "该角色不能分配给账号")
    unit = await get_org_unit(session, principal, org_unit_id, "role:assign")
    if role in ADMIN_ROLES:
        require(principal, "role:assign_admin", unit.path)
    account = await get_account(session, principal, account_id)
    if account.id == principal.account_id:
        raise invalid("CANNOT_ASSIGN_SELF", "不能给自己分配角色")
    if unit.archived_at is not None:
        raise invalid("ORG_UNIT_ARCHIVED", "该组织已归档，不能再任命角色")
    kind = OrgUnitKind(unit.kind)
    if not may_hold_at(role, kind):
        raise invalid(
            "ROLE_NOT_ALLOWED_AT_UNIT", f"{ROLE_LABELS[role]}不能在{KIND_LABELS[kind]}任职"
        )
    held = frozenset(
        (
            await session.scalars(
                select(RoleAssignment.role).where(RoleAssignment.account_id == account.id)
            )
        ).all()
    )
    clash = conflicting_admin_role(role, held)
    separation = invalid(
        "ADMIN_ROLES_EXCLUSIVE",
        "系统管理员、安全管理员、审计管理员三员分立，一个账号只能担任其中一个角色",
    )
    if clash is not None:
        raise separation
    try:
        async with session.begin_nested():
            assignment_id = await session.scalar(
                insert(RoleAssignment)
                .values(
                    tenant_id=unit.tenant_id,
                    account_id=account.id,
                    role=role.value,
                    org_unit_id=unit.id,
                    org_path=unit.path,
                    created_by=principal.account_id,
                )
                .returning(RoleAssignment.id)
            )
    except IntegrityError as exc:
        # Two racing grants of admin roles meet the unique index; a repeat meets the key.
        if "one_admin_role" in str(exc.orig):
            raise separation from exc
        raise invalid("ROLE_ALREADY_ASSIGNED", "该账号已在该组织担任此角色") from exc
    await record(
        session,
        principal,
        tenant_id=unit.tenant_id,
        action="role.assign",
        object_type="RoleAssignment",
        object_id=int(assignment_id),
        details={"account_id": account.id, "role": role.value, "org_unit_id": unit.id},
    )
    assignment = await session.scalar(
        select(RoleAssignment).where(
            RoleAssignment.tenant_id == unit.tenant_id, RoleAssignment.id == assignment_id
        )
    )
    assert assignment is not None
    return assignment


async def get_role_assignment(
    session: AsyncSession, principal: Principal, assignment_id: int, action: str = "role:read"
) -> RoleAssignment:
    assignment = await session.scalar(
        select(RoleAssignment).where(RoleAssignment.id == assignment_id)
    )
    if assignment is None:
        raise _not_found()
    if assignment.account_id != principal.account_id or action != "role:read":
        require(principal, action, assignment.org_path, what="角色任命")
    return assignment


async def revoke_role(
    session: AsyncSession, principal: Principal, *, assignment_id: int
) -> RoleAssignment:
    assignment = await get_role_assignment(session, principal, assignment_id, "role:revoke")
    if assignment.role in ADMIN_ROLES:
        require(principal, "role:assign_admin", assignment.org_path, what="角色任命")
    if assignment.account_id == principal.account_id:
        raise invalid("CANNOT_REVOKE_SELF", "不能撤销自己的角色")
    deleted = (
        await session.execute(
            delete(RoleAssignment)
            .where(
                RoleAssignment.tenant_id == assignment.tenant_id,
                RoleAssignment.id == assignment.id,
            )
            .returning(RoleAssignment.id)
        )
    ).first()
    if deleted is None:
        raise _not_found()
    await record(
        session,
        principal,
        tenant_id=assignment.tenant_id,
        action="role.revoke",
        object_type="RoleAssignment",
        object_id=assignment.id,
        details={
            "account_id": assignment.account_id,
            "role": assignment.role,
            "org_unit_id": assignment.org_unit_id,
        },
    )
    return assignment


async def list_account_roles(
    session: AsyncSession, principal: Principal, account_id: int, page: PageRequest
) -> Page[RoleAssignment]:
    """An account's grants: one's own always; others' where the principal may read roles.

    Grants at units the principal cannot read are left out by the path filter.
    """
    stmt = select(RoleAssignment).where(RoleAssignment.account_id == account_id)
    if account_id != principal.account_id:
        await get_account(session, principal, account_id)
        prefixes = readable_paths(principal, "role:read")
        if not prefixes:
            return Page(items=[], has_next_page=False, has_previous_page=False)
        stmt = stmt.where(or_(*[RoleAssignment.org_path.startswith(p) for p in prefixes]))
    return await fetch_page(session, stmt, RoleAssignment.id, page)
