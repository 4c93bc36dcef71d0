"""The WeChat provider: a mini-program's `wx.login` code exchanged for the user's openid.

A provider is anything with `async code2session(code) -> WechatIdentity` that raises
the stable codes below (`WechatProvider`). The service has one, `Code2Session`, which
speaks to WeChat's `auth.code2Session` endpoint as its documentation describes:

    GET {base}/sns/jscode2session?appid=APPID&secret=SECRET&js_code=CODE
        &grant_type=authorization_code

answered (HTTP 200, JSON, often served as `text/plain`) with `openid`, `session_key`,
`unionid` (only when the UnionID conditions hold) or `errcode`/`errmsg`. The codes and
what a client is told:

| errcode | WeChat's meaning | code here |
|---|---|---|
| 40029, 40163 | invalid code / code already used | WECHAT_CODE_INVALID (401) |
| 45011 | rate limit (100 a minute per user) | WECHAT_RATE_LIMITED (429) |
| 40226 | high-risk user, login blocked | WECHAT_RISKY_USER (403) |
| -1 | system busy | WECHAT_UNAVAILABLE (503) |
| anything else, no answer, not JSON, no openid | | WECHAT_UNAVAILABLE (503) |

"Anything else" includes a wrong app id or secret (40013, 40125): the deployment's
fault, not the user's, so it is logged (code only) and answered as unavailable.

The `session_key` (what decrypts the user's data on the mini-program side) is dropped
here, in the one place that sees it: it is not returned, stored or logged, and no log
line carries a response body or the request URL (which holds the secret and the code).
Tests run `tests/auth/wechat_server.py`, a real HTTP server on 127.0.0.1 answering as
the documentation says; the base URL is a setting (`PINGYI_WECHAT_API_BASE`).
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from typing import Protocol

import httpx

from service.auth.errors import (
    WECHAT_CODE_INVALID,
    WECHAT_NOT_CONFIGURED,
    WECHAT_RATE_LIMITED,
    WECHAT_RISKY_USER,
    WECHAT_UNAVAILABLE,
)
from service.config import Settings
from service.errors import ErrorCode

log = logging.getLogger("pingyi.auth.wechat")


class _WithoutCode2SessionUrls(logging.Filter):
    """httpx logs each request's URL at INFO; code2session's holds the app secret and
    the user's code, so those records are dropped (whatever level logging is set to)."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "jscode2session" not in record.getMessage()


logging.getLogger("httpx").addFilter(_WithoutCode2SessionUrls())
logging.getLogger("httpcore").addFilter(_WithoutCode2SessionUrls())

# WeChat's errcode -> the stable code a client sees. Unlisted codes: WECHAT_UNAVAILABLE.
ERRCODES: dict[int, ErrorCode] = {
    40029: WECHAT_CODE_INVALID,
    40163: WECHAT_CODE_INVALID,
    45011: WECHAT_RATE_LIMITED,
    40226: WECHAT_RISKY_USER,
    -1: WECHAT_UNAVAILABLE,
}
# A wx.login code is a short printable token (32 characters today); anything far from
# that is refused before it reaches WeChat, so no odd text lands in its query string.
MAX_CODE_LENGTH = 128


@dataclass(frozen=True)
class WechatIdentity:
    """Who WeChat says the user is, for this mini-program. No session_key, on purpose."""

    app_id: str
    openid: str
    unionid: str | None = None


class WechatProvider(Protocol):
    """Exchanges a `wx.login` code; raises DomainErrors with the WECHAT_* codes."""

    async def code2session(self, code: str) -> WechatIdentity: ...


def valid_code(code: object) -> bool:
    return (
        isinstance(code, str)
        and 0 < len(code) <= MAX_CODE_LENGTH
        and all(c.isascii() and (c.isalnum() or c in "-_.~") for c in code)
    )


def outcome(app_id: str, answer: object) -> WechatIdentity:
    """A code2session answer (parsed JSON) as an identity, or the stable error it means.
    Pure: the worked examples of the mapping test it without a server."""
    if not isinstance(answer, dict):
        raise WECHAT_UNAVAILABLE.error()
    errcode = answer.get("errcode", 0)
    if errcode not in (0, None):
        mapped = ERRCODES.get(errcode) if isinstance(errcode, int) else None
        if mapped is None:
            log.warning("wechat code2session refused: errcode %s", errcode)
            mapped = WECHAT_UNAVAILABLE
        raise mapped.error()
    openid = answer.get("openid")
    if not isinstance(openid, str) or not openid:
        raise WECHAT_UNAVAILABLE.error()
    unionid = answer.get("unionid")
    return WechatIdentity(
        app_id=app_id, openid=openid, unionid=unionid if isinstance(unionid, str) else None
    )


@dataclass(frozen=True)
class Code2Session:
    """WeChat's `auth.code2Session` over HTTPS (any base URL: tests use a local one)."""

    app_id: str
    secret: str
    base_url: str = "https://api.weixin.qq.com"
    timeout: float = 5.0

    async def code2session(self, code: str) -> WechatIdentity:
        if not valid_code(code):
            raise WECHAT_CODE_INVALID.error()
        params = {
            "appid": self.app_id,
            "secret": self.secret,
            "js_code": code,
            "grant_type": "authorization_code",
        }
        # A client per exchange: logins are rare, and nothing outlives the event loop.
        try:
            async with httpx.AsyncClient(timeout=self.timeout, follow_redirects=False) as http:
                response = await http.get(
                    self.base_url.rstrip("/") + "/sns/jscode2session", params=params
                )
        except httpx.HTTPError as exc:
            # The exception's text names the URL, which holds the secret: type only.
            log.warning("wechat code2session unreachable: %s", type(exc).__name__)
            raise WECHAT_UNAVAILABLE.error() from None
        if response.status_code != 200:
            log.warning("wechat code2session answered HTTP %s", response.status_code)
            raise WECHAT_UNAVAILABLE.error()
        try:
            answer = json.loads(response.content)
        except ValueError:
            raise WECHAT_UNAVAILABLE.error() from None
        return outcome(self.app_id, answer)


def provider(settings: Settings) -> WechatProvider:
    """The configured provider; WECHAT_NOT_CONFIGURED without an app id and secret."""
    if not settings.wechat_app_id or not settings.wechat_app_secret:
        raise WECHAT_NOT_CONFIGURED.error()
    return Code2Session(
        app_id=settings.wechat_app_id,
        secret=settings.wechat_app_secret,
        base_url=settings.wechat_api_base,
        timeout=settings.wechat_timeout_seconds,
    )
