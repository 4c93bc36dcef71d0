"""The auditor's work: reading, exporting and verifying the log; outcomes; denials;
a chain the application cannot forge; signed checkpoints outside the database."""

from __future__ import annotations

import base64
import io
import json
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
from openpyxl import load_workbook

from service.app import AppState
from service.audit.chain import CHAIN_COLUMNS, event_hash, row_from
from service.audit.checkpoints import checkpoint_file
from service.audit.service import Event, checkpoint_now, record_many, verify_tenants
from service.auth.service import operator_principal
from service.clock import BUSINESS_ZONE
from service.config import Settings
from service.db import Scope
from tests.conftest import TestDatabase
from tests.support import PASSWORD, World, error_codes, gql, login, run_cli

EVENTS = """
query($f: AuditEventFilter, $first: Int, $after: String) {
  auditEvents(filter: $f, first: $first, after: $after) {
    edges { cursor node { tenantId seq actor action objectType objectId outcome requestId
      details } }
    pageInfo { hasNextPage endCursor }
  }
}"""
RENAME = "mutation($i: RenameOrgUnitInput!) { renameOrgUnit(input: $i) { orgUnit { version } } }"


async def _rename(client: httpx.AsyncClient, token: str, world: World, unit: str, name: str) -> Any:
    return await gql(client, token, RENAME, {"i": {"id": world.gid(unit), "name": name}})


def _events(owner_conn: psycopg.Connection[Any], tenant: int) -> list[Any]:
    return owner_conn.execute(
        "SELECT seq, actor, action, outcome, details FROM audit_events WHERE tenant_id = %s "
        "ORDER BY seq",
        (tenant,),
    ).fetchall()


async def test_auditor_reads_filters_and_pages_events(
    client: httpx.AsyncClient, world: World
) -> None:
    org = await login(client, world.user("orgA"))
    for name in ("一", "二", "三"):
        await _rename(client, org, world, "a2", f"第{name}支部")
    auditor = await login(client, world.user("auditor"))
    wanted = {"tenant": world.gid("A"), "action": "orgunit.rename", "outcome": "SUCCESS"}
    first = await gql(client, auditor, EVENTS, {"f": wanted, "first": 2})
    page = first["data"]["auditEvents"]
    names = [json.loads(e["node"]["details"])["new_name"] for e in page["edges"]]
    assert names == ["第三支部", "第二支部"] and page["pageInfo"]["hasNextPage"]
    assert {e["node"]["actor"] for e in page["edges"]} == {world.user("orgA")}
    rest = await gql(
        client, auditor, EVENTS, {"f": wanted, "first": 2, "after": page["pageInfo"]["endCursor"]}
    )
    tail = rest["data"]["auditEvents"]
    assert [json.loads(e["node"]["details"])["new_name"] for e in tail["edges"]] == ["第一支部"]
    assert not tail["pageInfo"]["hasNextPage"]
    by_unit = await gql(client, auditor, EVENTS, {"f": {"orgUnit": world.gid("a2")}})
    actions = [e["node"]["action"] for e in by_unit["data"]["auditEvents"]["edges"]]
    assert actions == ["orgunit.rename"] * 3 + ["orgunit.create"]


async def test_a_time_without_an_offset_is_beijing_time(
    client: httpx.AsyncClient, world: World
) -> None:
    """The filter's `from`/`to` given without an offset are read as Beijing's wall
    clock (the service's business zone), whatever the database session's zone."""
    org = await login(client, world.user("orgA"))
    await _rename(client, org, world, "a2", "第九支部")
    auditor = await login(client, world.user("auditor"))
    query = (
        "query($f: AuditEventFilter) { auditEvents(filter: $f, first: 5) "
        "{ edges { node { action occurredAt } } } }"
    )
    wanted = {"tenant": world.gid("A"), "action": "orgunit.rename"}
    found = await gql(client, auditor, query, {"f": wanted})
    at = datetime.fromisoformat(found["data"]["auditEvents"]["edges"][0]["node"]["occurredAt"])
    beijing = at.astimezone(BUSINESS_ZONE).replace(tzinfo=None)

    async def count(**bounds: datetime) -> int:
        f = wanted | {k: v.isoformat() for k, v in bounds.items()}
        answer = await gql(client, auditor, query, {"f": f})
        return len(answer["data"]["auditEvents"]["edges"])

    second = timedelta(seconds=1)
    assert await count(**{"from": beijing - second}) == 1
    assert await count(**{"from": beijing + second}) == 0
    assert await count(to=beijing + second) == 1
    assert await count(**{"from": at - second, "to": at + second}) == 1  # with an offset


async def test_everyone_but_the_auditor_is_refused_and_the_refusal_is_audited(
    client: httpx.AsyncClient, world: World, owner_conn: psycopg.Connection[Any]
) -> None:
    for who in ("county", "security", "sysadmin", "orgA"):
        token = await login(client, world.user(who))
        body = await gql(client, token, EVENTS, {"f": {"tenant": world.gid("A")}})
        assert body["data"] is None and error_codes(body)[0] in {"FORBIDDEN", "NOT_FOUND"}
        unfiltered = await gql(client, token, EVENTS)
        assert error_codes(unfiltered) == ["FORBIDDEN"], who
    denied = owner_conn.execute(
        "SELECT actor, action, outcome FROM audit_events WHERE outcome = 'denied' AND actor = %s",
        (world.user("orgA"),),
    ).fetchall()
    assert denied and all(row[2] == "denied" for row in denied)


async def test_forbidden_mutation_leaves_a_denied_event_though_it_rolled_back(
    client: httpx.AsyncClient, world: World, owner_conn: psycopg.Connection[Any]
) -> None:
    token = await login(client, world.user("secA"))
    body = await gql(client, token, RENAME, {"i": {"id": world.gid("a1"), "name": "越权改名"}})
    assert error_codes(body) == ["FORBIDDEN"]
    rows = owner_conn.execute(
        "SELECT tenant_id, action, object_type, object_id, outcome, details->>'field' "
        "FROM audit_events WHERE actor = %s AND outcome = 'denied'",
        (world.user("secA"),),
    ).fetchall()
    tenant, unit = world.units["A"].id, world.units["a1"].id
    assert rows == [(tenant, "orgunit:update", "OrgUnit", str(unit), "denied", "renameOrgUnit")]
    assert owner_conn.execute("SELECT name FROM org_units WHERE id = %s", (unit,)).fetchone() == (
        "甲镇第一支部",
    )


async def test_same_name_rename_writes_nothing_and_details_tell_old_and_new(
    client: httpx.AsyncClient, world: World, owner_conn: psycopg.Connection[Any]
) -> None:
    token = await login(client, world.user("orgA"))
    tenant = world.units["A"].id
    before = _events(owner_conn, tenant)
    same = await _rename(client, token, world, "a1", "甲镇第一支部")
    assert same["data"]["renameOrgUnit"]["orgUnit"]["version"] == world.units["a1"].version
    assert _events(owner_conn, tenant) == before
    await _rename(client, token, world, "a1", "新名")
    last = _events(owner_conn, tenant)[-1]
    assert last[2] == "orgunit.rename" and last[4]["old_name"] == "甲镇第一支部"
    assert last[4]["new_name"] == "新名"


async def test_failed_login_of_an_unknown_username_is_audited_as_failed(
    client: httpx.AsyncClient, world: World, owner_conn: psycopg.Connection[Any]
) -> None:
    ghost = f"{world.tag}.ghost"
    response = await client.post("/auth/token", data={"username": ghost, "password": "x" * 12})
    assert response.status_code == 401
    platform = owner_conn.execute("SELECT id FROM tenants WHERE kind = 'platform'").fetchone()[0]
    assert owner_conn.execute(
        "SELECT tenant_id, action, outcome, details FROM audit_events WHERE actor = %s",
        (ghost,),
    ).fetchall() == [(platform, "auth.login_failed", "failed", {"unknown_username": True})]


def test_application_role_sends_business_columns_only_and_the_database_chains(
    world: World, app_conn: psycopg.Connection[Any]
) -> None:
    tenant = world.units["B"].id
    with app_conn.transaction():
        app_conn.execute(f"SET LOCAL app.tenant_ids = '{int(tenant)}'")
        for forged in ("seq", "hash", "prev_hash", "occurred_at"):
            value = "now()" if forged == "occurred_at" else ("1" if forged == "seq" else "'x'")
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                with app_conn.transaction():
                    app_conn.execute(
                        f"INSERT INTO audit_events (tenant_id, actor, action, object_type, "
                        f"object_id, {forged}) VALUES (%s, 'a', 'b', 'c', 'd', {value})",
                        (tenant,),
                    )
        app_conn.execute(
            "INSERT INTO audit_events (tenant_id, actor, action, object_type, object_id, "
            "details) VALUES (%s, 'raw', 'raw.test', 'X', '1', '{\"k\": \"值\", \"a\": 1}')",
            (tenant,),
        )
        rows = app_conn.execute(
            f"SELECT {CHAIN_COLUMNS} FROM audit_events WHERE tenant_id = %s ORDER BY seq",
            (tenant,),
        ).fetchall()
    assert rows
    prev = "0" * 64
    for i, raw in enumerate(rows, start=1):
        record = _Row(raw, CHAIN_COLUMNS)
        row, stored = row_from(record)
        assert (row.seq, row.prev_hash) == (i, prev)
        assert event_hash(row) == stored  # Python's canonical form = the database's
        prev = stored


async def test_many_events_in_one_statement_chain_in_order(state: AppState, world: World) -> None:
    """`record_many` (one INSERT for a bulk operation's events) chains each tenant's
    events in the order given, exactly as one `record` after another would."""
    a, b = world.units["A"].id, world.units["B"].id
    order = [(a, "1"), (b, "2"), (a, "3"), (a, "4"), (b, "5")]
    async with state.db.transaction(Scope.of(None, [a, b]), write=True) as tx:
        op = await operator_principal(tx, name="bulk")
        tx.widen([a, b])
        before = {
            t: await tx.scalar(
                "SELECT coalesce(max(seq), 0) FROM audit_events WHERE tenant_id = %(t)s",
                {"t": t},
            )
            for t in (a, b)
        }
        await record_many(
            tx,
            op,
            [
                Event(
                    tenant_id=t, action="bulk.test", object_type="X", object_id=i, details={"n": i}
                )
                for t, i in order
            ],
        )
    async with state.db.transaction(Scope.of(None, [a, b]), write=False) as tx:
        rows = await tx.rows(
            "SELECT tenant_id, seq, object_id, actor FROM audit_events"
            " WHERE action = 'bulk.test' ORDER BY tenant_id, seq"
        )
        verdict = await verify_tenants(tx, [a, b], {})
    assert [(r.tenant_id, r.object_id) for r in rows] == sorted(
        order, key=lambda e: (e[0], int(e[1]))
    )
    for t in (a, b):
        seqs = [r.seq for r in rows if r.tenant_id == t]
        assert seqs == list(range(before[t] + 1, before[t] + 1 + len(seqs)))
    assert {r.actor for r in rows} == {op.actor}
    assert verdict.ok, verdict


class _Row:
    """Attribute access over a tuple selected with CHAIN_COLUMNS."""

    def __init__(self, values: tuple[Any, ...], columns: str) -> None:
        names = [c.strip().split(" AS ")[-1] for c in columns.split(",")]
        self.__dict__.update(zip(names, values, strict=True))


async def test_export_csv_and_xlsx(client: httpx.AsyncClient, world: World) -> None:
    org = await login(client, world.user("orgA"))
    await _rename(client, org, world, "a3", "导出支部")
    auditor = await login(client, world.user("auditor"))
    query = (
        "mutation($f: AuditEventFilter, $fmt: AuditExportFormat!) "
        "{ exportAuditEvents(filter: $f, format: $fmt) { filename contentBase64 rowCount } }"
    )
    wanted = {"tenant": world.gid("A"), "action": "orgunit.rename"}
    csv_body = await gql(client, auditor, query, {"f": wanted, "fmt": "CSV"})
    made = csv_body["data"]["exportAuditEvents"]
    text = base64.b64decode(made["contentBase64"]).decode("utf-8-sig")
    assert made["rowCount"] == 1 and "导出支部" in text and world.user("orgA") in text
    xlsx_body = await gql(client, auditor, query, {"f": wanted, "fmt": "XLSX"})
    content = base64.b64decode(xlsx_body["data"]["exportAuditEvents"]["contentBase64"])
    sheet = load_workbook(io.BytesIO(content)).active
    assert any("导出支部" in str(c.value) for row in sheet.iter_rows() for c in row)
    refused = await gql(client, org, query, {"fmt": "CSV"})
    assert error_codes(refused) == ["FORBIDDEN"]


VERIFY = (
    "{ auditVerification { ok eventsChecked problems "
    "tenants { tenantId eventsChecked headSeq ok brokenSeq reason } } }"
)


def _cli_env(tmp_path: Path) -> dict[str, str]:
    return {
        "PINGYI_AUDIT_SIGNING_KEY_FILE": str(tmp_path / "audit-key.pem"),
        "PINGYI_AUDIT_CHECKPOINT_FILE": str(tmp_path / "checkpoints.jsonl"),
    }


async def test_checkpoint_then_deleted_tail_and_rewritten_chain_are_reported(
    client: httpx.AsyncClient,
    world: World,
    owner_conn: psycopg.Connection[Any],
    database: TestDatabase,
    tmp_path: Path,
) -> None:
    org = await login(client, world.user("orgA"))
    for name in ("一", "二", "三"):
        await _rename(client, org, world, "a1", f"检查点{name}")
    env = _cli_env(tmp_path)
    made = run_cli(database.owner_url, "audit", "checkpoint", **env)
    assert made.returncode == 0, made.stdout + made.stderr
    tenant = world.units["A"].id
    lines = [json.loads(x) for x in (tmp_path / "checkpoints.jsonl").read_text().splitlines()]
    head = next(x for x in lines if x["tenant_id"] == tenant)
    clean = run_cli(database.owner_url, "audit", "verify", **env)
    assert clean.returncode == 0, clean.stdout + clean.stderr

    saved = owner_conn.execute(
        "SELECT * FROM audit_events WHERE tenant_id = %s AND seq = %s", (tenant, head["seq"])
    ).fetchone()
    owner_conn.execute(
        "DELETE FROM audit_events WHERE tenant_id = %s AND seq = %s", (tenant, head["seq"])
    )
    try:
        cut = run_cli(database.owner_url, "audit", "verify", **env)
        assert cut.returncode == 1
        assert f"租户 {tenant} 第 {head['seq']} 条" in cut.stdout and "尾部被删除" in cut.stdout
    finally:
        _put_back(owner_conn, saved)

    # Rewrite an event and re-hash the rest of the chain: internally consistent again.
    original = owner_conn.execute(
        "SELECT seq, details::text FROM audit_events WHERE tenant_id = %s ORDER BY seq LIMIT 1",
        (tenant,),
    ).fetchone()
    _rewrite(owner_conn, tenant, original[0], '{"forged": true}')
    try:
        rewritten = run_cli(database.owner_url, "audit", "verify", **env)
        assert rewritten.returncode == 1
        assert f"租户 {tenant} 第 {head['seq']} 条" in rewritten.stdout, rewritten.stdout
        assert "链被改写" in rewritten.stdout
    finally:
        _rewrite(owner_conn, tenant, original[0], original[1])
    assert run_cli(database.owner_url, "audit", "verify", **env).returncode == 0


def _put_back(owner_conn: psycopg.Connection[Any], row: Any) -> None:
    """Re-insert a deleted event as it was (triggers off: it keeps its own seq/hash)."""
    with owner_conn.transaction():
        owner_conn.execute("SET LOCAL session_replication_role = replica")
        owner_conn.execute(
            "INSERT INTO audit_events SELECT * FROM json_populate_record(NULL::audit_events, %s)",
            (json.dumps(_as_json(row, owner_conn)),),
        )


def _as_json(row: tuple[Any, ...], owner_conn: psycopg.Connection[Any]) -> dict[str, Any]:
    names = [
        r[0]
        for r in owner_conn.execute(
            "SELECT column_name FROM information_schema.columns "
            "WHERE table_name = 'audit_events' ORDER BY ordinal_position"
        ).fetchall()
    ]
    return {
        n: (v.isoformat() if hasattr(v, "isoformat") else v)
        for n, v in zip(names, row, strict=True)
    }


def _rewrite(owner_conn: psycopg.Connection[Any], tenant: int, seq: int, details: str) -> None:
    """As the owner: change one event and recompute every hash after it (the database's
    own canonical function), so the chain verifies again on its own."""
    owner_conn.execute(
        """
        DO $$
        DECLARE ev record; prev text;
        BEGIN
          UPDATE audit_events SET details = %(details)s::jsonb
            WHERE tenant_id = %(tenant)s AND seq = %(seq)s;
          SELECT hash INTO prev FROM audit_events
            WHERE tenant_id = %(tenant)s AND seq = %(seq)s - 1;
          prev := coalesce(prev, repeat('0', 64));
          FOR ev IN SELECT * FROM audit_events WHERE tenant_id = %(tenant)s
              AND seq >= %(seq)s ORDER BY seq LOOP
            UPDATE audit_events SET prev_hash = prev, hash = pingyi_audit_hash(
              pingyi_audit_canonical(ev.tenant_id, ev.seq, ev.occurred_at,
                ev.actor_account_id, ev.actor, ev.action, ev.object_type, ev.object_id,
                ev.outcome, ev.request_id, ev.details, prev))
              WHERE tenant_id = ev.tenant_id AND seq = ev.seq
              RETURNING hash INTO prev;
          END LOOP;
        END $$;
        """.replace("%(details)s", psycopg.sql.quote(details))
        .replace("%(tenant)s", str(int(tenant)))
        .replace("%(seq)s", str(int(seq)))
    )


async def test_verification_through_graphql_and_the_periodic_checkpoint(
    client: httpx.AsyncClient,
    world: World,
    owner_conn: psycopg.Connection[Any],
    state: Any,
    settings: Settings,
) -> None:
    org = await login(client, world.user("orgA"))
    await _rename(client, org, world, "a2", "校验支部")
    made = await checkpoint_now(state.db, settings)
    tenant = world.units["A"].id
    assert any(c.tenant_id == tenant for c in made)
    assert checkpoint_file(settings).exists()
    auditor = await login(client, world.user("auditor"))
    body = await gql(client, auditor, VERIFY)
    mine = [
        t for t in body["data"]["auditVerification"]["tenants"] if t["tenantId"] == world.gid("A")
    ]
    assert mine and mine[0]["ok"] and mine[0]["eventsChecked"] >= 1

    seq, details = owner_conn.execute(
        "SELECT seq, details::text FROM audit_events WHERE tenant_id = %s ORDER BY seq LIMIT 1",
        (tenant,),
    ).fetchone()
    owner_conn.execute(
        "UPDATE audit_events SET details = '{\"x\": 1}' WHERE tenant_id = %s AND seq = %s",
        (tenant, seq),
    )
    try:
        broken = await gql(client, auditor, VERIFY)
        verdict = broken["data"]["auditVerification"]
        mine = next(t for t in verdict["tenants"] if t["tenantId"] == world.gid("A"))
        assert not verdict["ok"] and not mine["ok"] and mine["brokenSeq"] == seq
        assert "改动" in mine["reason"]
        refused = await gql(client, org, VERIFY)
        assert error_codes(refused) == ["FORBIDDEN"]
    finally:
        owner_conn.execute(
            "UPDATE audit_events SET details = %s::jsonb WHERE tenant_id = %s AND seq = %s",
            (details, tenant, seq),
        )


async def test_lockout_locked_and_disabled_attempts_are_audited_as_failed(
    client: httpx.AsyncClient, world: World, owner_conn: psycopg.Connection[Any]
) -> None:
    """Wrong passwords up to the threshold lock the account (auth.lockout); a further
    attempt, even with the right password, is auth.login_locked; an attempt on a
    disabled account is auth.login_disabled. All in the account's home chain, failed."""
    who = world.accounts["nobody"]
    for _ in range(5):
        wrong = await client.post(
            "/auth/token", data={"username": world.user("nobody"), "password": "Wrong-Pass-123!"}
        )
        assert wrong.status_code in (401, 423)
    locked = await client.post(
        "/auth/token", data={"username": world.user("nobody"), "password": PASSWORD}
    )
    assert locked.status_code == 423
    owner_conn.execute(
        "UPDATE accounts SET is_active = false WHERE id = %s", (world.accounts["memA1"],)
    )
    disabled = await client.post(
        "/auth/token", data={"username": world.user("memA1"), "password": PASSWORD}
    )
    assert disabled.status_code in (401, 403)
    events = owner_conn.execute(
        "SELECT action, outcome, object_id FROM audit_events"
        " WHERE action IN ('auth.lockout', 'auth.login_locked', 'auth.login_disabled')"
        " AND object_id = ANY(%s)",
        ([str(who), str(world.accounts["memA1"])],),
    ).fetchall()
    found = {(action, outcome, object_id) for action, outcome, object_id in events}
    assert ("auth.lockout", "failed", str(who)) in found
    assert ("auth.login_locked", "failed", str(who)) in found
    assert ("auth.login_disabled", "failed", str(world.accounts["memA1"])) in found
