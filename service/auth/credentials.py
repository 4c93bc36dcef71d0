"""Second factor (TOTP) and password changes: who must have which, and the checks.

MFA is required for the three administrators and county organizers (`MFA_ROLES`),
optional for everyone else. An account that must have it and has not enrolled gets no
session: its login answers MFA_ENROLLMENT_REQUIRED with an enrolment token that can do
nothing but enrol (`/auth/mfa/enroll`, then `/auth/mfa/confirm`, which opens the
session). Anyone logged in may enrol too (same endpoints with the access token).

A password is chosen by its holder: an account created by someone else
(createAccount, `pingyi create-admin`) must change it at its first login, and so must
a demo account outside `--demo` and, when `password_max_age_days` is set, a password
older than that. The new password follows the policy (service/auth/passwords.py) and
is none of the account's `PASSWORD_MEMORY` most recent passwords, the current one
included (argon2 hashes kept in `password_history`).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from graphql import GraphQLError

from service import clock
from service.audit.service import Outcome, record
from service.auth import mfa, passwords, repository
from service.auth.errors import (
    ACCOUNT_LOCKED,
    INVALID_OTP,
    MFA_ALREADY_ENROLLED,
    MFA_NOT_STARTED,
    MFA_REQUIRED,
    PASSWORD_REUSED,
    WEAK_PASSWORD,
    WRONG_PASSWORD,
)
from service.auth.principal import Principal
from service.authz.roles import Role
from service.config import Settings
from service.crypto import field_cipher
from service.db import Database, Transaction
from service.errors import DomainError

log = logging.getLogger(__name__)

PASSWORD_MEMORY = 5
MFA_ROLES = frozenset({Role.SYSTEM_ADMIN, Role.SECURITY_ADMIN, Role.AUDITOR, Role.COUNTY_ORGANIZER})


def _actor(account: Any, request_id: str) -> Principal:
    return Principal(
        account_id=account.id,
        username=account.username,
        grants=(),
        tenant_ids=frozenset({account.home_tenant_id}),
        request_id=request_id,
    )


async def _audit(
    tx: Transaction,
    account: Any,
    action: str,
    request_id: str,
    outcome: Outcome = Outcome.SUCCESS,
) -> None:
    """An event of the account's own credentials, in its home tenant's chain."""
    actor = _actor(account, request_id)
    tx.widen(actor.tenant_ids)
    await record(
        tx,
        actor,
        tenant_id=account.home_tenant_id,
        action=action,
        object_type="Account",
        object_id=account.id,
        outcome=outcome,
    )


async def mfa_enrollment_required(tx: Transaction, settings: Settings, account: Any) -> bool:
    """The account holds a role that needs a second factor and has none enabled."""
    if not settings.mfa_required or settings.demo_mode or account.totp_enabled_at is not None:
        return False
    roles = await repository.account_roles(tx, account.id)
    return any(role in MFA_ROLES for role in roles)


def password_change_due(settings: Settings, account: Any, password: str, now: datetime) -> bool:
    """Whether this login may not proceed before the password is changed: set by someone
    else, the public demo password outside `--demo`, or expired."""
    if account.must_change_password:
        return True
    if not settings.demo_mode:
        from service.demo import DEMO_PASSWORD

        if password == DEMO_PASSWORD:
            return True
    return password_expired(settings, account, now)


def password_expired(settings: Settings, account: Any, now: datetime) -> bool:
    """Whether the password is older than `password_max_age_days` (0: never expires)."""
    if settings.password_max_age_days <= 0:
        return False
    return bool(account.password_changed_at <= now - timedelta(days=settings.password_max_age_days))


def _secret_of(account: Any) -> str:
    sealed = field_cipher().open_bytes(
        account.totp_secret,
        tenant_id=account.home_tenant_id,
        table="accounts",
        column="totp_secret",
        row_id=account.id,
    )
    return sealed.decode()


async def check_second_factor(
    tx: Transaction,
    account: Any,
    *,
    otp: str | None,
    recovery_code: str | None,
    now: datetime,
    request_id: str,
) -> None:
    """A login of an enrolled account needs a current code or an unused recovery code
    (which is consumed). Missing: MFA_REQUIRED; wrong: INVALID_OTP (`SecretRefused`),
    counted as a failed login (the lockout bounds guessing) and audited."""
    if not otp and not recovery_code:
        raise MFA_REQUIRED.error()
    if otp:
        step = mfa.matching_step(_secret_of(account), otp, now, after_step=account.totp_last_step)
        if step is not None:
            await repository.accept_totp_step(tx, account.id, step, enable=False)
            return
    elif recovery_code and await repository.use_recovery_code(
        tx, account.id, mfa.recovery_code_hash(recovery_code)
    ):
        await _audit(tx, account, "auth.mfa_recovery_code_used", request_id)
        return
    await repository.add_failure(tx, account.id, now)
    await _audit(tx, account, "auth.mfa_failed", request_id, Outcome.FAILED)
    # A login commits what is written above; a mutation (bindWechat) rolls it back and
    # counts the refusal after the request instead.
    raise SecretRefused(INVALID_OTP.error(), account=account, action="auth.mfa_failed", at=now)


async def set_new_password(
    tx: Transaction, account: Any, new_password: str, *, request_id: str
) -> None:
    """Replace the password of `account` (a row with its hash), under the policy and the
    memory of recent passwords; audited."""
    problems = passwords.password_problems(new_password, username=account.username)
    if problems:
        raise WEAK_PASSWORD.error(problems="；".join(problems))
    recent = [
        account.password_hash,
        *await repository.password_history(tx, account.id, PASSWORD_MEMORY - 1),
    ]
    if any(passwords.verify_password(old, new_password) for old in recent):
        raise PASSWORD_REUSED.error(count=PASSWORD_MEMORY)
    await repository.replace_password(
        tx,
        account.id,
        account.password_hash,
        passwords.hash_password(new_password),
        keep=PASSWORD_MEMORY - 1,
    )
    await _audit(tx, account, "auth.password_changed", request_id)


@dataclass(frozen=True)
class AccountRef:
    """Who a refused secret was for: what its audit event needs, no secret of it."""

    id: int
    username: str
    home_tenant_id: int


class SecretRefused(DomainError):
    """A wrong password or second factor given by someone already logged in, before a
    change of the account's own credentials (changePassword, bindWechat), or such a
    change tried while the account is locked. The request's transaction rolls back with
    the error, so the refusal is audited after it, in a transaction of its own
    (`count_refused_secrets`, from service/schema/view.py), and a wrong secret counted
    as a failed login at the request's instant: guessing through a session meets the
    login's lockout."""

    def __init__(
        self,
        refused: DomainError,
        *,
        account: Any,
        action: str,
        at: datetime,
        counted: bool = True,
    ) -> None:
        super().__init__(refused.code, refused.message, http_status=refused.http_status)
        self.account = AccountRef(account.id, account.username, account.home_tenant_id)
        self.action = action
        self.at = at
        self.counted = counted


def lockout(settings: Settings) -> DomainError:
    """ACCOUNT_LOCKED, saying how long the window is."""
    return ACCOUNT_LOCKED.error(minutes=max(1, settings.login_window_seconds // 60))


async def locked_out(tx: Transaction, settings: Settings, account_id: int, now: datetime) -> bool:
    """Whether the account's failed logins in the window ending `now` reach the limit
    (the WeChat login and a logged-in holder's checks; the password login counts them
    itself, for its audit event)."""
    window_start = now - timedelta(seconds=settings.login_window_seconds)
    failures = await repository.failures_since(tx, account_id, window_start)
    return failures >= settings.login_max_failures


async def check_session_password(
    tx: Transaction, settings: Settings, account: Any, password: str, *, message: str | None = None
) -> None:
    """The password of a logged-in account, asked again before a change of its own
    credentials. ACCOUNT_LOCKED while the account's failed logins in the window reach
    the limit, as at the login; a wrong one is WRONG_PASSWORD, counted as a failed
    login (`SecretRefused`)."""
    now = clock.now(tx)
    if await locked_out(tx, settings, account.id, now):
        raise SecretRefused(
            lockout(settings), account=account, action="auth.login_locked", at=now, counted=False
        )
    if not passwords.verify_password(account.password_hash, password):
        refused = WRONG_PASSWORD.error(message) if message else WRONG_PASSWORD.error()
        raise SecretRefused(refused, account=account, action="auth.password_check_failed", at=now)


async def count_refused_secrets(
    db: Database, principal: Principal, errors: Sequence[GraphQLError] | None
) -> None:
    """Audit the `SecretRefused` answers among a GraphQL result's errors, and count the
    wrong secrets as failed logins of their accounts, in one short transaction of its
    own (the request's rolled back). A failure to write them is logged; the refusal
    stands either way."""
    refused = [
        error.original_error
        for error in errors or ()
        if isinstance(error.original_error, SecretRefused)
    ]
    if not refused:
        return
    try:
        async with db.transaction(principal.scope, write=True) as tx:
            for failure in refused:
                if failure.counted:
                    await repository.add_failure(tx, failure.account.id, failure.at)
                await _audit(
                    tx, failure.account, failure.action, principal.request_id, Outcome.FAILED
                )
    except Exception as exc:  # the database refused or went away: say so, keep the answer
        log.error("could not count %d refused password(s)", len(refused), exc_info=exc)


async def change_password(
    tx: Transaction,
    settings: Settings,
    principal: Principal,
    *,
    old_password: str,
    new_password: str,
) -> None:
    """The holder changes their own password (old one required, as at the login: wrong
    ones counted toward the lockout); their other sessions end, this one goes on."""
    assert principal.account_id is not None
    account = await repository.account_secrets(tx, principal.account_id)
    if account is None:
        raise WRONG_PASSWORD.error()
    await check_session_password(tx, settings, account, old_password)
    await set_new_password(tx, account, new_password, request_id=principal.request_id)
    await repository.revoke_account_sessions(
        tx, account.id, "password_changed", keep=principal.session_id
    )
    tx.auth_changed(f"account:{account.id}")


async def begin_enrollment(
    tx: Transaction, account_id: int, *, request_id: str
) -> tuple[str, list[str]]:
    """A new TOTP secret (sealed at rest) and recovery codes: (otpauth URI, codes). The
    codes are shown this once; only their digests are kept. Not active until confirmed."""
    account = await repository.account_secrets(tx, account_id)
    if account is None:
        raise MFA_NOT_STARTED.error()
    if account.totp_enabled_at is not None:
        raise MFA_ALREADY_ENROLLED.error()
    secret = mfa.new_secret()
    sealed = field_cipher().seal_bytes(
        secret.encode(),
        table="accounts",
        column="totp_secret",
        row_id=account.id,
        tenant_id=account.home_tenant_id,
    )
    codes = mfa.new_recovery_codes()
    await repository.start_totp(tx, account.id, sealed, [mfa.recovery_code_hash(c) for c in codes])
    await _audit(tx, account, "auth.mfa_enrollment_started", request_id)
    return mfa.provisioning_uri(secret, account.username), codes


async def confirm_enrollment(
    tx: Transaction, account_id: int, code: str, *, now: datetime, request_id: str
) -> Any:
    """Enable the pending secret with a first code from the phone; the account row."""
    account = await repository.account_secrets(tx, account_id)
    if account is None or account.totp_secret is None:
        raise MFA_NOT_STARTED.error()
    if account.totp_enabled_at is not None:
        raise MFA_ALREADY_ENROLLED.error()
    step = mfa.matching_step(_secret_of(account), code, now, after_step=account.totp_last_step)
    if step is None:
        await _audit(tx, account, "auth.mfa_failed", request_id, Outcome.FAILED)
        raise INVALID_OTP.error()
    await repository.accept_totp_step(tx, account.id, step, enable=True)
    await _audit(tx, account, "auth.mfa_enrolled", request_id)
    return account
