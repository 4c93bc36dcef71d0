"""The pieces the fault tests rely on, alone: which database errors mean "the
connection is gone, retry" (service.db.connection_lost), and the SIGTERM drain
(service/shutdown.py) in this process."""

from __future__ import annotations

import asyncio
import os
import signal
from types import FrameType

import psycopg
import pytest

from service.db import connection_lost
from service.shutdown import Drain


@pytest.mark.parametrize(
    ("error", "lost"),
    [
        (psycopg.OperationalError("server closed the connection unexpectedly"), True),
        (psycopg.errors.AdminShutdown(), True),  # 57P01: fast shutdown, terminated backend
        (psycopg.errors.CrashShutdown(), True),  # 57P02: immediate shutdown, crash
        (psycopg.errors.CannotConnectNow(), True),  # 57P03: starting up, recovering
        (psycopg.errors.TooManyConnections(), True),  # 53300
        (psycopg.errors.DiskFull(), False),  # 53100: the server's fault, surfaced
        (psycopg.errors.OutOfMemory(), False),  # 53200
        (psycopg.errors.ConnectionFailure(), True),  # 08006
        (psycopg.errors.QueryCanceled(), False),  # 57014: STATEMENT_TIMEOUT instead
        (psycopg.errors.LockNotAvailable(), False),  # 55P03: STATEMENT_TIMEOUT instead
        (psycopg.errors.SerializationFailure(), False),  # the statement's own conflict
        (psycopg.errors.UniqueViolation(), False),
        (psycopg.errors.DivisionByZero(), False),
        (ValueError("not a database error"), False),
    ],
)
def test_connection_lost(error: BaseException, lost: bool) -> None:
    assert connection_lost(error) is lost


async def test_drain_turns_unready_then_hands_sigterm_over() -> None:
    handed: list[int] = []

    def uvicorn_like(signum: int, frame: FrameType | None) -> None:
        handed.append(signum)

    original = signal.signal(signal.SIGTERM, uvicorn_like)
    try:
        drain = Drain()
        disarm = drain.install(0.3)
        os.kill(os.getpid(), signal.SIGTERM)
        await asyncio.sleep(0.05)
        assert drain.draining and handed == []  # unready, still serving
        await asyncio.sleep(0.5)
        assert handed == [signal.SIGTERM]  # then uvicorn's own shutdown
        disarm()
        assert signal.getsignal(signal.SIGTERM) is uvicorn_like
    finally:
        signal.signal(signal.SIGTERM, original)


async def test_second_sigterm_stops_at_once_and_zero_means_no_drain() -> None:
    handed: list[int] = []

    def uvicorn_like(signum: int, frame: FrameType | None) -> None:
        handed.append(signum)

    original = signal.signal(signal.SIGTERM, uvicorn_like)
    try:
        drain = Drain()
        disarm = drain.install(30.0)
        os.kill(os.getpid(), signal.SIGTERM)
        await asyncio.sleep(0.05)
        os.kill(os.getpid(), signal.SIGTERM)
        await asyncio.sleep(0.05)
        assert handed == [signal.SIGTERM]
        disarm()
        # Off (0 s): uvicorn's handler stays in place, nothing drains.
        Drain().install(0)
        assert signal.getsignal(signal.SIGTERM) is uvicorn_like
    finally:
        signal.signal(signal.SIGTERM, original)
