"""Per-process caches of authentication: principals by login session, verified tokens.

A principal (account, grants, scope) is read once per login session and kept for a
short time. Whatever could change it, in any process, tells every process at once:
triggers on `accounts`, `auth_sessions`, `role_assignments` and `tenants` send a
PostgreSQL NOTIFY on the channel `pingyi_auth` when their transaction commits, and
each process LISTENs on its own connection and drops what the payload names.

Three things keep a stale entry from being used (and the request's guard, in
service/auth/service.py, catches what arrives too late for them):
- every lookup first applies what has already arrived on the listening socket
  (synchronously, not waiting for the event loop to get round to it);
- while the listener is not connected (start-up, a lost connection), nothing is
  cached, and what was cached is dropped when the connection is lost or made;
- an entry is stored only if no notification arrived while it was being read from the
  database (a generation counter), so a load that raced a revocation is not kept.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable, Iterable
from typing import Any

import psycopg

from service.auth.principal import Principal

log = logging.getLogger(__name__)

CHANNEL = "pingyi_auth"


class PrincipalCache:
    def __init__(self, url: str, *, ttl_seconds: float, max_entries: int = 10_000) -> None:
        self.url = url
        self.ttl_seconds = ttl_seconds
        self.max_entries = max_entries
        self.generation = 0
        self.live = False
        # Look-ups answered / not (the /metrics hit ratio)
        self.hits = 0
        self.misses = 0
        self._entries: OrderedDict[uuid.UUID, tuple[Principal, float]] = OrderedDict()
        self._task: asyncio.Task[None] | None = None
        self._conn: psycopg.AsyncConnection[Any] | None = None
        self._connected = asyncio.Event()
        # Called with each payload (and "*" when notifications may have been missed):
        # open WebSocket connections re-check their principal (service/schema/
        # subscriptions.py). Empty unless subscriptions are open.
        self.listeners: list[Callable[[str], None]] = []

    # --- entries ------------------------------------------------------------------

    def get(self, session_id: uuid.UUID) -> Principal | None:
        self.drain()
        entry = self._entries.get(session_id)
        if entry is None or not self.live:
            self.misses += 1
            return None
        principal, valid_until = entry
        if time.time() >= valid_until:
            del self._entries[session_id]
            self.misses += 1
            return None
        self.hits += 1
        return principal

    def put(self, principal: Principal, *, session_expires_at: float, generation: int) -> None:
        """Keep `principal` unless something changed since `generation` was read."""
        if not self.live or generation != self.generation or principal.session_id is None:
            return
        valid_until = min(time.time() + self.ttl_seconds, session_expires_at)
        self._entries[principal.session_id] = (principal, valid_until)
        self._entries.move_to_end(principal.session_id)
        while len(self._entries) > self.max_entries:
            self._entries.popitem(last=False)

    def invalidate(self, payload: str) -> None:
        """Drop what a notification names: `session:<uuid>`, `account:<id>`, or all."""
        self.generation += 1
        kind, _, value = payload.partition(":")
        if kind == "session":
            with contextlib.suppress(ValueError):
                self._entries.pop(uuid.UUID(value), None)
        elif kind == "account" and value.isdigit():
            account_id = int(value)
            for key in [k for k, (p, _) in self._entries.items() if p.account_id == account_id]:
                del self._entries[key]
        else:
            self._entries.clear()
        for listener in list(self.listeners):
            listener(payload)

    def apply(self, payloads: Iterable[str]) -> None:
        """Drop what each payload names (a committing transaction's own changes)."""
        for payload in payloads:
            self.invalidate(payload)

    def _set_live(self, live: bool) -> None:
        self.generation += 1
        self._entries.clear()
        self.live = live
        if live:
            self._connected.set()
            for listener in list(self.listeners):
                listener("*")  # what changed while the listener was down is unknown
        else:
            self._connected.clear()

    # --- the listener -------------------------------------------------------------

    def drain(self) -> None:
        """Apply every notification that has reached this process, without waiting.

        Called by `get` before every lookup, so a request never uses an entry that a
        notification already sitting on the socket has made stale, whether or not the
        event loop has run the reader callback yet."""
        conn = self._conn
        if conn is None:
            return
        pgconn = conn.pgconn
        try:
            pgconn.consume_input()
            while (note := pgconn.notifies()) is not None:
                self.invalidate(note.extra.decode())
        except psycopg.Error:
            self._lost()
            return
        if pgconn.status != psycopg.pq.ConnStatus.OK:
            self._lost()

    def start(self) -> None:
        """Start listening (idempotent); call from inside the serving event loop."""
        if self._conn is None and (self._task is None or self._task.done()):
            self._task = asyncio.get_running_loop().create_task(self._connect())

    async def wait_connected(self) -> None:
        """Until the listener is connected (tests and start-up checks)."""
        self.start()
        await self._connected.wait()

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._close()

    async def _connect(self) -> None:
        """Connect and LISTEN, retrying every second until it works."""
        while self._conn is None:
            try:
                conn: psycopg.AsyncConnection[Any] = await psycopg.AsyncConnection.connect(
                    self.url, autocommit=True
                )
                await conn.execute(f"LISTEN {CHANNEL}")
            except psycopg.Error as exc:
                log.warning("auth cache listener cannot connect: %s", type(exc).__name__)
                await asyncio.sleep(1.0)
                continue
            # From here on the connection is only read, by the loop's reader callback
            # and by `drain`; psycopg's own async machinery no longer touches it.
            self._conn = conn
            asyncio.get_running_loop().add_reader(conn.pgconn.socket, self.drain)
            self._set_live(True)

    def _close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(Exception):
                asyncio.get_running_loop().remove_reader(conn.pgconn.socket)
            with contextlib.suppress(Exception):
                conn.pgconn.finish()
        self._set_live(False)

    def _lost(self) -> None:
        log.warning("auth cache listener lost its connection; reconnecting")
        self._close()
        self.start()


class TokenCache:
    """Verified access tokens -> their claims, never past `exp` (bounded LRU).

    Verifying an ES256 signature costs far more than a lookup; a token is immutable,
    so its verification holds until it expires. Whether its session is still live is
    not cached here: that is the principal's business."""

    def __init__(self, max_entries: int = 10_000) -> None:
        self.max_entries = max_entries
        self._entries: OrderedDict[str, Any] = OrderedDict()
        # Look-ups answered / not (the /metrics hit ratio)
        self.hits = 0
        self.misses = 0

    def get(self, token: str) -> Any | None:
        claims = self._entries.get(token)
        if claims is None:
            self.misses += 1
            return None
        if claims.expires_at <= time.time():
            del self._entries[token]
            self.misses += 1
            return None
        self._entries.move_to_end(token)
        self.hits += 1
        return claims

    def put(self, token: str, claims: Any) -> None:
        self._entries[token] = claims
        if len(self._entries) > self.max_entries:
            self._entries.popitem(last=False)
