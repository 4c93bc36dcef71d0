"""Login, token refresh and logout; the principal of a request; accounts."""

from __future__ import annotations

import hashlib
import time
import uuid
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from service.audit.service import Outcome, record, record_security_event
from service.auth import credentials, passwords, repository
from service.auth.actions import AccountAction
from service.auth.cache import PrincipalCache
from service.auth.errors import (
    ACCOUNT_DISABLED,
    INVALID_CREDENTIALS,
    INVALID_DISPLAY_NAME,
    INVALID_REFRESH_TOKEN,
    INVALID_USERNAME,
    MFA_ENROLLMENT_REQUIRED,
    PASSWORD_CHANGE_REQUIRED,
    PASSWORD_EXPIRED,
    SESSION_ENDED,
    SESSION_IDLE_TIMEOUT,
    USERNAME_TAKEN,
    WEAK_PASSWORD,
)
from service.auth.principal import AccountSummary, Grant, Principal
from service.auth.tokens import AccessClaims, TokenService, new_refresh_token, refresh_token_hash
from service.authz import readable_paths, require
from service.authz.roles import Role
from service.config import Settings
from service.db import EMPTY_SCOPE, Database, Scope, Transaction
from service.errors import DomainError, not_found
from service.pagination import Page, PageRequest
from service.tenants.actions import OrgUnitAction

ACCOUNT = "账号"
UNIT = "组织"


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


class MfaEnrollmentRequired(DomainError):
    """MFA_ENROLLMENT_REQUIRED with the enrolment token the client enrols with."""

    def __init__(self, enrollment_token: str) -> None:
        base = MFA_ENROLLMENT_REQUIRED.error()
        super().__init__(base.code, base.message, http_status=base.http_status)
        self.extra = {"mfa_enrollment_token": enrollment_token}


def username_digest(username: str) -> str:
    """How failed logins of a name no account has are counted (the name is not kept)."""
    return hashlib.sha256(username.encode()).hexdigest()


async def login(
    tx: Transaction,
    settings: Settings,
    tokens: TokenService,
    *,
    username: str,
    password: str,
    otp: str | None = None,
    recovery_code: str | None = None,
    new_password: str | None = None,
    now: datetime | None = None,
    request_id: str = "",
) -> TokenPair:
    """Check the password (and the second factor) and open a session. Five failures in
    the window lock the account.

    An unknown username gets exactly the answers of a known one with a wrong password:
    INVALID_CREDENTIALS after an argon2 verification against a dummy hash, and
    ACCOUNT_LOCKED once its own failures reach the threshold (counted by a digest of
    the name). An enrolled account also needs a TOTP code or a recovery code; an
    account whose password must change needs `new_password`; one that must have a
    second factor and has none gets MFA_ENROLLMENT_REQUIRED with an enrolment token.

    The caller commits even when this raises, so that the failure is counted.
    """
    now = now or datetime.now(UTC)
    name = username.strip().lower()
    window_start = now - timedelta(seconds=settings.login_window_seconds)
    locked = credentials.lockout(settings)
    account = await repository.account_for_login(tx, name)
    if account is None:
        digest = username_digest(name)
        if await repository.unknown_failures_since(tx, digest, window_start) >= (
            settings.login_max_failures
        ):
            await _login_refused(tx, name, None, "auth.login_locked", request_id)
            raise locked
        passwords.verify_password(None, password)  # same cost as a wrong password
        await repository.add_unknown_failure(tx, digest, now)
        await _login_refused(tx, name, None, "auth.login_failed", request_id, unknown=True)
        raise INVALID_CREDENTIALS.error()
    actor = _system_principal(account, request_id)
    tx.rescope(actor.scope)
    failures = await repository.failures_since(tx, account.id, window_start)
    if failures >= settings.login_max_failures:
        await _login_refused(tx, name, account, "auth.login_locked", request_id)
        raise locked
    if not passwords.verify_password(account.password_hash, password):
        await repository.add_failure(tx, account.id, now)
        await record(
            tx,
            actor,
            tenant_id=account.home_tenant_id,
            action="auth.login_failed",
            object_type="Account",
            object_id=account.id,
            details={"failures_in_window": failures + 1},
            outcome=Outcome.FAILED,
        )
        if failures + 1 == settings.login_max_failures:
            await _login_refused(tx, name, account, "auth.lockout", request_id)
        raise INVALID_CREDENTIALS.error()
    if not account.is_active:
        await _login_refused(tx, name, account, "auth.login_disabled", request_id)
        raise ACCOUNT_DISABLED.error()
    change_due = credentials.password_change_due(settings, account, password, now)
    if change_due and new_password is None:
        # Asked before the second factor, so that one code serves the retry with it.
        expired = not account.must_change_password and password != _demo_password()
        raise (PASSWORD_EXPIRED if expired else PASSWORD_CHANGE_REQUIRED).error()
    if account.totp_enabled_at is not None:
        await credentials.check_second_factor(
            tx,
            account,
            otp=otp,
            recovery_code=recovery_code,
            now=now,
            request_id=request_id,
        )
    await repository.clear_failures(tx, account.id)
    if change_due and new_password is not None:
        await credentials.set_new_password(tx, account, new_password, request_id=request_id)
    if await credentials.mfa_enrollment_required(tx, settings, account):
        raise MfaEnrollmentRequired(tokens.issue_enrollment_token(account.id))
    return await open_session(tx, settings, tokens, account, now=now, request_id=request_id)


async def _login_refused(
    tx: Transaction,
    name: str,
    account: Any | None,
    action: str,
    request_id: str,
    *,
    unknown: bool = False,
) -> None:
    """Audit a refused login (wrong password of an unknown name, an attempt on a locked
    or disabled account, the failure that locks it): outcome `failed`. The caller
    commits even though the login raises."""
    await record_security_event(
        tx,
        action=action,
        outcome=Outcome.FAILED,
        username=name,
        account_id=account.id if account is not None else None,
        tenant_id=account.home_tenant_id if account is not None else None,
        request_id=request_id,
        details={"unknown_username": True} if unknown else None,
    )


def _demo_password() -> str:
    from service.demo import DEMO_PASSWORD

    return DEMO_PASSWORD


async def open_session(
    tx: Transaction,
    settings: Settings,
    tokens: TokenService,
    account: Any,
    *,
    now: datetime,
    request_id: str,
    method: str | None = None,
) -> TokenPair:
    """A new login session of `account` (whose credentials were checked), audited;
    `method` names a login other than the password (`wechat`) in the event."""
    actor = _system_principal(account, request_id)
    tx.rescope(actor.scope)
    session_id = uuid.uuid4()
    refresh_token = new_refresh_token()
    await repository.open_session(
        tx,
        session_id=session_id,
        account_id=account.id,
        refresh_hash=refresh_token_hash(refresh_token),
        expires_at=datetime.now(UTC) + timedelta(seconds=settings.refresh_token_ttl),
        now=now,
    )
    await record(
        tx,
        actor,
        tenant_id=account.home_tenant_id,
        action="auth.login",
        object_type="AuthSession",
        object_id=str(session_id),
        details={"method": method} if method else None,
    )
    access, expires_in = tokens.issue_access_token(account.id, session_id)
    return TokenPair(access, expires_in, refresh_token, session_id)


async def _end_session(
    tx: Transaction, session_id: uuid.UUID, account_id: int, reason: str, request_id: str
) -> None:
    """Revoke a session for `reason` (replay, idle) and audit it."""
    await repository.revoke_session(tx, session_id, reason)
    tx.auth_changed(f"session:{session_id}")
    account = await repository.account_by_id(tx, account_id)
    if account is None:
        return
    actor = _system_principal(account, request_id)
    tx.rescope(actor.scope)
    await record(
        tx,
        actor,
        tenant_id=account.home_tenant_id,
        action="auth.session_revoked",
        object_type="AuthSession",
        object_id=str(session_id),
        details={"reason": reason},
    )


async def refresh(
    tx: Transaction,
    settings: Settings,
    tokens: TokenService,
    *,
    refresh_token: str,
    now: datetime | None = None,
    request_id: str = "",
) -> TokenPair:
    """Rotate the refresh token. Every token a session was given is remembered:
    presenting any but its current one again revokes the session (it was copied, or
    replayed). A session idle past the timeout is dead, and revoked as such."""
    now = now or datetime.now(UTC)
    presented = refresh_token_hash(refresh_token)
    session = await repository.session_for_refresh(tx, presented)
    if session is None or not session.live:
        raise INVALID_REFRESH_TOKEN.error()
    if not session.current:
        await _end_session(tx, session.id, session.account_id, "refresh_token_reused", request_id)
        raise INVALID_REFRESH_TOKEN.error()
    if session.last_seen_at <= now - timedelta(seconds=settings.session_idle_seconds):
        await _end_session(tx, session.id, session.account_id, "idle_timeout", request_id)
        raise SESSION_IDLE_TIMEOUT.error()
    account = await repository.account_by_id(tx, session.account_id)
    if account is None or not account.is_active:
        raise ACCOUNT_DISABLED.error()
    new = new_refresh_token()
    await repository.rotate_refresh(tx, session.id, presented, refresh_token_hash(new), now)
    actor = _system_principal(account, request_id)
    tx.rescope(actor.scope)
    await record(
        tx,
        actor,
        tenant_id=account.home_tenant_id,
        action="auth.refresh",
        object_type="AuthSession",
        object_id=str(session.id),
    )
    access, expires_in = tokens.issue_access_token(account.id, session.id)
    return TokenPair(access, expires_in, new, session.id)


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


# A session's activity is recorded when its principal is loaded; a cached principal is
# reloaded (and the activity recorded) at least this often, whatever the cache's TTL.
TOUCH_SECONDS = 60


async def principal_for_request(
    db: Database,
    claims: AccessClaims,
    *,
    cache: PrincipalCache | None,
    request_id: str = "",
    use_cache: bool = True,
    now: datetime | None = None,
    idle_seconds: int = 1800,
) -> RequestPrincipal:
    """The request's principal: its account, grants and the tenants they reach.

    From the cache when the session's principal is there: no statement of its own,
    but a guard for the request's first message that checks, in the same round trip,
    that the account, its grants, the set of tenants and the session are as they were
    (notifications drop most stale entries before this; the guard catches the rest).
    Otherwise one statement of its own, before the request's transaction starts.
    A revoked or expired session, or a disabled account, is refused; so is a session
    with no recorded activity for `idle_seconds` (checked by the guard too, against
    `now`, the injectable clock). Loading records the session's activity in the same
    statement; a cached principal is reloaded at least every TOUCH_SECONDS, so activity
    is written about once a minute per session and process, never on the cached path.
    A session found idle is revoked as such (and audited) on its way out.
    """
    now = now or datetime.now(UTC)
    idle_cutoff = now - timedelta(seconds=idle_seconds)
    cached = cache.get(claims.session_id) if cache is not None and use_cache else None
    if (
        cached is not None
        and cached.account_id == claims.account_id
        and now.timestamp() - cached.loaded_at < TOUCH_SECONDS
    ):
        guard = (
            repository.PRINCIPAL_GUARD,
            {
                "account_id": cached.account_id,
                "session_id": cached.session_id,
                "version": cached.auth_version,
                "epoch": cached.auth_epoch,
                "idle_cutoff": idle_cutoff,
            },
        )
        return RequestPrincipal(replace(cached, request_id=request_id), guard)
    generation = cache.generation if cache is not None else 0
    async with db.transaction(
        Scope(claims.account_id, frozenset()), write=False, read_only=False
    ) as tx:
        row = await repository.principal_row(
            tx, claims.account_id, claims.session_id, now=now, idle_cutoff=idle_cutoff
        )
    if row is not None and row.session_idle:
        async with db.transaction(Scope(claims.account_id, frozenset())) as tx:
            await _end_session(tx, claims.session_id, claims.account_id, "idle_timeout", request_id)
        raise SESSION_IDLE_TIMEOUT.error()
    if row is None or not row.session_live:
        raise SESSION_ENDED.error()
    if not row.is_active:
        raise ACCOUNT_DISABLED.error()
    principal = replace(_principal_from_row(row, claims), loaded_at=now.timestamp())
    if cache is not None:
        keep_until = min(row.session_expires_at, time.time() + TOUCH_SECONDS)
        cache.put(principal, session_expires_at=keep_until, generation=generation)
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
    # Chosen by someone else: its holder must change it at the first login.
    return await _insert_account(
        tx, principal, home, name, shown, passwords.hash_password(password), must_change=True
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
    tx: Transaction,
    principal: Principal,
    home: Any,
    name: str,
    shown: str,
    password_hash: str,
    *,
    must_change: bool = False,
) -> Any:
    account = await repository.insert_account(
        tx,
        username=name,
        display_name=shown,
        password_hash=password_hash,
        home_tenant_id=home.tenant_id,
        home_org_unit_id=home.id,
        must_change_password=must_change,
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


async def list_accounts(
    tx: Transaction,
    principal: Principal,
    page: PageRequest,
    *,
    username_contains: str | None = None,
    org_unit_id: int | None = None,
    role: Role | None = None,
    active: bool | None = None,
) -> Page[Any]:
    """The accounts placed (home unit) where the principal may read accounts: the
    system administrator's whole county, an organizer's township, a branch secretary's
    branch. The scope is exactly `node(id:)`'s for an Account (`account:read` at its
    home unit), so the list tells nothing the lookups do not; authorized once, then
    filtered in SQL. `org_unit_id` narrows it to a unit the principal may read (and
    what lies below it); any other unit is NOT_FOUND, read in the same statement."""
    readable = readable_paths(principal, AccountAction.READ)
    if not readable:
        if org_unit_id is not None:
            raise not_found(UNIT)
        return Page.empty()
    name = username_contains.strip().lower() if username_contains else None
    found = await repository.accounts_page(
        tx,
        readable,
        page,
        username_contains=name or None,
        org_unit_id=org_unit_id,
        role=role.value if role is not None else None,
        active=active,
    )
    if found is None:
        raise not_found(UNIT)
    unit_path, accounts = found
    if unit_path is not None:
        require(principal, OrgUnitAction.READ, unit_path)
    return accounts
