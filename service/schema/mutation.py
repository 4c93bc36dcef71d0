"""Mutations: one `input` object in, a payload with the changed object out."""

from __future__ import annotations

import strawberry
from strawberry.types import Info

from service.auth.service import create_account
from service.authz import service as roles
from service.authz.roles import Role as DomainRole
from service.schema.context import Context
from service.schema.ids import from_global_id
from service.schema.types import (
    Account,
    OrgUnit,
    OrgUnitKind,
    Role,
    RoleAssignment,
    account,
    org_unit,
    role_assignment,
)
from service.tenants import service as tenants
from service.tenants.rules import OrgUnitKind as DomainOrgUnitKind


@strawberry.input
class CreateOrgUnitInput:
    parent_id: strawberry.ID
    kind: OrgUnitKind  # type: ignore[valid-type]
    code: str
    name: str


@strawberry.input
class RenameOrgUnitInput:
    id: strawberry.ID
    name: str
    expected_version: int | None = None


@strawberry.input
class ArchiveOrgUnitInput:
    id: strawberry.ID


@strawberry.type
class OrgUnitPayload:
    org_unit: OrgUnit


@strawberry.input
class CreateAccountInput:
    username: str
    display_name: str
    password: str
    home_org_unit_id: strawberry.ID


@strawberry.type
class AccountPayload:
    account: Account


@strawberry.input
class AssignRoleInput:
    account_id: strawberry.ID
    role: Role  # type: ignore[valid-type]
    org_unit_id: strawberry.ID


@strawberry.input
class RevokeRoleInput:
    role_assignment_id: strawberry.ID


@strawberry.type
class RoleAssignmentPayload:
    role_assignment: RoleAssignment


@strawberry.type
class Mutation:
    @strawberry.mutation(description="新建组织：县下建租户（乡镇等），租户下建党总支、党支部")
    async def create_org_unit(
        self, info: Info[Context, None], input: CreateOrgUnitInput
    ) -> OrgUnitPayload:
        ctx = info.context
        _, parent_id = from_global_id(input.parent_id, "OrgUnit")
        row = await tenants.create_org_unit(
            ctx.session,
            ctx.principal,
            parent_id=parent_id,
            kind=DomainOrgUnitKind(input.kind.value),
            code=input.code,
            name=input.name,
        )
        return OrgUnitPayload(org_unit=org_unit(row))

    @strawberry.mutation(description="组织改名")
    async def rename_org_unit(
        self, info: Info[Context, None], input: RenameOrgUnitInput
    ) -> OrgUnitPayload:
        ctx = info.context
        _, unit_id = from_global_id(input.id, "OrgUnit")
        row = await tenants.rename_org_unit(
            ctx.session,
            ctx.principal,
            unit_id=unit_id,
            name=input.name,
            expected_version=input.expected_version,
        )
        return OrgUnitPayload(org_unit=org_unit(row))

    @strawberry.mutation(description="归档组织（不删除）")
    async def archive_org_unit(
        self, info: Info[Context, None], input: ArchiveOrgUnitInput
    ) -> OrgUnitPayload:
        ctx = info.context
        _, unit_id = from_global_id(input.id, "OrgUnit")
        row = await tenants.archive_org_unit(ctx.session, ctx.principal, unit_id=unit_id)
        return OrgUnitPayload(org_unit=org_unit(row))

    @strawberry.mutation(description="新建账号")
    async def create_account(
        self, info: Info[Context, None], input: CreateAccountInput
    ) -> AccountPayload:
        ctx = info.context
        _, home_id = from_global_id(input.home_org_unit_id, "OrgUnit")
        row = await create_account(
            ctx.session,
            ctx.principal,
            username=input.username,
            display_name=input.display_name,
            password=input.password,
            home_org_unit_id=home_id,
        )
        return AccountPayload(account=account(row))

    @strawberry.mutation(description="任命角色")
    async def assign_role(
        self, info: Info[Context, None], input: AssignRoleInput
    ) -> RoleAssignmentPayload:
        ctx = info.context
        _, account_id = from_global_id(input.account_id, "Account")
        _, unit_id = from_global_id(input.org_unit_id, "OrgUnit")
        row = await roles.assign_role(
            ctx.session,
            ctx.principal,
            account_id=account_id,
            role=DomainRole(input.role.value),
            org_unit_id=unit_id,
        )
        return RoleAssignmentPayload(role_assignment=role_assignment(row))

    @strawberry.mutation(description="撤销角色任命")
    async def revoke_role(
        self, info: Info[Context, None], input: RevokeRoleInput
    ) -> RoleAssignmentPayload:
        ctx = info.context
        _, assignment_id = from_global_id(input.role_assignment_id, "RoleAssignment")
        row = await roles.revoke_role(ctx.session, ctx.principal, assignment_id=assignment_id)
        return RoleAssignmentPayload(role_assignment=role_assignment(row))
