"""Statements of accounts, login sessions and login failures (platform tables, no RLS:
login reads them before any tenant scope exists). No authorization, no audit here."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert

from service.auth.models import Account, AuthSession, LoginFailure
from service.db import Transaction

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
PRINCIPAL_SQL = f"""
WITH grants AS (
  SELECT role, org_path, org_unit_id, tenant_id FROM role_assignments
  WHERE account_id = %(account_id)s
)
SELECT {", ".join(f"a.{c}" for c in ACCOUNT_FIELDS)},
       a.auth_version, (SELECT n FROM auth_epoch) AS auth_epoch,
       (s.revoked_at IS NULL AND s.expires_at > now()) AS session_live,
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
               AND account_id = %(account_id)s AND revoked_at IS NULL AND expires_at > now())
   AS principal_current
"""


async def principal_row(tx: Transaction, account_id: int, session_id: uuid.UUID) -> Any | None:
    return await tx.first(PRINCIPAL_SQL, {"account_id": account_id, "session_id": session_id})


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


async def add_failure(tx: Transaction, account_id: int) -> None:
    await tx.execute(insert(LoginFailure).values(account_id=account_id))


async def clear_failures(tx: Transaction, account_id: int) -> None:
    await tx.execute(delete(LoginFailure).where(LoginFailure.account_id == account_id))


async def open_session(
    tx: Transaction,
    *,
    session_id: uuid.UUID,
    account_id: int,
    refresh_hash: str,
    expires_at: datetime,
) -> None:
    await tx.execute(
        insert(AuthSession).values(
            id=session_id, account_id=account_id, refresh_hash=refresh_hash, expires_at=expires_at
        )
    )


async def rotate_refresh(tx: Transaction, presented: str, new: str) -> Any | None:
    """Swap a live session's refresh token; (id, account_id), or None if none matched."""
    return await tx.first(
        update(AuthSession)
        .where(
            AuthSession.refresh_hash == presented,
            AuthSession.revoked_at.is_(None),
            AuthSession.expires_at > func.now(),
        )
        .values(refresh_hash=new, previous_refresh_hash=presented, rotated_at=func.now())
        .returning(AuthSession.id, AuthSession.account_id)
    )


async def revoke_replayed(tx: Transaction, presented: str) -> list[uuid.UUID]:
    """A replaced refresh token presented again: its session was copied; end it.
    Returns the sessions ended."""
    rows = await tx.rows(
        update(AuthSession)
        .where(AuthSession.previous_refresh_hash == presented, AuthSession.revoked_at.is_(None))
        .values(revoked_at=func.now(), revoked_reason="refresh_token_reused")
        .returning(AuthSession.id)
    )
    return [row.id for row in rows]


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
