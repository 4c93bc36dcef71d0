"""The guard of a cached principal: strict where notifications are only prompt.

Notifications drop a stale principal from the cache soon after the change commits, but
PostgreSQL delivers them asynchronously: a request can reach a process before the
notification does. So a request served from the cache carries, in its first message, a
check that the account, its grants, the set of tenants and the session are as they
were read. These tests put a principal that missed its notification into the cache
(exactly the state the race leaves) and show that the request is answered as if the
change had arrived: the work done with the stale principal is discarded and the
request runs again with a fresh one.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import httpx
import psycopg

from service.app import AppState
from service.auth.principal import Principal
from service.auth.repository import PRINCIPAL_GUARD
from service.auth.tokens import AccessClaims
from service.db import GuardFailed
from tests.support import World, error_codes, gql, login, watching

UNIT = "query($id: ID!) { orgUnit(id: $id) { name } }"


async def _cached(state: AppState, token: str) -> tuple[AccessClaims, Principal]:
    claims = state.tokens.validate_access_token(token)
    assert claims is not None
    principal = state.principals.get(claims.session_id)
    assert principal is not None, "the request before should have cached the principal"
    return claims, principal


async def _as_if_the_notification_were_late(state: AppState, stale: Principal) -> None:
    """Wait for the change's notification to be applied, then put the stale principal
    back, as a process that had not received it yet would have it."""
    generation = state.principals.generation
    for _ in range(500):
        state.principals.drain()
        if state.principals.generation > generation:
            break
        await _sleep()
    state.principals.put(stale, session_expires_at=4e9, generation=state.principals.generation)
    assert state.principals.get(stale.session_id) is stale


async def _sleep() -> None:
    await asyncio.sleep(0.01)


async def test_a_revoked_grant_is_refused_even_before_its_notification(
    client: httpx.AsyncClient,
    state: AppState,
    world: World,
    owner_conn: psycopg.Connection[Any],
) -> None:
    token = await login(client, world.user("bsA1"))
    ok = await gql(client, token, UNIT, {"id": world.gid("a1")})
    assert ok["data"]["orgUnit"]["name"] == "甲镇第一支部"
    _, stale = await _cached(state, token)

    owner_conn.execute(
        "DELETE FROM role_assignments WHERE account_id = %s", (world.accounts["bsA1"],)
    )
    await _as_if_the_notification_were_late(state, stale)

    with watching(state.db) as traffic:
        refused = await gql(client, token, UNIT, {"id": world.gid("a1")})
    assert error_codes(refused) == ["NOT_FOUND"]
    # The guarded message (void), the principal read afresh, the run again.
    assert traffic.round_trips == 3, traffic.messages
    assert "principal_current" in traffic.messages[0][0]
    assert "FROM role_assignments" in traffic.messages[1][0]


async def test_a_new_grant_counts_even_before_its_notification(
    client: httpx.AsyncClient,
    state: AppState,
    world: World,
    owner_conn: psycopg.Connection[Any],
) -> None:
    token = await login(client, world.user("nobody"))
    refused = await gql(client, token, UNIT, {"id": world.gid("a2")})
    assert error_codes(refused) == ["NOT_FOUND"]
    _, stale = await _cached(state, token)
    unit = world.units["a2"]
    owner_conn.execute(
        "INSERT INTO role_assignments (tenant_id, account_id, role, org_unit_id, org_path)"
        " VALUES (%s, %s, 'branch_secretary', %s, %s)",
        (unit.tenant_id, world.accounts["nobody"], unit.id, unit.path),
    )
    await _as_if_the_notification_were_late(state, stale)
    allowed = await gql(client, token, UNIT, {"id": world.gid("a2")})
    assert allowed["data"]["orgUnit"]["name"] == "甲镇第二支部"


async def test_an_ended_session_is_refused_even_before_its_notification(
    client: httpx.AsyncClient,
    state: AppState,
    world: World,
    owner_conn: psycopg.Connection[Any],
) -> None:
    token = await login(client, world.user("secA"))
    await gql(client, token, "{ me { username } }")
    claims, stale = await _cached(state, token)
    owner_conn.execute(
        "UPDATE auth_sessions SET revoked_at = now() WHERE id = %s", (claims.session_id,)
    )
    await _as_if_the_notification_were_late(state, stale)
    # `me` alone needs no statement: the guard goes by itself and still refuses.
    response = await client.post(
        "/graphql",
        json={"query": "{ me { username } }"},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert response.status_code == 401
    assert error_codes(response.json()) == ["UNAUTHENTICATED"]


async def test_the_guard_fails_a_transaction_after_any_change_of_the_account(
    client: httpx.AsyncClient,
    state: AppState,
    world: World,
    owner_conn: psycopg.Connection[Any],
) -> None:
    token = await login(client, world.user("orgA"))
    await gql(client, token, "{ me { username } }")
    _, principal = await _cached(state, token)
    guard = (
        PRINCIPAL_GUARD,
        {
            "account_id": principal.account_id,
            "session_id": principal.session_id,
            "version": principal.auth_version,
            "epoch": principal.auth_epoch,
            "idle_cutoff": state.clock() - timedelta(seconds=state.settings.session_idle_seconds),
        },
    )
    async with state.db.transaction(principal.scope, write=False, guard=guard) as tx:
        assert await tx.scalar("SELECT 1 AS one") == 1
        assert not tx.stale

    owner_conn.execute(
        "UPDATE accounts SET display_name = 'renamed' WHERE id = %s", (principal.account_id,)
    )
    for write in (False, True):
        tx = state.db.begin(principal.scope, write=write, guard=guard)
        try:
            await tx.scalar("SELECT 1 AS one")
        except GuardFailed:
            pass
        else:
            raise AssertionError("the guard held after the account changed")
        assert tx.stale and not await tx.confirm()
        await tx.finish(commit=False)
