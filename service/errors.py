"""Expected failures: a stable upper-snake-case code and a Chinese message for the user.

Services raise `DomainError`; the GraphQL layer passes its code and message through
unmasked, while any other exception is masked. Messages never carry ID-card numbers
or phone numbers.
"""

from __future__ import annotations


class DomainError(Exception):
    """An expected, user-facing failure (`extensions.code` + Chinese message)."""

    code: str = "BAD_REQUEST"
    http_status: int = 400

    def __init__(self, code: str, message: str, *, http_status: int | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        if http_status is not None:
            self.http_status = http_status


def not_found(what: str = "对象") -> DomainError:
    """The one answer for "missing" and for "not yours", so ids reveal nothing."""
    return DomainError("NOT_FOUND", f"{what}不存在或无权访问", http_status=404)


def forbidden() -> DomainError:
    return DomainError("FORBIDDEN", "无权执行此操作", http_status=403)


def unauthenticated(message: str = "请先登录") -> DomainError:
    return DomainError("UNAUTHENTICATED", message, http_status=401)


def invalid(code: str, message: str) -> DomainError:
    return DomainError(code, message, http_status=400)
