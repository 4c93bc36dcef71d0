"""Lock 2 alone: row-level security holds whatever the application code does.

These tests talk to PostgreSQL as the application role in raw SQL (no service code, no
Casbin): with tenant A's scope it cannot read or write B's rows, with no scope it sees
no rows at all, and a scope never outlives its transaction, also on a pooled connection
the app reuses after a request of tenant A.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import httpx
import psycopg
import pytest
from psycopg import errors, sql

from service.app import AppState
from service.auth.service import load_principal
from service.db import Scope
from tests.support import World, build_world, gql, login

RLS_VIOLATION = "row-level security"


@pytest.fixture(scope="module")
async def shared(state: AppState) -> World:
    """One world for this module: no test here changes it (writes are refused)."""
    return await build_world(state)


def tenant_tables(owner_conn: psycopg.Connection[Any]) -> list[str]:
    """Every table of the public schema with a tenant_id column (read from the catalogue,
    so a new tenant table is covered here without being listed)."""
    rows = owner_conn.execute(
        """
        SELECT c.relname FROM pg_class c
        JOIN pg_namespace n ON n.oid = c.relnamespace
        JOIN pg_attribute a ON a.attrelid = c.oid AND a.attname = 'tenant_id'
          AND NOT a.attisdropped
        WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p')
        ORDER BY c.relname
        """
    ).fetchall()
    tables = [r[0] for r in rows]
    assert {"org_units", "role_assignments", "audit_events"} <= set(tables), tables
    return tables


# Tables the application may not read: what ballots said (the per-position counters)
# is added to only by the definer function `evaluation_count_ballot` and taken (read and
# deleted) only by `evaluation_take_counts`, after balloting closed (migrations 0015,
# 0018).
UNREADABLE = frozenset({"evaluation_counts"})


def readable_tables(
    owner_conn: psycopg.Connection[Any], app_conn: psycopg.Connection[Any]
) -> list[str]:
    """The tenant tables the application role may read; the others are exactly
    `UNREADABLE`, and reading one is refused outright."""
    tables = tenant_tables(owner_conn)
    role = app_conn.execute("SELECT current_user").fetchone()
    assert role is not None
    unreadable = {
        t
        for t in tables
        if not owner_conn.execute(
            "SELECT has_table_privilege(%s, %s, 'SELECT')", (role[0], t)
        ).fetchone()[0]  # type: ignore[index]
    }
    assert unreadable == UNREADABLE, unreadable
    for table in sorted(unreadable):
        with pytest.raises(errors.InsufficientPrivilege), app_conn.transaction():
            count(app_conn, table)
    return [t for t in tables if t not in unreadable]


@contextlib.contextmanager
def scoped(
    conn: psycopg.Connection[Any], tenant_ids: list[int] | None, account_id: int | None = None
) -> Iterator[psycopg.Connection[Any]]:
    """A transaction with `SET LOCAL` of the scope, as service.db.Scope.set_local does it."""
    with conn.transaction():
        if tenant_ids is not None:
            scope = ",".join(str(int(t)) for t in tenant_ids)
            conn.execute(sql.SQL("SET LOCAL app.tenant_ids = {}").format(sql.Literal(scope)))
        if account_id is not None:
            conn.execute(
                sql.SQL("SET LOCAL app.account_id = {}").format(sql.Literal(str(account_id)))
            )
        yield conn


def count(conn: psycopg.Connection[Any], table: str, where: str = "", *params: Any) -> int:
    query = sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(table))
    if where:
        query = sql.SQL("{} WHERE {}").format(query, sql.SQL(where))  # type: ignore[arg-type]
    row = conn.execute(query, params).fetchone()
    assert row is not None
    return int(row[0])


def owner_count(owner_conn: psycopg.Connection[Any], table: str, tenant_id: int) -> int:
    """What is really there (the owner, scoped to everything it asks about)."""
    with scoped(owner_conn, [tenant_id]):
        return count(owner_conn, table, "tenant_id = %s", tenant_id)


def tenant_ids(world: World) -> tuple[int, int]:
    return world.units["A"].tenant_id, world.units["B"].tenant_id


# -- reading ----------------------------------------------------------------------------


def test_scope_of_a_reads_a_and_nothing_of_b(
    app_conn: psycopg.Connection[Any], owner_conn: psycopg.Connection[Any], shared: World
) -> None:
    a, b = tenant_ids(shared)
    tables = readable_tables(owner_conn, app_conn)
    for table in ("org_units", "role_assignments", "audit_events"):
        # The rows exist (the owner sees them), so an empty answer below means hidden.
        assert owner_count(owner_conn, table, a) > 0, table
        assert owner_count(owner_conn, table, b) > 0, table
    with scoped(app_conn, [a]):
        for table in tables:
            assert count(app_conn, table, "tenant_id = %s", b) == 0, table
            # No filter at all: only A's rows come back, whatever other tenants hold.
            seen = app_conn.execute(
                sql.SQL("SELECT DISTINCT tenant_id FROM {}").format(sql.Identifier(table))
            ).fetchall()
            assert {r[0] for r in seen} <= {a}, (table, seen)
        for table in ("org_units", "role_assignments", "audit_events"):
            assert count(app_conn, table, "tenant_id = %s", a) > 0, table
        # By id, by name, by path: B's units stay invisible.
        b1 = shared.units["b1"]
        assert count(app_conn, "org_units", "id = %s", b1.id) == 0
        assert count(app_conn, "org_units", "name LIKE %s", "乙镇%") == 0
        assert count(app_conn, "org_units", "path LIKE %s", f"{shared.units['B'].path}%") == 0


def test_scope_of_a_cannot_write_b(
    app_conn: psycopg.Connection[Any], owner_conn: psycopg.Connection[Any], shared: World
) -> None:
    a, b = tenant_ids(shared)
    b_unit, b1 = shared.units["B"], shared.units["b1"]
    before = {t: owner_count(owner_conn, t, b) for t in tenant_tables(owner_conn)}
    with owner_conn.transaction():
        b_names = owner_conn.execute(
            "SELECT id, name, version FROM org_units WHERE tenant_id = %s ORDER BY id", (b,)
        ).fetchall()

    # UPDATE and DELETE find nothing to change.
    with scoped(app_conn, [a]):
        cur = app_conn.execute(
            "UPDATE org_units SET name = 'hacked', version = version + 1 WHERE tenant_id = %s",
            (b,),
        )
        assert cur.rowcount == 0
        cur = app_conn.execute("UPDATE org_units SET name = 'hacked' WHERE id = %s", (b1.id,))
        assert cur.rowcount == 0
        assert (
            app_conn.execute("DELETE FROM role_assignments WHERE tenant_id = %s", (b,)).rowcount
            == 0
        )
        assert (
            app_conn.execute(
                "DELETE FROM role_assignments WHERE account_id = %s", (shared.accounts["secB"],)
            ).rowcount
            == 0
        )

    # INSERT of a row of B, and moving a row of A into B, violate the policy.
    writes: list[tuple[str, tuple[Any, ...]]] = [
        (
            "INSERT INTO org_units (tenant_id, parent_tenant_id, parent_id, kind, code, name,"
            " path) VALUES (%s, %s, %s, 'branch', 'rls-x', '入侵支部', %s)",
            (b, b, b_unit.id, f"{b_unit.path}999999/"),
        ),
        (
            "INSERT INTO role_assignments (tenant_id, account_id, role, org_unit_id, org_path)"
            " VALUES (%s, %s, 'member', %s, %s)",
            (b, shared.accounts["memA1"], b1.id, b1.path),
        ),
        (
            # The business columns only: seq and hash are the database's (0005_audit).
            "INSERT INTO audit_events (tenant_id, actor, action, object_type, object_id)"
            " VALUES (%s, 'x', 'x', 'x', 'x')",
            (b,),
        ),
        (
            "UPDATE org_units SET tenant_id = %s WHERE id = %s",
            (b, shared.units["a2"].id),
        ),
    ]
    for statement, params in writes:
        with pytest.raises(errors.InsufficientPrivilege, match=RLS_VIOLATION):
            with scoped(app_conn, [a]):
                app_conn.execute(statement, params)  # type: ignore[arg-type]

    # B is as it was.
    assert {t: owner_count(owner_conn, t, b) for t in before} == before
    with owner_conn.transaction():
        assert (
            owner_conn.execute(
                "SELECT id, name, version FROM org_units WHERE tenant_id = %s ORDER BY id", (b,)
            ).fetchall()
            == b_names
        )


def test_own_grants_policy_opens_reading_only(
    app_conn: psycopg.Connection[Any], shared: World
) -> None:
    """The one extra policy (an account reads its own grants before its scope is known)
    lets nothing be written, and shows nothing but that account's grants."""
    a, b = tenant_ids(shared)
    sec_b = shared.accounts["secB"]
    with scoped(app_conn, [a], account_id=sec_b):
        rows = app_conn.execute(
            "SELECT DISTINCT account_id FROM role_assignments WHERE tenant_id = %s", (b,)
        ).fetchall()
        assert rows == [(sec_b,)]
        assert count(app_conn, "org_units", "tenant_id = %s", b) == 0
        assert count(app_conn, "audit_events", "tenant_id = %s", b) == 0
        assert (
            app_conn.execute(
                "DELETE FROM role_assignments WHERE account_id = %s", (sec_b,)
            ).rowcount
            == 0
        )
    with pytest.raises(errors.InsufficientPrivilege, match=RLS_VIOLATION):
        with scoped(app_conn, [a], account_id=sec_b):
            app_conn.execute(
                "INSERT INTO role_assignments (tenant_id, account_id, role, org_unit_id,"
                " org_path) VALUES (%s, %s, 'member', %s, %s)",
                (b, sec_b, shared.units["b1"].id, shared.units["b1"].path),
            )


# -- no scope ---------------------------------------------------------------------------


def test_no_scope_sees_no_rows(
    app_conn: psycopg.Connection[Any], owner_conn: psycopg.Connection[Any], shared: World
) -> None:
    a, _ = tenant_ids(shared)
    tables = readable_tables(owner_conn, app_conn)
    for scope in (None, []):  # never set; set to ''
        with scoped(app_conn, scope):
            setting = app_conn.execute("SELECT current_setting('app.tenant_ids', true)").fetchone()
            assert setting is not None and setting[0] in (None, "")
            for table in tables:
                assert count(app_conn, table) == 0, (scope, table)
    with pytest.raises(errors.InsufficientPrivilege, match=RLS_VIOLATION):
        with scoped(app_conn, None):
            app_conn.execute(
                "INSERT INTO audit_events (tenant_id, actor, action, object_type, object_id)"
                " VALUES (%s, 'x', 'x', 'x', 'x')",
                (a,),
            )


def test_malformed_scope_fails_closed(app_conn: psycopg.Connection[Any], shared: World) -> None:
    a, _ = tenant_ids(shared)
    for bad in (f"{a} OR true", f"{a},x", "*"):
        with pytest.raises(errors.InvalidTextRepresentation):
            with app_conn.transaction():
                app_conn.execute(sql.SQL("SET LOCAL app.tenant_ids = {}").format(sql.Literal(bad)))
                app_conn.execute("SELECT count(*) FROM org_units").fetchone()


def test_set_local_does_not_outlive_its_transaction(
    app_conn: psycopg.Connection[Any], shared: World
) -> None:
    a, _ = tenant_ids(shared)
    pid = app_conn.execute("SELECT pg_backend_pid()").fetchone()
    app_conn.commit()

    def nothing_visible() -> None:
        with app_conn.transaction():
            row = app_conn.execute(
                "SELECT pg_backend_pid(), current_setting('app.tenant_ids', true),"
                " current_setting('app.account_id', true)"
            ).fetchone()
            assert row is not None
            assert (row[0],) == pid  # the same connection all along
            assert row[1] in (None, "") and row[2] in (None, ""), row
            assert count(app_conn, "org_units") == 0

    for end in ("commit", "rollback", "error"):
        with contextlib.suppress(errors.DivisionByZero):
            with scoped(app_conn, [a], account_id=shared.accounts["secA"]):
                assert count(app_conn, "org_units", "tenant_id = %s", a) > 0
                if end == "rollback":
                    raise psycopg.Rollback()
                if end == "error":
                    app_conn.execute("SELECT 1 / 0")
        nothing_visible()

    # A scope set in a savepoint that rolls back is gone even inside the transaction.
    with app_conn.transaction():
        with contextlib.suppress(psycopg.Rollback), app_conn.transaction():
            app_conn.execute(sql.SQL("SET LOCAL app.tenant_ids = {}").format(sql.Literal(str(a))))
            assert count(app_conn, "org_units") > 0
            raise psycopg.Rollback()
        assert count(app_conn, "org_units") == 0
    nothing_visible()


# -- the application's own pool -----------------------------------------------------------


async def _idle_connections_are_clean(state: AppState) -> set[int]:
    """Check out every idle connection of the app's pool at once; each must carry no scope
    and see no rows. Returns their backend pids."""
    pool = state.db.pool
    idle = pool.get_stats()["pool_available"]
    assert idle >= 1, "the pool holds no idle connection to check"
    pids: set[int] = set()
    async with contextlib.AsyncExitStack() as stack:
        for _ in range(idle):
            conn = await stack.enter_async_context(pool.connection())
            row = await (
                await conn.execute(
                    "SELECT pg_backend_pid(), current_setting('app.tenant_ids', true) AS scope,"
                    " current_setting('app.account_id', true) AS account,"
                    " (SELECT count(*) FROM org_units) AS units,"
                    " (SELECT count(*) FROM role_assignments) AS grants,"
                    " (SELECT count(*) FROM audit_events) AS events"
                )
            ).fetchone()
            pid, scope, account, *counts = row
            assert scope in (None, "") and account in (None, ""), row
            assert counts == [0, 0, 0], row
            pids.add(pid)
    return pids


async def test_pooled_connection_reused_after_a_request_of_a_has_no_scope(
    client: httpx.AsyncClient, state: AppState, shared: World
) -> None:
    world = shared
    token = await login(client, world.user("secA"))
    # A successful request, a failed one (rolled back), and one whose sibling resolvers are
    # cancelled by a NOT_FOUND (the connection may be discarded): all as tenant A.
    ok = await gql(client, token, "{ tenants { nodes { name } } me { username } }")
    assert ok.get("errors") is None and ok["data"]["tenants"]["nodes"] == [{"name": "甲镇"}]
    failed = await gql(
        client, token, "query($id: ID!) { orgUnit(id: $id) { name } }", {"id": world.gid("b1")}
    )
    assert failed["errors"][0]["extensions"]["code"] == "NOT_FOUND"
    mixed = await gql(
        client,
        token,
        """query($a: ID!, $b: ID!) { one: orgUnit(id: $a) { name parent { name } }
           me { username roleAssignments { nodes { id } } }
           two: orgUnit(id: $b) { name } three: tenants { nodes { name } } }""",
        {"a": world.gid("a1"), "b": world.gid("b1")},
    )
    assert [e["extensions"]["code"] for e in mixed["errors"]] == ["NOT_FOUND"], mixed

    await _idle_connections_are_clean(state)

    # The same physical connection, deterministically: scope it to A in a transaction of
    # the app's own, end the transaction, find that connection again in the pool. Both
    # ways a transaction runs: explicit (writes) and one implicit one per message (reads).
    a_scope = Scope.of(world.accounts["secA"], [world.units["A"].id])
    for write in (True, False):
        async with state.db.transaction(a_scope, write=write) as tx:
            pid = await tx.scalar("SELECT pg_backend_pid()")
            assert await tx.scalar("SELECT count(*) FROM org_units") > 0
        assert pid in await _idle_connections_are_clean(state)

    # And after a transaction that failed half-way.
    with contextlib.suppress(RuntimeError):
        async with state.db.transaction(Scope.of(None, [world.units["A"].id])) as tx:
            pid = await tx.scalar("SELECT pg_backend_pid()")
            raise RuntimeError("abandon the transaction")
    assert pid in await _idle_connections_are_clean(state)


async def test_request_scope_is_exactly_the_principals_tenants(
    client: httpx.AsyncClient, state: AppState, shared: World
) -> None:
    """How the service sets lock 2 for a request: the tenants of the principal's grants
    (and those below them), nothing more."""
    world = shared
    a, b = tenant_ids(world)
    county = world.units["county"].tenant_id
    expected = {
        "secA": {a},
        "orgA": {a},
        "bsA1": {a},
        "memA1": {a},
        "secB": {b},
        "county": {county, a, b},
        "nobody": set(),
    }
    for who, tenants in expected.items():
        token = await login(client, world.user(who))
        claims = state.tokens.validate_access_token(token)
        assert claims is not None
        principal = await load_principal(state.db, claims)
        async with state.db.transaction(principal.scope, write=False) as tx:
            scope = await tx.scalar("SELECT current_setting('app.tenant_ids')")
            assert {int(t) for t in scope.split(",") if t} == tenants, (who, scope)
            visible = await tx.scalar(
                "SELECT count(*) FROM org_units WHERE tenant_id = %(b)s", {"b": b}
            )
            assert (visible > 0) == (b in tenants), (who, visible)
