"""A rolling update: two `pingyi serve` processes on one database, the old one stopped
under load while the new one serves on.

Both serve the same tokens (one signing key); a role revoked through one process is
refused by the other on the very next request (LISTEN/NOTIFY plus the per-request
guard; tests/e2e/test_two_processes.py runs it round after round); a subscriber of the
old process hears a decision made through the new one (the other direction:
tests/events/test_subscriptions.py, `test_two_processes_one_database`); the test, as
the load balancer, sends to every process in rotation and takes the old one out when
its `/readyz` fails after SIGTERM: no request fails, every acknowledged write is there.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import time
from typing import Any

import httpx
import psycopg

from service.config import Settings
from service.db import libpq_url
from service.runtime import build_state
from service.schema.ids import to_global_id
from tests.events.conftest import GraphQLWS
from tests.events.test_subscriptions import DECIDE, INBOX, _next_event, _request, _step_gid
from tests.faults.load import Load
from tests.support import PASSWORD, World

DRAIN_SECONDS = 2.0
PROBE_PERIOD = 0.2

UNIT = "query($id: ID!) { orgUnit(id: $id) { name } }"
MY_GRANTS = "{ me { roleAssignments { nodes { id } } } }"
REVOKE = """
mutation($input: RevokeRoleInput!) { revokeRole(input: $input) { roleAssignment { id } } }
"""


async def _login(base: str, username: str) -> str:
    async with httpx.AsyncClient(base_url=base, timeout=30) as client:
        response = await client.post(
            "/auth/token", data={"username": username, "password": PASSWORD}
        )
    assert response.status_code == 200, response.text
    return str(response.json()["access_token"])


async def _gql(base: str, token: str, query: str, variables: dict[str, Any]) -> dict[str, Any]:
    async with httpx.AsyncClient(base_url=base, timeout=30) as client:
        response = await client.post(
            "/graphql",
            json={"query": query, "variables": variables},
            headers={"Authorization": f"Bearer {token}"},
        )
    body: dict[str, Any] = response.json()
    return body


async def _subscription_reaches_the_other_process(
    old: Any, new: Any, fault_db: str, world: World, settings: Settings
) -> None:
    """The township secretary's inbox, subscribed on the old process, hears a step
    decided through the new one. Requests are submitted (in this process: a third
    one) until one arrives, which shows the subscription is registered."""
    state = build_state(settings, fault_db)
    try:
        secretary = await _login(new.base, world.user("secA"))
        ws_url = f"ws://127.0.0.1:{old.port}/graphql"
        async with GraphQLWS.connect(ws_url) as ws:
            assert (await ws.init(secretary))["type"] == "connection_ack"
            await ws.subscribe("1", INBOX)
            arrived = None
            deadline = time.monotonic() + 15
            while arrived is None and time.monotonic() < deadline:
                request = await _request(state, world, "a1", to_county=True)
                with contextlib.suppress(TimeoutError):
                    while True:  # events of earlier requests may come first
                        event = await asyncio.wait_for(_next_event(ws), 0.5)
                        if event["step"]["id"] == _step_gid(request.pending_step):
                            arrived = event
                            break
            assert arrived is not None and arrived["change"] == "ARRIVED", arrived
            decision = {
                "stepId": arrived["step"]["id"],
                "decision": "APPROVE",
                "digest": request.digest,
            }
            decided = await _gql(new.base, secretary, DECIDE, {"i": decision})
            assert decided.get("errors") is None, decided
            while True:
                event = await asyncio.wait_for(_next_event(ws), 10)
                if event["step"]["id"] == arrived["step"]["id"]:
                    break
            assert event["change"] == "DECIDED" and event["step"]["state"] == "APPROVED"
    finally:
        await state.principals.stop()
        await state.db.dispose()


async def test_rolling_update_under_load(
    fault_db: str, fault_world: World, served: Any, settings: Settings
) -> None:
    env = {"PINGYI_SHUTDOWN_DRAIN_SECONDS": str(DRAIN_SECONDS)}
    old, new = served("old", wait=False, **env), served("new", wait=False, **env)
    old.wait_ready()
    new.wait_ready()

    # Caches invalidate across the two: the branch secretary's only grant, revoked
    # through the new process, is refused by the old one at once (its principal cached).
    holder = await _login(old.base, fault_world.user("bsA1"))
    a1 = {"id": to_global_id("OrgUnit", fault_world.units["a1"].id)}
    for _ in range(2):  # load, then answer from the old process's cache
        warm = await _gql(old.base, holder, UNIT, a1)
        assert warm.get("errors") is None, warm
    grants = await _gql(new.base, holder, MY_GRANTS, {})
    (assignment,) = grants["data"]["me"]["roleAssignments"]["nodes"]
    organizer = await _login(new.base, fault_world.user("orgA"))
    revoked = await _gql(
        new.base, organizer, REVOKE, {"input": {"roleAssignmentId": assignment["id"]}}
    )
    assert revoked.get("errors") is None, revoked
    refused = await _gql(old.base, holder, UNIT, a1)
    assert (refused.get("data") or {}).get("orgUnit") is None, refused
    assert refused.get("errors"), refused

    await _subscription_reaches_the_other_process(old, new, fault_db, fault_world, settings)

    token = await _login(new.base, fault_world.user("county"))
    parent = fault_world.units["A"].id
    loads = {
        "old": Load(old.base, token, parent, f"{fault_world.tag}-old"),
        "new": Load(new.base, token, parent, f"{fault_world.tag}-new"),
    }
    rotation = {"old": True, "new": True}
    done = asyncio.Event()
    marks: dict[str, float] = {}

    async def probe_old() -> None:
        async with httpx.AsyncClient(base_url=old.base, timeout=2) as client:
            while rotation["old"]:
                try:
                    status = (await client.get("/readyz")).status_code
                except httpx.HTTPError:
                    status = None
                if status != 200:
                    rotation["old"] = False
                    marks["out"] = time.monotonic()
                    return
                await asyncio.sleep(PROBE_PERIOD)

    async def update() -> None:
        await asyncio.sleep(1.0)  # both under load
        marks["sigterm"] = time.monotonic()
        old.process.send_signal(signal.SIGTERM)
        await asyncio.to_thread(old.process.wait, 30)
        await asyncio.sleep(0.5)  # the new one alone for a moment
        done.set()

    await asyncio.gather(
        loads["old"].run(lambda: rotation["old"] and not done.is_set(), workers=2),
        loads["new"].run(lambda: not done.is_set(), workers=2),
        probe_old(),
        update(),
    )

    assert old.process.returncode == 0, old.output()
    assert new.process.poll() is None, new.output()
    for name, load in loads.items():
        assert load.failures() == [], (name, load.failures())
    assert marks["out"] - marks["sigterm"] < DRAIN_SECONDS
    assert any(o.at > marks["out"] for o in loads["new"].outcomes)
    acknowledged = loads["old"].acknowledged() | loads["new"].acknowledged()
    assert loads["old"].acknowledged() and loads["new"].acknowledged()
    with psycopg.connect(libpq_url(fault_db), autocommit=True) as conn:
        rows = conn.execute(
            "SELECT code FROM org_units WHERE code = ANY(%s)", (sorted(acknowledged),)
        ).fetchall()
    assert {r[0] for r in rows} == acknowledged
