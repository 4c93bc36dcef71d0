"""The audit log: one event per write, hash-chained per tenant, verified by the CLI."""

from __future__ import annotations

import subprocess

import httpx
import psycopg

from tests.conftest import TestDatabase
from tests.support import World, gql, login, run_cli


def verify(database: TestDatabase) -> subprocess.CompletedProcess[str]:
    return run_cli(database.owner_url, "audit", "verify")


async def test_mutation_appends_one_event_with_actor_object_and_request_id(
    client: httpx.AsyncClient, world: World, owner_conn: psycopg.Connection
) -> None:
    token = await login(client, world.user("orgA"))
    response = await client.post(
        "/graphql",
        json={
            "query": "mutation($i: RenameOrgUnitInput!) "
            "{ renameOrgUnit(input: $i) { orgUnit { id } } }",
            "variables": {"i": {"id": world.gid("a1"), "name": "审计支部"}},
        },
        headers={"Authorization": f"Bearer {token}", "X-Request-ID": "req-audit-1"},
    )
    assert response.status_code == 200 and "errors" not in response.json()
    assert response.headers["x-request-id"] == "req-audit-1"
    rows = owner_conn.execute(
        "SELECT actor, action, object_type, object_id, request_id, details->>'new_name' "
        "FROM audit_events WHERE request_id = 'req-audit-1'"
    ).fetchall()
    assert rows == [
        (
            world.user("orgA"),
            "orgunit.rename",
            "OrgUnit",
            str(world.units["a1"].id),
            "req-audit-1",
            "审计支部",
        )
    ]


async def test_verify_passes_on_clean_log_and_finds_an_edited_row(
    client: httpx.AsyncClient, world: World, owner_conn: psycopg.Connection, database: TestDatabase
) -> None:
    token = await login(client, world.user("orgA"))
    for name in ("一", "二", "三"):
        await gql(
            client,
            token,
            "mutation($i: RenameOrgUnitInput!) { renameOrgUnit(input: $i) { orgUnit { id } } }",
            {"i": {"id": world.gid("a2"), "name": f"第{name}次改名"}},
        )
    clean = verify(database)
    assert clean.returncode == 0, clean.stdout + clean.stderr
    assert "哈希链完整" in clean.stdout

    tenant = world.units["A"].id
    seq, details = owner_conn.execute(
        "SELECT seq, details::text FROM audit_events WHERE tenant_id = %s "
        "AND action = 'orgunit.rename' ORDER BY seq LIMIT 1 OFFSET 1",
        (tenant,),
    ).fetchone()
    owner_conn.execute(
        "UPDATE audit_events SET details = jsonb_set(details, '{new_name}', '\"篡改\"') "
        "WHERE tenant_id = %s AND seq = %s",
        (tenant, seq),
    )
    try:
        broken = verify(database)
        assert broken.returncode == 1
        assert f"租户 {tenant} 第 {seq} 条" in broken.stdout, broken.stdout
    finally:
        owner_conn.execute(
            "UPDATE audit_events SET details = %s::jsonb WHERE tenant_id = %s AND seq = %s",
            (details, tenant, seq),
        )
    assert verify(database).returncode == 0


def test_application_role_cannot_rewrite_history(
    world: World, app_conn: psycopg.Connection
) -> None:
    tenant = world.units["A"].id
    for statement in (
        "UPDATE audit_events SET actor = 'x'",
        "DELETE FROM audit_events",
        "TRUNCATE audit_events",
    ):
        with app_conn.transaction():
            app_conn.execute(f"SET LOCAL app.tenant_ids = '{tenant}'")
            try:
                with app_conn.transaction():
                    app_conn.execute(statement)
                raise AssertionError(f"{statement} was allowed")
            except psycopg.errors.InsufficientPrivilege:
                pass
