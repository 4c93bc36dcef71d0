"""Persisted queries: the Apollo protocol (APQ) and a trusted-documents mode.

A mini-program sends `extensions.persistedQuery = {version: 1, sha256Hash}` and no
`query`; the service runs the document it stored under that hash, or answers
`PERSISTED_QUERY_NOT_FOUND`, after which the client sends hash and full text once
(registering it: the hash must be the text's SHA-256, or `PERSISTED_QUERY_HASH_MISMATCH`).

Trusted documents (`PINGYI_TRUSTED_DOCUMENTS`): a JSON manifest made when the clients
are built, either `{sha256: document}` or Apollo's persisted-query manifest
(`{"format": "apollo-persisted-query-manifest", "operations": [{"id", "body"}]}`).
Then only its documents run, sent by hash or as their exact text; anything else is
`PERSISTED_QUERY_NOT_IN_LIST` and nothing is registered. Every road to execution asks
`resolve_request` (service/schema/view.py: a JSON POST, a streaming Accept, a multipart
upload's `operations`; service/schema/transport.py: a WebSocket `subscribe`). Every
id must be the SHA-256 of its document: a manifest that says otherwise stops the start,
not a request.

Resolution happens before execution and hands the view the plain text, so a hashed
request takes the same road as a plain one: strawberry's parser and validation caches
and the schema's prepared documents key on the text and keep hitting.

The APQ store is per process, bounded by the bytes of text it holds (least recently
used goes first): a hash that misses in one process is registered again there, which
the protocol already allows for. Only a request with a valid access token registers
(an anonymous one, the mass representatives' token ballot, runs its text unstored),
and the bound is what keeps a flood of documents from costing memory.

With `PINGYI_APQ_REDIS_URL` (the `redis` extra) the processes share a second level:
a document registered through one is found by all (`pingyi:apq:<sha256>`, kept
`REDIS_TTL_SECONDS` after its last registration; give that Redis a `maxmemory` and an
LRU eviction policy: that is its bound). The local store is asked first, so a hit
costs no round trip; Redis that fails or is slow (`REDIS_TIMEOUT_SECONDS`) counts as
a miss (the client sends the text again), and a document read back whose hash is not
its key is ignored.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import threading
from collections import OrderedDict
from pathlib import Path
from typing import Any

from service.errors import INVALID_REQUEST
from service.schema.errors import (
    PERSISTED_QUERY_HASH_MISMATCH,
    PERSISTED_QUERY_INVALID,
    PERSISTED_QUERY_NOT_FOUND,
    PERSISTED_QUERY_NOT_IN_LIST,
    PERSISTED_QUERY_NOT_SUPPORTED,
)

_SHA256_HEX = re.compile(r"[0-9a-fA-F]{64}")
log = logging.getLogger("pingyi.graphql")

REDIS_PREFIX = "pingyi:apq:"
REDIS_TTL_SECONDS = 7 * 24 * 3600
REDIS_TIMEOUT_SECONDS = 0.25


def sha256_hex(document: str) -> str:
    """The APQ hash of a document: SHA-256 of its UTF-8 text, lowercase hex."""
    return hashlib.sha256(document.encode("utf-8")).hexdigest()


class DocumentStore:
    """hash -> document, least recently used first out, at most `budget` bytes of text."""

    def __init__(self, budget: int) -> None:
        self.budget = budget
        self.used = 0
        self._documents: OrderedDict[str, str] = OrderedDict()
        # Several workers' threads never share it (one event loop per process), but the
        # CLI and tests may: a lock is cheap next to a request.
        self._lock = threading.Lock()

    def get(self, key: str) -> str | None:
        with self._lock:
            found = self._documents.get(key)
            if found is not None:
                self._documents.move_to_end(key)
            return found

    def put(self, key: str, document: str) -> None:
        size = len(document.encode("utf-8"))
        if size > self.budget:
            return
        with self._lock:
            previous = self._documents.pop(key, None)
            if previous is not None:
                self.used -= len(previous.encode("utf-8"))
            self._documents[key] = document
            self.used += size
            while self.used > self.budget:
                _, evicted = self._documents.popitem(last=False)
                self.used -= len(evicted.encode("utf-8"))

    def __len__(self) -> int:
        return len(self._documents)


class RedisDocuments:
    """The store every process shares (see the module docstring)."""

    def __init__(self, url: str, *, prefix: str = REDIS_PREFIX) -> None:
        import redis.asyncio  # the optional `redis` extra, needed only with this setting

        self.prefix = prefix
        self.client = redis.asyncio.from_url(
            url,
            socket_timeout=REDIS_TIMEOUT_SECONDS,
            socket_connect_timeout=REDIS_TIMEOUT_SECONDS,
            decode_responses=True,
        )

    async def get(self, key: str) -> str | None:
        try:
            found = await self.client.get(self.prefix + key)
        except Exception as exc:  # Redis down or slow: a miss, never a failed request
            log.warning("persisted-query store unavailable: %s", type(exc).__name__)
            return None
        if not isinstance(found, str) or sha256_hex(found) != key:
            return None
        return found

    async def put(self, key: str, document: str) -> None:
        try:
            await self.client.set(self.prefix + key, document, ex=REDIS_TTL_SECONDS)
        except Exception as exc:
            log.warning("persisted-query store unavailable: %s", type(exc).__name__)


def load_manifest(path: Path) -> dict[str, str]:
    """The trusted documents of a manifest file, by lowercase SHA-256 hex."""
    raw = json.loads(path.read_text(encoding="utf-8"))
    if isinstance(raw, dict) and isinstance(raw.get("operations"), list):
        pairs = [(op.get("id"), op.get("body")) for op in raw["operations"]]
    elif isinstance(raw, dict):
        pairs = list(raw.items())
    else:
        raise ValueError(f"{path}: expected a JSON object of sha256 -> document")
    documents: dict[str, str] = {}
    for key, document in pairs:
        if not isinstance(key, str) or not isinstance(document, str):
            raise ValueError(f"{path}: every entry is a sha256 string and a document string")
        if sha256_hex(document) != key.lower():
            raise ValueError(f"{path}: {key} is not the SHA-256 of its document")
        documents[key.lower()] = document
    return documents


class PersistedQueries:
    """What a request's `query` and `extensions.persistedQuery` amount to."""

    def __init__(
        self,
        *,
        cache_bytes: int,
        trusted: dict[str, str] | None = None,
        shared: RedisDocuments | None = None,
    ) -> None:
        self.trusted = trusted
        self.store = DocumentStore(cache_bytes) if cache_bytes > 0 and trusted is None else None
        self.shared = shared if self.store is not None else None

    @classmethod
    def from_settings(cls, settings: Any) -> PersistedQueries:
        path = settings.trusted_documents_file
        redis_url = getattr(settings, "apq_redis_url", None)
        return cls(
            cache_bytes=settings.apq_cache_bytes,
            trusted=load_manifest(path) if path is not None else None,
            shared=RedisDocuments(redis_url) if redis_url else None,
        )

    async def resolve_request(
        self, query: Any, extensions: Any, *, register: bool = True
    ) -> str | None:
        """`resolve` for a request's `query` and `extensions` as sent, whichever road it
        came by (a JSON body, a multipart upload's `operations`, a WebSocket `subscribe`
        payload): the one check every road shares, so trusted mode has no way around."""
        if not isinstance(query, str | None):
            raise INVALID_REQUEST.error("参数 query 应为字符串")
        if not isinstance(extensions, dict | None):
            raise INVALID_REQUEST.error("参数 extensions 应为对象")
        extension = None if extensions is None else extensions.get("persistedQuery")
        return await self.resolve(query, extension, register=register)

    async def resolve(
        self, query: str | None, extension: Any, *, register: bool = True
    ) -> str | None:
        """The document to run (None: the request named none), or a DomainError.

        `extension` is `extensions.persistedQuery` as sent (None when absent); with
        `register` false a hash and text run without being stored."""
        key = None if extension is None else _hash_of(extension)
        if key is not None and query is not None and sha256_hex(query) != key:
            raise PERSISTED_QUERY_HASH_MISMATCH.error()
        if self.trusted is not None:
            if key is None and query is None:
                return None
            document = self.trusted.get(key if key is not None else sha256_hex(query or ""))
            if document is None:
                raise PERSISTED_QUERY_NOT_IN_LIST.error()
            return document
        if key is None:
            return query
        if self.store is None:
            raise PERSISTED_QUERY_NOT_SUPPORTED.error()
        if query is not None and not register:
            return query
        if query is not None:
            # Registration (the hash was checked above): rare, a client sends the text
            # only after a miss somewhere, so the shared store always hears of it.
            self.store.put(key, query)
            if self.shared is not None:
                await self.shared.put(key, query)
            return query
        found = self.store.get(key)
        if found is None and self.shared is not None:
            found = await self.shared.get(key)
            if found is not None:
                self.store.put(key, found)
        if found is None:
            raise PERSISTED_QUERY_NOT_FOUND.error()
        return found


def _hash_of(extension: Any) -> str:
    """The lowercase hash of a well-formed `persistedQuery` extension."""
    version = extension.get("version") if isinstance(extension, dict) else None
    if type(version) is not int or version != 1:  # `true == 1` in Python, not here
        raise PERSISTED_QUERY_INVALID.error()
    key = extension.get("sha256Hash")
    if not isinstance(key, str) or not _SHA256_HEX.fullmatch(key):
        raise PERSISTED_QUERY_INVALID.error()
    return key.lower()
