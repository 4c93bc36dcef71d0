"""Accounts as system resources (系统管理员): disable, enable, reset a password, unlock.

These are the system administrator's powers over accounts, apart from role grants (the
security administrator's) and from the audit log (the auditor's). Each is authorized at
the account's home unit, like reading it. An account that holds an administrator role
is out of a system administrator's reach: resetting the security administrator's
password would make the system administrator a security administrator, and disabling
the auditor would silence the audit; only the platform operator (the CLI) may.
"""

from __future__ import annotations

from typing import Any

from service.audit.service import record
from service.auth import passwords, repository
from service.auth.actions import AccountAction
from service.auth.errors import ADMIN_ACCOUNT_PROTECTED, CANNOT_CHANGE_OWN_ACCOUNT, WEAK_PASSWORD
from service.auth.principal import Principal
from service.auth.service import ACCOUNT, get_account
from service.authz import require
from service.authz.repository import duties_held
from service.authz.roles import ADMIN_ROLES, Role
from service.db import Transaction


async def _managed_account(
    tx: Transaction, principal: Principal, account_id: int, action: AccountAction
) -> Any:
    """The account, if the principal may do `action` on it: NOT_FOUND when it cannot
    even read it, FORBIDDEN when it may read but not act, or when the account is its
    own or an administrator's (and the principal is not the platform operator)."""
    account = await get_account(tx, principal, account_id)
    home_path = await repository.home_unit_path(
        tx, account.home_tenant_id, account.home_org_unit_id
    )
    assert home_path is not None  # get_account found it
    require(principal, action, home_path, what=ACCOUNT, seen_with=AccountAction.READ)
    if account.id == principal.account_id:
        raise CANNOT_CHANGE_OWN_ACCOUNT.error()
    operator = any(g.role == Role.PLATFORM_OPERATOR.value for g in principal.grants)
    if not operator and (await duties_held(tx, account.id)) & ADMIN_ROLES:
        raise ADMIN_ACCOUNT_PROTECTED.error()
    return account


async def _audit(
    tx: Transaction, principal: Principal, account: Any, action: str, **details: Any
) -> None:
    await record(
        tx,
        principal,
        tenant_id=account.home_tenant_id,
        action=action,
        object_type="Account",
        object_id=account.id,
        details=details or None,
    )


async def disable_account(tx: Transaction, principal: Principal, *, account_id: int) -> Any:
    """Stop the account: its sessions end now, and no new login succeeds."""
    account = await _managed_account(tx, principal, account_id, AccountAction.DISABLE)
    changed = await repository.set_active(tx, account.id, False)
    if changed is None:
        return account  # already disabled: nothing written, nothing audited
    revoked = await repository.revoke_account_sessions(tx, account.id, "disabled")
    tx.auth_changed(f"account:{account.id}")
    await _audit(tx, principal, account, "account.disable", sessions_revoked=revoked)
    return changed


async def enable_account(tx: Transaction, principal: Principal, *, account_id: int) -> Any:
    account = await _managed_account(tx, principal, account_id, AccountAction.ENABLE)
    changed = await repository.set_active(tx, account.id, True)
    if changed is None:
        return account
    tx.auth_changed(f"account:{account.id}")
    await _audit(tx, principal, account, "account.enable")
    return changed


async def reset_password(
    tx: Transaction, principal: Principal, *, account_id: int, password: str
) -> Any:
    """Set a new password (checked like any other) that its holder must change at the
    next login, end the account's sessions and forget its failed logins. Authorized
    before hashing: a refused caller costs no argon2 work."""
    account = await _managed_account(tx, principal, account_id, AccountAction.RESET_PASSWORD)
    problems = passwords.password_problems(password, username=account.username)
    if problems:
        raise WEAK_PASSWORD.error(problems="；".join(problems))
    await repository.set_password_hash(tx, account.id, passwords.hash_password(password))
    await repository.set_must_change_password(tx, account.id)  # the holder chooses their own
    revoked = await repository.revoke_account_sessions(tx, account.id, "password_reset")
    await repository.clear_failures_counted(tx, account.id)
    tx.auth_changed(f"account:{account.id}")
    await _audit(tx, principal, account, "account.reset_password", sessions_revoked=revoked)
    return account


async def unlock_account(tx: Transaction, principal: Principal, *, account_id: int) -> Any:
    """Lift a lockout (连续登录失败锁定) before its window ends."""
    account = await _managed_account(tx, principal, account_id, AccountAction.UNLOCK)
    cleared = await repository.clear_failures_counted(tx, account.id)
    if cleared:
        await _audit(tx, principal, account, "account.unlock", failures_cleared=cleared)
    return account
