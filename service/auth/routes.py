"""HTTP endpoints of authentication: /auth/token, /auth/refresh, /auth/logout, JWKS."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any
from urllib.parse import parse_qsl

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from service.auth import credentials, repository, service, wechat
from service.auth import wechat_login as wechat_login_service
from service.auth.errors import (
    ACCOUNT_DISABLED,
    INVALID_ENROLLMENT_TOKEN,
    TOO_MANY_LOGIN_ATTEMPTS,
)
from service.errors import (
    INVALID_INPUT,
    INVALID_REQUEST,
    DomainError,
    has_invalid_text,
    unauthenticated,
)

_OAUTH_ERROR = {401: "invalid_grant", 423: "invalid_grant", 403: "invalid_grant"}


def _error(exc: DomainError, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse(
        {
            "error": _OAUTH_ERROR.get(exc.http_status, "invalid_request"),
            "error_description": exc.message,
            "code": exc.code,
            "message": exc.message,
            # MFA_ENROLLMENT_REQUIRED carries the token the client enrols with
            **getattr(exc, "extra", {}),
        },
        status_code=exc.http_status,
        headers={"Cache-Control": "no-store", **(headers or {})},
    )


async def _form(request: Request) -> dict[str, Any]:
    """Accept OAuth-style form posts and JSON bodies alike."""
    content_type = request.headers.get("content-type", "")
    try:
        if content_type.startswith("application/json"):
            body = json.loads(await request.body() or b"{}")
            if not isinstance(body, dict):
                raise ValueError("body")
        elif content_type.startswith("application/x-www-form-urlencoded"):
            body = dict(parse_qsl((await request.body()).decode(), keep_blank_values=True))
        else:
            raise ValueError(content_type)
    except (ValueError, UnicodeDecodeError) as exc:
        raise INVALID_REQUEST.error() from exc
    if has_invalid_text(body):
        raise INVALID_INPUT.error()
    return body


def _tokens(pair: service.TokenPair) -> JSONResponse:
    return JSONResponse(
        {
            "access_token": pair.access_token,
            "token_type": "Bearer",
            "expires_in": pair.expires_in,
            "refresh_token": pair.refresh_token,
        },
        headers={"Cache-Control": "no-store"},
    )


async def _in_transaction(request: Request, work: Any) -> JSONResponse:
    """Run `work(tx)`. Writes made before a coded failure are kept on purpose: a
    failed login is counted, a replayed refresh token revokes its session."""
    state = request.app.state.pingyi
    tx = state.db.begin()
    try:
        response = await work(tx)
    except DomainError as exc:
        await tx.finish(commit=True)
        return _error(exc)
    except BaseException:
        await tx.finish(commit=False)
        raise
    await tx.finish(commit=True)
    return response


def _optional(form: dict[str, Any], name: str) -> str | None:
    value = form.get(name)
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise INVALID_REQUEST.error()
    return value


def _client(request: Request) -> str:
    return request.client.host if request.client is not None else ""


def _rate_limited(request: Request) -> JSONResponse | None:
    """The refusal of a login past the client address's `login_rate_per_minute`
    (/auth/token and /auth/wechat count together), or None."""
    state = request.app.state.pingyi
    wait = state.login_limiter.take(
        _client(request),
        rate_per_minute=state.settings.login_rate_per_minute,
        now=state.clock().timestamp(),
    )
    if not wait:
        return None
    seconds = int(wait)
    return _error(TOO_MANY_LOGIN_ATTEMPTS.error(seconds=seconds), {"Retry-After": str(seconds)})


async def token(request: Request) -> JSONResponse:
    """Password grant (with `otp` or `recovery_code` for an enrolled account, and
    `new_password` when the password must change) or refresh grant. Each client
    address may ask `login_rate_per_minute` times a minute, so one client cannot lock
    every account by walking usernames."""
    state = request.app.state.pingyi
    refused = _rate_limited(request)
    if refused is not None:
        return refused
    try:
        form = await _form(request)
        otp, recovery_code = _optional(form, "otp"), _optional(form, "recovery_code")
        new_password = _optional(form, "new_password")
    except DomainError as exc:
        return _error(exc)
    grant = form.get("grant_type", "password")
    if grant == "refresh_token":
        return await refresh(request, form)
    username, password = form.get("username"), form.get("password")
    if grant != "password" or not isinstance(username, str) or not isinstance(password, str):
        return _error(INVALID_REQUEST.error("请提供用户名和密码"))

    async def work(tx: Any) -> JSONResponse:
        pair = await service.login(
            tx,
            state.settings,
            state.tokens,
            username=username,
            password=password,
            otp=otp,
            recovery_code=recovery_code,
            new_password=new_password,
            now=state.clock(),
            request_id=request.scope.get("pingyi.request_id", ""),
        )
        return _tokens(pair)

    return await _in_transaction(request, work)


async def refresh(request: Request, form: dict[str, Any] | None = None) -> JSONResponse:
    state = request.app.state.pingyi
    if form is None:
        try:
            form = await _form(request)
        except DomainError as exc:
            return _error(exc)
    presented = form.get("refresh_token")
    if not isinstance(presented, str) or not presented:
        return _error(INVALID_REQUEST.error("请提供刷新令牌"))

    async def work(tx: Any) -> JSONResponse:
        pair = await service.refresh(
            tx,
            state.settings,
            state.tokens,
            refresh_token=presented,
            now=state.clock(),
            request_id=request.scope.get("pingyi.request_id", ""),
        )
        return _tokens(pair)

    return await _in_transaction(request, work)


async def refresh_endpoint(request: Request) -> JSONResponse:
    return await refresh(request)


async def logout(request: Request) -> JSONResponse:
    claims = request.scope.get("pingyi.claims")
    if claims is None:
        return _error(unauthenticated())

    async def work(tx: Any) -> JSONResponse:
        await service.logout(tx, claims, request_id=request.scope.get("pingyi.request_id", ""))
        return JSONResponse({"ok": True})

    return await _in_transaction(request, work)


async def _enrolling_account(request: Request, form: dict[str, Any], tx: Any) -> int:
    """Who enrols: the holder of an enrolment token (a login that needs a second factor
    first), or of a live session's access token (optional enrolment)."""
    state = request.app.state.pingyi
    presented = form.get("mfa_enrollment_token")
    if isinstance(presented, str) and presented:
        account_id = state.tokens.validate_enrollment_token(presented)
        if account_id is None:
            raise INVALID_ENROLLMENT_TOKEN.error()
        return account_id
    claims = request.scope.get("pingyi.claims")
    if claims is None:
        raise unauthenticated()
    cutoff = state.clock() - timedelta(seconds=state.settings.session_idle_seconds)
    session = await repository.session_state(tx, claims.session_id, cutoff)
    if session is None or not session.live or session.account_id != claims.account_id:
        raise unauthenticated()
    return int(claims.account_id)


async def _form_or_nothing(request: Request) -> dict[str, Any]:
    """`_form`, where an empty body (a bearer-authenticated call) is an empty form."""
    if not await request.body():
        return {}
    return await _form(request)


async def mfa_enroll(request: Request) -> JSONResponse:
    """Start a TOTP enrolment: the otpauth URI (for the phone app's QR code) and the
    recovery codes, shown this once."""
    try:
        form = await _form_or_nothing(request)
    except DomainError as exc:
        return _error(exc)

    async def work(tx: Any) -> JSONResponse:
        account_id = await _enrolling_account(request, form, tx)
        uri, codes = await credentials.begin_enrollment(
            tx, account_id, request_id=request.scope.get("pingyi.request_id", "")
        )
        return JSONResponse(
            {"otpauth_uri": uri, "recovery_codes": codes},
            headers={"Cache-Control": "no-store"},
        )

    return await _in_transaction(request, work)


async def mfa_confirm(request: Request) -> JSONResponse:
    """Confirm the enrolment with a first code. With an enrolment token this finishes
    the login: the answer is the session's tokens."""
    state = request.app.state.pingyi
    try:
        form = await _form(request)
        code = _optional(form, "otp") or ""
    except DomainError as exc:
        return _error(exc)

    async def work(tx: Any) -> JSONResponse:
        account_id = await _enrolling_account(request, form, tx)
        request_id = request.scope.get("pingyi.request_id", "")
        account = await credentials.confirm_enrollment(
            tx, account_id, code, now=state.clock(), request_id=request_id
        )
        if request.scope.get("pingyi.claims") is not None and not form.get("mfa_enrollment_token"):
            return JSONResponse({"ok": True}, headers={"Cache-Control": "no-store"})
        if not account.is_active:
            raise ACCOUNT_DISABLED.error()
        pair = await service.open_session(
            tx, state.settings, state.tokens, account, now=state.clock(), request_id=request_id
        )
        return _tokens(pair)

    return await _in_transaction(request, work)


async def wechat_login(request: Request) -> JSONResponse:
    """Mini-program login: `code` from `wx.login` (with `otp` or `recovery_code` for an
    account with a second factor). The same tokens as /auth/token when the WeChat user
    is bound to an account; WECHAT_NOT_BOUND otherwise (service/auth/wechat_login.py).
    Counted by the same per-address limit as /auth/token. WeChat is asked before the
    transaction opens, so no connection waits on it."""
    state = request.app.state.pingyi
    refused = _rate_limited(request)
    if refused is not None:
        return refused
    try:
        provider = wechat.provider(state.settings)
        form = await _form(request)
        otp, recovery_code = _optional(form, "otp"), _optional(form, "recovery_code")
        code = form.get("code")
        if not isinstance(code, str) or not code:
            raise INVALID_REQUEST.error("请提供微信登录凭证 code")
        identity = await provider.code2session(code)
    except DomainError as exc:
        # WeChat's limit is per user and minute; "busy" is worth a retry soon.
        retry = {429: "60", 503: "5"}.get(exc.http_status)
        return _error(exc, {"Retry-After": retry} if retry else None)

    async def work(tx: Any) -> JSONResponse:
        pair = await wechat_login_service.login(
            tx,
            state.settings,
            state.tokens,
            identity,
            otp=otp,
            recovery_code=recovery_code,
            now=state.clock(),
            request_id=request.scope.get("pingyi.request_id", ""),
        )
        return _tokens(pair)

    return await _in_transaction(request, work)


async def jwks(request: Request) -> JSONResponse:
    return JSONResponse(request.app.state.pingyi.tokens.jwks)


routes = [
    Route("/auth/token", token, methods=["POST"]),
    Route("/auth/refresh", refresh_endpoint, methods=["POST"]),
    Route("/auth/logout", logout, methods=["POST"]),
    Route("/auth/mfa/enroll", mfa_enroll, methods=["POST"]),
    Route("/auth/mfa/confirm", mfa_confirm, methods=["POST"]),
    Route("/auth/wechat", wechat_login, methods=["POST"]),
    Route("/.well-known/jwks.json", jwks, methods=["GET"]),
]
