"""Expected failures: a stable upper-snake-case code and a Chinese message for the user.

Each domain declares its codes once, in its own `errors.py`, as `ErrorCode` constants;
services raise them by name (`ORG_UNIT_ARCHIVED.error()`). The GraphQL layer passes
a `DomainError`'s code and message through unmasked, while any other exception is
masked. Messages never carry ID-card numbers or phone numbers.

`ErrorCode.declared()` lists every code of every domain (for the client guide).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, ClassVar

_UPPER_SNAKE = re.compile(r"[A-Z][A-Z0-9]*(?:_[A-Z0-9]+)*")


class DomainError(Exception):
    """An expected, user-facing failure (`extensions.code` + Chinese message)."""

    def __init__(self, code: str, message: str, *, http_status: int = 400) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.http_status = http_status


@dataclass(frozen=True)
class ErrorCode:
    """One declared code: its name, its default message (a `str.format` template) and
    the HTTP status it answers with outside GraphQL."""

    code: str
    message: str
    http_status: int = 400

    _registry: ClassVar[dict[str, ErrorCode]] = {}

    def __post_init__(self) -> None:
        if not _UPPER_SNAKE.fullmatch(self.code):
            raise ValueError(f"error codes are UPPER_SNAKE_CASE: {self.code!r}")
        # One code may be declared for several situations with their own messages
        # (UNAUTHENTICATED: not logged in, session ended), never with another status.
        existing = ErrorCode._registry.setdefault(self.code, self)
        if existing.http_status != self.http_status:
            raise ValueError(f"error code {self.code} declared with two HTTP statuses")

    def error(self, message: str | None = None, /, **values: Any) -> DomainError:
        """The error to raise: the declared message filled with `values`, or a more
        specific `message` for this occasion."""
        text = message if message is not None else self.message.format(**values)
        return DomainError(self.code, text, http_status=self.http_status)

    @classmethod
    def declared(cls) -> dict[str, ErrorCode]:
        return dict(sorted(cls._registry.items()))


# Codes every domain uses.
NOT_FOUND = ErrorCode("NOT_FOUND", "{what}不存在或无权访问", 404)
FORBIDDEN = ErrorCode("FORBIDDEN", "无权执行此操作", 403)
UNAUTHENTICATED = ErrorCode("UNAUTHENTICATED", "请先登录", 401)
VERSION_CONFLICT = ErrorCode("VERSION_CONFLICT", "该{what}已被他人修改，请刷新后重试")
INVALID_CURSOR = ErrorCode("INVALID_CURSOR", "分页游标无效")
INVALID_PAGE_SIZE = ErrorCode("INVALID_PAGE_SIZE", "每页条数至少为 1")
PAGE_SIZE_EXCEEDED = ErrorCode("PAGE_SIZE_EXCEEDED", "每页最多 {maximum} 条")
INVALID_REQUEST = ErrorCode("INVALID_REQUEST", "请求格式无效")
REQUEST_TOO_LARGE = ErrorCode("REQUEST_TOO_LARGE", "请求体超过 {limit} 字节上限", 413)
# Availability: the service is busy (no database connection free in time), or one
# statement ran or waited for a lock longer than the configured limit. Both are worth
# retrying later (the answer carries Retry-After).
UNAVAILABLE = ErrorCode("UNAVAILABLE", "服务繁忙，请稍后重试", 503)
STATEMENT_TIMEOUT = ErrorCode("STATEMENT_TIMEOUT", "操作超时，请稍后重试或缩小查询范围", 503)
# Text the database cannot store (a NUL byte, a lone UTF-16 surrogate).
INVALID_INPUT = ErrorCode("INVALID_INPUT", "输入含有无效字符（如空字符或不成对的代理字符）")
# Transport refusals of /graphql, answered in JSON like every other error there.
METHOD_NOT_ALLOWED = ErrorCode("METHOD_NOT_ALLOWED", "GraphQL 仅接受 POST 请求", 405)
UNSUPPORTED_MEDIA_TYPE = ErrorCode(
    "UNSUPPORTED_MEDIA_TYPE", "请求内容类型应为 application/json", 415
)


def not_found(what: str = "对象") -> DomainError:
    """The one answer for "missing" and for "not yours", so ids reveal nothing."""
    return NOT_FOUND.error(what=what)


def forbidden() -> DomainError:
    return FORBIDDEN.error()


def unauthenticated(message: str | None = None) -> DomainError:
    return UNAUTHENTICATED.error(message)


def has_invalid_text(value: Any) -> bool:
    """Whether input holds text PostgreSQL cannot store or UTF-8 cannot encode: a NUL
    character or a lone surrogate (JSON `\\ud800` decodes to one), anywhere in nested
    dicts and lists. Such input is INVALID_INPUT at the edge, never a 500 later."""
    if isinstance(value, str):
        if "\x00" in value:
            return True
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return True
        return False
    if isinstance(value, dict):
        return any(has_invalid_text(k) or has_invalid_text(v) for k, v in value.items())
    if isinstance(value, list):
        return any(has_invalid_text(v) for v in value)
    return False
