"""Relay global ids: base64 of "Type:id", so an id says nothing about its tenant."""

from __future__ import annotations

import base64
import binascii
import functools

from service.errors import not_found
from service.pagination import fits_bigint


@functools.lru_cache(maxsize=65536)  # a list of units encodes the same ids again and again
def _encoded(type_name: str, local_id: int) -> str:
    return base64.urlsafe_b64encode(f"{type_name}:{local_id}".encode()).decode()


def to_global_id(type_name: str, local_id: int) -> str:
    return _encoded(type_name, int(local_id))


def from_global_id(global_id: str, expected: str | None = None) -> tuple[str, int]:
    """(type, id). A malformed id, or one of another type, is NOT_FOUND like a missing one."""
    try:
        raw = base64.urlsafe_b64decode(global_id.encode()).decode()
        type_name, _, local = raw.partition(":")
        local_id = int(local)
    except (ValueError, UnicodeDecodeError, binascii.Error) as exc:
        raise not_found() from exc
    if expected is not None and type_name != expected:
        raise not_found()
    # One id per object: " 4", "04", "+4", "٤" (non-ASCII digits) and extra padding all
    # parse to the same number, but only the form this service writes is accepted, so
    # an id can neither be varied to dodge a cache or a rate limit nor smuggle text.
    if to_global_id(type_name, local_id) != global_id:
        raise not_found()
    if not fits_bigint(local_id):
        raise not_found()
    return type_name, local_id
