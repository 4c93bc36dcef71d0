"""GraphQL object types. Thin: fields map domain objects; relations go through loaders."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from enum import Enum
from typing import Any, Generic, TypeVar

import strawberry
from strawberry.types import Info

from service.auth.models import Account as AccountRow
from service.authz.models import RoleAssignment as RoleAssignmentRow
from service.authz.roles import Role as DomainRole
from service.authz.service import list_account_roles
from service.pagination import Page, encode_cursor
from service.schema.context import Context
from service.schema.ids import to_global_id
from service.tenants.models import OrgUnit as OrgUnitRow
from service.tenants.rules import OrgUnitKind as DomainOrgUnitKind

OrgUnitKind = strawberry.enum(
    Enum("OrgUnitKind", {k.name: k.value for k in DomainOrgUnitKind}),  # type: ignore[misc]
    description="组织类别：平台、县、乡镇、开发区、新区、县直部门、党总支、党支部",
)
Role = strawberry.enum(
    Enum("Role", {r.name: r.value for r in DomainRole if r is not DomainRole.PLATFORM_OPERATOR}),  # type: ignore[misc]
    description="角色",
)


@strawberry.interface(description="Relay node: anything with a global id")
class Node:
    id: strawberry.ID


@strawberry.type
class PageInfo:
    has_next_page: bool
    has_previous_page: bool
    start_cursor: str | None
    end_cursor: str | None


T = TypeVar("T")


@strawberry.type
class Edge(Generic[T]):
    cursor: str
    node: T


@strawberry.type
class Connection(Generic[T]):
    edges: list[Edge[T]]
    page_info: PageInfo

    @strawberry.field
    def nodes(self) -> list[T]:
        return [edge.node for edge in self.edges]


def connection(page: Page[Any], convert: Callable[[Any], Any]) -> Any:
    edges = [Edge(cursor=encode_cursor(item.id), node=convert(item)) for item in page.items]
    return Connection(
        edges=edges,
        page_info=PageInfo(
            has_next_page=page.has_next_page,
            has_previous_page=page.has_previous_page,
            start_cursor=edges[0].cursor if edges else None,
            end_cursor=edges[-1].cursor if edges else None,
        ),
    )


@strawberry.type(description="组织：县、乡镇/开发区/新区/县直部门、党总支、党支部")
class OrgUnit(Node):
    row: strawberry.Private[OrgUnitRow]

    @strawberry.field
    def id(self) -> strawberry.ID:  # type: ignore[override]
        return strawberry.ID(to_global_id("OrgUnit", self.row.id))

    @strawberry.field
    def kind(self) -> OrgUnitKind:  # type: ignore[valid-type]
        return OrgUnitKind(self.row.kind)

    @strawberry.field
    def code(self) -> str:
        return self.row.code

    @strawberry.field
    def name(self) -> str:
        return self.row.name

    @strawberry.field(description="已归档")
    def archived(self) -> bool:
        return self.row.archived_at is not None

    @strawberry.field
    def archived_at(self) -> datetime | None:
        return self.row.archived_at

    @strawberry.field
    def created_at(self) -> datetime:
        return self.row.created_at

    @strawberry.field(description="乐观锁版本号，改名时可传 expectedVersion")
    def version(self) -> int:
        return self.row.version

    @strawberry.field(description="上级组织；无权查看时为 null")
    async def parent(self, info: Info[Context, None]) -> OrgUnit | None:
        if self.row.parent_id is None:
            return None
        row = await info.context.org_unit_loader.load(self.row.parent_id)
        return OrgUnit(row=row) if row is not None else None

    @strawberry.field(description="所属租户（乡镇等）；无权查看时为 null")
    async def tenant(self, info: Info[Context, None]) -> OrgUnit | None:
        if self.row.tenant_id == self.row.id:
            return self
        row = await info.context.org_unit_loader.load(self.row.tenant_id)
        return OrgUnit(row=row) if row is not None else None


def org_unit(row: OrgUnitRow) -> OrgUnit:
    return OrgUnit(row=row)


@strawberry.type(description="角色任命：账号在某组织担任某角色")
class RoleAssignment(Node):
    row: strawberry.Private[RoleAssignmentRow]

    @strawberry.field
    def id(self) -> strawberry.ID:  # type: ignore[override]
        return strawberry.ID(to_global_id("RoleAssignment", self.row.id))

    @strawberry.field
    def role(self) -> Role:  # type: ignore[valid-type]
        return Role(self.row.role)

    @strawberry.field
    def account_id(self) -> strawberry.ID:
        return strawberry.ID(to_global_id("Account", self.row.account_id))

    @strawberry.field
    async def org_unit(self, info: Info[Context, None]) -> OrgUnit | None:
        row = await info.context.org_unit_loader.load(self.row.org_unit_id)
        return OrgUnit(row=row) if row is not None else None

    @strawberry.field
    def created_at(self) -> datetime:
        return self.row.created_at


def role_assignment(row: RoleAssignmentRow) -> RoleAssignment:
    return RoleAssignment(row=row)


@strawberry.type(description="账号")
class Account(Node):
    row: strawberry.Private[AccountRow]

    @strawberry.field
    def id(self) -> strawberry.ID:  # type: ignore[override]
        return strawberry.ID(to_global_id("Account", self.row.id))

    @strawberry.field
    def username(self) -> str:
        return self.row.username

    @strawberry.field
    def display_name(self) -> str:
        return self.row.display_name

    @strawberry.field
    def is_active(self) -> bool:
        return self.row.is_active

    @strawberry.field
    async def home_org_unit(self, info: Info[Context, None]) -> OrgUnit | None:
        row = await info.context.org_unit_loader.load(self.row.home_org_unit_id)
        return OrgUnit(row=row) if row is not None else None

    @strawberry.field(description="该账号的角色任命（仅含当前用户有权查看的组织）")
    async def role_assignments(
        self, info: Info[Context, None], first: int | None = None, after: str | None = None
    ) -> Connection[RoleAssignment]:
        ctx = info.context
        page = await list_account_roles(
            ctx.session, ctx.principal, self.row.id, ctx.page(first, after)
        )
        return connection(page, role_assignment)


def account(row: AccountRow) -> Account:
    return Account(row=row)
