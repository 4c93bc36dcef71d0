"""No account enumeration through the token endpoint or createAccount, and the
per-client rate limit on /auth/token."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import httpx
import pytest

from service.app import AppState, create_app
from tests.auth.clock import FakeClock
from tests.support import World, error_codes, gql, login

WRONG = "Wrong-Passw0rd!"
CREATE = """mutation($i: CreateAccountInput!) { createAccount(input: $i) { account { id } } }"""


def _answer(response: httpx.Response) -> tuple[int, dict[str, Any]]:
    return response.status_code, response.json()


async def test_unknown_and_known_usernames_get_the_same_answers_up_to_the_lockout(
    client: httpx.AsyncClient, state: AppState, world: World
) -> None:
    known, unknown = world.user("nobody"), f"{world.tag}.ghost"
    for _ in range(state.settings.login_max_failures):
        a = await client.post("/auth/token", data={"username": known, "password": WRONG})
        b = await client.post("/auth/token", data={"username": unknown, "password": WRONG})
        assert _answer(a) == _answer(b) and a.status_code == 401
    a = await client.post("/auth/token", data={"username": known, "password": WRONG})
    b = await client.post("/auth/token", data={"username": unknown, "password": WRONG})
    assert _answer(a) == _answer(b)
    assert a.status_code == 423 and a.json()["code"] == "ACCOUNT_LOCKED"


async def test_the_unknown_lockout_ends_with_its_window(
    client: httpx.AsyncClient, state: AppState, world: World, clock: FakeClock
) -> None:
    ghost = f"{world.tag}.phantom"
    for _ in range(state.settings.login_max_failures):
        await client.post("/auth/token", data={"username": ghost, "password": WRONG})
    locked = await client.post("/auth/token", data={"username": ghost, "password": WRONG})
    assert locked.status_code == 423
    clock.advance(state.settings.login_window_seconds + 1)
    later = await client.post("/auth/token", data={"username": ghost, "password": WRONG})
    assert later.status_code == 401


async def test_one_client_is_rate_limited_and_others_are_not(
    state: AppState, world: World, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(state, "settings", replace(state.settings, login_rate_per_minute=5))
    app = create_app(state)

    def client_from(address: str) -> httpx.AsyncClient:
        transport = httpx.ASGITransport(app=app, client=(address, 40000))
        return httpx.AsyncClient(transport=transport, base_url="http://test")

    async with client_from("203.0.113.7") as attacker, client_from("198.51.100.9") as user:
        answers = [
            (
                await attacker.post(
                    "/auth/token", data={"username": f"{world.tag}.u{n}", "password": WRONG}
                )
            ).status_code
            for n in range(8)
        ]
        assert answers[:5] == [401] * 5 and answers[5:] == [429] * 3
        limited = await attacker.post(
            "/auth/token", data={"username": world.user("secA"), "password": WRONG}
        )
        assert limited.json()["code"] == "TOO_MANY_LOGIN_ATTEMPTS"
        assert int(limited.headers["Retry-After"]) >= 1
        # another client is not affected, and the attacker's refusals counted no failure
        assert (await login(user, world.user("secA"))) is not None
        clock.advance(60)
        ok = await attacker.post(
            "/auth/token", data={"username": world.user("secA"), "password": WRONG}
        )
        assert ok.status_code == 401


async def test_username_taken_says_the_same_inside_and_outside_the_creators_scope(
    client: httpx.AsyncClient, world: World
) -> None:
    """orgA (township A) creates accounts in A; `secB` lives in township B, out of its
    sight, `memA1` in A. Both names answer alike, naming nothing but the name typed."""
    token = await login(client, world.user("orgA"))

    async def create(username: str) -> dict[str, Any]:
        return await gql(
            client,
            token,
            CREATE,
            {
                "i": {
                    "username": username,
                    "displayName": "重名",
                    "password": "Some-Fine-Pass-1",
                    "homeOrgUnitId": world.gid("a1"),
                }
            },
        )

    inside, outside = await create(world.user("memA1")), await create(world.user("secB"))
    assert error_codes(inside) == error_codes(outside) == ["USERNAME_TAKEN"]
    shown = [inside["errors"][0]["message"], outside["errors"][0]["message"]]
    assert shown[0].replace(world.user("memA1"), "NAME") == shown[1].replace(
        world.user("secB"), "NAME"
    )
    assert "乙" not in shown[1]
