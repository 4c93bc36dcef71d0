"""The request's unit of work (service.db.Transaction) against the real database.

What the rest of the service relies on, and what a change to the batching must keep:
- the tenant scope (lock 2) travels with every message of a read transaction, and never
  outlives the transaction on a pooled connection;
- statements issued in one tick share one message, and a statement that fails in a read
  batch (on the server, or already while its values are bound) fails alone;
- a writing transaction is all or nothing: BEGIN with its first message, COMMIT at the
  end, ROLLBACK when the block raises, and once a statement failed it refuses the rest
  and refuses to commit;
- `Scope.set_local()` renders integers only (SET takes no bind parameters).
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from psycopg import errors

from service.app import AppState
from service.auth.service import operator_principal
from service.db import Database, Scope, Transaction, TransactionFailed
from service.tenants.rules import OrgUnitKind
from service.tenants.service import create_org_unit
from tests.conftest import TestDatabase
from tests.support import World, watching

BIGINT_MAX = 2**63 - 1

# How the row-level security policies read the scope (migrations/versions/0001).
SCOPE_AS_POLICIES_READ_IT = (
    "SELECT current_setting('app.tenant_ids') AS tenants,"
    " current_setting('app.account_id') AS account,"
    " coalesce(string_to_array(nullif(current_setting('app.tenant_ids', true), ''), ',')"
    "::bigint[], '{}') AS tenant_array,"
    " nullif(current_setting('app.account_id', true), '')::bigint AS account_id"
)


def tenants_of(world: World, *units: str) -> list[int]:
    return [world.units[u].tenant_id for u in units]


async def idle_connection_scopes(state: AppState) -> dict[int, tuple[Any, Any, int]]:
    """Check out every idle connection of the app's pool at once: backend pid ->
    (app.tenant_ids, app.account_id, org units visible)."""
    pool = state.db.pool
    idle = pool.get_stats()["pool_available"]
    assert idle >= 1, "the pool holds no idle connection to check"
    found: dict[int, tuple[Any, Any, int]] = {}
    async with contextlib.AsyncExitStack() as stack:
        for _ in range(idle):
            conn = await stack.enter_async_context(pool.connection())
            cursor = await conn.execute(
                "SELECT pg_backend_pid() AS pid, current_setting('app.tenant_ids', true) AS t,"
                " current_setting('app.account_id', true) AS a,"
                " (SELECT count(*) FROM org_units) AS units"
            )
            row = await cursor.fetchone()
            assert row is not None
            found[row.pid] = (row.t, row.a, row.units)
    return found


async def unit_count(state: AppState, tenant_id: int, code: str) -> int:
    """How many org units of `tenant_id` have `code`, read in a transaction of its own."""
    async with state.db.transaction(Scope.of(None, [tenant_id]), write=False) as tx:
        return int(
            await tx.scalar(
                "SELECT count(*) FROM org_units WHERE tenant_id = %(t)s AND code = %(c)s",
                {"t": tenant_id, "c": code},
            )
        )


async def audit_count(state: AppState, tenant_id: int) -> int:
    async with state.db.transaction(Scope.of(None, [tenant_id]), write=False) as tx:
        return int(
            await tx.scalar(
                "SELECT count(*) FROM audit_events WHERE tenant_id = %(t)s", {"t": tenant_id}
            )
        )


async def new_branch(tx: Transaction, world: World, code: str) -> Any:
    """Insert a branch under township A the way the service does (with its audit event)."""
    op = await operator_principal(tx, name="tests")
    return await create_org_unit(
        tx,
        op,
        parent_id=world.units["A"].id,
        kind=OrgUnitKind.BRANCH,
        code=code,
        name="事务测试支部",
    )


# -- the scope of a read transaction ---------------------------------------------------------


async def test_read_transaction_sends_its_scope_with_every_message(
    state: AppState, world: World
) -> None:
    a, b = tenants_of(world, "A", "B")
    county = world.units["county"].tenant_id
    account = world.accounts["secA"]
    scope = Scope.of(account, [a, county])
    with watching(state.db) as traffic:
        async with state.db.transaction(scope, write=False) as tx:
            first = await tx.one(SCOPE_AS_POLICIES_READ_IT)
            pid = await tx.scalar("SELECT pg_backend_pid()")
            # A later message is an implicit transaction of its own: it must carry the
            # scope again, or RLS would see nothing.
            second = await tx.one(SCOPE_AS_POLICIES_READ_IT)
            visible = await tx.rows(
                "SELECT DISTINCT tenant_id FROM org_units WHERE tenant_id = ANY(%(t)s)",
                {"t": [a, b, county]},
            )
    for seen in (first, second):
        assert {int(t) for t in seen.tenants.split(",")} == {a, county}
        assert set(seen.tenant_array) == {a, county}
        assert seen.account == str(account) and seen.account_id == account
    assert {r.tenant_id for r in visible} == {a, county}

    assert traffic.round_trips == 4
    for message, _ in traffic.messages:
        assert all(setting in message for setting in scope.statements()), message
        assert "transaction_read_only = on" in message, message  # read-only on the server
        assert "BEGIN" not in message and "COMMIT" not in message, message

    # After the transaction, the very connection it used is idle, unscoped and blind.
    idle = await idle_connection_scopes(state)
    assert pid in idle, (pid, idle)
    for tenants, account_setting, units in idle.values():
        assert tenants in (None, "") and account_setting in (None, ""), idle
        assert units == 0, idle


async def test_read_transaction_without_scope_sees_no_rows(state: AppState, world: World) -> None:
    """(`world` makes sure there are rows to hide.)"""
    async with state.db.transaction(Scope.of(None, []), write=False) as tx:
        row = await tx.one(SCOPE_AS_POLICIES_READ_IT)
        units = await tx.scalar("SELECT count(*) FROM org_units")
    assert row.tenants == "" and row.tenant_array == [] and row.account_id is None
    assert units == 0


async def test_sessions_read_timestamps_in_utc_whatever_the_servers_zone(
    database: TestDatabase, owner_conn: psycopg.Connection[Any]
) -> None:
    """The app's connections start in UTC (service.db._session_options), so a timestamp
    reads the same on a server whose default zone is Beijing's."""
    name = owner_conn.execute("SELECT current_database()").fetchone()[0]  # type: ignore[index]
    owner_conn.execute(f"ALTER DATABASE \"{name}\" SET TimeZone = 'Asia/Shanghai'")
    db = Database(database.app_url, pool_size=1)
    try:
        with psycopg.connect(database.app_url) as plain:
            assert plain.execute("SHOW TimeZone").fetchone()[0] == "Asia/Shanghai"  # type: ignore[index]
        async with db.transaction(Scope.of(None, []), write=False) as tx:
            zone = await tx.scalar("SHOW TimeZone")
            moment = await tx.scalar("SELECT '2026-11-28 08:00+08'::timestamptz")
    finally:
        await db.dispose()
        owner_conn.execute(f'ALTER DATABASE "{name}" RESET TimeZone')
    assert zone == "UTC"
    assert moment.utcoffset().total_seconds() == 0 and moment.hour == 0


# -- batching ---------------------------------------------------------------------------------


async def test_statements_issued_in_one_tick_share_one_message(
    state: AppState, world: World
) -> None:
    a = world.units["A"].tenant_id
    scope = Scope.of(None, [a])
    with watching(state.db) as traffic:
        async with state.db.transaction(scope, write=False) as tx:
            one, two, three = await asyncio.gather(
                tx.rows("SELECT 1 AS n"),
                tx.rows("SELECT %(x)s::int AS n", {"x": 2}),
                tx.rows(
                    "SELECT name FROM org_units WHERE tenant_id = %(t)s AND id = %(id)s",
                    {"t": a, "id": world.units["a1"].id},
                ),
            )
    # Each caller gets its own answer...
    assert [r.n for r in one] == [1]
    assert [r.n for r in two] == [2]
    assert [r.name for r in three] == ["甲镇第一支部"]
    # ...from one round trip: read-only, the scope (two SET LOCAL), the three statements.
    assert len(traffic.messages) == 1, traffic.messages
    message, statements = traffic.messages[0]
    assert statements == 6
    assert all(setting in message for setting in scope.statements())
    assert "SELECT 1 AS n" in message and "SELECT 2::int AS n" in message


async def test_failing_statement_of_a_read_batch_fails_alone(state: AppState, world: World) -> None:
    a = world.units["A"].tenant_id
    async with state.db.transaction(Scope.of(None, [a]), write=False) as tx:
        expected = await tx.scalar(
            "SELECT count(*) FROM org_units WHERE tenant_id = %(t)s", {"t": a}
        )
        assert expected > 0
        for failing_first in (True, False):
            failing = tx.rows("SELECT 1 / 0 AS n")
            sibling = tx.rows(
                "SELECT count(*) AS n FROM org_units WHERE tenant_id = %(t)s", {"t": a}
            )
            with watching(state.db) as traffic:
                pair = (failing, sibling) if failing_first else (sibling, failing)
                results = await asyncio.gather(*pair, return_exceptions=True)
            bad, good = results if failing_first else results[::-1]
            assert isinstance(bad, errors.DivisionByZero), bad
            # The sibling still reads under the scope (the retry carries it too).
            assert isinstance(good, list) and good[0].n == expected, good
            assert traffic.messages[0][1] == 5  # both went out together first
        # The transaction is still usable afterwards.
        assert await tx.scalar("SELECT 'still here'") == "still here"


async def test_value_that_cannot_be_bound_fails_only_its_statement(
    state: AppState, world: World
) -> None:
    a = world.units["A"].tenant_id
    async with state.db.transaction(Scope.of(None, [a]), write=False) as tx:
        with watching(state.db) as traffic:
            bad, good, also_good = await asyncio.gather(
                tx.rows("SELECT %(v)s AS v", {"v": "a\x00b"}),
                tx.rows("SELECT %(v)s AS v", {"v": "a b"}),
                tx.rows("SELECT 7 AS n"),
                return_exceptions=True,
            )
        assert isinstance(bad, psycopg.DataError), bad
        assert isinstance(good, list) and [r.v for r in good] == ["a b"]
        assert isinstance(also_good, list) and [r.n for r in also_good] == [7]
        # The unbindable statement never reached the server; its siblings went as one.
        assert len(traffic.messages) == 1 and traffic.messages[0][1] == 5, traffic.messages
        assert "\x00" not in traffic.messages[0][0]


# -- writing transactions ------------------------------------------------------------------


async def test_write_transaction_commits_when_the_block_completes(
    state: AppState, world: World
) -> None:
    a = world.units["A"].tenant_id
    code = f"{world.tag}-kept"
    audited = await audit_count(state, a)
    with watching(state.db) as traffic:
        async with state.db.transaction() as tx:
            unit = await new_branch(tx, world, code)
    assert unit.code == code and unit.tenant_id == a
    assert await unit_count(state, a, code) == 1
    assert await audit_count(state, a) == audited + 1  # the change and its audit event
    assert traffic.messages[0][0].split("\n")[0] == "BEGIN"
    # The audit event goes out with the COMMIT, in one message (Transaction.defer).
    last, statements = traffic.messages[-1]
    assert last.lstrip().startswith("INSERT INTO audit_events") and last.endswith("COMMIT")
    assert statements == 2
    assert sum(m.startswith("BEGIN") for m, _ in traffic.messages) == 1


async def test_a_deferred_statement_that_fails_fails_the_commit_and_writes_nothing(
    state: AppState, world: World
) -> None:
    """A deferred append goes out with the COMMIT; when it fails, the server skips the
    COMMIT, the transaction is rolled back, and neither the work nor the append stays."""
    a = world.units["A"].tenant_id
    code = f"{world.tag}-deferred"
    audited = await audit_count(state, a)
    checked_out = state.db.checked_out()
    with watching(state.db) as traffic, pytest.raises(TransactionFailed):
        async with state.db.transaction() as tx:
            await new_branch(tx, world, code)
            # An append that fails when the server runs it (division by zero).
            await tx.defer(
                "INSERT INTO audit_events (tenant_id, actor, action, object_type, object_id)"
                " VALUES (%(t)s, 'tests', 'x.y', 'OrgUnit', (1 / 0)::text)",
                {"t": a},
            )
    assert await unit_count(state, a, code) == 0
    assert await audit_count(state, a) == audited
    assert traffic.messages[-1] == ("ROLLBACK", 1)
    assert traffic.messages[-2][0].endswith("COMMIT")
    assert state.db.checked_out() == checked_out


async def test_a_transaction_of_deferred_statements_alone_opens_and_commits_once(
    state: AppState, world: World
) -> None:
    a = world.units["A"].tenant_id
    audited = await audit_count(state, a)
    with watching(state.db) as traffic:
        async with state.db.transaction(Scope.of(None, [a])) as tx:
            for n in range(3):
                await tx.defer(
                    "INSERT INTO audit_events (tenant_id, actor, action, object_type,"
                    " object_id) VALUES (%(t)s, 'tests', 'test.deferred', 'OrgUnit', %(n)s)",
                    {"t": a, "n": str(n)},
                )
    assert await audit_count(state, a) == audited + 3
    [(message, statements)] = traffic.messages
    assert message.startswith("BEGIN") and message.endswith("COMMIT")
    assert statements == 1 + len(Scope.of(None, [a]).statements()) + 3 + 1


async def test_write_transaction_that_raises_is_rolled_back(state: AppState, world: World) -> None:
    a = world.units["A"].tenant_id
    code = f"{world.tag}-gone"
    audited = await audit_count(state, a)
    checked_out = state.db.checked_out()
    with watching(state.db) as traffic, pytest.raises(RuntimeError, match="abandon"):
        async with state.db.transaction() as tx:
            unit = await new_branch(tx, world, code)
            # Inside the transaction the row is there...
            assert await tx.scalar(
                "SELECT count(*) FROM org_units WHERE tenant_id = %(t)s AND id = %(id)s",
                {"t": a, "id": unit.id},
            )
            raise RuntimeError("abandon the transaction")
    # ...and after it, neither the row nor its audit event is.
    assert await unit_count(state, a, code) == 0
    assert await audit_count(state, a) == audited
    assert traffic.messages[0][0].split("\n")[0] == "BEGIN"
    assert traffic.messages[-1] == ("ROLLBACK", 1)
    assert not any(m == "COMMIT" for m, _ in traffic.messages)
    assert state.db.checked_out() == checked_out  # the connection went back to the pool


async def test_write_transaction_refuses_statements_after_a_failure(
    state: AppState, world: World
) -> None:
    a = world.units["A"].tenant_id
    code = f"{world.tag}-lost"
    audited = await audit_count(state, a)
    checked_out = state.db.checked_out()
    tx = state.db.begin(Scope.of(None, [a]))
    with watching(state.db) as traffic:
        await new_branch(tx, world, code)
        with pytest.raises(errors.DivisionByZero):
            await tx.rows("SELECT 1 / 0")
        sent_before_refusals = len(traffic.messages)
        with pytest.raises(TransactionFailed):
            await tx.rows("SELECT 1")
        # Siblings of a write batch share its fate.
        refused = await asyncio.gather(
            tx.rows("SELECT 2"), tx.rows("SELECT 3"), return_exceptions=True
        )
        assert all(isinstance(r, TransactionFailed) for r in refused), refused
        assert len(traffic.messages) == sent_before_refusals  # nothing more was sent
        with pytest.raises(TransactionFailed):
            await tx.finish(commit=True)
    assert traffic.messages[-1] == ("ROLLBACK", 1)
    assert not any(m == "COMMIT" for m, _ in traffic.messages)
    assert state.db.checked_out() == checked_out
    assert await unit_count(state, a, code) == 0
    assert await audit_count(state, a) == audited
    await tx.finish(commit=True)  # a second finish is a no-op


async def test_failure_in_a_write_batch_fails_every_statement_of_it(
    state: AppState, world: World
) -> None:
    a = world.units["A"].tenant_id
    code = f"{world.tag}-batch"
    results: list[Any] = []
    # The block ends without raising, yet a lost transaction cannot commit.
    with pytest.raises(TransactionFailed):
        async with state.db.transaction(Scope.of(None, [a])) as tx:
            results = await asyncio.gather(
                tx.rows(
                    "INSERT INTO org_units (tenant_id, id, parent_tenant_id, parent_id, kind,"
                    " code, name, path) VALUES (%(t)s, 999999, %(t)s, %(p)s, 'branch', %(c)s,"
                    " '批次', %(path)s) RETURNING id",
                    {
                        "t": a,
                        "p": world.units["A"].id,
                        "c": code,
                        "path": f"{world.units['A'].path}999999/",
                    },
                ),
                tx.rows("SELECT 1 / 0"),
                return_exceptions=True,
            )
    assert len(results) == 2
    assert all(isinstance(r, errors.DivisionByZero) for r in results), results
    assert await unit_count(state, a, code) == 0


# -- the SET LOCAL text ---------------------------------------------------------------------

tenant_id_sets = st.frozensets(st.integers(min_value=0, max_value=BIGINT_MAX), max_size=40)
account_ids = st.none() | st.integers(min_value=0, max_value=BIGINT_MAX)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(tenant_ids=tenant_id_sets, account_id=account_ids)
async def test_scope_round_trips_through_current_setting(
    state: AppState, tenant_ids: frozenset[int], account_id: int | None
) -> None:
    scope = Scope.of(account_id, tenant_ids)
    text = scope.set_local()
    rendered_tenants = ",".join(str(t) for t in sorted(tenant_ids))
    rendered_account = "" if account_id is None else str(account_id)
    assert text == (
        f"SET LOCAL app.account_id = '{rendered_account}'; "
        f"SET LOCAL app.tenant_ids = '{rendered_tenants}'; "
    )
    async with state.db.transaction(scope, write=False) as tx:
        row = await tx.one(SCOPE_AS_POLICIES_READ_IT)
    seen = {int(t) for t in row.tenants.split(",") if t}
    assert seen == set(tenant_ids)
    assert set(row.tenant_array) == set(tenant_ids)
    assert row.account_id == account_id


def test_scope_refuses_what_is_not_an_integer() -> None:
    """Whatever reaches a Scope, only integers reach the SET text: anything else is
    refused before a message is built."""
    for hostile in ("1'; RESET ALL; SELECT '", "1,2", "1 OR true", "0x10", ""):
        with pytest.raises(ValueError):
            Scope.of(None, [hostile]).set_local()  # type: ignore[list-item]
        with pytest.raises(ValueError):
            Scope.of(hostile, []).set_local()  # type: ignore[arg-type]


async def test_a_trailing_comment_cannot_swallow_the_next_statement(
    state: AppState, world: World
) -> None:
    async with state.db.transaction(Scope.of(None, tenants_of(world, "A")), write=False) as tx:
        first, second = await asyncio.gather(
            tx.rows("SELECT 1 AS n -- a note at the end"), tx.rows("SELECT 2 AS m")
        )
    assert [r.n for r in first] == [1]
    assert [r.m for r in second] == [2]


async def test_a_value_that_cannot_be_bound_fails_a_write_transaction(
    state: AppState, world: World
) -> None:
    tx = state.db.begin(Scope.of(None, tenants_of(world, "A")))
    try:
        with pytest.raises((ValueError, psycopg.DataError)):
            await tx.rows("SELECT %(v)s AS v", {"v": "a\x00b"})
        with pytest.raises(TransactionFailed):
            await tx.finish(commit=True)
    finally:
        await tx.finish(commit=False)


# -- what review found: read-only reads, guard errors, cancellation, one statement each -----


async def test_a_reading_transaction_cannot_write(state: AppState, world: World) -> None:
    """Reads run in implicit per-message transactions that no rollback undoes, so the
    server refuses writes in them outright."""
    a = world.units["A"].tenant_id
    code = f"{world.tag}-ro"
    async with state.db.transaction(Scope.of(None, [a]), write=False) as tx:
        with pytest.raises(errors.ReadOnlySqlTransaction):
            await tx.rows(
                "INSERT INTO org_units (tenant_id, parent_tenant_id, parent_id, kind, code, name,"
                " path) VALUES (%(a)s, %(a)s, %(a)s, 'branch', %(code)s, 'x', '/x/')",
                {"a": a, "code": code},
            )
    assert await unit_count(state, a, code) == 0


async def test_a_guard_that_cannot_answer_does_not_hold(state: AppState, world: World) -> None:
    a = world.units["A"].tenant_id
    for write in (False, True):
        tx = state.db.begin(Scope.of(None, [a]), write=write, guard=("SELECT 1/0 = 1", None))
        try:
            assert not await tx.confirm()
            if not write:
                assert tx.stale
        finally:
            await tx.finish(commit=False)


async def test_a_statement_cancelled_before_it_was_sent_is_not_sent(
    state: AppState, world: World
) -> None:
    a = world.units["A"].tenant_id
    code = f"{world.tag}-cx"
    tx = state.db.begin(Scope.of(None, [a]))
    try:
        slow = asyncio.create_task(tx.rows("SELECT pg_sleep(0.3)"))
        await asyncio.sleep(0.05)  # the slow statement holds the connection now
        late = asyncio.create_task(
            tx.rows(
                "INSERT INTO org_units (tenant_id, parent_tenant_id, parent_id, kind, code, name,"
                " path) VALUES (%(a)s, %(a)s, %(a)s, 'branch', %(code)s, 'x', '/x/')",
                {"a": a, "code": code},
            )
        )
        await asyncio.sleep(0.05)  # queued behind it
        late.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await late
        await slow
    finally:
        await tx.finish(commit=True)
    assert await unit_count(state, a, code) == 0


async def test_a_writing_transaction_cancelled_on_the_wire_cannot_commit(
    state: AppState, world: World
) -> None:
    a = world.units["A"].tenant_id
    tx = state.db.begin(Scope.of(None, [a]))
    sleeper = asyncio.create_task(tx.rows("SELECT pg_sleep(5)"))
    await asyncio.sleep(0.2)
    sleeper.cancel()
    with contextlib.suppress(asyncio.CancelledError, psycopg.Error):
        await sleeper
    with pytest.raises(TransactionFailed):
        await tx.finish(commit=True)


async def test_a_statement_text_holding_two_statements_fails_alone(
    state: AppState, world: World
) -> None:
    a = world.units["A"].tenant_id
    async with state.db.transaction(Scope.of(None, [a]), write=False) as tx:
        two, other = await asyncio.gather(
            tx.rows("SELECT 1 AS a; SELECT 2 AS a"),
            tx.rows("SELECT 3 AS b"),
            return_exceptions=True,
        )
    assert isinstance(two, psycopg.ProgrammingError), two
    assert isinstance(other, list) and [r.b for r in other] == [3]
