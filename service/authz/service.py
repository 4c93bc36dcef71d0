"""Assigning and revoking roles (任免角色), with the rules that Casbin alone cannot say."""

from __future__ import annotations

from typing import Any

from service.audit.service import record
from service.auth.principal import Principal
from service.auth.service import get_account
from service.authz import repository
from service.authz.actions import RoleAction
from service.authz.enforcer import authorizer, readable_paths, require
from service.authz.errors import (
    ADMIN_ROLES_EXCLUSIVE,
    CANNOT_ASSIGN_SELF,
    CANNOT_REVOKE_SELF,
    NO_AUTHORITY_OVER_ROLE,
    ROLE_ALREADY_ASSIGNED,
    ROLE_NOT_ALLOWED_AT_UNIT,
    ROLE_NOT_ASSIGNABLE,
)
from service.authz.roles import (
    ADMIN_ROLES,
    ROLE_LABELS,
    Role,
    conflicting_duty,
    has_authority,
    may_hold_at,
)
from service.db import Transaction
from service.errors import not_found
from service.pagination import Page, PageRequest
from service.tenants.rules import KIND_LABELS, OrgUnitKind
from service.tenants.service import ensure_active, get_org_unit

WHAT = "角色任命"


def require_authority(
    principal: Principal, action: RoleAction, role: Role, target_path: str
) -> None:
    """Raise FORBIDDEN unless one of the principal's grants both may do `action` (Casbin)
    and ranks over `role` at `target_path` (roles.has_authority): strictly below the
    grant's unit, or at that unit for a role of lower rank. Checked per grant, so that
    one grant's reach and another's rank do not add up."""
    auth = authorizer()
    for grant in principal.grants:
        if str(action) in auth.actions_of(grant.role) and has_authority(
            grant.role, grant.org_path, role, target_path
        ):
            return
    raise NO_AUTHORITY_OVER_ROLE.error(role=ROLE_LABELS[role])


async def assign_role(
    tx: Transaction, principal: Principal, *, account_id: int, role: Role, org_unit_id: int
) -> Any:
    if role is Role.PLATFORM_OPERATOR:
        raise ROLE_NOT_ASSIGNABLE.error()
    unit = await get_org_unit(tx, principal, org_unit_id, RoleAction.ASSIGN)
    if role in ADMIN_ROLES:
        require(principal, RoleAction.ASSIGN_ADMIN, unit.path)
    require_authority(
        principal,
        RoleAction.ASSIGN_ADMIN if role in ADMIN_ROLES else RoleAction.ASSIGN,
        role,
        unit.path,
    )
    account = await get_account(tx, principal, account_id)
    if account.id == principal.account_id:
        raise CANNOT_ASSIGN_SELF.error()
    ensure_active(unit, "任命角色")
    kind = OrgUnitKind(unit.kind)
    if not may_hold_at(role, kind):
        raise ROLE_NOT_ALLOWED_AT_UNIT.error(role=ROLE_LABELS[role], kind=KIND_LABELS[kind])
    if conflicting_duty(role, await repository.duties_held(tx, account.id)) is not None:
        raise ADMIN_ROLES_EXCLUSIVE.error()
    try:
        assignment = await repository.insert_assignment(
            tx,
            tenant_id=unit.tenant_id,
            account_id=account.id,
            role=role.value,
            org_unit_id=unit.id,
            org_path=unit.path,
            created_by=principal.account_id,
        )
    except repository.DutyConflict:
        raise ADMIN_ROLES_EXCLUSIVE.error() from None
    if assignment is None:
        # A unique rule stopped it: the same grant again, or (two racing grants of
        # administrator roles) the one-admin-role index.
        if await repository.grant_exists(tx, account.id, role.value, unit):
            raise ROLE_ALREADY_ASSIGNED.error()
        raise ADMIN_ROLES_EXCLUSIVE.error()
    tx.auth_changed(f"account:{account.id}")
    await record(
        tx,
        principal,
        tenant_id=unit.tenant_id,
        action="role.assign",
        object_type="RoleAssignment",
        object_id=assignment.id,
        details={"account_id": account.id, "role": role.value, "org_unit_id": unit.id},
    )
    return assignment


async def get_role_assignment(
    tx: Transaction,
    principal: Principal,
    assignment_id: int,
    action: RoleAction = RoleAction.READ,
) -> Any:
    assignment = await repository.get_assignment(tx, assignment_id)
    if assignment is None:
        raise not_found(WHAT)
    if assignment.account_id != principal.account_id or action is not RoleAction.READ:
        require(principal, action, assignment.org_path, what=WHAT)
    return assignment


async def revoke_role(tx: Transaction, principal: Principal, *, assignment_id: int) -> Any:
    assignment = await get_role_assignment(tx, principal, assignment_id, RoleAction.REVOKE)
    role = Role(assignment.role)
    if role in ADMIN_ROLES:
        require(principal, RoleAction.ASSIGN_ADMIN, assignment.org_path, what=WHAT)
    require_authority(
        principal,
        RoleAction.ASSIGN_ADMIN if role in ADMIN_ROLES else RoleAction.REVOKE,
        role,
        assignment.org_path,
    )
    if assignment.account_id == principal.account_id:
        raise CANNOT_REVOKE_SELF.error()
    if not await repository.delete_assignment(tx, assignment):
        raise not_found(WHAT)
    tx.auth_changed(f"account:{assignment.account_id}")
    await record(
        tx,
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
    tx: Transaction, principal: Principal, account_id: int, page: PageRequest
) -> Page[Any]:
    """An account's grants: one's own always; others' where the principal may read roles.

    Grants at units the principal cannot read are left out by the path filter.
    """
    if account_id == principal.account_id:
        return await repository.account_roles_page(tx, account_id, page, None)
    await get_account(tx, principal, account_id)
    readable = readable_paths(principal, RoleAction.READ)
    if not readable:
        return Page.empty()
    return await repository.account_roles_page(tx, account_id, page, readable)
