"""SIGTERM to a serving process under load: zero failed requests.

The test plays the load balancer: it polls `/readyz` and stops sending new requests to
the process once it answers anything but 200, as a Kubernetes Service does with a pod
whose readiness fails. With `PINGYI_SHUTDOWN_DRAIN_SECONDS` the process, on SIGTERM,
turns unready at once and keeps serving for that long (service/shutdown.py), then
uvicorn's graceful shutdown lets a request still in flight finish (here one held on a
lock past the drain) before the process exits 0.
"""

from __future__ import annotations

import asyncio
import signal
import time
from typing import Any

import httpx
import psycopg

from service.db import libpq_url
from tests.faults.load import Load
from tests.support import PASSWORD, World

DRAIN_SECONDS = 2.0
GRACEFUL_SECONDS = 10
PROBE_PERIOD = 0.2


async def test_sigterm_under_load_fails_no_request(
    fault_db: str, fault_world: World, served: Any
) -> None:
    server = served(
        "sigterm",
        PINGYI_SHUTDOWN_DRAIN_SECONDS=str(DRAIN_SECONDS),
        PINGYI_GRACEFUL_SHUTDOWN_SECONDS=str(GRACEFUL_SECONDS),
    )
    async with httpx.AsyncClient(base_url=server.base, timeout=30) as client:
        response = await client.post(
            "/auth/token", data={"username": fault_world.user("county"), "password": PASSWORD}
        )
        assert response.status_code == 200, response.text
        token = response.json()["access_token"]
    load = Load(server.base, token, fault_world.units["A"].id, f"{fault_world.tag}-term")
    rotation = {"in": True}
    probes: list[tuple[float, int | None, str | None]] = []
    sent: dict[str, float] = {}

    async def balancer() -> None:
        """Readiness probe: out of rotation at the first answer that is not 200."""
        async with httpx.AsyncClient(base_url=server.base, timeout=2) as client:
            while rotation["in"]:
                try:
                    answer = await client.get("/readyz")
                    status, body = answer.status_code, answer.json().get("status")
                except httpx.HTTPError as exc:
                    status, body = None, type(exc).__name__
                probes.append((time.monotonic(), status, body))
                if status != 200:
                    rotation["in"] = False
                    return
                await asyncio.sleep(PROBE_PERIOD)

    with psycopg.connect(libpq_url(fault_db), autocommit=True) as owner:

        async def slow_request() -> Any:
            """A mutation still in flight when the drain ends: it waits on the audit
            log, held by the owner until after uvicorn began to shut down."""
            async with httpx.AsyncClient(base_url=server.base, timeout=30) as client:
                return await load.one(client, "write")

        async def terminate() -> Any:
            await asyncio.sleep(1.0)  # under load first
            owner.execute("BEGIN")
            owner.execute("LOCK TABLE audit_events IN ACCESS EXCLUSIVE MODE")
            held = asyncio.create_task(slow_request())
            await asyncio.sleep(0.3)
            sent["sigterm"] = time.monotonic()
            server.process.send_signal(signal.SIGTERM)
            await asyncio.sleep(DRAIN_SECONDS + 1.0)  # past the drain: shutting down
            owner.execute("ROLLBACK")
            return await held

        results = await asyncio.gather(load.run(lambda: rotation["in"]), balancer(), terminate())
        held_outcome = results[2]
        exit_code = await asyncio.to_thread(server.process.wait, GRACEFUL_SECONDS + 10)
        exited = time.monotonic()

    assert exit_code == 0, server.output()
    failures = load.failures()
    assert failures == [], (failures, server.output())
    assert held_outcome.ok, held_outcome
    # It turned unready on SIGTERM (the balancer saw "draining", not a refused
    # connection) and served on meanwhile; it exited only after the drain.
    assert probes[-1][1:] == (503, "draining"), probes[-3:]
    assert probes[-1][0] - sent["sigterm"] < DRAIN_SECONDS
    served_after = [o for o in load.outcomes if o.at > sent["sigterm"]]
    assert served_after, "nothing was served after SIGTERM"
    assert exited - sent["sigterm"] >= DRAIN_SECONDS
    assert len(load.acknowledged()) >= 3
