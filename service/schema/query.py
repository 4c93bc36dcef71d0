"""Root query fields: each a single call into a domain service."""

from __future__ import annotations

import strawberry
from strawberry.types import Info

from service.auth.service import get_account
from service.authz.service import get_role_assignment
from service.errors import not_found
from service.schema.context import Context
from service.schema.ids import from_global_id
from service.schema.types import (
    Account,
    Connection,
    Node,
    OrgUnit,
    OrgUnitKind,
    RoleAssignment,
    account,
    connection,
    org_unit,
)
from service.tenants import service as tenants
from service.tenants.rules import OrgUnitKind as DomainOrgUnitKind


@strawberry.type
class Query:
    @strawberry.field(description="当前登录的账号")
    async def me(self, info: Info[Context, None]) -> Account:
        ctx = info.context
        assert ctx.principal.account_id is not None
        return account(await get_account(ctx.session, ctx.principal, ctx.principal.account_id))

    @strawberry.field(description="按全局 id 取任意对象")
    async def node(self, info: Info[Context, None], id: strawberry.ID) -> Node:
        ctx = info.context
        type_name, local_id = from_global_id(id)
        if type_name == "OrgUnit":
            return org_unit(await tenants.get_org_unit(ctx.session, ctx.principal, local_id))
        if type_name == "Account":
            return account(await get_account(ctx.session, ctx.principal, local_id))
        if type_name == "RoleAssignment":
            return RoleAssignment(
                row=await get_role_assignment(ctx.session, ctx.principal, local_id)
            )
        raise not_found()

    @strawberry.field(description="按 id 取组织")
    async def org_unit(self, info: Info[Context, None], id: strawberry.ID) -> OrgUnit:
        ctx = info.context
        _, local_id = from_global_id(id, "OrgUnit")
        return org_unit(await tenants.get_org_unit(ctx.session, ctx.principal, local_id))

    @strawberry.field(description="当前用户可见的租户（乡镇、开发区、新区、县直部门）")
    async def tenants(
        self,
        info: Info[Context, None],
        first: int | None = None,
        after: str | None = None,
        kind: OrgUnitKind | None = None,  # type: ignore[valid-type]
        name_contains: str | None = None,
        include_archived: bool = False,
    ) -> Connection[OrgUnit]:
        ctx = info.context
        page = await tenants.list_tenants(
            ctx.session,
            ctx.principal,
            ctx.page(first, after),
            kind=DomainOrgUnitKind(kind.value) if kind is not None else None,
            name_contains=name_contains,
            include_archived=include_archived,
        )
        return connection(page, org_unit)

    @strawberry.field(description="某组织的直接下级组织")
    async def children(
        self,
        info: Info[Context, None],
        parent_id: strawberry.ID,
        first: int | None = None,
        after: str | None = None,
        include_archived: bool = False,
    ) -> Connection[OrgUnit]:
        ctx = info.context
        _, local_id = from_global_id(parent_id, "OrgUnit")
        page = await tenants.list_children(
            ctx.session,
            ctx.principal,
            local_id,
            ctx.page(first, after),
            include_archived=include_archived,
        )
        return connection(page, org_unit)
