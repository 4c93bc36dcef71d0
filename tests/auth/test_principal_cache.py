"""The per-process caches of authentication (service/auth/cache.py), with a real listener.

A cached principal saves a statement on every request of a login session; in exchange,
whatever could change it must reach the cache before the next request uses it. These
tests hold the cache to that: a change made through the API drops the entry at the
commit, a change made by another connection drops it when its NOTIFY arrives, a load
that raced a change is not kept, nothing outlives its session or TTL, nothing is kept
while the listener is not connected, and verified tokens never outlive `exp`.

Each test builds its own `PrincipalCache` on the application's database URL, wired to
the test app's commits the way `service.runtime.build_state` wires the app's own.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import replace
from typing import Any

import httpx
import psycopg
import pytest
from psycopg import sql

from service.app import AppState
from service.auth.cache import PrincipalCache, TokenCache
from service.auth.principal import Principal
from service.auth.service import principal_for_request
from service.auth.tokens import AccessClaims
from service.errors import DomainError
from tests.support import World, gql, login, watching


async def load_principal(
    db: Any, claims: AccessClaims, *, cache: PrincipalCache | None = None, request_id: str = ""
) -> Principal:
    """The principal as a request gets it (from `cache` when there; the guard aside)."""
    loaded = await principal_for_request(db, claims, cache=cache, request_id=request_id)
    return loaded.principal


REVOKE = """
mutation($input: RevokeRoleInput!) { revokeRole(input: $input) { roleAssignment { id role } } }
"""
MY_GRANTS = "{ me { roleAssignments { nodes { id role } } } }"
NOTIFY_WAIT_SECONDS = 5.0
POLL_SECONDS = 0.01


@pytest.fixture
async def cache(state: AppState) -> AsyncIterator[PrincipalCache]:
    principals = PrincipalCache(state.db.url, ttl_seconds=60)
    await asyncio.wait_for(principals.wait_connected(), timeout=10)
    state.db.after_auth_change.append(principals.apply)
    try:
        yield principals
    finally:
        state.db.after_auth_change.remove(principals.apply)
        await principals.stop()


async def claims_of(client: httpx.AsyncClient, state: AppState, username: str) -> AccessClaims:
    """Log in over HTTP; the verified claims of the access token."""
    claims = state.tokens.validate_access_token(await login(client, username))
    assert claims is not None
    return claims


async def warm(state: AppState, cache: PrincipalCache, claims: AccessClaims) -> Principal:
    """Load the principal into `cache` and check that it is really kept there."""
    principal = await load_principal(state.db, claims, cache=cache)
    with watching(state.db) as traffic:
        again = await load_principal(state.db, claims, cache=cache)
    assert traffic.round_trips == 0, traffic.messages
    assert again == principal
    return principal


async def wait_for_notification(cache: PrincipalCache, since: int) -> None:
    """Until a notification has reached `cache` (its generation grew past `since`)."""
    for _ in range(int(NOTIFY_WAIT_SECONDS / POLL_SECONDS)):
        if cache.generation > since:
            return
        await asyncio.sleep(POLL_SECONDS)
    pytest.fail(f"no notification reached the cache in {NOTIFY_WAIT_SECONDS} s")


def as_owner(
    owner_conn: psycopg.Connection[Any], tenant_id: int, statement: str, *args: Any
) -> int:
    """Run one statement on the owner connection, scoped to `tenant_id` (so it works
    whether or not the owner bypasses RLS), committed; returns the row count."""
    with owner_conn.transaction():
        owner_conn.execute(
            sql.SQL("SET LOCAL app.tenant_ids = {}").format(sql.Literal(str(tenant_id)))
        )
        return owner_conn.execute(statement, args).rowcount  # type: ignore[arg-type]


# -- the saving ------------------------------------------------------------------------------


async def test_principal_costs_one_statement_per_session_then_none(
    client: httpx.AsyncClient, state: AppState, world: World, cache: PrincipalCache
) -> None:
    claims = await claims_of(client, state, world.user("bsA1"))
    with watching(state.db) as first:
        principal = await load_principal(state.db, claims, cache=cache)
    assert first.round_trips == 1 and first.statements >= 1, first.messages
    assert [(g.role, g.org_unit_id) for g in principal.grants] == [
        ("branch_secretary", world.units["a1"].id)
    ]
    with watching(state.db) as second:
        for _ in range(3):
            again = await load_principal(state.db, claims, cache=cache)
            assert again == principal
    assert second.round_trips == 0, second.messages
    # A request id is the request's own: it does not leak into the cached principal.
    tagged = await load_principal(state.db, claims, cache=cache, request_id="r-1")
    assert tagged.request_id == "r-1" and tagged == replace(principal, request_id="r-1")
    assert (await load_principal(state.db, claims, cache=cache)).request_id == ""

    # Another session of the same account is another entry: it costs its own statement.
    other = await claims_of(client, state, world.user("bsA1"))
    assert other.session_id != claims.session_id
    with watching(state.db) as third:
        await load_principal(state.db, other, cache=cache)
    assert third.round_trips == 1


# -- changes that drop an entry ----------------------------------------------------------------


async def test_role_revoked_through_graphql_is_gone_at_the_next_load(
    client: httpx.AsyncClient, state: AppState, world: World, cache: PrincipalCache
) -> None:
    token = await login(client, world.user("bsA1"))
    claims = state.tokens.validate_access_token(token)
    assert claims is not None
    principal = await warm(state, cache, claims)
    assert principal.grants and principal.tenant_ids == {world.units["A"].tenant_id}
    grants = await gql(client, token, MY_GRANTS)
    (assignment,) = grants["data"]["me"]["roleAssignments"]["nodes"]

    organizer = await login(client, world.user("orgA"))
    revoked = await gql(
        client, organizer, REVOKE, {"input": {"roleAssignmentId": assignment["id"]}}
    )
    assert revoked.get("errors") is None, revoked

    # No waiting: the commit in this process dropped the entry before it answered.
    with watching(state.db) as traffic:
        after = await load_principal(state.db, claims, cache=cache)
    assert traffic.round_trips == 1, "the revoked principal was served from the cache"
    assert after.grants == () and after.tenant_ids == frozenset()
    assert after.account_id == principal.account_id


async def test_grant_deleted_by_another_connection_is_gone_once_notified(
    client: httpx.AsyncClient,
    state: AppState,
    world: World,
    cache: PrincipalCache,
    owner_conn: psycopg.Connection[Any],
) -> None:
    claims = await claims_of(client, state, world.user("memA1"))
    principal = await warm(state, cache, claims)
    assert [g.role for g in principal.grants] == ["member"]

    generation = cache.generation
    deleted = as_owner(
        owner_conn,
        world.units["A"].tenant_id,
        "DELETE FROM role_assignments WHERE account_id = %s",
        world.accounts["memA1"],
    )
    assert deleted == 1
    await wait_for_notification(cache, generation)

    with watching(state.db) as traffic:
        after = await load_principal(state.db, claims, cache=cache)
    assert traffic.round_trips == 1
    assert after.grants == () and after.tenant_ids == frozenset()


async def test_account_disabled_by_another_connection_is_refused_once_notified(
    client: httpx.AsyncClient,
    state: AppState,
    world: World,
    cache: PrincipalCache,
    owner_conn: psycopg.Connection[Any],
) -> None:
    claims = await claims_of(client, state, world.user("secB"))
    await warm(state, cache, claims)

    generation = cache.generation
    changed = owner_conn.execute(
        "UPDATE accounts SET is_active = false WHERE id = %s", (world.accounts["secB"],)
    ).rowcount
    assert changed == 1
    await wait_for_notification(cache, generation)

    for _ in range(2):  # refused, and the refusal is not cached as a principal either
        with pytest.raises(DomainError) as refused:
            await load_principal(state.db, claims, cache=cache)
        assert refused.value.code == "ACCOUNT_DISABLED"
        assert refused.value.http_status == 403


async def test_logged_out_session_is_refused_at_the_next_load(
    client: httpx.AsyncClient, state: AppState, world: World, cache: PrincipalCache
) -> None:
    token = await login(client, world.user("orgB"))
    claims = state.tokens.validate_access_token(token)
    assert claims is not None
    await warm(state, cache, claims)
    # A second session of the same account is not touched by this one's logout.
    other = await claims_of(client, state, world.user("orgB"))
    kept = await warm(state, cache, other)

    response = await client.post("/auth/logout", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200, response.text

    with pytest.raises(DomainError) as refused:
        await load_principal(state.db, claims, cache=cache)
    assert refused.value.code == "UNAUTHENTICATED"
    assert refused.value.http_status == 401
    with watching(state.db) as traffic:
        assert await load_principal(state.db, other, cache=cache) == kept
    assert traffic.round_trips == 0


async def test_session_revoked_by_another_connection_is_refused_once_notified(
    client: httpx.AsyncClient,
    state: AppState,
    world: World,
    cache: PrincipalCache,
    owner_conn: psycopg.Connection[Any],
) -> None:
    claims = await claims_of(client, state, world.user("secA"))
    await warm(state, cache, claims)
    generation = cache.generation
    revoked = owner_conn.execute(
        "UPDATE auth_sessions SET revoked_at = now(), revoked_reason = 'admin' WHERE id = %s",
        (claims.session_id,),
    ).rowcount
    assert revoked == 1
    await wait_for_notification(cache, generation)
    with pytest.raises(DomainError) as refused:
        await load_principal(state.db, claims, cache=cache)
    assert refused.value.code == "UNAUTHENTICATED"


# -- what is never stored -----------------------------------------------------------------------


async def test_load_that_raced_a_change_is_not_stored(
    client: httpx.AsyncClient, state: AppState, world: World, cache: PrincipalCache
) -> None:
    claims = await claims_of(client, state, world.user("orgA"))
    principal = await load_principal(state.db, claims)  # read without the cache
    assert principal.session_id == claims.session_id
    expires = time.time() + 3600

    generation = cache.generation
    cache.invalidate("account:1")  # a notification arrives while the load is under way
    cache.put(principal, session_expires_at=expires, generation=generation)
    assert cache.get(claims.session_id) is None

    # The same put with the generation it read after the change is kept.
    cache.put(principal, session_expires_at=expires, generation=cache.generation)
    assert cache.get(claims.session_id) == principal


async def test_entry_never_outlives_its_session(
    client: httpx.AsyncClient, state: AppState, world: World, cache: PrincipalCache
) -> None:
    claims = await claims_of(client, state, world.user("orgA"))
    principal = await load_principal(state.db, claims)
    cache.put(principal, session_expires_at=time.time() - 1, generation=cache.generation)
    assert cache.get(claims.session_id) is None
    cache.put(principal, session_expires_at=time.time() + 3600, generation=cache.generation)
    assert cache.get(claims.session_id) == principal


async def test_entry_never_outlives_the_ttl(
    client: httpx.AsyncClient, state: AppState, world: World
) -> None:
    claims = await claims_of(client, state, world.user("orgA"))
    principal = await load_principal(state.db, claims)
    no_ttl = PrincipalCache(state.db.url, ttl_seconds=0)
    await asyncio.wait_for(no_ttl.wait_connected(), timeout=10)
    try:
        assert no_ttl.live
        no_ttl.put(principal, session_expires_at=time.time() + 3600, generation=no_ttl.generation)
        assert no_ttl.get(claims.session_id) is None
        with watching(state.db) as traffic:
            for _ in range(2):
                await load_principal(state.db, claims, cache=no_ttl)
        assert traffic.round_trips == 2  # every load reads the database
    finally:
        await no_ttl.stop()


async def test_nothing_is_kept_while_the_listener_is_not_connected(
    client: httpx.AsyncClient, state: AppState, world: World
) -> None:
    claims = await claims_of(client, state, world.user("orgA"))
    principal = await load_principal(state.db, claims)
    expires = time.time() + 3600

    never_started = PrincipalCache(state.db.url, ttl_seconds=60)
    assert not never_started.live
    never_started.put(principal, session_expires_at=expires, generation=never_started.generation)
    assert never_started.get(claims.session_id) is None
    with watching(state.db) as traffic:
        for _ in range(2):
            assert await load_principal(state.db, claims, cache=never_started) == principal
    assert traffic.round_trips == 2

    # A cache that stops listening drops what it held, and keeps nothing more.
    stopped = PrincipalCache(state.db.url, ttl_seconds=60)
    await asyncio.wait_for(stopped.wait_connected(), timeout=10)
    stopped.put(principal, session_expires_at=expires, generation=stopped.generation)
    assert stopped.get(claims.session_id) == principal
    await stopped.stop()
    assert not stopped.live
    assert stopped.get(claims.session_id) is None
    stopped.put(principal, session_expires_at=expires, generation=stopped.generation)
    assert stopped.get(claims.session_id) is None


async def test_listener_connection_lost_drops_entries_and_reconnects(
    client: httpx.AsyncClient,
    state: AppState,
    world: World,
    owner_conn: psycopg.Connection[Any],
) -> None:
    """A lost listener may have missed notifications: what it cached goes, and it listens
    again."""
    listeners = (
        "SELECT pid FROM pg_stat_activity WHERE datname = current_database()"
        " AND query = 'LISTEN pingyi_auth'"
    )
    before = {r[0] for r in owner_conn.execute(listeners).fetchall()}
    lost = PrincipalCache(state.db.url, ttl_seconds=60)
    await asyncio.wait_for(lost.wait_connected(), timeout=10)
    try:
        ours = {r[0] for r in owner_conn.execute(listeners).fetchall()} - before
        assert len(ours) == 1, ours
        claims = await claims_of(client, state, world.user("secA"))
        await warm(state, lost, claims)

        generation = lost.generation
        owner_conn.execute("SELECT pg_terminate_backend(%s)", (ours.pop(),))
        for _ in range(int(NOTIFY_WAIT_SECONDS / POLL_SECONDS)):
            if lost.live and lost.generation >= generation + 2:  # lost, then connected again
                break
            await asyncio.sleep(POLL_SECONDS)
        else:
            pytest.fail(f"listener not back in {NOTIFY_WAIT_SECONDS} s")

        with watching(state.db) as traffic:
            await load_principal(state.db, claims, cache=lost)
            await load_principal(state.db, claims, cache=lost)
        assert traffic.round_trips == 1  # dropped, read again, kept again
    finally:
        await lost.stop()


# -- verified tokens ------------------------------------------------------------------------------


def access_claims(expires_at: float) -> AccessClaims:
    return AccessClaims(
        account_id=1, session_id=uuid.uuid4(), token_id=uuid.uuid4().hex, expires_at=int(expires_at)
    )


def test_token_cache_never_returns_claims_past_their_expiry() -> None:
    tokens = TokenCache(max_entries=10)
    live = access_claims(time.time() + 600)
    tokens.put("live", live)
    tokens.put("expired", access_claims(time.time() - 1))
    tokens.put("expiring-now", access_claims(time.time()))
    assert tokens.get("live") == live
    assert tokens.get("expired") is None
    assert tokens.get("expiring-now") is None
    assert tokens.get("never-seen") is None


def test_token_cache_stays_bounded_and_keeps_the_recently_used() -> None:
    tokens = TokenCache(max_entries=3)
    claims = {f"t{i}": access_claims(time.time() + 600) for i in range(10)}
    for token, value in claims.items():
        tokens.put(token, value)
    kept = {t for t in claims if tokens.get(t) is not None}
    assert kept == {"t7", "t8", "t9"}

    assert tokens.get("t7") is not None  # t7 used last: t8 is now the oldest
    tokens.put("t10", access_claims(time.time() + 600))
    assert tokens.get("t8") is None
    assert {t for t in ("t7", "t9", "t10") if tokens.get(t) is not None} == {"t7", "t9", "t10"}
