"""Mini-program login with WeChat, and binding an account to a WeChat user.

`/auth/wechat` (service/auth/routes.py) exchanges a `wx.login` code through the
provider (service/auth/wechat.py) and, when the WeChat user is bound to an account,
opens a session exactly as `/auth/token` does: same tokens, same refusals. A WeChat
login stands in for the password only. It does not lift anything else:

- a locked (too many failed logins) or disabled account is refused as at `/auth/token`;
- an account whose password must change (set by someone else, or expired) is sent to
  the password login (PASSWORD_CHANGE_REQUIRED / PASSWORD_EXPIRED): a WeChat login
  must not let someone live on a password an administrator just reset;
- an account with a second factor needs `otp` or `recovery_code` in the same request
  (MFA_REQUIRED / INVALID_OTP, counted toward the lockout), and a role that requires
  a second factor without one enrolled gets MFA_ENROLLMENT_REQUIRED with its
  enrolment token, as `/auth/token` answers. A `wx.login` code is good once, so the
  client asks for the code again (`wx.login` is silent) to retry with `otp`.

A successful WeChat login does not clear the password's failure count: those failures
may be someone else guessing the password.

Binding (`bindWechat`) needs the holder's password, and the second factor when the
account has one (every role that requires one has one), in a logged-in session; it
replaces the account's earlier binding. `unbindWechat` needs the session only.
Both are audited in the account's home tenant, never with the openid.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from service import clock
from service.audit.service import Outcome, record, record_security_event
from service.auth import credentials, repository
from service.auth.errors import (
    ACCOUNT_DISABLED,
    PASSWORD_CHANGE_REQUIRED,
    PASSWORD_EXPIRED,
    WECHAT_ALREADY_BOUND,
    WECHAT_NOT_BOUND,
    WECHAT_NOT_BOUND_TO_ACCOUNT,
    WRONG_PASSWORD,
)
from service.auth.principal import Principal
from service.auth.service import (
    MfaEnrollmentRequired,
    TokenPair,
    _system_principal,
    open_session,
)
from service.auth.tokens import TokenService
from service.auth.wechat import WechatIdentity
from service.config import Settings
from service.crypto import field_cipher
from service.db import Transaction

METHOD = "wechat"


def openid_digest(identity: WechatIdentity) -> bytes:
    """The stored form of an openid: SM3-HMAC under the field cipher's index key (32
    bytes), over the app id and the openid. Tenant 0 salts it: a binding belongs to no
    tenant, and no tenant's index value starts with `wechat/`."""
    return field_cipher().index(f"wechat/{identity.app_id}/{identity.openid}", tenant_id=0)


async def login(
    tx: Transaction,
    settings: Settings,
    tokens: TokenService,
    identity: WechatIdentity,
    *,
    otp: str | None = None,
    recovery_code: str | None = None,
    now: datetime,
    request_id: str = "",
) -> TokenPair:
    """A session for the account bound to `identity` (see the module's rules). The
    caller commits even when this raises, so failures are counted and audited."""
    account = await repository.account_for_wechat(tx, openid_digest(identity))
    if account is None:
        await record_security_event(
            tx,
            action="auth.wechat_login_unbound",
            outcome=Outcome.FAILED,
            username=METHOD,
            object_type="WechatLogin",
            object_id=METHOD,
            request_id=request_id,
        )
        raise WECHAT_NOT_BOUND.error()
    tx.rescope(_system_principal(account, request_id).scope)
    if await credentials.locked_out(tx, settings, account.id, now):
        await _refused(tx, account, "auth.login_locked", request_id)
        raise credentials.lockout(settings)
    if not account.is_active:
        await _refused(tx, account, "auth.login_disabled", request_id)
        raise ACCOUNT_DISABLED.error()
    if account.must_change_password:
        raise PASSWORD_CHANGE_REQUIRED.error()
    if credentials.password_expired(settings, account, now):
        raise PASSWORD_EXPIRED.error()
    if account.totp_enabled_at is not None:
        await credentials.check_second_factor(
            tx, account, otp=otp, recovery_code=recovery_code, now=now, request_id=request_id
        )
    if await credentials.mfa_enrollment_required(tx, settings, account):
        raise MfaEnrollmentRequired(tokens.issue_enrollment_token(account.id))
    return await open_session(
        tx, settings, tokens, account, now=now, request_id=request_id, method=METHOD
    )


async def _refused(tx: Transaction, account: Any, action: str, request_id: str) -> None:
    await record_security_event(
        tx,
        action=action,
        outcome=Outcome.FAILED,
        username=account.username,
        account_id=account.id,
        tenant_id=account.home_tenant_id,
        request_id=request_id,
        details={"method": METHOD},
    )


async def bind(
    tx: Transaction,
    settings: Settings,
    principal: Principal,
    identity: WechatIdentity,
    *,
    password: str,
    otp: str | None = None,
    recovery_code: str | None = None,
) -> Any:
    """Bind the principal's account to the WeChat user: the password, and the second
    factor if the account has one, checked as at the login (wrong ones counted toward
    the lockout). WECHAT_ALREADY_BOUND when another account holds the WeChat user. The
    binding row (account id, when)."""
    assert principal.account_id is not None
    account = await repository.account_secrets(tx, principal.account_id)
    if account is None:
        raise WRONG_PASSWORD.error("密码错误")
    await credentials.check_session_password(tx, settings, account, password, message="密码错误")
    if account.totp_enabled_at is not None:
        await credentials.check_second_factor(
            tx,
            account,
            otp=otp,
            recovery_code=recovery_code,
            now=clock.now(tx),
            request_id=principal.request_id,
        )
    bound = await repository.bind_wechat(tx, account.id, identity.app_id, openid_digest(identity))
    if bound is None:
        raise WECHAT_ALREADY_BOUND.error()
    await _audit(tx, principal, account, "auth.wechat_bound")
    return bound


async def unbind(tx: Transaction, principal: Principal) -> None:
    """Remove the principal's own binding (WECHAT_NOT_BOUND_TO_ACCOUNT if none)."""
    assert principal.account_id is not None
    account = await repository.account_by_id(tx, principal.account_id)
    if account is None or not await repository.unbind_wechat(tx, account.id):
        raise WECHAT_NOT_BOUND_TO_ACCOUNT.error()
    await _audit(tx, principal, account, "auth.wechat_unbound")


async def bound_at(tx: Transaction, account_ids: Sequence[int]) -> list[datetime | None]:
    """For a DataLoader of `Account.wechatBoundAt`: when each account was bound, or None.
    The accounts were already shown to the caller (an Account is only ever built from
    an authorized read), so this adds no check of its own."""
    found = await repository.wechat_bound_at(tx, list(account_ids))
    return [found.get(account_id) for account_id in account_ids]


async def _audit(tx: Transaction, principal: Principal, account: Any, action: str) -> None:
    tx.widen([account.home_tenant_id])
    await record(
        tx,
        principal,
        tenant_id=account.home_tenant_id,
        action=action,
        object_type="Account",
        object_id=account.id,
    )
