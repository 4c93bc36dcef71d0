"""Keyset pagination for every list (Relay cursor connections)."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from sqlalchemy import Select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute

from service.errors import invalid

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
        raise invalid("INVALID_CURSOR", "分页游标无效") from exc


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
            raise invalid("INVALID_PAGE_SIZE", "每页条数至少为 1")
        if size > maximum:
            raise invalid("PAGE_SIZE_EXCEEDED", f"每页最多 {maximum} 条")
        return cls(first=size, after=None if after is None else decode_cursor(after))


@dataclass(frozen=True)
class Page(Generic[T]):
    items: Sequence[T]
    has_next_page: bool
    has_previous_page: bool


async def fetch_page(
    session: AsyncSession,
    stmt: Select[Any],
    key: InstrumentedAttribute[int],
    request: PageRequest,
) -> Page[Any]:
    """Rows of `stmt` ordered by `key`, after the cursor, at most `first` of them."""
    if request.after is not None:
        stmt = stmt.where(key > request.after)
    rows = list((await session.scalars(stmt.order_by(key).limit(request.first + 1))).all())
    return Page(
        items=rows[: request.first],
        has_next_page=len(rows) > request.first,
        has_previous_page=request.after is not None,
    )
