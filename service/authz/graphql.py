"""GraphQL of role assignments: the `RoleAssignment` type and `assignRole`/`revokeRole`."""

from __future__ import annotations

from datetime import datetime
from enum import Enum
from typing import Any

import strawberry
from strawberry.types import Info

from service.authz import service
from service.authz.roles import Role as DomainRole
from service.schema.context import Context
from service.schema.ids import from_global_id, to_global_id
from service.schema.relay import Node, register_node
from service.tenants.graphql import OrgUnit, load_org_units

Role = strawberry.enum(
    Enum("Role", {r.name: r.value for r in DomainRole if r is not DomainRole.PLATFORM_OPERATOR}),  # type: ignore[misc]
    description="角色",
)
_ROLES = {r.value: Role(r.value) for r in DomainRole if r is not DomainRole.PLATFORM_OPERATOR}


@strawberry.type(description="角色任命：账号在某组织担任某角色")
class RoleAssignment(Node):
    id: strawberry.ID
    role: Role  # type: ignore[valid-type]
    account_id: strawberry.ID
    row: strawberry.Private[Any]

    @classmethod
    def of(cls, row: Any) -> RoleAssignment:
        return cls(
            id=strawberry.ID(to_global_id("RoleAssignment", row.id)),
            role=_ROLES[row.role],
            account_id=strawberry.ID(to_global_id("Account", row.account_id)),
            row=row,
        )

    @strawberry.field
    async def org_unit(self, info: Info[Context, None]) -> OrgUnit | None:
        row = await info.context.loader(load_org_units).load(self.row.org_unit_id)
        return OrgUnit.of(row) if row is not None else None

    @strawberry.field
    def created_at(self) -> datetime:
        return self.row.created_at  # type: ignore[no-any-return]


async def role_assignment_by_id(context: Context, assignment_id: int) -> RoleAssignment:
    row = await service.get_role_assignment(context.tx, context.principal, assignment_id)
    return RoleAssignment.of(row)


register_node("RoleAssignment", role_assignment_by_id)


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
class AuthzMutation:
    @strawberry.mutation(description="任命角色")
    async def assign_role(
        self, info: Info[Context, None], input: AssignRoleInput
    ) -> RoleAssignmentPayload:
        ctx = info.context
        _, account_id = from_global_id(input.account_id, "Account")
        _, unit_id = from_global_id(input.org_unit_id, "OrgUnit")
        row = await service.assign_role(
            ctx.tx,
            ctx.principal,
            account_id=account_id,
            role=DomainRole(input.role.value),
            org_unit_id=unit_id,
        )
        return RoleAssignmentPayload(role_assignment=RoleAssignment.of(row))

    @strawberry.mutation(description="撤销角色任命")
    async def revoke_role(
        self, info: Info[Context, None], input: RevokeRoleInput
    ) -> RoleAssignmentPayload:
        ctx = info.context
        _, assignment_id = from_global_id(input.role_assignment_id, "RoleAssignment")
        row = await service.revoke_role(ctx.tx, ctx.principal, assignment_id=assignment_id)
        return RoleAssignmentPayload(role_assignment=RoleAssignment.of(row))
