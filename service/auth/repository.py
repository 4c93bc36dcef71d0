"""Statements of accounts, login sessions and login failures (platform tables, no RLS:
login reads them before any tenant scope exists). No authorization, no audit here."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert

from service.auth.models import Account, AuthSession, LoginFailure
from service.authz.enforcer import ReadablePaths
from service.db import Transaction
from service.pagination import Page, PageRequest, keyset

# An account as the service reads it: everything but the password hash.
ACCOUNT_FIELDS = (
    "id",
    "username",
    "display_name",
    "home_tenant_id",
    "home_org_unit_id",
    "is_active",
    "created_at",
)
ACCOUNT_COLUMNS = ", ".join(ACCOUNT_FIELDS)

# The principal of a request, in one statement: the account, whether the session is
# live and until when, the grants, and the tenants they reach (a grant reaches its own
# tenant and every tenant below its unit, so a county role sees the whole county).
# It also records the session's activity (`last_seen_at`), so it runs in a message that
# is not read-only; a session idle since before `idle_cutoff` is not live.
PRINCIPAL_SQL = f"""
WITH grants AS (
  SELECT role, org_path, org_unit_id, tenant_id FROM role_assignments
  WHERE account_id = %(account_id)s
), touched AS (
  UPDATE auth_sessions SET last_seen_at = greatest(last_seen_at, %(now)s)
  WHERE id = %(session_id)s AND account_id = %(account_id)s
    AND revoked_at IS NULL AND expires_at > now() AND last_seen_at > %(idle_cutoff)s
  RETURNING id
)
SELECT {", ".join(f"a.{c}" for c in ACCOUNT_FIELDS)},
       a.auth_version, (SELECT n FROM auth_epoch) AS auth_epoch,
       EXISTS (SELECT 1 FROM touched) AS session_live,
       (s.revoked_at IS NULL AND s.expires_at > now()
        AND s.last_seen_at <= %(idle_cutoff)s) AS session_idle,
       extract(epoch FROM s.expires_at)::float8 AS session_expires_at,
       coalesce((SELECT json_agg(json_build_array(role, org_path, org_unit_id, tenant_id))
                 FROM grants), '[]'::json) AS grants,
       coalesce((SELECT array_agg(DISTINCT t.id) FROM tenants t, grants g
                 WHERE starts_with(t.path, g.org_path)), '{{}}') AS tenants_below,
       coalesce((SELECT array_agg(DISTINCT tenant_id) FROM grants), '{{}}') AS tenants_at
FROM accounts a JOIN auth_sessions s ON s.account_id = a.id
WHERE a.id = %(account_id)s AND s.id = %(session_id)s
"""


# Whether a principal read earlier is still the account's: the guard that rides in the
# first message of a request served from the principal cache (service/db.py). The
# versions move with every change of the account, its grants, or the set of tenants.
PRINCIPAL_GUARD = """
SELECT coalesce((SELECT auth_version = %(version)s AND is_active
                 FROM accounts WHERE id = %(account_id)s), false)
   AND (SELECT n FROM auth_epoch) = %(epoch)s
   AND EXISTS (SELECT 1 FROM auth_sessions WHERE id = %(session_id)s
               AND account_id = %(account_id)s AND revoked_at IS NULL AND expires_at > now()
               AND last_seen_at > %(idle_cutoff)s)
   AS principal_current
"""


async def principal_row(
    tx: Transaction,
    account_id: int,
    session_id: uuid.UUID,
    *,
    now: datetime,
    idle_cutoff: datetime,
) -> Any | None:
    return await tx.first(
        PRINCIPAL_SQL,
        {
            "account_id": account_id,
            "session_id": session_id,
            "now": now,
            "idle_cutoff": idle_cutoff,
        },
    )


async def account_by_id(tx: Transaction, account_id: int) -> Any | None:
    return await tx.first(
        f"SELECT {ACCOUNT_COLUMNS} FROM accounts WHERE id = %(id)s", {"id": account_id}
    )


async def account_for_login(tx: Transaction, username: str) -> Any | None:
    """The account with its password hash, locked until the login's transaction ends."""
    return await tx.first(
        select(Account.__table__).where(Account.username == username).with_for_update()
    )


async def failures_since(tx: Transaction, account_id: int, since: datetime) -> int:
    return int(
        await tx.scalar(
            select(func.count())
            .select_from(LoginFailure)
            .where(LoginFailure.account_id == account_id, LoginFailure.failed_at > since)
        )
    )


async def add_failure(tx: Transaction, account_id: int, now: datetime) -> None:
    await tx.execute(insert(LoginFailure).values(account_id=account_id, failed_at=now))


async def clear_failures(tx: Transaction, account_id: int) -> None:
    await tx.execute(delete(LoginFailure).where(LoginFailure.account_id == account_id))


async def unknown_failures_since(tx: Transaction, digest: str, since: datetime) -> int:
    return int(
        await tx.scalar(
            "SELECT count(*) FROM unknown_login_failures"
            " WHERE username_digest = %(d)s AND failed_at > %(since)s",
            {"d": digest, "since": since},
        )
    )


async def add_unknown_failure(tx: Transaction, digest: str, now: datetime) -> None:
    await tx.execute(
        "INSERT INTO unknown_login_failures (username_digest, failed_at) VALUES (%(d)s, %(now)s)",
        {"d": digest, "now": now},
    )


async def open_session(
    tx: Transaction,
    *,
    session_id: uuid.UUID,
    account_id: int,
    refresh_hash: str,
    expires_at: datetime,
    now: datetime,
) -> None:
    await tx.execute(
        insert(AuthSession).values(
            id=session_id,
            account_id=account_id,
            refresh_hash=refresh_hash,
            expires_at=expires_at,
            last_seen_at=now,
        )
    )
    await remember_refresh(tx, session_id, refresh_hash)


async def remember_refresh(tx: Transaction, session_id: uuid.UUID, refresh_hash: str) -> None:
    """Every refresh token a session is given stays known, so any of them replayed is
    recognised as its session's."""
    await tx.execute(
        "INSERT INTO auth_refresh_tokens (token_hash, session_id) VALUES (%(h)s, %(s)s)",
        {"h": refresh_hash, "s": session_id},
    )


async def session_for_refresh(tx: Transaction, presented: str) -> Any | None:
    """The session that was ever given the refresh token `presented` (locked): whether
    the token is its current one, and its state; None for a token never issued."""
    return await tx.first(
        """
        SELECT s.id, s.account_id, s.refresh_hash = %(h)s AS current,
               (s.revoked_at IS NULL AND s.expires_at > now()) AS live, s.last_seen_at
        FROM auth_refresh_tokens t JOIN auth_sessions s ON s.id = t.session_id
        WHERE t.token_hash = %(h)s
        FOR UPDATE OF s
        """,
        {"h": presented},
    )


async def rotate_refresh(
    tx: Transaction, session_id: uuid.UUID, presented: str, new: str, now: datetime
) -> None:
    """Give the session a new refresh token (and note activity)."""
    await tx.execute(
        update(AuthSession)
        .where(AuthSession.id == session_id)
        .values(
            refresh_hash=new,
            previous_refresh_hash=presented,
            rotated_at=func.now(),
            last_seen_at=func.greatest(AuthSession.last_seen_at, now),
        )
    )
    await remember_refresh(tx, session_id, new)


async def revoke_session(tx: Transaction, session_id: uuid.UUID, reason: str) -> bool:
    revoked = await tx.first(
        update(AuthSession)
        .where(AuthSession.id == session_id, AuthSession.revoked_at.is_(None))
        .values(revoked_at=func.now(), revoked_reason=reason)
        .returning(AuthSession.id)
    )
    return revoked is not None


async def insert_account(tx: Transaction, **values: Any) -> Any | None:
    """The new account; None when the username is taken."""
    return await tx.first(
        pg_insert(Account)
        .values(**values)
        .on_conflict_do_nothing()
        .returning(*[Account.__table__.c[c] for c in ACCOUNT_FIELDS])
    )


async def home_unit_path(tx: Transaction, tenant_id: int, unit_id: int) -> str | None:
    path: str | None = await tx.scalar(
        "SELECT path FROM org_units WHERE tenant_id = %(tenant)s AND id = %(id)s",
        {"tenant": tenant_id, "id": unit_id},
    )
    return path


async def set_active(tx: Transaction, account_id: int, active: bool) -> Any | None:
    """The account after the change; None when it already was so (nothing written)."""
    return await tx.first(
        update(Account)
        .where(Account.id == account_id, Account.is_active.is_not(active))
        .values(is_active=active)
        .returning(*[Account.__table__.c[c] for c in ACCOUNT_FIELDS])
    )


async def set_password_hash(tx: Transaction, account_id: int, password_hash: str) -> None:
    await tx.execute(
        update(Account)
        .where(Account.id == account_id)
        .values(password_hash=password_hash, password_changed_at=func.now())
    )


async def revoke_account_sessions(
    tx: Transaction, account_id: int, reason: str, *, keep: uuid.UUID | None = None
) -> int:
    """Revoke every live session of the account but `keep`; how many there were."""
    conditions = [AuthSession.account_id == account_id, AuthSession.revoked_at.is_(None)]
    if keep is not None:
        conditions.append(AuthSession.id != keep)
    rows = await tx.rows(
        update(AuthSession)
        .where(*conditions)
        .values(revoked_at=func.now(), revoked_reason=reason)
        .returning(AuthSession.id)
    )
    return len(rows)


async def clear_failures_counted(tx: Transaction, account_id: int) -> int:
    """Forget the account's failed logins (unlock); how many there were."""
    rows = await tx.rows(
        delete(LoginFailure).where(LoginFailure.account_id == account_id).returning(LoginFailure.id)
    )
    return len(rows)


# --- second factor and password changes (service/auth/credentials.py) ---------------


async def account_secrets(tx: Transaction, account_id: int) -> Any | None:
    """The account with what only credential checks read (password hash, TOTP state),
    locked until the transaction ends."""
    return await tx.first(
        select(Account.__table__).where(Account.id == account_id).with_for_update()
    )


async def account_roles(tx: Transaction, account_id: int) -> set[str]:
    """The roles the account holds anywhere (its own grants are always readable)."""
    rows = await tx.rows(
        "SELECT DISTINCT role FROM role_assignments WHERE account_id = %(a)s", {"a": account_id}
    )
    return {row.role for row in rows}


async def password_history(tx: Transaction, account_id: int, limit: int) -> list[str]:
    rows = await tx.rows(
        "SELECT password_hash FROM password_history WHERE account_id = %(a)s"
        " ORDER BY id DESC LIMIT %(n)s",
        {"a": account_id, "n": limit},
    )
    return [row.password_hash for row in rows]


async def replace_password(
    tx: Transaction, account_id: int, old_hash: str, new_hash: str, *, keep: int
) -> None:
    """Set the new hash, remember the old one, forget what is older than `keep`."""
    await tx.execute(
        update(Account)
        .where(Account.id == account_id)
        .values(password_hash=new_hash, password_changed_at=func.now(), must_change_password=False)
    )
    await tx.execute(
        "INSERT INTO password_history (account_id, password_hash) VALUES (%(a)s, %(h)s)",
        {"a": account_id, "h": old_hash},
    )
    await tx.execute(
        "DELETE FROM password_history WHERE account_id = %(a)s AND id NOT IN"
        " (SELECT id FROM password_history WHERE account_id = %(a)s ORDER BY id DESC"
        "  LIMIT %(n)s)",
        {"a": account_id, "n": keep},
    )


async def set_must_change_password(tx: Transaction, account_id: int) -> None:
    await tx.execute(
        update(Account).where(Account.id == account_id).values(must_change_password=True)
    )


async def start_totp(
    tx: Transaction, account_id: int, sealed_secret: bytes, code_hashes: list[str]
) -> None:
    """A pending enrolment: the sealed secret (not yet enabled) and fresh recovery codes."""
    await tx.execute(
        update(Account)
        .where(Account.id == account_id)
        .values(totp_secret=sealed_secret, totp_enabled_at=None, totp_last_step=0)
    )
    await tx.execute(
        "DELETE FROM account_recovery_codes WHERE account_id = %(a)s", {"a": account_id}
    )
    await tx.execute(
        "INSERT INTO account_recovery_codes (account_id, code_hash)"
        " SELECT %(a)s, unnest(%(h)s::text[])",
        {"a": account_id, "h": code_hashes},
    )


async def accept_totp_step(tx: Transaction, account_id: int, step: int, *, enable: bool) -> None:
    values: dict[str, Any] = {"totp_last_step": step}
    if enable:
        values["totp_enabled_at"] = func.now()
    await tx.execute(update(Account).where(Account.id == account_id).values(**values))


async def use_recovery_code(tx: Transaction, account_id: int, code_hash: str) -> bool:
    """Consume an unused recovery code; whether there was one."""
    used = await tx.first(
        "UPDATE account_recovery_codes SET used_at = now()"
        " WHERE account_id = %(a)s AND code_hash = %(h)s AND used_at IS NULL RETURNING 1",
        {"a": account_id, "h": code_hash},
    )
    return used is not None


async def session_state(tx: Transaction, session_id: uuid.UUID, idle_cutoff: datetime) -> Any:
    """Whether a session is live (not revoked, unexpired, not idle)."""
    return await tx.first(
        "SELECT account_id, revoked_at IS NULL AND expires_at > now()"
        " AND last_seen_at > %(cutoff)s AS live FROM auth_sessions WHERE id = %(s)s",
        {"s": session_id, "cutoff": idle_cutoff},
    )


# --- WeChat bindings (service/auth/wechat_login.py) ----------------------------------


async def account_for_wechat(tx: Transaction, openid_digest: bytes) -> Any | None:
    """The account bound to the WeChat user, with its secrets, locked until the login's
    transaction ends (as `account_for_login` locks it)."""
    return await tx.first(
        "SELECT a.* FROM account_wechat w JOIN accounts a ON a.id = w.account_id"
        " WHERE w.openid_digest = %(d)s FOR UPDATE OF a",
        {"d": openid_digest},
    )


async def bind_wechat(
    tx: Transaction, account_id: int, app_id: str, openid_digest: bytes
) -> Any | None:
    """Bind the account (replacing its binding, if any); None when the WeChat user is
    bound to another account: the unique digest refuses it, nothing is inserted, and
    the caller's error rolls the removal back. The caller holds the account's row lock
    (`account_secrets`), so two binds of one account do not race."""
    await tx.execute("DELETE FROM account_wechat WHERE account_id = %(a)s", {"a": account_id})
    return await tx.first(
        "INSERT INTO account_wechat (account_id, app_id, openid_digest)"
        " VALUES (%(a)s, %(app)s, %(d)s) ON CONFLICT DO NOTHING RETURNING account_id, bound_at",
        {"a": account_id, "app": app_id, "d": openid_digest},
    )


async def unbind_wechat(tx: Transaction, account_id: int) -> bool:
    """Remove the account's binding; whether there was one."""
    gone = await tx.first(
        "DELETE FROM account_wechat WHERE account_id = %(a)s RETURNING account_id",
        {"a": account_id},
    )
    return gone is not None


# --- the account list (service/auth/service.py list_accounts) -------------------------


async def accounts_page(
    tx: Transaction,
    readable: ReadablePaths,
    page: PageRequest,
    *,
    username_contains: str | None = None,
    org_unit_id: int | None = None,
    role: str | None = None,
    active: bool | None = None,
) -> tuple[str | None, Page[Any]] | None:
    """Accounts whose home unit lies under `readable`, in id order, in one statement.

    With `org_unit_id`, only those placed at or below that unit, read with the unit
    (as `children_page` does): (the unit's path, the page), or None when the unit is
    not visible (org_units is under RLS). Without it: (None, the page). `role`: holding
    it at a unit under `readable` (grants elsewhere are not told)."""
    within, params = readable.sql("u.path")
    conditions = [within]
    if username_contains:
        # strpos, not LIKE: nothing the user types is a pattern
        conditions.append("strpos(a.username, %(name)s) > 0")
        params["name"] = username_contains
    if role is not None:
        granted, extra = readable.sql("r.org_path", "granted")
        conditions.append(
            "EXISTS (SELECT 1 FROM role_assignments r WHERE r.account_id = a.id"
            f" AND r.role = %(role)s AND {granted})"
        )
        params |= extra
        params["role"] = role
    if active is not None:
        conditions.append("a.is_active = %(active)s")
        params["active"] = active
    if org_unit_id is not None:
        conditions.append("starts_with(u.path, p.path)")
        params["unit"] = org_unit_id
    select = (
        f"SELECT {', '.join(f'a.{c}' for c in ACCOUNT_FIELDS)}"
        " FROM accounts a JOIN org_units u"
        "   ON u.tenant_id = a.home_tenant_id AND u.id = a.home_org_unit_id"
        f" WHERE {' AND '.join(conditions)} AND {keyset('a.id')}"
    )
    if org_unit_id is None:
        return None, Page.of(await tx.rows(select, params | page.params), page)
    rows = await tx.rows(
        f"SELECT p.path AS unit_path, x.* FROM org_units p"
        f" LEFT JOIN LATERAL ({select}) x ON true WHERE p.id = %(unit)s",
        params | page.params,
    )
    if not rows:
        return None
    return rows[0].unit_path, Page.of([row for row in rows if row.id is not None], page)


async def wechat_bound_at(tx: Transaction, account_ids: list[int]) -> dict[int, datetime]:
    """When each of these accounts was bound to WeChat (unbound ones are absent)."""
    rows = await tx.rows(
        "SELECT account_id, bound_at FROM account_wechat WHERE account_id = ANY(%(ids)s)",
        {"ids": account_ids},
    )
    return {row.account_id: row.bound_at for row in rows}
