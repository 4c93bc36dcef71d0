"""Authentication end to end, through HTTP only: /auth/token, /auth/refresh, /auth/logout,
JWKS, and what /graphql makes of the tokens. Rows are checked with the owner connection.

One county world serves the whole module (each account costs an argon2 hash). Tests that
leave login failures or lock an account each use an account of their own:
  wrong/unknown -> nobody; lockout -> secB (orgB stays free); window -> bsA1, memA1;
  audit -> sysadmin (no other test logs in as it).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import uuid
from typing import Any

import httpx
import psycopg
import pytest
from joserfc import jwt
from joserfc.jwk import ECKey

from service.app import AppState
from service.auth.tokens import TokenService
from service.config import Settings
from tests.support import PASSWORD, World, build_world, error_codes, gql, login

ME = "{ me { username } }"
WRONG = "Wrong-Passw0rd!"


@pytest.fixture(scope="module")
async def world(state: AppState) -> World:
    """Overrides the per-test world: one county for the module (see the docstring)."""
    return await build_world(state)


# -- helpers -------------------------------------------------------------------------------


async def token_pair(client: httpx.AsyncClient, username: str, **headers: str) -> dict[str, Any]:
    response = await client.post(
        "/auth/token", data={"username": username, "password": PASSWORD}, headers=headers
    )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def attempt(
    client: httpx.AsyncClient, username: str, password: str, **headers: str
) -> httpx.Response:
    return await client.post(
        "/auth/token", data={"username": username, "password": password}, headers=headers
    )


async def refresh(client: httpx.AsyncClient, refresh_token: str) -> httpx.Response:
    return await client.post("/auth/refresh", data={"refresh_token": refresh_token})


async def me_status(client: httpx.AsyncClient, access: str) -> tuple[int, dict[str, Any]]:
    response = await client.post(
        "/graphql", json={"query": ME}, headers={"Authorization": f"Bearer {access}"}
    )
    return response.status_code, response.json()


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def b64url_json(value: dict[str, Any]) -> str:
    return b64url(json.dumps(value, separators=(",", ":")).encode())


def unb64url(segment: str) -> bytes:
    return base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))


def flip(segment: str, at: int) -> str:
    """`segment` with the base64url character at `at` replaced by a different one."""
    old = segment[at]
    new = "A" if old != "A" else "B"
    return segment[:at] + new + segment[at + 1 :]


def assert_unauthenticated(status: int, body: dict[str, Any]) -> None:
    assert status == 401, body
    assert error_codes(body) == ["UNAUTHENTICATED"], body
    assert not body.get("data"), body


# -- login ---------------------------------------------------------------------------------


async def test_right_password_issues_bearer_tokens_that_work_on_graphql(
    client: httpx.AsyncClient, world: World
) -> None:
    pair = await token_pair(client, world.user("secA"))
    assert pair["token_type"] == "Bearer"
    assert isinstance(pair["access_token"], str) and pair["access_token"].count(".") == 2
    assert isinstance(pair["refresh_token"], str) and len(pair["refresh_token"]) >= 32
    assert pair["expires_in"] == 900
    body = await gql(client, pair["access_token"], ME)
    assert body == {"data": {"me": {"username": world.user("secA")}}}


async def test_login_accepts_json_and_normalises_the_username(
    client: httpx.AsyncClient, world: World
) -> None:
    response = await client.post(
        "/auth/token",
        json={"username": f"  {world.user('secA').upper()} ", "password": PASSWORD},
    )
    assert response.status_code == 200, response.text
    assert response.headers["cache-control"] == "no-store"
    body = await gql(client, response.json()["access_token"], ME)
    assert body["data"]["me"]["username"] == world.user("secA")


async def test_wrong_password_and_unknown_user_get_the_same_answer(
    client: httpx.AsyncClient, world: World
) -> None:
    wrong = await attempt(client, world.user("nobody"), WRONG)
    unknown = await attempt(client, world.user("no-such-person"), WRONG)
    assert wrong.status_code == unknown.status_code == 401
    assert wrong.json()["code"] == "INVALID_CREDENTIALS"
    assert wrong.json()["message"] == "用户名或密码错误"
    # The whole body is identical: nothing tells a real account from a made-up one.
    assert wrong.json() == unknown.json()
    assert "access_token" not in wrong.json()


async def test_incomplete_login_request_is_a_400(client: httpx.AsyncClient, world: World) -> None:
    response = await client.post("/auth/token", data={"username": world.user("secA")})
    assert response.status_code == 400
    assert response.json()["code"] == "INVALID_REQUEST"
    response = await client.post(
        "/auth/token", content=b"[1, 2]", headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 400
    assert response.json()["code"] == "INVALID_REQUEST"


# -- lockout -------------------------------------------------------------------------------


async def test_five_failures_lock_the_account_and_only_that_account(
    client: httpx.AsyncClient, world: World, settings: Settings
) -> None:
    assert settings.login_max_failures == 5
    victim = world.user("secB")
    for _ in range(settings.login_max_failures):
        response = await attempt(client, victim, WRONG)
        assert response.status_code == 401, response.text
        assert response.json()["code"] == "INVALID_CREDENTIALS"
    # Now even the right password is refused, and so is a wrong one (no oracle).
    for password in (PASSWORD, WRONG):
        locked = await attempt(client, victim, password)
        assert locked.status_code == 423, locked.text
        assert locked.json()["code"] == "ACCOUNT_LOCKED"
        assert "锁定" in locked.json()["message"]
        assert "access_token" not in locked.json()
    # Another account, even of the same township, logs in as usual.
    await login(client, world.user("orgB"))


async def test_failures_older_than_the_window_do_not_count(
    client: httpx.AsyncClient,
    world: World,
    settings: Settings,
    owner_conn: psycopg.Connection[Any],
) -> None:
    account_id = world.accounts["bsA1"]
    # Five failures, all just outside the window: not a lockout.
    owner_conn.execute(
        "INSERT INTO login_failures (account_id, failed_at)"
        " SELECT %s, now() - make_interval(secs => %s) FROM generate_series(1, %s)",
        (account_id, settings.login_window_seconds + 5, settings.login_max_failures),
    )
    await login(client, world.user("bsA1"))
    # A success clears the failures.
    (left,) = owner_conn.execute(
        "SELECT count(*) FROM login_failures WHERE account_id = %s", (account_id,)
    ).fetchone() or (None,)
    assert left == 0

    # The same five failures inside the window do lock it.
    other = world.accounts["memA1"]
    owner_conn.execute(
        "INSERT INTO login_failures (account_id, failed_at)"
        " SELECT %s, now() - make_interval(secs => %s) FROM generate_series(1, %s)",
        (other, settings.login_window_seconds - 60, settings.login_max_failures),
    )
    response = await attempt(client, world.user("memA1"), PASSWORD)
    assert response.status_code == 423, response.text
    # ... until they age out of the window.
    owner_conn.execute(
        "UPDATE login_failures SET failed_at = now() - make_interval(secs => %s)"
        " WHERE account_id = %s",
        (settings.login_window_seconds + 1, other),
    )
    await login(client, world.user("memA1"))


# -- access tokens -------------------------------------------------------------------------


async def test_expired_access_token_is_unauthenticated(
    client: httpx.AsyncClient, world: World, state: AppState, settings: Settings
) -> None:
    access = await login(client, world.user("secA"))
    claims = state.tokens.validate_access_token(access)
    assert claims is not None
    expired_minter = TokenService(
        state.tokens.key,
        issuer=settings.jwt_issuer,
        audience=settings.jwt_audience,
        access_ttl=-60,
    )
    expired, _ = expired_minter.issue_access_token(claims.account_id, claims.session_id)
    assert_unauthenticated(*await me_status(client, expired))
    # The same account and session with a live token is fine: only the expiry differs.
    fresh, _ = state.tokens.issue_access_token(claims.account_id, claims.session_id)
    status, body = await me_status(client, fresh)
    assert status == 200 and body["data"]["me"]["username"] == world.user("secA")


async def test_tampered_and_foreign_tokens_are_unauthenticated(
    client: httpx.AsyncClient, world: World, state: AppState, settings: Settings
) -> None:
    access = await login(client, world.user("secA"))
    header_b64, payload_b64, signature_b64 = access.split(".")
    header = json.loads(unb64url(header_b64))
    payload = json.loads(unb64url(payload_b64))
    assert header == {"alg": "ES256", "typ": "at+jwt", "kid": state.tokens.kid}

    forged: dict[str, str] = {}
    # Claims changed (someone else's account), original signature kept.
    other = dict(payload, sub=str(world.accounts["county"]))
    forged["sub swapped"] = f"{header_b64}.{b64url_json(other)}.{signature_b64}"
    # One character of the payload, or of the signature, changed.
    forged["payload char"] = f"{header_b64}.{flip(payload_b64, 10)}.{signature_b64}"
    forged["signature char"] = f"{header_b64}.{payload_b64}.{flip(signature_b64, 20)}"
    forged["signature dropped"] = f"{header_b64}.{payload_b64}."
    # alg none, with and without our kid.
    none_header = {"alg": "none", "typ": "at+jwt", "kid": state.tokens.kid}
    forged["alg none"] = f"{b64url_json(none_header)}.{payload_b64}."
    forged["alg none, no kid"] = f"{b64url_json({'alg': 'none'})}.{payload_b64}."
    # HS256 keyed with our public key (algorithm confusion).
    public_pem = state.tokens.key.as_pem(private=False)
    hs_input = f"{b64url_json(dict(header, alg='HS256'))}.{payload_b64}"
    hs_sig = hmac.new(public_pem, hs_input.encode(), hashlib.sha256).digest()
    forged["HS256 with public key"] = f"{hs_input}.{b64url(hs_sig)}"
    # Another key: its own kid, and claiming ours.
    stranger = ECKey.generate_key("P-256", private=True)
    foreign = TokenService(
        stranger,
        issuer=settings.jwt_issuer,
        audience=settings.jwt_audience,
        access_ttl=settings.access_token_ttl,
    )
    sid = uuid.UUID(payload["sid"])
    forged["another key"] = foreign.issue_access_token(int(payload["sub"]), sid)[0]
    forged["another key, our kid"] = jwt.encode(header, payload, stranger)
    # Our key, but not an access token of ours: wrong typ, issuer, audience.
    forged["typ JWT"] = jwt.encode(dict(header, typ="JWT"), payload, state.tokens.key)
    forged["other issuer"] = jwt.encode(header, dict(payload, iss="elsewhere"), state.tokens.key)
    forged["other audience"] = jwt.encode(header, dict(payload, aud="other"), state.tokens.key)
    forged["garbage"] = "not-a-jwt"

    for what, token in forged.items():
        status, body = await me_status(client, token)
        assert status == 401, (what, body)
        assert error_codes(body) == ["UNAUTHENTICATED"], (what, body)
    # The genuine token still works: the failures above are the forgeries' own.
    status, body = await me_status(client, access)
    assert status == 200 and body["data"]["me"]["username"] == world.user("secA")


async def test_missing_or_non_bearer_credentials_are_unauthenticated(
    client: httpx.AsyncClient, world: World
) -> None:
    response = await client.post("/graphql", json={"query": ME})
    assert_unauthenticated(response.status_code, response.json())
    basic = base64.b64encode(f"{world.user('secA')}:{PASSWORD}".encode()).decode()
    response = await client.post(
        "/graphql", json={"query": ME}, headers={"Authorization": f"Basic {basic}"}
    )
    assert_unauthenticated(response.status_code, response.json())


# -- refresh -------------------------------------------------------------------------------


async def test_refresh_rotates_and_a_replayed_token_revokes_the_session(
    client: httpx.AsyncClient, world: World
) -> None:
    first = await token_pair(client, world.user("secA"))

    rotated = await refresh(client, first["refresh_token"])
    assert rotated.status_code == 200, rotated.text
    second = rotated.json()
    assert second["token_type"] == "Bearer"
    assert second["refresh_token"] != first["refresh_token"]
    assert second["access_token"] != first["access_token"]
    assert (await me_status(client, second["access_token"]))[0] == 200

    # The grant_type=refresh_token form of /auth/token rotates too.
    third_response = await client.post(
        "/auth/token",
        data={"grant_type": "refresh_token", "refresh_token": second["refresh_token"]},
    )
    assert third_response.status_code == 200, third_response.text
    third = third_response.json()

    # A replaced token fails, and its replay revokes the whole session ...
    replay = await refresh(client, second["refresh_token"])
    assert replay.status_code == 401
    assert replay.json()["code"] == "INVALID_REFRESH_TOKEN"
    # ... so the newest refresh token and the access tokens stop working too.
    newest = await refresh(client, third["refresh_token"])
    assert newest.status_code == 401
    assert newest.json()["code"] == "INVALID_REFRESH_TOKEN"
    assert_unauthenticated(*await me_status(client, third["access_token"]))
    assert_unauthenticated(*await me_status(client, first["access_token"]))


async def test_new_refresh_token_works_once(client: httpx.AsyncClient, world: World) -> None:
    first = await token_pair(client, world.user("orgA"))
    second = (await refresh(client, first["refresh_token"])).json()
    third = await refresh(client, second["refresh_token"])
    assert third.status_code == 200
    again = await refresh(client, second["refresh_token"])
    assert again.status_code == 401
    assert again.json()["code"] == "INVALID_REFRESH_TOKEN"


async def test_unknown_or_missing_refresh_token_is_refused(client: httpx.AsyncClient) -> None:
    response = await refresh(client, "made-up-refresh-token")
    assert response.status_code == 401
    assert response.json()["code"] == "INVALID_REFRESH_TOKEN"
    response = await client.post("/auth/refresh", json={})
    assert response.status_code == 400
    assert response.json()["code"] == "INVALID_REQUEST"


async def test_sessions_are_independent(client: httpx.AsyncClient, world: World) -> None:
    """Revoking one login (by replay) leaves another login of the same account alive."""
    one = await token_pair(client, world.user("secA"))
    two = await token_pair(client, world.user("secA"))
    await refresh(client, one["refresh_token"])
    await refresh(client, one["refresh_token"])  # replay: session one is revoked
    assert_unauthenticated(*await me_status(client, one["access_token"]))
    assert (await me_status(client, two["access_token"]))[0] == 200
    assert (await refresh(client, two["refresh_token"])).status_code == 200


# -- logout --------------------------------------------------------------------------------


async def test_logout_revokes_access_and_refresh_tokens(
    client: httpx.AsyncClient, world: World
) -> None:
    pair = await token_pair(client, world.user("secA"))
    auth = {"Authorization": f"Bearer {pair['access_token']}"}
    assert (await me_status(client, pair["access_token"]))[0] == 200

    response = await client.post("/auth/logout", headers=auth)
    assert response.status_code == 200, response.text
    assert response.json() == {"ok": True}

    assert_unauthenticated(*await me_status(client, pair["access_token"]))
    after = await refresh(client, pair["refresh_token"])
    assert after.status_code == 401
    assert after.json()["code"] == "INVALID_REFRESH_TOKEN"
    # Logging out twice, or without a token, is refused.
    again = await client.post("/auth/logout", headers=auth)
    assert again.status_code == 401
    assert again.json()["code"] == "UNAUTHENTICATED"
    anonymous = await client.post("/auth/logout")
    assert anonymous.status_code == 401
    assert anonymous.json()["code"] == "UNAUTHENTICATED"


# -- JWKS ----------------------------------------------------------------------------------


async def test_jwks_publishes_the_public_signing_key_only(
    client: httpx.AsyncClient, world: World
) -> None:
    response = await client.get("/.well-known/jwks.json")
    assert response.status_code == 200
    keys = response.json()["keys"]
    assert len(keys) == 1
    (key,) = keys
    assert key["kty"] == "EC" and key["crv"] == "P-256"
    assert key["alg"] == "ES256" and key["use"] == "sig"
    assert {"x", "y"} <= key.keys()
    assert "d" not in key
    access = await login(client, world.user("secA"))
    header = json.loads(unb64url(access.split(".")[0]))
    assert header["kid"] == key["kid"]
    # The published key verifies the token (a relying party needs nothing else).
    decoded = jwt.decode(access, ECKey.import_key(key))
    assert decoded.claims["sub"] == str(world.accounts["secA"])


# -- audit ---------------------------------------------------------------------------------


async def test_login_refresh_and_logout_are_audited(
    client: httpx.AsyncClient, world: World, owner_conn: psycopg.Connection[Any]
) -> None:
    account_id = world.accounts["sysadmin"]
    request_id = f"req-{uuid.uuid4().hex}"
    failed = await attempt(client, world.user("sysadmin"), WRONG, **{"X-Request-Id": request_id})
    assert failed.status_code == 401
    assert failed.headers["x-request-id"] == request_id
    pair = await token_pair(client, world.user("sysadmin"), **{"X-Request-Id": request_id})
    rotated = (await refresh(client, pair["refresh_token"])).json()
    response = await client.post(
        "/auth/logout",
        headers={"Authorization": f"Bearer {rotated['access_token']}", "X-Request-Id": request_id},
    )
    assert response.status_code == 200

    rows = owner_conn.execute(
        "SELECT e.action, e.object_type, e.object_id, e.request_id, e.details"
        " FROM audit_events e JOIN accounts a ON a.home_tenant_id = e.tenant_id"
        " WHERE a.id = %s AND e.actor_account_id = %s AND e.action LIKE 'auth.%%'"
        " ORDER BY e.seq",
        (account_id, account_id),
    ).fetchall()
    actions = [r[0] for r in rows]
    assert actions == ["auth.login_failed", "auth.login", "auth.refresh", "auth.logout"], rows
    failed_row, login_row, refresh_row, logout_row = rows
    assert failed_row[1:3] == ("Account", str(account_id))
    assert failed_row[4] == {"failures_in_window": 1}
    assert login_row[1] == logout_row[1] == refresh_row[1] == "AuthSession"
    # One session throughout: login, refresh and logout name the same one.
    assert login_row[2] == refresh_row[2] == logout_row[2]
    (session_id,) = owner_conn.execute(
        "SELECT id FROM auth_sessions WHERE account_id = %s AND revoked_reason = 'logout'",
        (account_id,),
    ).fetchone() or (None,)
    assert str(session_id) == login_row[2]
    # Requests that carried an id are traceable by it; the refresh had none of ours.
    assert failed_row[3] == login_row[3] == logout_row[3] == request_id
    assert refresh_row[3] not in (None, request_id)
    # No event holds the password or a token.
    dump = json.dumps([list(map(str, r)) for r in rows])
    for secret in (PASSWORD, WRONG, pair["refresh_token"], pair["access_token"]):
        assert secret not in dump
