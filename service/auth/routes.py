"""HTTP endpoints of authentication: /auth/token, /auth/refresh, /auth/logout, JWKS."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import parse_qsl

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from service.auth import service
from service.errors import INVALID_REQUEST, DomainError, unauthenticated

_OAUTH_ERROR = {401: "invalid_grant", 423: "invalid_grant", 403: "invalid_grant"}


def _error(exc: DomainError) -> JSONResponse:
    return JSONResponse(
        {
            "error": _OAUTH_ERROR.get(exc.http_status, "invalid_request"),
            "error_description": exc.message,
            "code": exc.code,
            "message": exc.message,
        },
        status_code=exc.http_status,
        headers={"Cache-Control": "no-store"},
    )


async def _form(request: Request) -> dict[str, Any]:
    """Accept OAuth-style form posts and JSON bodies alike."""
    content_type = request.headers.get("content-type", "")
    try:
        if content_type.startswith("application/json"):
            body = json.loads(await request.body() or b"{}")
            if not isinstance(body, dict):
                raise ValueError("body")
            return body
        if content_type.startswith("application/x-www-form-urlencoded"):
            pairs = parse_qsl((await request.body()).decode(), keep_blank_values=True)
            return dict(pairs)
        raise ValueError(content_type)
    except (ValueError, UnicodeDecodeError) as exc:
        raise INVALID_REQUEST.error() from exc


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


async def token(request: Request) -> JSONResponse:
    state = request.app.state.pingyi
    try:
        form = await _form(request)
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


async def jwks(request: Request) -> JSONResponse:
    return JSONResponse(request.app.state.pingyi.tokens.jwks)


routes = [
    Route("/auth/token", token, methods=["POST"]),
    Route("/auth/refresh", refresh_endpoint, methods=["POST"]),
    Route("/auth/logout", logout, methods=["POST"]),
    Route("/.well-known/jwks.json", jwks, methods=["GET"]),
]
