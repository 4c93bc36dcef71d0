"""GraphQL subscriptions (实时推送): the connection's principal and each event's unit of work.

A WebSocket connection on /graphql (protocol `graphql-transport-ws`, service/schema/
transport.py) authenticates once, with `connection_init`'s payload
`{"authorization": "Bearer <access token>"}`, checked as the HTTP bearer is (token,
live session, active account, principal loaded). From then on:

- every event a subscription receives is resolved in a fresh, short, read-only
  transaction with the principal's scope (both locks: Casbin in the domain's `select`,
  RLS in the database), the principal taken as a request takes it (cached, with the
  guard riding in the first statement; read again if the guard says it was stale):
  a subscription sees only what its principal may see at that moment;
- a notification that the session or account changed (`pingyi_auth`, any process)
  makes the connection read its principal again at once; a revoked session, a
  disabled account or an idle-timed-out session closes it with 4403, as does the
  expiry of the access token it was opened with (clients reconnect with a fresh one).

A domain writes a subscription as an async generator over `deliveries(info, topic,
accept=..., select=...)`: `accept(principal, payload)` is a cheap pre-filter on the
event's ids and paths (no statement), `select(context, payload)` reads what the
subscriber sees (None: not for this subscriber; NOT_FOUND and FORBIDDEN count as None).
It yields `Delivery` objects; the executor (service/schema/root.py) resolves each in
its own transaction and ends that transaction when the event's result is complete.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from service.auth.principal import Principal
from service.auth.service import RequestPrincipal, principal_for_request
from service.auth.tokens import AccessClaims
from service.errors import DomainError
from service.schema.context import Context

log = logging.getLogger("pingyi.subscriptions")

# What a subscription's `select` may raise to say "not for this subscriber".
_UNSEEN = frozenset({"NOT_FOUND", "FORBIDDEN"})
# Close code of the protocol for a refused or ended authentication.
FORBIDDEN_CLOSE = 4403

Accept = Callable[[Principal, dict[str, Any]], bool]
Select = Callable[[Context, dict[str, Any]], Awaitable[Any]]


class ConnectionClosed(Exception):
    """The connection was closed (its principal is gone): the subscription ends."""


@dataclass
class SubscriptionConnection:
    """One WebSocket connection: `info.context` of a subscription's root field.

    `state` is the app's AppState, `websocket` Starlette's WebSocket. `claims` and
    `principal` are set by `authenticate` (connection_init)."""

    state: Any
    websocket: Any
    request_id: str = ""
    connection_params: dict[str, Any] | None = None
    claims: AccessClaims | None = None
    principal: Principal | None = None
    closed: bool = False
    _tasks: set[asyncio.Task[Any]] = field(default_factory=set)
    _listening: bool = False

    # --- authentication -----------------------------------------------------------

    async def authenticate(self, params: dict[str, Any] | None) -> bool:
        """Check `connection_init`'s payload: a bearer access token of a live session
        of an active account. True when the connection may go on."""
        state = self.state
        value = (params or {}).get("authorization")
        scheme, _, token = value.partition(" ") if isinstance(value, str) else ("", "", "")
        claims = (
            state.tokens.validate_access_token(token.strip())
            if scheme.lower() == "bearer" and token.strip()
            else None
        )
        if claims is None:
            return False
        self.claims = claims
        try:
            loaded = await self._load(use_cache=False)
        except DomainError:
            return False
        self.principal = loaded.principal
        self._watch()
        return True

    async def _load(self, *, use_cache: bool) -> RequestPrincipal:
        state = self.state
        assert self.claims is not None
        state.principals.start()
        return await principal_for_request(
            state.db,
            self.claims,
            cache=state.principals,
            request_id=self.request_id,
            use_cache=use_cache,
            now=state.clock(),
            idle_seconds=state.settings.session_idle_seconds,
        )

    def _watch(self) -> None:
        """Hear every change of who may do what; close when the token expires."""
        assert self.claims is not None
        if not self._listening:
            self.state.principals.listeners.append(self._auth_changed)
            self._listening = True
        remaining = max(0.0, self.claims.expires_at - time.time())
        self._spawn(self._expire_after(remaining))

    def _auth_changed(self, payload: str) -> None:
        """Called by the principal cache with each `pingyi_auth` notification (any
        process) and with this process's own commits: read the principal again when
        it names this session or account, or when notifications may have been missed."""
        if self.closed or self.claims is None:
            return
        kind, _, value = payload.partition(":")
        if (
            (kind == "session" and value == str(self.claims.session_id))
            or (kind == "account" and value == str(self.claims.account_id))
            or kind == "*"
        ):
            self._spawn(self.recheck())

    async def recheck(self) -> None:
        """Read the principal afresh; close the connection if it is gone."""
        try:
            loaded = await self._load(use_cache=False)
        except DomainError as exc:
            if exc.code == "UNAVAILABLE":
                return  # busy now; the next event checks again
            await self.close(FORBIDDEN_CLOSE, "会话已结束")
            return
        self.principal = loaded.principal

    async def _expire_after(self, seconds: float) -> None:
        await asyncio.sleep(seconds)
        await self.close(FORBIDDEN_CLOSE, "访问令牌已过期")

    def _spawn(self, coroutine: Any) -> None:
        task = asyncio.get_running_loop().create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def close(self, code: int, reason: str) -> None:
        if self.closed:
            return
        self.closed = True
        with contextlib.suppress(RuntimeError, OSError):
            await self.websocket.close(code=code, reason=reason)

    def dispose(self) -> None:
        """The connection is over: stop listening and cancel its timers."""
        self.closed = True
        if self._listening:
            with contextlib.suppress(ValueError):
                self.state.principals.listeners.remove(self._auth_changed)
            self._listening = False
        for task in list(self._tasks):
            if task is not asyncio.current_task():
                task.cancel()

    # --- events -------------------------------------------------------------------

    async def event_context(self, *, use_cache: bool = True) -> Context:
        """A fresh read-only transaction with the principal's scope, for one event.
        A principal that is gone closes the connection (ConnectionClosed)."""
        try:
            loaded = await self._load(use_cache=use_cache)
        except DomainError as exc:
            if exc.code != "UNAVAILABLE":
                await self.close(FORBIDDEN_CLOSE, "会话已结束")
                raise ConnectionClosed() from exc
            raise
        self.principal = loaded.principal
        state = self.state
        tx = state.db.begin(loaded.principal.scope, write=False, guard=loaded.guard)
        return Context(
            tx=tx,
            principal=loaded.principal,
            settings=state.settings,
            request=self.websocket,
        )

    async def deliver(self, payload: dict[str, Any], select: Select) -> Delivery | None:
        """What `select` makes of the event for this connection's principal, with the
        transaction still open for the fields the subscriber asked for; None when the
        event is not for it."""
        use_cache = True
        while True:
            context = await self.event_context(use_cache=use_cache)
            tx = context.tx
            try:
                value = await select(context, payload)
                confirmed = await tx.confirm()
            except Exception as exc:
                await tx.finish(commit=False)
                if tx.stale and use_cache:
                    use_cache = False  # the cached principal was out of date: again
                    continue
                if isinstance(exc, DomainError) and exc.code in _UNSEEN:
                    return None
                raise
            except BaseException:
                await tx.finish(commit=False)
                raise
            if not confirmed and use_cache:
                await tx.finish(commit=False)
                use_cache = False
                continue
            if value is None:
                await tx.finish(commit=False)
                return None
            return Delivery(context, value)


@dataclass(frozen=True)
class Delivery:
    """One event as one subscriber sees it: the root value of the event's execution
    and the context (with its open transaction) the execution runs in."""

    context: Context
    value: Any


async def deliveries(
    info: Any, topic: str, *, select: Select, accept: Accept | None = None
) -> AsyncIterator[Any]:
    """The events of `topic` this subscription's principal may see, as `Delivery`
    objects for the executor. Ends with EVENTS_INTERRUPTED if events may have been
    missed, and quietly when the connection is closed."""
    connection = info.context
    if not isinstance(connection, SubscriptionConnection) or connection.principal is None:
        raise RuntimeError("subscriptions are served over the WebSocket transport")
    hub = connection.state.events
    async with await hub.subscribe(topic) as subscriber:
        async for event in subscriber:
            principal = connection.principal
            if connection.closed or principal is None:
                return
            if accept is not None and not accept(principal, event.payload):
                continue
            try:
                delivery = await connection.deliver(event.payload, select)
            except ConnectionClosed:
                return
            if delivery is not None:
                yield delivery


def bind_delivery(executor: Any, payload: Any) -> Any:
    """Make a per-event executor run a `Delivery` in its own context and transaction,
    ending the transaction once the event's result is complete. Other payloads (no
    such subscription exists today) run as graphql-core runs them."""
    if not isinstance(payload, Delivery):
        return executor
    context = payload.context
    executor.root_value = payload.value
    executor.context_value = context
    executor.background_futures = set()
    context.background_work = executor.background_futures
    run = executor.execute_operation

    async def execute_operation(serially: bool | None = None) -> Any:
        try:
            result = run(serially)
            if executor.is_awaitable(result):
                result = await result
            while pending := [f for f in context.background_work if not f.done()]:
                await asyncio.wait(pending)
            return result
        finally:
            await context.tx.finish(commit=False)

    executor.execute_operation = execute_operation
    return executor
