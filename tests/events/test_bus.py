"""The event bus (service/events): NOTIFY at commit, fan-out, bounds, reconnection."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

import psycopg
import pytest

from service.db import Scope
from service.errors import DomainError
from service.events import CHANNEL, MAX_PAYLOAD_BYTES, EventHub, encode, publish


@contextlib.asynccontextmanager
async def running_hub(url: str, **kw: Any) -> AsyncIterator[EventHub]:
    hub = EventHub(url, **kw)
    await hub.wait_connected()
    try:
        yield hub
    finally:
        await hub.stop()


def test_encode_refuses_what_notify_cannot_carry() -> None:
    assert encode("approval_step", {"step_id": 1, "path": "1.2", "ids": [1, 2]}) == (
        '{"topic":"approval_step","payload":{"step_id":1,"path":"1.2","ids":[1,2]}}'
    )
    with pytest.raises(ValueError, match="bytes"):
        encode("t", {"x": "字" * (MAX_PAYLOAD_BYTES // 3)})
    with pytest.raises(TypeError):
        encode("t", {"nested": {"name": "张三"}})
    for topic in ("", "Bad", "a b", "x" * 70, "t;"):
        with pytest.raises(ValueError, match="topic"):
            encode(topic, {})


async def test_published_at_commit_never_at_rollback(state: Any) -> None:
    async with running_hub(state.db.url) as hub:
        subscriber = await hub.subscribe("bus_test")
        async with subscriber:
            with contextlib.suppress(RuntimeError):
                async with state.db.transaction(Scope(None, frozenset())) as tx:
                    await publish(tx, "bus_test", {"n": 1})
                    raise RuntimeError("rolled back")
            async with state.db.transaction(Scope(None, frozenset())) as tx:
                await publish(tx, "bus_test", {"n": 2})
                await publish(tx, "other_topic", {"n": 3})
            async with state.db.transaction(Scope(None, frozenset())) as tx:
                await publish(tx, "bus_test", {"n": 4})
            first = await anext(subscriber)
            second = await anext(subscriber)
        assert [first.payload, second.payload] == [{"n": 2}, {"n": 4}]
        assert hub.subscribers("bus_test") == 0


async def test_publish_needs_a_writing_transaction(state: Any) -> None:
    async with state.db.transaction(Scope(None, frozenset()), write=False) as tx:
        with pytest.raises(RuntimeError):
            await publish(tx, "bus_test", {"n": 1})


async def test_slow_subscriber_is_ended_others_go_on(state: Any) -> None:
    async with running_hub(state.db.url, queue_size=3) as hub:
        slow = await hub.subscribe("bus_slow")
        fast = await hub.subscribe("bus_slow")
        async with slow, fast:
            for n in range(4):
                hub.dispatch(encode("bus_slow", {"n": n}))
                assert (await anext(fast)).payload == {"n": n}
            with pytest.raises(DomainError) as ended:
                await anext(slow)
            assert ended.value.code == "EVENTS_INTERRUPTED"
            hub.dispatch(encode("bus_slow", {"n": 9}))
            assert (await anext(fast)).payload == {"n": 9}
            hub.dispatch("not json")  # ignored, logged
            hub.dispatch(encode("bus_slow", {"n": 10}))
            assert (await anext(fast)).payload == {"n": 10}


async def test_listener_reconnects_and_ends_subscribers_of_the_gap(
    state: Any, owner_conn: psycopg.Connection[Any]
) -> None:
    async with running_hub(state.db.url) as hub:
        before = await hub.subscribe("bus_gap")
        first_pid = hub.backend_pid
        owner_conn.execute("SELECT pg_terminate_backend(%s)", (first_pid,))
        async with before:
            with pytest.raises(DomainError) as ended:
                await anext(before)
            assert ended.value.code == "EVENTS_INTERRUPTED"
        # A new subscriber waits for the listener to be back, then hears commits.
        after = await hub.subscribe("bus_gap")
        assert hub.live and hub.backend_pid != first_pid
        async with after:
            owner_conn.execute("SELECT pg_notify(%s, %s)", (CHANNEL, encode("bus_gap", {"n": 1})))
            assert (await anext(after)).payload == {"n": 1}
