"""GraphQL of accounts: the `Account` type, `me`, and `createAccount`."""

from __future__ import annotations

from typing import Any

import strawberry
from strawberry.types import Info

from service.auth import account_admin
from service.auth.credentials import change_password
from service.auth.service import create_account, get_account
from service.authz.graphql import RoleAssignment
from service.authz.service import list_account_roles
from service.members.graphql import Member, load_account_members
from service.schema.context import Context
from service.schema.ids import from_global_id, to_global_id
from service.schema.relay import Connection, Node, connection, register_node
from service.tenants.graphql import OrgUnit, load_org_units


@strawberry.type(description="账号")
class Account(Node):
    id: strawberry.ID
    username: str
    display_name: str
    is_active: bool
    row: strawberry.Private[Any]

    @classmethod
    def of(cls, row: Any) -> Account:
        return cls(
            id=strawberry.ID(to_global_id("Account", row.id)),
            username=row.username,
            display_name=row.display_name,
            is_active=row.is_active,
            row=row,
        )

    @strawberry.field
    async def home_org_unit(self, info: Info[Context, None]) -> OrgUnit | None:
        row = await info.context.loader(load_org_units).load(self.row.home_org_unit_id)
        return OrgUnit.of(row) if row is not None else None

    @strawberry.field(description="该账号关联的党员档案：本人的总可见，他人的须有台账查看权")
    async def member(self, info: Info[Context, None]) -> Member | None:
        row = await info.context.loader(load_account_members).load(self.row.id)
        return Member.of(row) if row is not None else None

    @strawberry.field(description="该账号的角色任命（仅含当前用户有权查看的组织）")
    async def role_assignments(
        self, info: Info[Context, None], first: int | None = None, after: str | None = None
    ) -> Connection[RoleAssignment]:
        ctx = info.context
        page = await list_account_roles(ctx.tx, ctx.principal, self.row.id, ctx.page(first, after))
        return connection(page, RoleAssignment.of)  # type: ignore[no-any-return]


async def account_by_id(context: Context, account_id: int) -> Account:
    return Account.of(await get_account(context.tx, context.principal, account_id))


register_node("Account", account_by_id)


@strawberry.type
class AuthQuery:
    @strawberry.field(description="当前登录的账号")
    async def me(self, info: Info[Context, None]) -> Account:
        ctx = info.context
        assert ctx.principal.account_id is not None
        return await account_by_id(ctx, ctx.principal.account_id)


@strawberry.input
class CreateAccountInput:
    username: str
    display_name: str
    password: str
    home_org_unit_id: strawberry.ID


@strawberry.type
class AccountPayload:
    account: Account


@strawberry.input(description="修改本人密码")
class ChangePasswordInput:
    old_password: str
    new_password: str


@strawberry.type
class ChangePasswordPayload:
    ok: bool


@strawberry.type
class AuthMutation:
    @strawberry.mutation(description="新建账号")
    async def create_account(
        self, info: Info[Context, None], input: CreateAccountInput
    ) -> AccountPayload:
        ctx = info.context
        _, home_id = from_global_id(input.home_org_unit_id, "OrgUnit")
        row = await create_account(
            ctx.tx,
            ctx.principal,
            username=input.username,
            display_name=input.display_name,
            password=input.password,
            home_org_unit_id=home_id,
        )
        return AccountPayload(account=Account.of(row))

    @strawberry.mutation(
        description="修改本人密码：须提供原密码；新密码不能与最近 5 次的密码相同；"
        "本人的其他登录会话随即失效"
    )
    async def change_password(
        self, info: Info[Context, None], input: ChangePasswordInput
    ) -> ChangePasswordPayload:
        ctx = info.context
        await change_password(
            ctx.tx,
            ctx.principal,
            old_password=input.old_password,
            new_password=input.new_password,
        )
        return ChangePasswordPayload(ok=True)


@strawberry.input(description="要处理的账号")
class AccountIdInput:
    account_id: strawberry.ID


@strawberry.input(description="重置密码：账号与新密码")
class ResetAccountPasswordInput:
    account_id: strawberry.ID
    password: str


@strawberry.type
class AccountAdminMutation:
    """Accounts as system resources (系统管理员): service/auth/account_admin.py."""

    @strawberry.mutation(description="停用账号：其会话立即失效，不能再登录")
    async def disable_account(
        self, info: Info[Context, None], input: AccountIdInput
    ) -> AccountPayload:
        ctx = info.context
        _, account_id = from_global_id(input.account_id, "Account")
        row = await account_admin.disable_account(ctx.tx, ctx.principal, account_id=account_id)
        return AccountPayload(account=Account.of(row))

    @strawberry.mutation(description="启用已停用的账号")
    async def enable_account(
        self, info: Info[Context, None], input: AccountIdInput
    ) -> AccountPayload:
        ctx = info.context
        _, account_id = from_global_id(input.account_id, "Account")
        row = await account_admin.enable_account(ctx.tx, ctx.principal, account_id=account_id)
        return AccountPayload(account=Account.of(row))

    @strawberry.mutation(description="重置账号密码：其会话立即失效，登录失败计数清零")
    async def reset_account_password(
        self, info: Info[Context, None], input: ResetAccountPasswordInput
    ) -> AccountPayload:
        ctx = info.context
        _, account_id = from_global_id(input.account_id, "Account")
        row = await account_admin.reset_password(
            ctx.tx, ctx.principal, account_id=account_id, password=input.password
        )
        return AccountPayload(account=Account.of(row))

    @strawberry.mutation(description="解除因连续登录失败而锁定的账号")
    async def unlock_account(
        self, info: Info[Context, None], input: AccountIdInput
    ) -> AccountPayload:
        ctx = info.context
        _, account_id = from_global_id(input.account_id, "Account")
        row = await account_admin.unlock_account(ctx.tx, ctx.principal, account_id=account_id)
        return AccountPayload(account=Account.of(row))
