"""Events between service processes (事件总线): PostgreSQL NOTIFY in, local queues out.

A service that changes something others watch live calls `publish(tx, topic, payload)`
inside the request's own transaction. PostgreSQL holds the NOTIFY until COMMIT and
drops it on ROLLBACK, so an event is delivered exactly when its change is visible:
never for a write that failed, never before the row can be read.

Every process has one `EventHub`: one connection LISTENing on `pingyi_events`
(reconnecting, like the principal cache's listener), which fans each event out to the
local subscribers of its topic (the GraphQL subscriptions of this process's WebSocket
connections). Whichever process a write went through, every process hears it: that is
what lets several processes serve subscriptions behind a load balancer.

Payloads are small and name things (ids, org paths, states), never personal data: a
subscriber reads what it may see in a transaction of its own, with its principal's
scope (service/schema/subscriptions.py). NOTIFY payloads are limited to 8000 bytes;
`publish` refuses one over MAX_PAYLOAD_BYTES.

Each subscriber has a bounded queue. A subscriber that falls behind by more than its
queue is ended (EVENTS_INTERRUPTED) rather than slowing the others or growing without
bound; so is every subscriber when the listening connection is lost, because events
of the gap are gone: the client reloads and subscribes again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from collections import deque
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import orjson
import psycopg

from service.errors import DomainError
from service.events.errors import EVENTS_INTERRUPTED

log = logging.getLogger(__name__)

__all__ = [
    "CHANNEL",
    "MAX_PAYLOAD_BYTES",
    "Event",
    "EventHub",
    "Subscriber",
    "encode",
    "publish",
    "subscribe",
]

CHANNEL = "pingyi_events"
# PostgreSQL refuses a NOTIFY payload of 8000 bytes or more (the default build).
MAX_PAYLOAD_BYTES = 7900
QUEUE_SIZE = 256
_TOPIC = re.compile(r"[a-z][a-z0-9_.]{0,62}")
_SCALARS = (str, int, float, bool, type(None))


@dataclass(frozen=True)
class Event:
    topic: str
    payload: dict[str, Any]


def encode(topic: str, payload: dict[str, Any]) -> str:
    """The NOTIFY text of an event, after checking it is small and flat: a topic name
    and a dict of names to scalars (or lists of scalars): ids, paths and states."""
    if not _TOPIC.fullmatch(topic):
        raise ValueError(f"invalid event topic {topic!r}")
    for key, value in payload.items():
        if not isinstance(key, str):
            raise TypeError("event payload keys are strings")
        items = value if isinstance(value, list | tuple) else (value,)
        if not all(isinstance(item, _SCALARS) for item in items):
            raise TypeError(f"event payload value {key!r} is not a scalar")
    text = orjson.dumps({"topic": topic, "payload": payload}).decode()
    if len(text.encode()) > MAX_PAYLOAD_BYTES:
        raise ValueError(f"event payload of {topic!r} over {MAX_PAYLOAD_BYTES} bytes")
    return text


async def publish(tx: Any, topic: str, payload: dict[str, Any]) -> None:
    """Announce `payload` on `topic` when `tx` commits (nothing if it rolls back).

    `tx` is the request's writing `service.db.Transaction`: in a read-only or
    autocommitting one the NOTIFY would go out at once, ahead of (or without) the
    change it announces, so that is refused."""
    if not getattr(tx, "write", False):
        raise RuntimeError("events are published from a writing transaction")
    await tx.execute(
        "SELECT pg_notify(%(channel)s, %(event)s)",
        {
            "channel": CHANNEL,
            "event": encode(topic, payload),
        },
    )


class Subscriber:
    """One subscriber's events of one topic, in arrival order (an async iterator).

    Iteration raises EVENTS_INTERRUPTED (a DomainError) once the subscriber was
    ended: it fell more than its queue behind, or the listener lost its connection.
    Use it as an async context manager, so it leaves the hub when done."""

    def __init__(self, hub: EventHub, topic: str, maxsize: int) -> None:
        self.hub = hub
        self.topic = topic
        self.maxsize = maxsize
        self._items: deque[Event] = deque()
        self._ready = asyncio.Event()
        self._ended: DomainError | None = None

    def offer(self, event: Event) -> None:
        """Queue `event` without waiting; a full queue ends the subscriber."""
        if self._ended is not None:
            return
        if len(self._items) >= self.maxsize:
            log.warning("event subscriber of %s fell behind; ended", self.topic)
            self.end(EVENTS_INTERRUPTED.error())
            return
        self._items.append(event)
        self._ready.set()

    def end(self, error: DomainError) -> None:
        """End the subscriber: what it had not read yet is dropped with it."""
        if self._ended is None:
            self._ended = error
            self._items.clear()
            self._ready.set()

    @property
    def ended(self) -> bool:
        return self._ended is not None

    def __aiter__(self) -> Subscriber:
        return self

    async def __anext__(self) -> Event:
        while True:
            if self._ended is not None:
                raise self._ended
            if self._items:
                return self._items.popleft()
            self._ready.clear()
            await self._ready.wait()

    async def __aenter__(self) -> Subscriber:
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.hub.leave(self)


class EventHub:
    """The process's listener on `pingyi_events` and its local subscribers."""

    def __init__(self, url: str, *, queue_size: int = QUEUE_SIZE) -> None:
        self.url = url
        self.queue_size = queue_size
        self.live = False
        self.backend_pid: int | None = None  # the listening session (tests end it)
        self._subscribers: dict[str, set[Subscriber]] = {}
        self._connected = asyncio.Event()
        self._changed = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    # --- subscribers --------------------------------------------------------------

    async def subscribe(self, topic: str) -> Subscriber:
        """A subscriber of `topic`, registered once the listener is live: it hears
        every event committed from then on, or is ended if the listener drops."""
        if not _TOPIC.fullmatch(topic):
            raise ValueError(f"invalid event topic {topic!r}")
        self.start()
        while not self.live:
            await self._connected.wait()
        subscriber = Subscriber(self, topic, self.queue_size)
        self._subscribers.setdefault(topic, set()).add(subscriber)
        self._notify_changed()
        return subscriber

    def leave(self, subscriber: Subscriber) -> None:
        found = self._subscribers.get(subscriber.topic)
        if found is not None and subscriber in found:
            found.discard(subscriber)
            if not found:
                del self._subscribers[subscriber.topic]
            self._notify_changed()

    def subscribers(self, topic: str) -> int:
        return len(self._subscribers.get(topic, ()))

    async def wait_for_subscribers(self, topic: str, count: int) -> None:
        """Until `topic` has at least `count` subscribers (tests: a subscription is
        in place before the write that should reach it)."""
        while self.subscribers(topic) < count:
            self._changed.clear()
            await self._changed.wait()

    def _notify_changed(self) -> None:
        self._changed.set()

    def dispatch(self, text: str) -> None:
        """Hand one NOTIFY payload to the subscribers of its topic."""
        try:
            data = orjson.loads(text)
            event = Event(str(data["topic"]), dict(data["payload"]))
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
            log.warning("malformed event on %s ignored", CHANNEL)
            return
        for subscriber in list(self._subscribers.get(event.topic, ())):
            subscriber.offer(event)

    def _end_all(self) -> None:
        for subscribers in self._subscribers.values():
            for subscriber in subscribers:
                subscriber.end(EVENTS_INTERRUPTED.error())
        self._subscribers.clear()
        self._notify_changed()

    # --- the listener -------------------------------------------------------------

    def start(self) -> None:
        """Start listening (idempotent); call from inside the serving event loop."""
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._listen())

    async def wait_connected(self) -> None:
        self.start()
        while not self.live:
            await self._connected.wait()

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._set_live(False)

    def _set_live(self, live: bool) -> None:
        if self.live and not live:
            # Whatever was committed while nobody listened is lost to these.
            self._end_all()
        self.live = live
        if live:
            self._connected.set()
        else:
            self._connected.clear()
            self.backend_pid = None

    async def _listen(self) -> None:
        """Connect, LISTEN and dispatch; on any loss, end the subscribers and
        connect again (every second at first, backing off to ten)."""
        delay = 1.0
        while True:
            conn: psycopg.AsyncConnection[Any] | None = None
            try:
                conn = await psycopg.AsyncConnection.connect(
                    self.url,
                    autocommit=True,
                    application_name="pingyi-events",
                    # A dead peer is noticed within a minute, not a TCP timeout.
                    keepalives=1,
                    keepalives_idle=30,
                    keepalives_interval=10,
                    keepalives_count=3,
                )
                await conn.execute(f"LISTEN {CHANNEL}")
                self.backend_pid = conn.info.backend_pid
                self._set_live(True)
                delay = 1.0
                async for note in conn.notifies():
                    self.dispatch(note.payload)
                raise psycopg.OperationalError("notification stream ended")
            except psycopg.Error as exc:
                if self.live:
                    log.warning("event listener lost its connection (%s)", type(exc).__name__)
                else:
                    log.warning("event listener cannot connect (%s)", type(exc).__name__)
            finally:
                self._set_live(False)
                if conn is not None:
                    with contextlib.suppress(Exception):
                        await conn.close()
            await asyncio.sleep(delay)
            delay = min(delay * 2, 10.0)


async def subscribe(app_state: Any, topic: str) -> AsyncIterator[dict[str, Any]]:
    """The payloads of `topic` committed from now on, through the process's hub
    (`app_state.events`); leaves the hub when the consumer stops. Raises
    EVENTS_INTERRUPTED when events may have been missed. GraphQL subscriptions use
    `service.schema.subscriptions.deliveries`, which adds the principal's checks."""
    async with await app_state.events.subscribe(topic) as subscriber:
        async for event in subscriber:
            yield event.payload
