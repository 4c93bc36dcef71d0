"""The TOTP second factor through HTTP: enrolment (required for the three administrators
and county organizers, optional for others), login with a code or a recovery code.

The service's clock is moved by hand (tests/auth/clock.py), and codes are computed for
it as a phone app would.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any
from urllib.parse import parse_qs, urlparse

import httpx
import psycopg
import pytest

from service.app import AppState
from service.auth import mfa
from tests.auth.clock import FakeClock
from tests.support import PASSWORD, World, error_codes, gql

ME = "{ me { username } }"


@pytest.fixture
def mfa_on(state: AppState, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(state, "settings", replace(state.settings, mfa_required=True))


async def _token(client: httpx.AsyncClient, username: str, **extra: str) -> httpx.Response:
    return await client.post(
        "/auth/token", data={"username": username, "password": PASSWORD, **extra}
    )


def _sessions(owner_conn: psycopg.Connection[Any], account_id: int) -> int:
    row = owner_conn.execute(
        "SELECT count(*) FROM auth_sessions WHERE account_id = %s", (account_id,)
    ).fetchone()
    assert row is not None
    return int(row[0])


def _secret(uri: str) -> str:
    parsed = urlparse(uri)
    assert parsed.scheme == "otpauth" and parsed.netloc == "totp"
    return parse_qs(parsed.query)["secret"][0]


async def _enrol(client: httpx.AsyncClient, clock: FakeClock, username: str) -> tuple[str, list]:
    """Enrol `username` (an MFA role, settings requiring MFA): (secret, recovery codes)."""
    refused = await _token(client, username)
    enrolment = refused.json()["mfa_enrollment_token"]
    started = await client.post("/auth/mfa/enroll", data={"mfa_enrollment_token": enrolment})
    assert started.status_code == 200, started.text
    secret = _secret(started.json()["otpauth_uri"])
    confirmed = await client.post(
        "/auth/mfa/confirm",
        data={"mfa_enrollment_token": enrolment, "otp": mfa.code_at(secret, clock.now)},
    )
    assert confirmed.status_code == 200, confirmed.text
    return secret, started.json()["recovery_codes"]


async def test_an_administrator_without_mfa_gets_no_session_only_an_enrolment_token(
    client: httpx.AsyncClient,
    world: World,
    mfa_on: None,
    clock: FakeClock,
    owner_conn: psycopg.Connection[Any],
) -> None:
    for who in ("county", "security", "sysadmin", "auditor"):
        refused = await _token(client, world.user(who))
        assert refused.status_code == 403, refused.text
        body = refused.json()
        assert body["code"] == "MFA_ENROLLMENT_REQUIRED"
        assert "access_token" not in body and "refresh_token" not in body
        assert _sessions(owner_conn, world.accounts[who]) == 0
        # the enrolment token is not an access token
        assert error_codes(await gql(client, body["mfa_enrollment_token"], ME, status=401)) == [
            "UNAUTHENTICATED"
        ]

    enrolment = (await _token(client, world.user("county"))).json()["mfa_enrollment_token"]
    started = await client.post("/auth/mfa/enroll", data={"mfa_enrollment_token": enrolment})
    assert started.status_code == 200, started.text
    uri, codes = started.json()["otpauth_uri"], started.json()["recovery_codes"]
    secret = _secret(uri)
    assert world.user("county") in uri and len(codes) == 10 and len(set(codes)) == 10
    # at rest: the secret sealed, the recovery codes as digests only
    stored = owner_conn.execute(
        "SELECT totp_secret, totp_enabled_at FROM accounts WHERE id = %s",
        (world.accounts["county"],),
    ).fetchone()
    assert stored is not None and stored[1] is None  # not active before confirmation
    assert secret.encode() not in bytes(stored[0])
    digests = {
        row[0]
        for row in owner_conn.execute(
            "SELECT code_hash FROM account_recovery_codes WHERE account_id = %s",
            (world.accounts["county"],),
        )
    }
    assert digests == {mfa.recovery_code_hash(c) for c in codes} and not set(codes) & digests

    wrong = await client.post(
        "/auth/mfa/confirm", data={"mfa_enrollment_token": enrolment, "otp": "000000"}
    )
    if mfa.code_at(secret, clock.now) != "000000":
        assert wrong.status_code == 401 and wrong.json()["code"] == "INVALID_OTP"
    assert _sessions(owner_conn, world.accounts["county"]) == 0
    confirmed = await client.post(
        "/auth/mfa/confirm",
        data={"mfa_enrollment_token": enrolment, "otp": mfa.code_at(secret, clock.now)},
    )
    assert confirmed.status_code == 200, confirmed.text
    me = await gql(client, confirmed.json()["access_token"], ME)
    assert me["data"]["me"]["username"] == world.user("county")


async def test_a_forged_or_foreign_enrolment_token_is_refused(
    client: httpx.AsyncClient, state: AppState, world: World, mfa_on: None
) -> None:
    forged = await client.post("/auth/mfa/enroll", data={"mfa_enrollment_token": "x.y.z"})
    assert forged.status_code == 401 and forged.json()["code"] == "INVALID_ENROLLMENT_TOKEN"
    # an access token is not an enrolment token
    pair = await _token(client, world.user("memA1"))
    access = pair.json()["access_token"]
    misused = await client.post("/auth/mfa/enroll", data={"mfa_enrollment_token": access})
    assert misused.status_code == 401


async def test_an_enrolled_account_needs_a_valid_unused_code(
    client: httpx.AsyncClient,
    world: World,
    mfa_on: None,
    clock: FakeClock,
    owner_conn: psycopg.Connection[Any],
) -> None:
    secret, _ = await _enrol(client, clock, world.user("security"))
    before = _sessions(owner_conn, world.accounts["security"])
    clock.advance(60)

    missing = await _token(client, world.user("security"))
    assert missing.status_code == 401 and missing.json()["code"] == "MFA_REQUIRED"
    assert "access_token" not in missing.json()
    code = mfa.code_at(secret, clock.now)
    wrong = f"{(int(code) + 1) % 1_000_000:06d}"
    refused = await _token(client, world.user("security"), otp=wrong)
    assert refused.status_code == 401 and refused.json()["code"] == "INVALID_OTP"
    assert _sessions(owner_conn, world.accounts["security"]) == before

    accepted = await _token(client, world.user("security"), otp=code)
    assert accepted.status_code == 200, accepted.text
    assert (await gql(client, accepted.json()["access_token"], ME)).get("errors") is None
    # the same code again (an observer's replay) is refused
    replayed = await _token(client, world.user("security"), otp=code)
    assert replayed.status_code == 401 and replayed.json()["code"] == "INVALID_OTP"
    outcomes = {
        (row[0], row[1])
        for row in owner_conn.execute(
            "SELECT action, outcome FROM audit_events WHERE actor_account_id = %s",
            (world.accounts["security"],),
        )
    }
    assert {("auth.mfa_enrolled", "success"), ("auth.mfa_failed", "failed")} <= outcomes


async def test_a_recovery_code_logs_in_once(
    client: httpx.AsyncClient, world: World, mfa_on: None, clock: FakeClock
) -> None:
    _, codes = await _enrol(client, clock, world.user("auditor"))
    first = await _token(client, world.user("auditor"), recovery_code=codes[0])
    assert first.status_code == 200, first.text
    again = await _token(client, world.user("auditor"), recovery_code=codes[0])
    assert again.status_code == 401 and again.json()["code"] == "INVALID_OTP"
    other = await _token(client, world.user("auditor"), recovery_code=codes[1].upper())
    assert other.status_code == 200, other.text


async def test_mfa_is_optional_for_others_and_they_may_enrol(
    client: httpx.AsyncClient, world: World, mfa_on: None, clock: FakeClock
) -> None:
    plain = await _token(client, world.user("bsA1"))
    assert plain.status_code == 200, plain.text
    bearer = {"Authorization": f"Bearer {plain.json()['access_token']}"}
    started = await client.post("/auth/mfa/enroll", data={}, headers=bearer)
    assert started.status_code == 200, started.text
    secret = _secret(started.json()["otpauth_uri"])
    # until confirmed, nothing changes at login
    assert (await _token(client, world.user("bsA1"))).status_code == 200
    confirmed = await client.post(
        "/auth/mfa/confirm", data={"otp": mfa.code_at(secret, clock.now)}, headers=bearer
    )
    assert confirmed.status_code == 200 and confirmed.json() == {"ok": True}
    again = await client.post("/auth/mfa/enroll", data={}, headers=bearer)
    assert again.status_code == 409 and again.json()["code"] == "MFA_ALREADY_ENROLLED"
    clock.advance(60)
    assert (await _token(client, world.user("bsA1"))).json()["code"] == "MFA_REQUIRED"
    logged = await _token(client, world.user("bsA1"), otp=mfa.code_at(secret, clock.now))
    assert logged.status_code == 200, logged.text


async def test_enrolment_without_a_session_or_token_is_refused(
    client: httpx.AsyncClient, world: World
) -> None:
    response = await client.post("/auth/mfa/enroll", data={})
    assert response.status_code == 401
