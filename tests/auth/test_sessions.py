"""Sessions through HTTP: the idle timeout (refresh included) and refresh-token reuse.

The service's clock is moved by hand (tests/auth/clock.py); nothing sleeps.
"""

from __future__ import annotations

from typing import Any

import httpx
import psycopg

from service.app import AppState
from tests.auth.clock import FakeClock
from tests.support import PASSWORD, World, error_codes, gql

ME = "{ me { username } }"


async def _pair(client: httpx.AsyncClient, username: str) -> dict[str, Any]:
    response = await client.post("/auth/token", data={"username": username, "password": PASSWORD})
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def _refresh(client: httpx.AsyncClient, token: str) -> httpx.Response:
    return await client.post("/auth/refresh", data={"refresh_token": token})


def _session(owner_conn: psycopg.Connection[Any], account_id: int) -> Any:
    return owner_conn.execute(
        "SELECT revoked_at, revoked_reason FROM auth_sessions WHERE account_id = %s"
        " ORDER BY created_at DESC LIMIT 1",
        (account_id,),
    ).fetchone()


async def test_a_session_idle_past_the_timeout_is_dead_even_with_its_principal_cached(
    client: httpx.AsyncClient,
    state: AppState,
    world: World,
    clock: FakeClock,
    owner_conn: psycopg.Connection[Any],
) -> None:
    pair = await _pair(client, world.user("memA1"))
    token = pair["access_token"]
    assert (await gql(client, token, ME))["data"]["me"]["username"] == world.user("memA1")
    clock.advance(state.settings.session_idle_seconds - 5)
    assert (await gql(client, token, ME)).get("errors") is None  # not yet

    clock.advance(state.settings.session_idle_seconds + 1)
    body = await gql(client, token, ME, status=401)
    assert error_codes(body) == ["SESSION_IDLE_TIMEOUT"]
    revoked_at, reason = _session(owner_conn, world.accounts["memA1"])
    assert revoked_at is not None and reason == "idle_timeout"
    # refresh included: the session is over
    response = await _refresh(client, pair["refresh_token"])
    assert response.status_code == 401 and response.json()["code"] == "INVALID_REFRESH_TOKEN"
    actions = [
        row[0]
        for row in owner_conn.execute(
            "SELECT action FROM audit_events WHERE actor_account_id = %s",
            (world.accounts["memA1"],),
        )
    ]
    assert "auth.session_revoked" in actions


async def test_requests_keep_a_session_alive(
    client: httpx.AsyncClient, state: AppState, world: World, clock: FakeClock
) -> None:
    token = (await _pair(client, world.user("memA1")))["access_token"]
    idle = state.settings.session_idle_seconds
    for _ in range(4):  # four idle-lengths in all, never idle for one
        clock.advance(idle * 0.9)
        assert (await gql(client, token, ME)).get("errors") is None


async def test_refresh_of_an_idle_session_is_refused_and_ends_it(
    client: httpx.AsyncClient,
    state: AppState,
    world: World,
    clock: FakeClock,
    owner_conn: psycopg.Connection[Any],
) -> None:
    pair = await _pair(client, world.user("bsA1"))
    clock.advance(state.settings.session_idle_seconds + 1)
    response = await _refresh(client, pair["refresh_token"])
    assert response.status_code == 401 and response.json()["code"] == "SESSION_IDLE_TIMEOUT"
    assert _session(owner_conn, world.accounts["bsA1"]) is not None
    assert _session(owner_conn, world.accounts["bsA1"])[1] == "idle_timeout"
    assert error_codes(await gql(client, pair["access_token"], ME, status=401)) == [
        "UNAUTHENTICATED"
    ]


async def test_refresh_within_the_timeout_counts_as_activity(
    client: httpx.AsyncClient, state: AppState, world: World, clock: FakeClock
) -> None:
    pair = await _pair(client, world.user("bsA1"))
    idle = state.settings.session_idle_seconds
    clock.advance(idle * 0.9)
    refreshed = await _refresh(client, pair["refresh_token"])
    assert refreshed.status_code == 200, refreshed.text
    clock.advance(idle * 0.9)
    again = await _refresh(client, refreshed.json()["refresh_token"])
    assert again.status_code == 200, again.text


async def test_replaying_any_earlier_refresh_token_revokes_the_session(
    client: httpx.AsyncClient, world: World, owner_conn: psycopg.Connection[Any]
) -> None:
    pair = await _pair(client, world.user("orgA"))
    issued = [pair["refresh_token"]]
    for _ in range(3):
        response = await _refresh(client, issued[-1])
        assert response.status_code == 200, response.text
        issued.append(response.json()["refresh_token"])
    access = response.json()["access_token"]
    assert (await gql(client, access, ME)).get("errors") is None

    # the first token, three rotations ago (not merely the previous one)
    replayed = await _refresh(client, issued[0])
    assert replayed.status_code == 401 and replayed.json()["code"] == "INVALID_REFRESH_TOKEN"
    revoked_at, reason = _session(owner_conn, world.accounts["orgA"])
    assert revoked_at is not None and reason == "refresh_token_reused"
    # the whole session: its current refresh token and its access tokens
    current = await _refresh(client, issued[-1])
    assert current.status_code == 401
    assert error_codes(await gql(client, access, ME, status=401)) == ["UNAUTHENTICATED"]


async def test_an_unknown_refresh_token_revokes_nothing(
    client: httpx.AsyncClient, world: World
) -> None:
    pair = await _pair(client, world.user("orgB"))
    assert (await _refresh(client, "not-a-token")).status_code == 401
    assert (await _refresh(client, pair["refresh_token"])).status_code == 200
