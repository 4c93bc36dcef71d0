"""Keyset pagination for every list (Relay cursor connections).

A list statement selects one more row than the page (`LIMIT first + 1`) after the
cursor's key; `Page.of` cuts the extra row off and says whether there is a next page.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from service.errors import INVALID_CURSOR, INVALID_PAGE_SIZE, PAGE_SIZE_EXCEEDED

T = TypeVar("T")

_CURSOR_PREFIX = "cursor:"


def fits_bigint(value: int) -> bool:
    """Whether `value` fits a bigint key column; nothing else may reach SQL."""
    return 0 <= value < 2**63


def encode_cursor(key: int) -> str:
    return base64.urlsafe_b64encode(f"{_CURSOR_PREFIX}{int(key)}".encode()).decode()


def decode_cursor(cursor: str) -> int:
    try:
        raw = base64.urlsafe_b64decode(cursor.encode()).decode()
        if not raw.startswith(_CURSOR_PREFIX):
            raise ValueError(raw)
        key = int(raw.removeprefix(_CURSOR_PREFIX))
        if not fits_bigint(key):
            raise ValueError(raw)
        return key
    except (ValueError, UnicodeDecodeError, binascii.Error) as exc:
        raise INVALID_CURSOR.error() from exc


def keyset(column: str = "id") -> str:
    """The tail of every list statement: after the cursor's key, in key order, one row
    more than the page. Its values are `PageRequest.params`."""
    return f"(%(after)s::bigint IS NULL OR {column} > %(after)s) ORDER BY {column} LIMIT %(limit)s"


@dataclass(frozen=True)
class PageRequest:
    first: int
    after: int | None = None

    @classmethod
    def parse(
        cls, first: int | None, after: str | None, *, default: int, maximum: int
    ) -> PageRequest:
        size = default if first is None else first
        if size < 1:
            raise INVALID_PAGE_SIZE.error()
        if size > maximum:
            raise PAGE_SIZE_EXCEEDED.error(maximum=maximum)
        return cls(first=size, after=None if after is None else decode_cursor(after))

    @property
    def params(self) -> dict[str, Any]:
        """The values of `keyset()`: the cursor's key (NULL on the first page) and
        one more than the page."""
        return {"after": self.after, "limit": self.first + 1}


@dataclass(frozen=True)
class Page(Generic[T]):
    items: Sequence[T]
    has_next_page: bool
    has_previous_page: bool

    @classmethod
    def of(cls, rows: Sequence[T], request: PageRequest) -> Page[T]:
        """The page from rows fetched with `request.params`."""
        return cls(
            items=rows[: request.first],
            has_next_page=len(rows) > request.first,
            has_previous_page=request.after is not None,
        )

    @classmethod
    def empty(cls) -> Page[Any]:
        return cls(items=(), has_next_page=False, has_previous_page=False)
