"""Mini-program login (`POST /auth/wechat`) and WeChat binding, over HTTP, against a
real local server answering as WeChat's code2Session documentation says
(tests/auth/wechat_server.py): every documented answer, binding and unbinding, the
second factor, the refusals a password login has, and that the session_key goes
nowhere."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import httpx
import psycopg
import pytest
from hypothesis import given
from hypothesis import strategies as st

from service.app import AppState
from service.auth import mfa
from service.auth.wechat import ERRCODES, outcome
from service.errors import DomainError
from tests.auth.clock import FakeClock
from tests.auth.wechat_server import APP_ID, APP_SECRET, FakeWechat, serve
from tests.support import PASSWORD, World, error_codes, gql, login

BIND = """mutation($i: BindWechatInput!) {
  bindWechat(input: $i) { account { username } boundAt } }"""
UNBIND = "mutation { unbindWechat { ok } }"
ME = "{ me { username } }"


@pytest.fixture(scope="module")
def provider_server() -> Iterator[FakeWechat]:
    fake, server = serve()
    yield fake
    server.shutdown()
    server.server_close()


@pytest.fixture
def wechat(
    state: AppState, monkeypatch: pytest.MonkeyPatch, provider_server: FakeWechat
) -> FakeWechat:
    """The service configured for the local provider (app id, secret, base URL)."""
    monkeypatch.setattr(
        state,
        "settings",
        replace(
            state.settings,
            wechat_app_id=APP_ID,
            wechat_app_secret=APP_SECRET,
            wechat_api_base=provider_server.base_url,
        ),
    )
    return provider_server


def _openid(world: World, who: str) -> str:
    return f"o{world.tag}{who}"


async def _wechat_login(client: httpx.AsyncClient, code: str, **extra: str) -> httpx.Response:
    return await client.post("/auth/wechat", json={"code": code, **extra})


async def _bind(
    client: httpx.AsyncClient, token: str, code: str, password: str = PASSWORD, **extra: str
) -> dict[str, Any]:
    return await gql(client, token, BIND, {"i": {"code": code, "password": password, **extra}})


async def _bound(client: httpx.AsyncClient, wechat: FakeWechat, world: World, who: str) -> str:
    """Log `who` in with the password and bind it to its WeChat user; the access token."""
    token = await login(client, world.user(who))
    body = await _bind(client, token, wechat.issue(_openid(world, who)))
    assert body.get("errors") is None, body
    assert body["data"]["bindWechat"]["account"]["username"] == world.user(who)
    return token


# --- the login exchange --------------------------------------------------------------


async def test_a_bound_wechat_user_gets_the_same_tokens_as_a_password_login(
    client: httpx.AsyncClient, world: World, wechat: FakeWechat
) -> None:
    await _bound(client, wechat, world, "memA1")
    seen = len(wechat.requests)
    answer = await _wechat_login(client, wechat.issue(_openid(world, "memA1")))
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert set(body) == {"access_token", "token_type", "expires_in", "refresh_token"}
    assert answer.headers["cache-control"] == "no-store"
    me = await gql(client, body["access_token"], ME)
    assert me["data"]["me"]["username"] == world.user("memA1")
    # the refresh token rotates like any other
    rotated = await client.post("/auth/refresh", data={"refresh_token": body["refresh_token"]})
    assert rotated.status_code == 200, rotated.text
    # what the service asked WeChat, exactly as documented
    [query] = wechat.requests[seen:]
    assert {k: v for k, v in query.items() if k != "js_code"} == {
        "appid": [APP_ID],
        "secret": [APP_SECRET],
        "grant_type": ["authorization_code"],
    }


async def test_a_form_post_works_too(
    client: httpx.AsyncClient, world: World, wechat: FakeWechat
) -> None:
    await _bound(client, wechat, world, "memA1")
    answer = await client.post("/auth/wechat", data={"code": wechat.issue(_openid(world, "memA1"))})
    assert answer.status_code == 200, answer.text


async def test_an_unbound_wechat_user_is_told_so_and_gets_no_session(
    client: httpx.AsyncClient, world: World, wechat: FakeWechat
) -> None:
    answer = await _wechat_login(client, wechat.issue(_openid(world, "stranger")))
    assert answer.status_code == 401
    body = answer.json()
    assert body["code"] == "WECHAT_NOT_BOUND"
    assert "绑定" in body["message"]
    assert "access_token" not in body


@pytest.mark.parametrize(
    ("code", "status", "expected"),
    [
        ("never-issued", 401, "WECHAT_CODE_INVALID"),  # 40029
        ("limited", 429, "WECHAT_RATE_LIMITED"),  # 45011
        ("risky", 403, "WECHAT_RISKY_USER"),  # 40226
        ("busy", 503, "WECHAT_UNAVAILABLE"),  # -1
        ("http500", 503, "WECHAT_UNAVAILABLE"),  # not the documented contract
        ("garbage", 503, "WECHAT_UNAVAILABLE"),
        ("bad code!", 401, "WECHAT_CODE_INVALID"),  # refused before WeChat is asked
    ],
)
async def test_each_documented_answer_maps_to_a_stable_code(
    client: httpx.AsyncClient, wechat: FakeWechat, code: str, status: int, expected: str
) -> None:
    answer = await _wechat_login(client, code)
    assert answer.status_code == status, answer.text
    assert answer.json()["code"] == expected
    assert answer.headers["content-type"].startswith("application/json")
    if status in (429, 503):
        assert int(answer.headers["retry-after"]) > 0


async def test_a_code_is_good_once(
    client: httpx.AsyncClient, world: World, wechat: FakeWechat
) -> None:
    await _bound(client, wechat, world, "memA1")
    code = wechat.issue(_openid(world, "memA1"))
    assert (await _wechat_login(client, code)).status_code == 200
    again = await _wechat_login(client, code)  # 40163 code been used
    assert (again.status_code, again.json()["code"]) == (401, "WECHAT_CODE_INVALID")


async def test_a_wrong_secret_or_an_unreachable_provider_is_unavailable(
    client: httpx.AsyncClient,
    state: AppState,
    monkeypatch: pytest.MonkeyPatch,
    world: World,
    wechat: FakeWechat,
) -> None:
    code = wechat.issue(_openid(world, "memA1"))
    configured = state.settings
    monkeypatch.setattr(state, "settings", replace(configured, wechat_app_secret="wrong"))
    answer = await _wechat_login(client, code)  # 40125: the deployment's fault
    assert (answer.status_code, answer.json()["code"]) == (503, "WECHAT_UNAVAILABLE")
    # nothing listens on port 9 of the loopback
    monkeypatch.setattr(
        state, "settings", replace(configured, wechat_api_base="http://127.0.0.1:9")
    )
    answer = await _wechat_login(client, code)
    assert (answer.status_code, answer.json()["code"]) == (503, "WECHAT_UNAVAILABLE")


async def test_without_an_app_id_the_endpoint_says_wechat_is_not_configured(
    client: httpx.AsyncClient,
) -> None:
    answer = await _wechat_login(client, "whatever")
    assert (answer.status_code, answer.json()["code"]) == (404, "WECHAT_NOT_CONFIGURED")


async def test_a_missing_code_is_an_invalid_request(
    client: httpx.AsyncClient, wechat: FakeWechat
) -> None:
    answer = await client.post("/auth/wechat", json={})
    assert (answer.status_code, answer.json()["code"]) == (400, "INVALID_REQUEST")


async def test_the_session_key_and_the_secret_go_nowhere(
    client: httpx.AsyncClient,
    world: World,
    wechat: FakeWechat,
    owner_conn: psycopg.Connection[Any],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    await _bound(client, wechat, world, "memA1")
    code = wechat.issue(_openid(world, "memA1"))
    answer = await _wechat_login(client, code)
    assert answer.status_code == 200
    session_key = wechat.session_keys[-1]
    secrets_ = [session_key, APP_SECRET, code, _openid(world, "memA1")]
    for value in secrets_:
        assert value not in answer.text
        assert value not in caplog.text
    # stored: a 32-byte keyed digest, not the openid; audited without it
    row = owner_conn.execute(
        "SELECT app_id, openid_digest FROM account_wechat WHERE account_id = %s",
        (world.accounts["memA1"],),
    ).fetchone()
    assert row is not None and row[0] == APP_ID and len(row[1]) == 32
    assert _openid(world, "memA1").encode() not in bytes(row[1])
    events = owner_conn.execute(
        "SELECT action, details::text FROM audit_events WHERE actor_account_id = %s ORDER BY seq",
        (world.accounts["memA1"],),
    ).fetchall()
    actions = [e[0] for e in events]
    assert "auth.wechat_bound" in actions
    assert any(a == "auth.login" and "wechat" in (d or "") for a, d in events)
    assert not any(_openid(world, "memA1") in (d or "") for _, d in events)


# --- binding and unbinding --------------------------------------------------------


def _failures(owner_conn: psycopg.Connection[Any], account_id: int) -> int:
    row = owner_conn.execute(
        "SELECT count(*) FROM login_failures WHERE account_id = %s", (account_id,)
    ).fetchone()
    assert row is not None
    return int(row[0])


async def test_binding_needs_the_password(
    client: httpx.AsyncClient,
    world: World,
    wechat: FakeWechat,
    owner_conn: psycopg.Connection[Any],
) -> None:
    token = await login(client, world.user("memA1"))
    body = await _bind(client, token, wechat.issue(_openid(world, "memA1")), "Wrong-Password-1")
    assert error_codes(body) == ["WRONG_PASSWORD"]
    refused = await _wechat_login(client, wechat.issue(_openid(world, "memA1")))
    assert refused.json()["code"] == "WECHAT_NOT_BOUND"
    # The wrong password is a failed login of the account (the lockout bounds guessing
    # through a session), counted although the mutation rolled back.
    assert _failures(owner_conn, world.accounts["memA1"]) == 1


async def test_binding_needs_a_login(client: httpx.AsyncClient, wechat: FakeWechat) -> None:
    body = await gql(client, None, BIND, {"i": {"code": "x", "password": PASSWORD}}, status=None)
    assert error_codes(body) == ["UNAUTHENTICATED"]


async def test_one_wechat_user_binds_one_account_and_rebinding_replaces(
    client: httpx.AsyncClient, world: World, wechat: FakeWechat
) -> None:
    await _bound(client, wechat, world, "memA1")
    other = await login(client, world.user("bsA1"))
    taken = await _bind(client, other, wechat.issue(_openid(world, "memA1")))
    assert error_codes(taken) == ["WECHAT_ALREADY_BOUND"]
    # memA1 moves to another WeChat user: the first one is no longer bound
    token = await login(client, world.user("memA1"))
    moved = await _bind(client, token, wechat.issue(_openid(world, "memA1-new")))
    assert moved.get("errors") is None, moved
    old = await _wechat_login(client, wechat.issue(_openid(world, "memA1")))
    assert old.json()["code"] == "WECHAT_NOT_BOUND"
    new = await _wechat_login(client, wechat.issue(_openid(world, "memA1-new")))
    assert new.status_code == 200
    # and now the first WeChat user is free for bsA1
    freed = await _bind(client, other, wechat.issue(_openid(world, "memA1")))
    assert freed.get("errors") is None, freed


async def test_an_account_shows_since_when_it_is_bound(
    client: httpx.AsyncClient, world: World, wechat: FakeWechat
) -> None:
    query = "{ me { wechatBoundAt } }"
    token = await login(client, world.user("memA1"))
    assert (await gql(client, token, query))["data"]["me"]["wechatBoundAt"] is None
    await _bind(client, token, wechat.issue(_openid(world, "memA1")))
    assert (await gql(client, token, query))["data"]["me"]["wechatBoundAt"]
    # a manager sees it in the list too (one loader for the page)
    admin = await login(client, world.user("sysadmin"))
    listed = await gql(
        client,
        admin,
        "query($f: AccountFilter) { accounts(filter: $f) { nodes { username wechatBoundAt } } }",
        {"f": {"orgUnitId": world.gid("a1")}},
    )
    bound = {n["username"]: n["wechatBoundAt"] for n in listed["data"]["accounts"]["nodes"]}
    assert bound[world.user("memA1")] and bound[world.user("bsA1")] is None


async def test_two_accounts_racing_for_one_wechat_user_bind_once(
    client: httpx.AsyncClient, world: World, wechat: FakeWechat
) -> None:
    import asyncio

    tokens = [await login(client, world.user(who)) for who in ("memA1", "bsA1")]
    openid = _openid(world, "contested")
    answers = await asyncio.gather(
        *(_bind(client, token, wechat.issue(openid)) for token in tokens)
    )
    codes = sorted(tuple(error_codes(a)) for a in answers)
    assert codes == [(), ("WECHAT_ALREADY_BOUND",)], answers


async def test_unbinding_ends_wechat_logins(
    client: httpx.AsyncClient, world: World, wechat: FakeWechat
) -> None:
    token = await _bound(client, wechat, world, "memA1")
    body = await gql(client, token, UNBIND)
    assert body["data"]["unbindWechat"]["ok"] is True
    refused = await _wechat_login(client, wechat.issue(_openid(world, "memA1")))
    assert refused.json()["code"] == "WECHAT_NOT_BOUND"
    again = await gql(client, token, UNBIND)
    assert error_codes(again) == ["WECHAT_NOT_BOUND_TO_ACCOUNT"]


async def test_a_provider_error_while_binding_binds_nothing(
    client: httpx.AsyncClient, world: World, wechat: FakeWechat
) -> None:
    token = await login(client, world.user("memA1"))
    body = await _bind(client, token, "risky")
    assert error_codes(body) == ["WECHAT_RISKY_USER"]


# --- what a WeChat login does not lift ------------------------------------------------


async def _enrol_optional(client: httpx.AsyncClient, token: str, clock: FakeClock) -> str:
    """Turn on TOTP for a logged-in account (optional enrolment); the secret."""
    from urllib.parse import parse_qs, urlparse

    bearer = {"Authorization": f"Bearer {token}"}
    started = await client.post("/auth/mfa/enroll", headers=bearer)
    assert started.status_code == 200, started.text
    secret = parse_qs(urlparse(started.json()["otpauth_uri"]).query)["secret"][0]
    confirmed = await client.post(
        "/auth/mfa/confirm", data={"otp": mfa.code_at(secret, clock.now)}, headers=bearer
    )
    assert confirmed.status_code == 200, confirmed.text
    clock.advance(30)  # the next code is a new step
    return secret


async def test_an_account_with_a_second_factor_needs_it_to_bind_and_after_a_wechat_login(
    client: httpx.AsyncClient,
    world: World,
    wechat: FakeWechat,
    clock: FakeClock,
    owner_conn: psycopg.Connection[Any],
) -> None:
    token = await login(client, world.user("memA1"))
    secret = await _enrol_optional(client, token, clock)
    openid = _openid(world, "memA1")
    missing = await _bind(client, token, wechat.issue(openid))
    assert error_codes(missing) == ["MFA_REQUIRED"]
    code = mfa.code_at(secret, clock.now)
    wrong_code = await _bind(
        client, token, wechat.issue(openid), otp=f"{(int(code) + 1) % 10**6:06d}"
    )
    assert error_codes(wrong_code) == ["INVALID_OTP"]
    assert _failures(owner_conn, world.accounts["memA1"]) == 1  # counted as at the login
    bound = await _bind(client, token, wechat.issue(openid), otp=mfa.code_at(secret, clock.now))
    assert bound.get("errors") is None, bound
    clock.advance(30)
    without = await _wechat_login(client, wechat.issue(openid))
    assert (without.status_code, without.json()["code"]) == (401, "MFA_REQUIRED")
    wrong = await _wechat_login(client, wechat.issue(openid), otp="000000")
    if mfa.code_at(secret, clock.now) != "000000":
        assert (wrong.status_code, wrong.json()["code"]) == (401, "INVALID_OTP")
    clock.advance(30)
    accepted = await _wechat_login(client, wechat.issue(openid), otp=mfa.code_at(secret, clock.now))
    assert accepted.status_code == 200, accepted.text


async def test_a_role_that_requires_a_second_factor_must_enrol_first(
    client: httpx.AsyncClient,
    state: AppState,
    monkeypatch: pytest.MonkeyPatch,
    world: World,
    wechat: FakeWechat,
) -> None:
    await _bound(client, wechat, world, "county")  # bound while MFA was not required
    monkeypatch.setattr(state, "settings", replace(state.settings, mfa_required=True))
    answer = await _wechat_login(client, wechat.issue(_openid(world, "county")))
    assert answer.status_code == 403, answer.text
    body = answer.json()
    assert body["code"] == "MFA_ENROLLMENT_REQUIRED"
    assert body["mfa_enrollment_token"] and "access_token" not in body


async def test_disabled_and_reset_accounts_are_refused(
    client: httpx.AsyncClient, world: World, wechat: FakeWechat
) -> None:
    await _bound(client, wechat, world, "memA1")
    await _bound(client, wechat, world, "bsA1")
    admin = await login(client, world.user("sysadmin"))
    disabled = await gql(
        client,
        admin,
        "mutation($i: AccountIdInput!) { disableAccount(input: $i) { account { id } } }",
        {"i": {"accountId": world.account_gid("memA1")}},
    )
    assert disabled.get("errors") is None, disabled
    answer = await _wechat_login(client, wechat.issue(_openid(world, "memA1")))
    assert (answer.status_code, answer.json()["code"]) == (403, "ACCOUNT_DISABLED")
    reset = await gql(
        client,
        admin,
        "mutation($i: ResetAccountPasswordInput!) {"
        " resetAccountPassword(input: $i) { account { id } } }",
        {"i": {"accountId": world.account_gid("bsA1"), "password": "Reset-Pass-2026x"}},
    )
    assert reset.get("errors") is None, reset
    answer = await _wechat_login(client, wechat.issue(_openid(world, "bsA1")))
    assert (answer.status_code, answer.json()["code"]) == (403, "PASSWORD_CHANGE_REQUIRED")


async def test_the_login_rate_limit_counts_wechat_logins(
    client: httpx.AsyncClient,
    state: AppState,
    monkeypatch: pytest.MonkeyPatch,
    wechat: FakeWechat,
) -> None:
    from service.auth.ratelimit import TokenBucket

    monkeypatch.setattr(state, "settings", replace(state.settings, login_rate_per_minute=2))
    monkeypatch.setattr(state, "login_limiter", TokenBucket())
    codes = [(await _wechat_login(client, "never-issued")).status_code for _ in range(3)]
    assert codes[:2] == [401, 401] and codes[2] == 429


# --- the mapping, pure ---------------------------------------------------------------


def test_the_documented_errcodes() -> None:
    cases = {
        40029: "WECHAT_CODE_INVALID",
        40163: "WECHAT_CODE_INVALID",
        45011: "WECHAT_RATE_LIMITED",
        40226: "WECHAT_RISKY_USER",
        -1: "WECHAT_UNAVAILABLE",
        40013: "WECHAT_UNAVAILABLE",
    }
    for errcode, expected in cases.items():
        with pytest.raises(DomainError) as refused:
            outcome(APP_ID, {"errcode": errcode, "errmsg": "x"})
        assert refused.value.code == expected
    who = outcome(APP_ID, {"openid": "o1", "session_key": "k", "unionid": "u1"})
    assert (who.app_id, who.openid, who.unionid) == (APP_ID, "o1", "u1")
    assert not hasattr(who, "session_key")
    assert outcome(APP_ID, {"errcode": 0, "openid": "o2", "session_key": "k"}).openid == "o2"
    for broken in ([], "x", {}, {"session_key": "k"}, {"openid": ""}):
        with pytest.raises(DomainError) as refused:
            outcome(APP_ID, broken)
        assert refused.value.code == "WECHAT_UNAVAILABLE"


@given(st.integers().filter(lambda n: n != 0), st.text())
def test_every_errcode_is_refused_with_a_wechat_code(errcode: int, openid: str) -> None:
    with pytest.raises(DomainError) as refused:
        outcome(APP_ID, {"errcode": errcode, "openid": openid, "session_key": "k"})
    mapped = ERRCODES.get(errcode)
    assert refused.value.code == (mapped.code if mapped else "WECHAT_UNAVAILABLE")
