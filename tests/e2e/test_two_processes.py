"""Revocation across service processes, over real HTTP.

Each process caches principals per login session, so a role revoked (or a session
ended) through one process must reach every other process before its next request.
Two things carry it: PostgreSQL's LISTEN/NOTIFY, which drops the entry in every process
soon after the commit, and the guard in each cached request's first message, which
catches a notification that has not arrived yet (tests/auth/test_principal_guard.py
shows the guard alone). Two real `uvicorn` processes
serve the app on the test database with the test's signing key; a token issued by one
is honoured by the other, and a revocation through one is answered by the other on the
very next request, round after round (so it is not a lucky interleaving).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import psycopg
import pytest

from service.app import AppState
from service.config import Settings
from service.db import libpq_url
from tests.support import World, build_world, error_codes, free_port, gql, login

if TYPE_CHECKING:
    from tests.conftest import TestDatabase

REPO = Path(__file__).resolve().parents[2]
ROUNDS = 10
START_SECONDS = 30.0
STOP_SECONDS = 10.0

UNIT = "query($id: ID!) { orgUnit(id: $id) { name } }"
MY_GRANTS = "{ me { roleAssignments { nodes { id role orgUnit { name } } } } }"
ASSIGN = """
mutation($input: AssignRoleInput!) { assignRole(input: $input) { roleAssignment { id } } }
"""
REVOKE = """
mutation($input: RevokeRoleInput!) { revokeRole(input: $input) { roleAssignment { id } } }
"""


@dataclass
class Server:
    name: str
    process: subprocess.Popen[bytes]
    url: str
    log: Path

    def output(self) -> str:
        return self.log.read_text(errors="replace")[-4000:]


def start(name: str, env: dict[str, str], log_dir: Path) -> Server:
    port = free_port()
    log = log_dir / f"uvicorn-{name}.log"
    with log.open("wb") as out:
        process = subprocess.Popen(  # noqa: S603 (the test's own arguments)
            [
                sys.executable,
                "-m",
                "uvicorn",
                "--factory",
                "service.runtime:app_from_env",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--log-level",
                "warning",
            ],
            cwd=REPO,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    return Server(name, process, f"http://127.0.0.1:{port}", log)


def wait_ready(server: Server, deadline: float) -> None:
    """Until /readyz answers 200 (bounded); fail with the process's output otherwise."""
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            pytest.fail(f"process {server.name} exited:\n{server.output()}")
        try:
            if httpx.get(f"{server.url}/readyz", timeout=1.0).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    pytest.fail(f"process {server.name} not ready in {START_SECONDS} s:\n{server.output()}")


def wait_listening(conn: psycopg.Connection[Any], since: Any, count: int, deadline: float) -> None:
    """Until `count` listeners connected since `since` (each process's principal cache
    caches nothing before its listener is up: without this the first rounds would
    prove nothing)."""
    while time.monotonic() < deadline:
        row = conn.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
            " AND query = 'LISTEN pingyi_auth' AND backend_start >= %s",
            (since,),
        ).fetchone()
        if row is not None and row[0] >= count:
            return
        time.sleep(0.05)
    pytest.fail(f"fewer than {count} listeners in {START_SECONDS} s")


def stop(server: Server) -> None:
    if server.process.poll() is None:
        server.process.send_signal(signal.SIGTERM)
        try:
            server.process.wait(timeout=STOP_SECONDS)
        except subprocess.TimeoutExpired:
            server.process.kill()
            server.process.wait(timeout=STOP_SECONDS)


@pytest.fixture(scope="module")
def servers(
    state: AppState,  # first: it writes the signing key both processes then read
    settings: Settings,
    database: TestDatabase,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[Server, Server]]:
    assert settings.jwt_private_key_file is not None and settings.jwt_private_key_file.exists()
    env = {k: v for k, v in os.environ.items() if not k.startswith("PINGYI_")}
    env.update(
        PINGYI_DATABASE_URL=database.owner_url,
        PINGYI_DATA_DIR=str(settings.data_dir),
        PINGYI_JWT_PRIVATE_KEY_FILE=str(settings.jwt_private_key_file),
    )
    log_dir = tmp_path_factory.mktemp("two-processes")
    started: list[Server] = []
    with psycopg.connect(libpq_url(database.owner_url), autocommit=True) as conn:
        since = conn.execute("SELECT now()").fetchone()[0]  # type: ignore[index]
        try:
            for name in ("A", "B"):
                started.append(start(name, env, log_dir))
            deadline = time.monotonic() + START_SECONDS
            for server in started:
                wait_ready(server, deadline)
            wait_listening(conn, since, len(started), deadline)
            yield started[0], started[1]
        finally:
            for server in started:
                stop(server)


@pytest.fixture
async def clients(
    servers: tuple[Server, Server],
) -> AsyncIterator[tuple[httpx.AsyncClient, httpx.AsyncClient]]:
    a, b = servers
    async with (
        httpx.AsyncClient(base_url=a.url, timeout=10.0) as client_a,
        httpx.AsyncClient(base_url=b.url, timeout=10.0) as client_b,
    ):
        yield client_a, client_b


async def test_role_revoked_through_one_process_is_refused_by_the_other_at_once(
    state: AppState, clients: tuple[httpx.AsyncClient, httpx.AsyncClient]
) -> None:
    client_a, client_b = clients
    world: World = await build_world(state)
    unit = {"id": world.gid("a1")}
    # The branch secretary of a1 reaches a1 through that one grant only.
    holder = await login(client_a, world.user("bsA1"))
    grants = await gql(client_b, holder, MY_GRANTS)
    (assignment,) = grants["data"]["me"]["roleAssignments"]["nodes"]
    assert assignment["orgUnit"]["name"] == "甲镇第一支部"
    assignment_id = assignment["id"]
    organizer = await login(client_b, world.user("orgA"))

    for round_no in range(ROUNDS):
        # Alternate which process writes and which one answers from its cache.
        writer, reader = (client_a, client_b) if round_no % 2 == 0 else (client_b, client_a)
        for _ in range(2):  # the first read loads the principal, the second is a hit
            warm = await gql(reader, holder, UNIT, unit)
            assert warm.get("errors") is None, (round_no, warm)
            assert warm["data"]["orgUnit"]["name"] == "甲镇第一支部"

        revoked = await gql(
            writer, organizer, REVOKE, {"input": {"roleAssignmentId": assignment_id}}
        )
        assert revoked.get("errors") is None, (round_no, revoked)
        gone = await gql(reader, holder, UNIT, unit)
        assert error_codes(gone) == ["NOT_FOUND"], (round_no, gone)

        assigned = await gql(
            writer,
            organizer,
            ASSIGN,
            {
                "input": {
                    "accountId": world.account_gid("bsA1"),
                    "role": "BRANCH_SECRETARY",
                    "orgUnitId": world.gid("a1"),
                }
            },
        )
        assert assigned.get("errors") is None, (round_no, assigned)
        assignment_id = assigned["data"]["assignRole"]["roleAssignment"]["id"]
        back = await gql(reader, holder, UNIT, unit)
        assert back.get("errors") is None, (round_no, back)
        assert back["data"]["orgUnit"]["name"] == "甲镇第一支部"


async def test_logout_through_one_process_is_refused_by_the_other_at_once(
    state: AppState, clients: tuple[httpx.AsyncClient, httpx.AsyncClient]
) -> None:
    client_a, client_b = clients
    world: World = await build_world(state)
    unit = {"id": world.gid("a1")}
    for round_no in range(ROUNDS):
        writer, reader = (client_a, client_b) if round_no % 2 == 0 else (client_b, client_a)
        token = await login(writer, world.user("memA1"))
        headers = {"Authorization": f"Bearer {token}"}
        for _ in range(2):
            warm = await gql(reader, token, UNIT, unit)
            assert warm.get("errors") is None, (round_no, warm)

        response = await writer.post("/auth/logout", headers=headers)
        assert response.status_code == 200, (round_no, response.text)

        refused = await reader.post(
            "/graphql", json={"query": UNIT, "variables": unit}, headers=headers
        )
        assert refused.status_code == 401, (round_no, refused.text)
        body = refused.json()
        assert error_codes(body) == ["UNAUTHENTICATED"], (round_no, body)
        assert not body.get("data"), body
