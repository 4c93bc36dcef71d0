"""The CLI's first-day commands: create-admin, the demo county, serve with workers."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import httpx
import psycopg
import pytest

from service.app import AppState
from service.config import Settings
from service.demo import DEMO_PASSWORD, load_demo
from tests.conftest import TestDatabase
from tests.support import PASSWORD, World, gql, login, run_cli


def test_create_admin_makes_a_system_admin_at_the_root_once(
    database: TestDatabase, owner_conn: psycopg.Connection, tmp_path: Path
) -> None:
    env = {"PINGYI_ADMIN_PASSWORD": "First-Admin-2026!", "PINGYI_DATA_DIR": str(tmp_path)}
    done = run_cli(
        database.owner_url, "create-admin", "root.admin", "--role", "system_admin", **env
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "已创建账号 root.admin" in done.stdout
    role = owner_conn.execute(
        "SELECT r.role, o.kind FROM role_assignments r JOIN accounts a ON a.id = r.account_id "
        "JOIN org_units o ON o.id = r.org_unit_id WHERE a.username = 'root.admin'"
    ).fetchall()
    assert role == [("system_admin", "root")]
    again = run_cli(database.owner_url, "create-admin", "root.admin", **env)
    assert again.returncode == 1 and "USERNAME_TAKEN" in again.stdout


async def test_demo_county_has_all_tenant_kinds_branches_and_a_login_per_role(
    state: AppState,
    client: httpx.AsyncClient,
    owner_conn: psycopg.Connection,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # served as `pingyi serve --demo` does: the demo password is accepted as it is
    monkeypatch.setattr(state, "settings", replace(state.settings, demo_mode=True))
    async with state.db.transaction() as tx:
        logins = await load_demo(tx, progress=lambda _: None)
    async with state.db.transaction() as tx:
        again = await load_demo(tx, progress=lambda _: None)  # idempotent
    assert [x.username for x in logins] == [x.username for x in again]
    assert len({x.role for x in logins}) == 9
    kinds = owner_conn.execute(
        "SELECT o.kind, count(*) FROM org_units o JOIN tenants t ON t.id = o.tenant_id "
        "JOIN tenants c ON c.id = t.parent_id WHERE c.code = 'demo-county' AND o.id = o.tenant_id "
        "GROUP BY o.kind ORDER BY o.kind"
    ).fetchall()
    assert dict(kinds) == {
        "county_department": 2,
        "development_zone": 1,
        "new_district": 1,
        "township": 4,
    }
    branches = owner_conn.execute(
        "SELECT count(*) FROM org_units o JOIN tenants t ON t.id = o.tenant_id "
        "JOIN tenants c ON c.id = t.parent_id WHERE c.code = 'demo-county' "
        "AND o.kind IN ('branch', 'general_branch')"
    ).fetchone()
    assert branches is not None and 28 <= branches[0] <= 32
    token = await login(client, "cg.secretary", DEMO_PASSWORD)
    body = await gql(client, token, "{ tenants { nodes { name } } }")
    assert [n["name"] for n in body["data"]["tenants"]["nodes"]] == ["城关镇"]

    # The ledger: a few hundred members with two years of dues and meetings.
    counts = owner_conn.execute(
        "SELECT count(DISTINCT m.id), count(DISTINCT d.month), count(DISTINCT a.month)"
        " FROM members m JOIN tenants t ON t.id = m.tenant_id"
        " JOIN tenants c ON c.id = t.parent_id AND c.code = 'demo-county'"
        " LEFT JOIN dues_months d ON d.tenant_id = m.tenant_id AND d.member_id = m.id"
        " LEFT JOIN meeting_attendance a ON a.tenant_id = m.tenant_id AND a.member_id = m.id"
    ).fetchone()
    assert counts is not None
    assert 200 <= counts[0] <= 400 and counts[1] == 24 and counts[2] == 24, counts
    secretary = await login(client, "cg1.secretary", DEMO_PASSWORD)
    branch = await gql(client, secretary, "{ me { roleAssignments { nodes { orgUnit { id } } } } }")
    branch_id = branch["data"]["me"]["roleAssignments"]["nodes"][0]["orgUnit"]["id"]
    listed = await gql(
        client,
        secretary,
        "query($b: ID!) { members(orgUnitId: $b, first: 50) { nodes { name idNumber } } }",
        {"b": branch_id},
    )
    nodes = listed["data"]["members"]["nodes"]
    assert len(nodes) == 12 and all("*" in n["idNumber"] for n in nodes)
    # Something to act on today: an open registration drive, a sanction on record.
    drives = await gql(client, secretary, "{ registrationDrives { nodes { title } } }")
    assert len(drives["data"]["registrationDrives"]["nodes"]) == 1
    sanctioned = await gql(
        client,
        secretary,
        "query($b: ID!) { members(orgUnitId: $b, first: 50)"
        " { nodes { sanctions { nodes { kind } } } } }",
        {"b": branch_id},
    )
    kinds = [
        s["kind"] for n in sanctioned["data"]["members"]["nodes"] for s in n["sanctions"]["nodes"]
    ]
    assert kinds == ["WARNING"]
    member = await login(client, "cg1.member", DEMO_PASSWORD)
    mine = await gql(client, member, "{ me { member { name } } }")
    assert mine["data"]["me"]["member"]["name"] in {n["name"] for n in nodes}


def test_serve_with_two_workers_answers_from_both(
    database: TestDatabase, world: World, settings: Settings
) -> None:
    """`pingyi serve --workers 2`: two worker processes behind one port, each with its own
    pool, caches and listener, answering the same logins and queries."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = {
        **os.environ,
        "PINGYI_DATABASE_URL": database.owner_url,
        "PINGYI_DATA_DIR": str(settings.data_dir),
        "PINGYI_JWT_PRIVATE_KEY_FILE": str(settings.jwt_private_key_file),
    }
    server = subprocess.Popen(  # noqa: S603 (the tests' own arguments)
        [sys.executable, "-m", "service.cli", "serve", "--port", str(port), "--workers", "2"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{base}/readyz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, "the server did not become ready"
            time.sleep(0.2)
        with httpx.Client(base_url=base, timeout=10) as client:
            token = client.post(
                "/auth/token", data={"username": world.user("secA"), "password": PASSWORD}
            ).json()["access_token"]
            for _ in range(20):  # new connections: the kernel spreads them over both
                with httpx.Client(base_url=base, timeout=10) as fresh:
                    body = fresh.post(
                        "/graphql",
                        json={"query": "{ me { username } }"},
                        headers={"Authorization": f"Bearer {token}"},
                    ).json()
                assert body == {"data": {"me": {"username": world.user("secA")}}}
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            output, _ = server.communicate(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
            output, _ = server.communicate()
    started = [line for line in output.splitlines() if "Started server process" in line]
    assert len(started) == 2, output
