"""GraphQL of accounts: the `Account` type, `me`, and `createAccount`."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import strawberry
from strawberry.types import Info

from service.auth import account_admin, wechat, wechat_login
from service.auth.credentials import change_password
from service.auth.service import create_account, get_account, list_accounts
from service.authz.graphql import Role, RoleAssignment
from service.authz.roles import Role as DomainRole
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

    @strawberry.field(description="绑定微信的时间（小程序登录用）；未绑定为空")
    async def wechat_bound_at(self, info: Info[Context, None]) -> datetime | None:
        return await info.context.loader(load_wechat_bound_at).load(self.row.id)  # type: ignore[no-any-return]

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


async def load_wechat_bound_at(context: Context, ids: Sequence[int]) -> list[datetime | None]:
    return await wechat_login.bound_at(context.tx, ids)


async def account_by_id(context: Context, account_id: int) -> Account:
    return Account.of(await get_account(context.tx, context.principal, account_id))


register_node("Account", account_by_id)


@strawberry.input(description="账号列表的筛选条件（均可省略）")
class AccountFilter:
    username_contains: str | None = strawberry.field(
        default=None, description="用户名包含此文字（不区分大小写）"
    )
    org_unit_id: strawberry.ID | None = strawberry.field(
        default=None, description="所在组织为此组织或其下级"
    )
    role: Role | None = strawberry.field(  # type: ignore[valid-type]
        default=None, description="在当前用户可见的组织担任此角色"
    )
    active: bool | None = strawberry.field(default=None, description="是否启用")


@strawberry.type
class AuthQuery:
    @strawberry.field(description="当前登录的账号")
    async def me(self, info: Info[Context, None]) -> Account:
        ctx = info.context
        assert ctx.principal.account_id is not None
        return await account_by_id(ctx, ctx.principal.account_id)

    @strawberry.field(
        description="账号列表：所在组织在当前用户有权查看账号的范围内（系统管理员、"
        "组织部门、党委及支部按各自权限），按创建先后排列"
    )
    async def accounts(
        self,
        info: Info[Context, None],
        filter: AccountFilter | None = None,
        first: int | None = None,
        after: str | None = None,
    ) -> Connection[Account]:
        ctx = info.context
        wanted = filter or AccountFilter()
        unit_id = None
        if wanted.org_unit_id is not None:
            _, unit_id = from_global_id(wanted.org_unit_id, "OrgUnit")
        page = await list_accounts(
            ctx.tx,
            ctx.principal,
            ctx.page(first, after),
            username_contains=wanted.username_contains,
            org_unit_id=unit_id,
            role=DomainRole(wanted.role.value) if wanted.role is not None else None,
            active=wanted.active,
        )
        return connection(page, Account.of)  # type: ignore[no-any-return]


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
            ctx.settings,
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


@strawberry.input(
    description="绑定微信：小程序 wx.login 取得的 code、本人密码；"
    "已开启双因素认证的账号另须动态验证码或恢复码"
)
class BindWechatInput:
    code: str
    password: str
    otp: str | None = None
    recovery_code: str | None = None


@strawberry.type
class WechatBindingPayload:
    account: Account
    bound_at: datetime


@strawberry.type
class UnbindWechatPayload:
    ok: bool


@strawberry.type
class WechatMutation:
    """Binding the logged-in account to a WeChat user (service/auth/wechat_login.py)."""

    @strawberry.mutation(
        description="将本人账号绑定到微信（小程序登录用）；已绑定的会被替换。"
        "须提供密码，开启了双因素认证的账号还须动态验证码"
    )
    async def bind_wechat(
        self, info: Info[Context, None], input: BindWechatInput
    ) -> WechatBindingPayload:
        ctx = info.context
        # WeChat first: its answer arrives before the transaction's first statement,
        # so no connection is held while it is awaited.
        identity = await wechat.provider(ctx.settings).code2session(input.code)
        bound = await wechat_login.bind(
            ctx.tx,
            ctx.settings,
            ctx.principal,
            identity,
            password=input.password,
            otp=input.otp or None,
            recovery_code=input.recovery_code or None,
        )
        account = await account_by_id(ctx, bound.account_id)
        return WechatBindingPayload(account=account, bound_at=bound.bound_at)

    @strawberry.mutation(description="解除本人账号的微信绑定")
    async def unbind_wechat(self, info: Info[Context, None]) -> UnbindWechatPayload:
        ctx = info.context
        await wechat_login.unbind(ctx.tx, ctx.principal)
        return UnbindWechatPayload(ok=True)
