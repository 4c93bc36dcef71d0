"""GraphQL of the org tree: the `OrgUnit` type, its loader, and its root fields.

Types are built from rows in one place (`OrgUnit.of`), with their scalar fields filled
in at once: a plain attribute resolves far cheaper in strawberry than a resolver
method, and a list of twenty units asks for a few fields of each. Only relations
(`parent`, `tenant`) are resolvers, through the request's DataLoader.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from enum import Enum
from typing import Any

import strawberry
from strawberry.types import Info

from service.schema.context import Context
from service.schema.ids import from_global_id, to_global_id
from service.schema.relay import Connection, Node, connection, register_node
from service.tenants import service
from service.tenants.rules import OrgUnitKind as DomainOrgUnitKind

OrgUnitKind = strawberry.enum(
    Enum("OrgUnitKind", {k.name: k.value for k in DomainOrgUnitKind}),  # type: ignore[misc]
    description="组织类别：平台、县、乡镇、开发区、新区、县直部门、党总支、党支部",
)
_KINDS = {k.value: OrgUnitKind(k.value) for k in DomainOrgUnitKind}


def domain_kind(kind: Any) -> DomainOrgUnitKind:
    return DomainOrgUnitKind(kind.value)


async def load_org_units(context: Context, ids: Sequence[int]) -> list[Any | None]:
    return await service.load_org_units(context.tx, context.principal, ids)


async def _unit_or_none(info: Info[Context, None], unit_id: int) -> OrgUnit | None:
    row = await info.context.loader(load_org_units).load(unit_id)
    return OrgUnit.of(row) if row is not None else None


@strawberry.type(description="组织：县、乡镇/开发区/新区/县直部门、党总支、党支部")
class OrgUnit(Node):
    id: strawberry.ID
    kind: OrgUnitKind  # type: ignore[valid-type]
    code: str
    name: str
    archived: bool = strawberry.field(description="已归档")
    archived_at: datetime | None
    created_at: datetime
    version: int = strawberry.field(description="乐观锁版本号，改名时可传 expectedVersion")
    row: strawberry.Private[Any]

    @classmethod
    def of(cls, row: Any) -> OrgUnit:
        return cls(
            id=strawberry.ID(to_global_id("OrgUnit", row.id)),
            kind=_KINDS[row.kind],
            code=row.code,
            name=row.name,
            archived=row.archived_at is not None,
            archived_at=row.archived_at,
            created_at=row.created_at,
            version=row.version,
            row=row,
        )

    @strawberry.field(description="上级组织；无权查看时为 null")
    async def parent(self, info: Info[Context, None]) -> OrgUnit | None:
        if self.row.parent_id is None:
            return None
        return await _unit_or_none(info, self.row.parent_id)

    @strawberry.field(description="所属租户（乡镇等）；无权查看时为 null")
    async def tenant(self, info: Info[Context, None]) -> OrgUnit | None:
        if self.row.tenant_id == self.row.id:
            return self
        return await _unit_or_none(info, self.row.tenant_id)


async def org_unit_by_id(context: Context, unit_id: int) -> OrgUnit:
    return OrgUnit.of(await service.get_org_unit(context.tx, context.principal, unit_id))


register_node("OrgUnit", org_unit_by_id)


@strawberry.type
class TenantsQuery:
    @strawberry.field(description="按 id 取组织")
    async def org_unit(self, info: Info[Context, None], id: strawberry.ID) -> OrgUnit:
        _, local_id = from_global_id(id, "OrgUnit")
        return await org_unit_by_id(info.context, local_id)

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
        page = await service.list_tenants(
            ctx.tx,
            ctx.principal,
            ctx.page(first, after),
            kind=domain_kind(kind) if kind is not None else None,
            name_contains=name_contains,
            include_archived=include_archived,
        )
        return connection(page, OrgUnit.of)  # type: ignore[no-any-return]

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
        page = await service.list_children(
            ctx.tx,
            ctx.principal,
            local_id,
            ctx.page(first, after),
            include_archived=include_archived,
        )
        return connection(page, OrgUnit.of)  # type: ignore[no-any-return]


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


@strawberry.type
class TenantsMutation:
    @strawberry.mutation(description="新建组织：县下建租户（乡镇等），租户下建党总支、党支部")
    async def create_org_unit(
        self, info: Info[Context, None], input: CreateOrgUnitInput
    ) -> OrgUnitPayload:
        ctx = info.context
        _, parent_id = from_global_id(input.parent_id, "OrgUnit")
        row = await service.create_org_unit(
            ctx.tx,
            ctx.principal,
            parent_id=parent_id,
            kind=domain_kind(input.kind),
            code=input.code,
            name=input.name,
        )
        return OrgUnitPayload(org_unit=OrgUnit.of(row))

    @strawberry.mutation(description="组织改名")
    async def rename_org_unit(
        self, info: Info[Context, None], input: RenameOrgUnitInput
    ) -> OrgUnitPayload:
        ctx = info.context
        _, unit_id = from_global_id(input.id, "OrgUnit")
        row = await service.rename_org_unit(
            ctx.tx,
            ctx.principal,
            unit_id=unit_id,
            name=input.name,
            expected_version=input.expected_version,
        )
        return OrgUnitPayload(org_unit=OrgUnit.of(row))

    @strawberry.mutation(description="归档组织（不删除）")
    async def archive_org_unit(
        self, info: Info[Context, None], input: ArchiveOrgUnitInput
    ) -> OrgUnitPayload:
        ctx = info.context
        _, unit_id = from_global_id(input.id, "OrgUnit")
        row = await service.archive_org_unit(ctx.tx, ctx.principal, unit_id=unit_id)
        return OrgUnitPayload(org_unit=OrgUnit.of(row))
