"""Login, token refresh and logout; loading the principal of a request; accounts."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import delete, func, insert, select, text, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from service.audit.service import record
from service.auth import passwords
from service.auth.models import Account, AuthSession, LoginFailure
from service.auth.principal import Grant, Principal
from service.auth.tokens import AccessClaims, TokenService, new_refresh_token, refresh_token_hash
from service.authz import require
from service.authz.roles import Role
from service.config import Settings
from service.db import set_scope
from service.errors import DomainError, invalid, unauthenticated
from service.tenants.models import OrgUnit

INVALID_CREDENTIALS = "用户名或密码错误"


@dataclass(frozen=True)
class TokenPair:
    access_token: str
    expires_in: int
    refresh_token: str
    session_id: uuid.UUID


def _system_principal(account: Account, request_id: str) -> Principal:
    """Who the audit log names for events of the login flow itself."""
    return Principal(
        account_id=account.id,
        username=account.username,
        grants=(),
        tenant_ids={account.home_tenant_id},
        request_id=request_id,
    )


async def login(
    session: AsyncSession,
    settings: Settings,
    tokens: TokenService,
    *,
    username: str,
    password: str,
    request_id: str = "",
) -> TokenPair:
    """Check the password and open a session. Five failures in the window lock the account.

    The caller commits even when this raises INVALID_CREDENTIALS, so that the failure
    is counted.
    """
    account = await session.scalar(
        select(Account).where(Account.username == username.strip().lower()).with_for_update()
    )
    if account is None:
        passwords.verify_password(None, password)  # same cost as a wrong password
        raise DomainError("INVALID_CREDENTIALS", INVALID_CREDENTIALS, http_status=401)
    actor = _system_principal(account, request_id)
    await set_scope(session, account_id=account.id, tenant_ids=actor.tenant_ids)
    window_start = datetime.now(UTC) - timedelta(seconds=settings.login_window_seconds)
    failures = await session.scalar(
        select(func.count())
        .select_from(LoginFailure)
        .where(LoginFailure.account_id == account.id, LoginFailure.failed_at > window_start)
    )
    if (failures or 0) >= settings.login_max_failures:
        minutes = max(1, settings.login_window_seconds // 60)
        raise DomainError(
            "ACCOUNT_LOCKED",
            f"连续登录失败次数过多，账号已锁定，请 {minutes} 分钟后再试",
            http_status=423,
        )
    if not passwords.verify_password(account.password_hash, password):
        await session.execute(insert(LoginFailure).values(account_id=account.id))
        await record(
            session,
            actor,
            tenant_id=account.home_tenant_id,
            action="auth.login_failed",
            object_type="Account",
            object_id=account.id,
            details={"failures_in_window": (failures or 0) + 1},
        )
        raise DomainError("INVALID_CREDENTIALS", INVALID_CREDENTIALS, http_status=401)
    if not account.is_active:
        raise DomainError("ACCOUNT_DISABLED", "账号已停用", http_status=403)
    await session.execute(delete(LoginFailure).where(LoginFailure.account_id == account.id))
    session_id = uuid.uuid4()
    refresh = new_refresh_token()
    await session.execute(
        insert(AuthSession).values(
            id=session_id,
            account_id=account.id,
            refresh_hash=refresh_token_hash(refresh),
            expires_at=datetime.now(UTC) + timedelta(seconds=settings.refresh_token_ttl),
        )
    )
    await record(
        session,
        actor,
        tenant_id=account.home_tenant_id,
        action="auth.login",
        object_type="AuthSession",
        object_id=str(session_id),
    )
    access, expires_in = tokens.issue_access_token(account.id, session_id)
    return TokenPair(access, expires_in, refresh, session_id)


async def refresh(
    session: AsyncSession,
    settings: Settings,
    tokens: TokenService,
    *,
    refresh_token: str,
    request_id: str = "",
) -> TokenPair:
    """Rotate the refresh token. Presenting a replaced token again revokes the session:
    it was copied, or replayed."""
    presented = refresh_token_hash(refresh_token)
    new = new_refresh_token()
    rotated = (
        await session.execute(
            update(AuthSession)
            .where(
                AuthSession.refresh_hash == presented,
                AuthSession.revoked_at.is_(None),
                AuthSession.expires_at > func.now(),
            )
            .values(
                refresh_hash=refresh_token_hash(new),
                previous_refresh_hash=presented,
                rotated_at=func.now(),
            )
            .returning(AuthSession.id, AuthSession.account_id)
        )
    ).first()
    if rotated is None:
        await session.execute(
            update(AuthSession)
            .where(AuthSession.previous_refresh_hash == presented, AuthSession.revoked_at.is_(None))
            .values(revoked_at=func.now(), revoked_reason="refresh_token_reused")
        )
        raise DomainError(
            "INVALID_REFRESH_TOKEN", "刷新令牌无效或已过期，请重新登录", http_status=401
        )
    account = await session.get(Account, rotated.account_id)
    if account is None or not account.is_active:
        raise DomainError("ACCOUNT_DISABLED", "账号已停用", http_status=403)
    actor = _system_principal(account, request_id)
    await set_scope(session, account_id=account.id, tenant_ids=actor.tenant_ids)
    await record(
        session,
        actor,
        tenant_id=account.home_tenant_id,
        action="auth.refresh",
        object_type="AuthSession",
        object_id=str(rotated.id),
    )
    access, expires_in = tokens.issue_access_token(account.id, rotated.id)
    return TokenPair(access, expires_in, new, rotated.id)


async def logout(session: AsyncSession, claims: AccessClaims, *, request_id: str = "") -> None:
    """Revoke the session: its refresh token and every access token of it stop working."""
    account = await session.get(Account, claims.account_id)
    revoked = (
        await session.execute(
            update(AuthSession)
            .where(AuthSession.id == claims.session_id, AuthSession.revoked_at.is_(None))
            .values(revoked_at=func.now(), revoked_reason="logout")
            .returning(AuthSession.id)
        )
    ).first()
    if revoked is None or account is None:
        raise unauthenticated("登录已失效，请重新登录")
    actor = _system_principal(account, request_id)
    await set_scope(session, account_id=account.id, tenant_ids=actor.tenant_ids)
    await record(
        session,
        actor,
        tenant_id=account.home_tenant_id,
        action="auth.logout",
        object_type="AuthSession",
        object_id=str(claims.session_id),
    )


_PRINCIPAL_SQL = text(
    """
    WITH grants AS (
      SELECT role, org_path, org_unit_id, tenant_id FROM role_assignments
      WHERE account_id = :account_id
    )
    SELECT a.username, a.is_active,
           (s.revoked_at IS NULL AND s.expires_at > now()) AS session_live,
           coalesce((SELECT json_agg(json_build_array(role, org_path, org_unit_id, tenant_id))
                     FROM grants), '[]'::json) AS grants,
           coalesce((SELECT array_agg(DISTINCT t.id) FROM tenants t, grants g
                     WHERE t.path LIKE g.org_path || '%'), '{}') AS tenants_below,
           coalesce((SELECT array_agg(DISTINCT tenant_id) FROM grants), '{}') AS tenants_at
    FROM accounts a JOIN auth_sessions s ON s.account_id = a.id
    WHERE a.id = :account_id AND s.id = :session_id
    """
)


async def load_principal(
    session: AsyncSession, claims: AccessClaims, *, request_id: str = ""
) -> Principal:
    """The request's principal, its grants and its scope; sets the scope on the transaction.

    A grant's scope is its own tenant and every tenant below its unit, so a county-level
    role sees every tenant of its county.
    """
    await set_scope(session, account_id=claims.account_id, tenant_ids=())
    row = (
        await session.execute(
            _PRINCIPAL_SQL, {"account_id": claims.account_id, "session_id": claims.session_id}
        )
    ).first()
    if row is None or not row.session_live:
        raise unauthenticated("登录已失效，请重新登录")
    if not row.is_active:
        raise DomainError("ACCOUNT_DISABLED", "账号已停用", http_status=403)
    grants = tuple(sorted(Grant(r[0], r[1], int(r[2]), int(r[3])) for r in row.grants))
    principal = Principal(
        account_id=claims.account_id,
        username=row.username,
        grants=grants,
        tenant_ids=set(row.tenants_below) | set(row.tenants_at),
        session_id=claims.session_id,
        request_id=request_id,
    )
    await set_scope(session, account_id=claims.account_id, tenant_ids=principal.tenant_ids)
    return principal


async def operator_principal(session: AsyncSession, *, name: str = "cli") -> Principal:
    """The CLI's identity (demo loading, create-admin): platform operator at the root."""
    root = (
        await session.execute(text("SELECT id, path FROM tenants WHERE kind = 'platform'"))
    ).one()
    everything = [r[0] for r in await session.execute(text("SELECT id FROM tenants"))]
    principal = Principal(
        account_id=None,
        username=name,
        grants=(Grant(Role.PLATFORM_OPERATOR.value, root.path, root.id, root.id),),
        tenant_ids=set(everything),
    )
    await set_scope(session, account_id=None, tenant_ids=principal.tenant_ids)
    return principal


async def get_account(session: AsyncSession, principal: Principal, account_id: int) -> Account:
    """An account, if the principal may read accounts at its home unit; NOT_FOUND otherwise."""
    account = await session.get(Account, account_id)
    if account is not None and account.id == principal.account_id:
        return account  # one's own account, even with no role (and so no scope) yet
    if account is None or account.home_tenant_id not in principal.tenant_ids:
        raise DomainError("NOT_FOUND", "账号不存在或无权访问", http_status=404)
    home = await session.scalar(
        select(OrgUnit).where(
            OrgUnit.tenant_id == account.home_tenant_id, OrgUnit.id == account.home_org_unit_id
        )
    )
    if home is None:
        raise DomainError("NOT_FOUND", "账号不存在或无权访问", http_status=404)
    require(principal, "account:read", home.path, what="账号")
    return account


async def create_account(
    session: AsyncSession,
    principal: Principal,
    *,
    username: str,
    display_name: str,
    password: str,
    home_org_unit_id: int,
) -> Account:
    """Create a login placed at `home_org_unit_id` (its tenant is its home for audit)."""
    from service.tenants.service import get_org_unit

    home = await get_org_unit(session, principal, home_org_unit_id, "account:create")
    if home.archived_at is not None:
        raise invalid("ORG_UNIT_ARCHIVED", "该组织已归档，不能再添加账号")
    name = username.strip().lower()
    if not (3 <= len(name) <= 64) or not all(
        c.isascii() and (c.isalnum() or c in "_.-") for c in name
    ):
        raise invalid("INVALID_USERNAME", "用户名须为 3–64 位小写字母、数字、下划线、点或连字符")
    shown = " ".join(display_name.split())
    if not (1 <= len(shown) <= 64):
        raise invalid("INVALID_DISPLAY_NAME", "姓名不能为空，且不超过 64 个字")
    problems = passwords.password_problems(password, username=name)
    if problems:
        raise invalid("WEAK_PASSWORD", "密码不符合要求：" + "；".join(problems))
    try:
        async with session.begin_nested():
            account_id = await session.scalar(
                insert(Account)
                .values(
                    username=name,
                    display_name=shown,
                    password_hash=passwords.hash_password(password),
                    home_tenant_id=home.tenant_id,
                    home_org_unit_id=home.id,
                )
                .returning(Account.id)
            )
    except IntegrityError as exc:
        raise invalid("USERNAME_TAKEN", f"用户名“{name}”已被使用") from exc
    await record(
        session,
        principal,
        tenant_id=home.tenant_id,
        action="account.create",
        object_type="Account",
        object_id=int(account_id),
        details={"username": name, "home_org_unit_id": home.id},
    )
    account = await session.get(Account, account_id)
    assert account is not None
    return account
