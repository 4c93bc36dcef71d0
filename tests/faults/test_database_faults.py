"""The database fails under a serving process; the service survives it.

Against a throwaway cluster (tests/faults/cluster.py), `pingyi serve` in a subprocess:
- `pg_ctl restart -m fast` and `-m immediate` under load: every request that fails
  fails as a retryable 503 `UNAVAILABLE` with `Retry-After` (never a masked internal
  error, never a dropped connection to the service), the service answers again within
  seconds without being restarted, and every acknowledged write is in the database;
- `pg_terminate_backend` on a mutation's connection while its transaction is open: the
  client gets `UNAVAILABLE`, nothing of the mutation is left (neither the row nor its
  audit event), and the client's retry succeeds exactly once.
"""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any

import httpx
import psycopg
import pytest

from service.db import libpq_url
from tests.faults.cluster import Cluster
from tests.faults.load import Load
from tests.support import PASSWORD, World

RECOVERY_SECONDS = 10.0


@pytest.fixture(scope="module")
def server(served: Any) -> Any:
    """One serving process for every fault of this module: it must survive them all
    without a restart of its own."""
    return served("database-faults")


async def _login(base: str, username: str) -> str:
    async with httpx.AsyncClient(base_url=base, timeout=30) as client:
        response = await client.post(
            "/auth/token", data={"username": username, "password": PASSWORD}
        )
    assert response.status_code == 200, response.text
    return str(response.json()["access_token"])


def _present(owner_url: str, codes: set[str]) -> set[str]:
    with psycopg.connect(libpq_url(owner_url), autocommit=True) as conn:
        rows = conn.execute(
            "SELECT code FROM org_units WHERE code = ANY(%s)", (sorted(codes),)
        ).fetchall()
    return {r[0] for r in rows}


@pytest.mark.parametrize("mode", ["fast", "immediate"])
async def test_postgres_restart_under_load(
    mode: str, cluster: Cluster, fault_db: str, fault_world: World, server: Any
) -> None:
    token = await _login(server.base, fault_world.user("county"))
    load = Load(server.base, token, fault_world.units["A"].id, f"{fault_world.tag}-{mode}")
    stop = threading.Event()
    restarted: dict[str, float] = {}

    async def fault() -> None:
        await asyncio.sleep(1.0)  # load first
        before = len(load.outcomes)
        started = time.monotonic()
        await asyncio.to_thread(cluster.restart, mode)
        restarted["at"] = time.monotonic()
        restarted["took"] = restarted["at"] - started
        # Keep the load on until the service has answered well again for a while.
        deadline = time.monotonic() + RECOVERY_SECONDS
        while time.monotonic() < deadline:
            recent = [o for o in load.outcomes[before:] if o.at > restarted["at"] + 0.5]
            if sum(o.ok for o in recent) >= 20:
                break
            await asyncio.sleep(0.1)
        stop.set()

    await asyncio.gather(load.run(lambda: not stop.is_set()), fault())

    assert server.process.poll() is None, "the service itself must not die"
    failures = load.failures()
    for failure in failures:
        # Retryable, coded, 503 with Retry-After: the client's cue to try again.
        assert (failure.status, failure.error) == (503, "UNAVAILABLE"), (
            failure,
            server.output(),
        )
        assert failure.retry_after is not None
    # Back within seconds, without a restart of the service.
    after = [o for o in load.outcomes if o.at > restarted["at"]]
    first_ok = min((o.at for o in after if o.ok), default=None)
    assert first_ok is not None, server.output()
    assert first_ok - restarted["at"] < RECOVERY_SECONDS
    print(
        f"restart -m {mode}: pg_ctl {restarted['took']:.2f} s, {len(load.outcomes)} requests,"
        f" {len(failures)} UNAVAILABLE, first success {first_ok - restarted['at']:.2f} s after"
    )
    assert sum(o.ok for o in after) >= 20
    # Every write the service acknowledged survived the restart (immediate: crash
    # recovery from the WAL).
    acknowledged = load.acknowledged()
    assert len(acknowledged) >= 10
    assert _present(fault_db, acknowledged) == acknowledged


async def test_backend_terminated_mid_transaction(
    cluster: Cluster, fault_db: str, fault_world: World, server: Any
) -> None:
    token = await _login(server.base, fault_world.user("county"))
    load = Load(server.base, token, fault_world.units["A"].id, f"{fault_world.tag}-kill")
    code = f"{load.prefix}-0"
    with psycopg.connect(libpq_url(fault_db), autocommit=True) as owner:
        audited = owner.execute("SELECT count(*) FROM audit_events").fetchone()
        # Hold the audit log: the mutation inserts its branch, then waits on its audit
        # event (sent with the COMMIT) with its transaction open. That is where it dies.
        owner.execute("BEGIN")
        owner.execute("LOCK TABLE audit_events IN ACCESS EXCLUSIVE MODE")
        async with httpx.AsyncClient(base_url=server.base, timeout=30) as client:
            request = asyncio.create_task(load.one(client, "write"))
            pid = None
            deadline = time.monotonic() + 5
            while pid is None and time.monotonic() < deadline:
                await asyncio.sleep(0.05)
                with psycopg.connect(libpq_url(fault_db), autocommit=True) as probe:
                    row = probe.execute(
                        "SELECT pid FROM pg_stat_activity WHERE usename = 'pingyi_app'"
                        " AND wait_event_type = 'Lock' AND state = 'active'"
                    ).fetchone()
                pid = None if row is None else row[0]
            assert pid is not None, "the mutation never reached its open transaction"
            with psycopg.connect(libpq_url(fault_db), autocommit=True) as probe:
                # Its branch row exists, uncommitted, inside the open transaction.
                probe.execute("SELECT pg_terminate_backend(%s)", (pid,))
            outcome = await request
        owner.execute("ROLLBACK")
        assert (outcome.status, outcome.error) == (503, "UNAVAILABLE"), server.output()
        # No partial state: neither the branch nor any audit event of it.
        assert _present(fault_db, {code}) == set()
        assert owner.execute("SELECT count(*) FROM audit_events").fetchone() == audited

    # The client retries the same request: it succeeds once; again, it is a duplicate.
    async with httpx.AsyncClient(base_url=server.base, timeout=30) as client:
        retry = await _create(client, token, fault_world.units["A"].id, code)
        assert retry == (200, None)
        again = await _create(client, token, fault_world.units["A"].id, code)
        assert again[1] == "DUPLICATE_CODE"
    assert _present(fault_db, {code}) == {code}


async def _create(
    client: httpx.AsyncClient, token: str, parent: int, code: str
) -> tuple[int, str | None]:
    from service.schema.ids import to_global_id
    from tests.faults.load import CREATE

    response = await client.post(
        "/graphql",
        json={
            "query": CREATE,
            "variables": {
                "input": {
                    "parentId": to_global_id("OrgUnit", parent),
                    "kind": "BRANCH",
                    "code": code,
                    "name": code,
                }
            },
        },
        headers={"Authorization": f"Bearer {token}"},
    )
    errors = response.json().get("errors") or []
    return response.status_code, (errors[0]["extensions"]["code"] if errors else None)
