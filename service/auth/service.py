"""Login, token refresh and logout; the principal of a request; accounts."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from service.audit.service import record
from service.auth import passwords, repository
from service.auth.actions import AccountAction
from service.auth.cache import PrincipalCache
from service.auth.errors import (
    ACCOUNT_DISABLED,
    ACCOUNT_LOCKED,
    INVALID_CREDENTIALS,
    INVALID_DISPLAY_NAME,
    INVALID_REFRESH_TOKEN,
    INVALID_USERNAME,
    SESSION_ENDED,
    USERNAME_TAKEN,
    WEAK_PASSWORD,
)
from service.auth.principal import AccountSummary, Grant, Principal
from service.auth.tokens import AccessClaims, TokenService, new_refresh_token, refresh_token_hash
from service.authz import require
from service.authz.roles import Role
from service.config import Settings
from service.db import EMPTY_SCOPE, Database, Scope, Transaction
from service.errors import not_found

ACCOUNT = "账号"


@dataclass(frozen=True)
class TokenPair:
    access_token: str
    expires_in: int
    refresh_token: str
    session_id: uuid.UUID


def _system_principal(account: Any, request_id: str) -> Principal:
    """Who the audit log names for events of the login flow itself."""
    return Principal(
        account_id=account.id,
        username=account.username,
        grants=(),
        tenant_ids=frozenset({account.home_tenant_id}),
        request_id=request_id,
    )


async def login(
    tx: Transaction,
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
    account = await repository.account_for_login(tx, username.strip().lower())
    if account is None:
        passwords.verify_password(None, password)  # same cost as a wrong password
        raise INVALID_CREDENTIALS.error()
    actor = _system_principal(account, request_id)
    tx.rescope(actor.scope)
    window_start = datetime.now(UTC) - timedelta(seconds=settings.login_window_seconds)
    failures = await repository.failures_since(tx, account.id, window_start)
    if failures >= settings.login_max_failures:
        raise ACCOUNT_LOCKED.error(minutes=max(1, settings.login_window_seconds // 60))
    if not passwords.verify_password(account.password_hash, password):
        await repository.add_failure(tx, account.id)
        await record(
            tx,
            actor,
            tenant_id=account.home_tenant_id,
            action="auth.login_failed",
            object_type="Account",
            object_id=account.id,
            details={"failures_in_window": failures + 1},
        )
        raise INVALID_CREDENTIALS.error()
    if not account.is_active:
        raise ACCOUNT_DISABLED.error()
    await repository.clear_failures(tx, account.id)
    session_id = uuid.uuid4()
    refresh_token = new_refresh_token()
    await repository.open_session(
        tx,
        session_id=session_id,
        account_id=account.id,
        refresh_hash=refresh_token_hash(refresh_token),
        expires_at=datetime.now(UTC) + timedelta(seconds=settings.refresh_token_ttl),
    )
    await record(
        tx,
        actor,
        tenant_id=account.home_tenant_id,
        action="auth.login",
        object_type="AuthSession",
        object_id=str(session_id),
    )
    access, expires_in = tokens.issue_access_token(account.id, session_id)
    return TokenPair(access, expires_in, refresh_token, session_id)


async def refresh(
    tx: Transaction,
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
    rotated = await repository.rotate_refresh(tx, presented, refresh_token_hash(new))
    if rotated is None:
        for session_id in await repository.revoke_replayed(tx, presented):
            tx.auth_changed(f"session:{session_id}")
        raise INVALID_REFRESH_TOKEN.error()
    account = await repository.account_by_id(tx, rotated.account_id)
    if account is None or not account.is_active:
        raise ACCOUNT_DISABLED.error()
    actor = _system_principal(account, request_id)
    tx.rescope(actor.scope)
    await record(
        tx,
        actor,
        tenant_id=account.home_tenant_id,
        action="auth.refresh",
        object_type="AuthSession",
        object_id=str(rotated.id),
    )
    access, expires_in = tokens.issue_access_token(account.id, rotated.id)
    return TokenPair(access, expires_in, new, rotated.id)


async def logout(tx: Transaction, claims: AccessClaims, *, request_id: str = "") -> None:
    """Revoke the session: its refresh token and every access token of it stop working."""
    account = await repository.account_by_id(tx, claims.account_id)
    revoked = await repository.revoke_session(tx, claims.session_id, "logout")
    if not revoked or account is None:
        raise SESSION_ENDED.error()
    tx.auth_changed(f"session:{claims.session_id}")
    actor = _system_principal(account, request_id)
    tx.rescope(actor.scope)
    await record(
        tx,
        actor,
        tenant_id=account.home_tenant_id,
        action="auth.logout",
        object_type="AuthSession",
        object_id=str(claims.session_id),
    )


def _principal_from_row(row: Any, claims: AccessClaims) -> Principal:
    grants = tuple(sorted(Grant(g[0], g[1], int(g[2]), int(g[3])) for g in row.grants))
    account = AccountSummary(
        id=row.id,
        username=row.username,
        display_name=row.display_name,
        home_tenant_id=row.home_tenant_id,
        home_org_unit_id=row.home_org_unit_id,
        is_active=row.is_active,
        created_at=row.created_at,
    )
    return Principal(
        account_id=claims.account_id,
        username=row.username,
        grants=grants,
        tenant_ids=frozenset(row.tenants_below) | frozenset(row.tenants_at),
        session_id=claims.session_id,
        account=account,
        auth_version=row.auth_version,
        auth_epoch=row.auth_epoch,
    )


@dataclass(frozen=True)
class RequestPrincipal:
    """A request's principal, and the guard its transaction must carry when the
    principal came from the cache (None when it was just read from the database)."""

    principal: Principal
    guard: tuple[str, dict[str, Any]] | None


async def principal_for_request(
    db: Database,
    claims: AccessClaims,
    *,
    cache: PrincipalCache | None,
    request_id: str = "",
    use_cache: bool = True,
) -> RequestPrincipal:
    """The request's principal: its account, grants and the tenants they reach.

    From the cache when the session's principal is there: no statement of its own,
    but a guard for the request's first message that checks, in the same round trip,
    that the account, its grants, the set of tenants and the session are as they were
    (notifications drop most stale entries before this; the guard catches the rest).
    Otherwise one statement of its own, before the request's transaction starts.
    A revoked or expired session, or a disabled account, is refused.
    """
    cached = cache.get(claims.session_id) if cache is not None and use_cache else None
    if cached is not None and cached.account_id == claims.account_id:
        guard = (
            repository.PRINCIPAL_GUARD,
            {
                "account_id": cached.account_id,
                "session_id": cached.session_id,
                "version": cached.auth_version,
                "epoch": cached.auth_epoch,
            },
        )
        return RequestPrincipal(replace(cached, request_id=request_id), guard)
    generation = cache.generation if cache is not None else 0
    async with db.transaction(Scope(claims.account_id, frozenset()), write=False) as tx:
        row = await repository.principal_row(tx, claims.account_id, claims.session_id)
    if row is None or not row.session_live:
        raise SESSION_ENDED.error()
    if not row.is_active:
        raise ACCOUNT_DISABLED.error()
    principal = _principal_from_row(row, claims)
    if cache is not None:
        cache.put(principal, session_expires_at=row.session_expires_at, generation=generation)
    return RequestPrincipal(replace(principal, request_id=request_id), None)


async def load_principal(
    db: Database,
    claims: AccessClaims,
    *,
    cache: PrincipalCache | None = None,
    request_id: str = "",
) -> Principal:
    """The principal of `claims`, always read from the database (and kept in `cache`
    when one is given). Requests use `principal_for_request`, which may answer from
    the cache with a guard."""
    loaded = await principal_for_request(
        db, claims, cache=cache, request_id=request_id, use_cache=False
    )
    return loaded.principal


async def operator_principal(tx: Transaction, *, name: str = "cli") -> Principal:
    """The CLI's identity (demo loading, create-admin): platform operator at the root.

    Its scope is every tenant there is; the transaction is scoped to it."""
    tx.rescope(EMPTY_SCOPE)
    root = await tx.one("SELECT id, path FROM tenants WHERE kind = 'platform'")
    everything = [r.id for r in await tx.rows("SELECT id FROM tenants")]
    principal = Principal(
        account_id=None,
        username=name,
        grants=(Grant(Role.PLATFORM_OPERATOR.value, root.path, root.id, root.id),),
        tenant_ids=frozenset(everything),
    )
    tx.rescope(principal.scope)
    return principal


async def get_account(tx: Transaction, principal: Principal, account_id: int) -> Any:
    """An account, if the principal may read accounts at its home unit; NOT_FOUND otherwise."""
    if principal.account is not None and account_id == principal.account_id:
        return principal.account  # one's own account, even with no role (no scope) yet
    account = await repository.account_by_id(tx, account_id)
    if account is not None and account.id == principal.account_id:
        return account
    if account is None or account.home_tenant_id not in tx.scope.tenant_ids:
        raise not_found(ACCOUNT)
    home_path = await repository.home_unit_path(
        tx, account.home_tenant_id, account.home_org_unit_id
    )
    if home_path is None:
        raise not_found(ACCOUNT)
    require(principal, AccountAction.READ, home_path, what=ACCOUNT)
    return account


def _checked_username(username: str) -> str:
    name = username.strip().lower()
    if not (3 <= len(name) <= 64) or not all(
        c.isascii() and (c.isalnum() or c in "_.-") for c in name
    ):
        raise INVALID_USERNAME.error()
    return name


def _checked_display_name(display_name: str) -> str:
    shown = " ".join(display_name.split())
    if not (1 <= len(shown) <= 64):
        raise INVALID_DISPLAY_NAME.error()
    return shown


async def _home_for_new_account(tx: Transaction, principal: Principal, unit_id: int) -> Any:
    from service.tenants.service import ensure_active, get_org_unit

    home = await get_org_unit(tx, principal, unit_id, AccountAction.CREATE)
    ensure_active(home, "添加账号")
    return home


async def create_account(
    tx: Transaction,
    principal: Principal,
    *,
    username: str,
    display_name: str,
    password: str,
    home_org_unit_id: int,
) -> Any:
    """Create a login placed at `home_org_unit_id` (its tenant is its home for audit).

    Authorized before anything else, and hashed last: an unauthorized caller costs no
    argon2 work."""
    home = await _home_for_new_account(tx, principal, home_org_unit_id)
    name = _checked_username(username)
    shown = _checked_display_name(display_name)
    problems = passwords.password_problems(password, username=name)
    if problems:
        raise WEAK_PASSWORD.error(problems="；".join(problems))
    return await _insert_account(
        tx, principal, home, name, shown, passwords.hash_password(password)
    )


async def register_account(
    tx: Transaction,
    principal: Principal,
    *,
    username: str,
    display_name: str,
    password_hash: str,
    home_org_unit_id: int,
) -> Any:
    """`create_account` with a password already hashed (and so already checked): test
    worlds and factories use it with one hash computed per run."""
    home = await _home_for_new_account(tx, principal, home_org_unit_id)
    name = _checked_username(username)
    shown = _checked_display_name(display_name)
    return await _insert_account(tx, principal, home, name, shown, password_hash)


async def _insert_account(
    tx: Transaction, principal: Principal, home: Any, name: str, shown: str, password_hash: str
) -> Any:
    account = await repository.insert_account(
        tx,
        username=name,
        display_name=shown,
        password_hash=password_hash,
        home_tenant_id=home.tenant_id,
        home_org_unit_id=home.id,
    )
    if account is None:
        raise USERNAME_TAKEN.error(username=name)
    await record(
        tx,
        principal,
        tenant_id=home.tenant_id,
        action="account.create",
        object_type="Account",
        object_id=account.id,
        details={"username": name, "home_org_unit_id": home.id},
    )
    return account
