"""Password changes through HTTP and the CLI: the forced change at the first login of an
account someone else created (createAccount, `pingyi create-admin`) or of a demo account
outside `--demo`, the `changePassword` mutation, the memory of the last five passwords,
and the optional expiry."""

from __future__ import annotations

import itertools
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest

from service.app import AppState
from service.auth.passwords import hash_password
from service.demo import DEMO_PASSWORD
from tests.auth.clock import FakeClock
from tests.conftest import TestDatabase
from tests.support import PASSWORD, World, error_codes, gql, login, run_cli

CREATE = """mutation($i: CreateAccountInput!) { createAccount(input: $i) { account { id } } }"""
CHANGE = """mutation($i: ChangePasswordInput!) { changePassword(input: $i) { ok } }"""
ME = "{ me { username } }"
FIRST = "Chosen-By-0thers!"
MINE = "Mine-Own-Pass-77"


async def _token(client: httpx.AsyncClient, username: str, password: str, **extra: str) -> Any:
    return await client.post(
        "/auth/token", data={"username": username, "password": password, **extra}
    )


def _session_count(owner_conn: psycopg.Connection[Any], username: str) -> int:
    row = owner_conn.execute(
        "SELECT count(*) FROM auth_sessions s JOIN accounts a ON a.id = s.account_id"
        " WHERE a.username = %s",
        (username,),
    ).fetchone()
    assert row is not None
    return int(row[0])


async def test_an_account_created_by_someone_else_must_change_its_password_first(
    client: httpx.AsyncClient, world: World, owner_conn: psycopg.Connection[Any]
) -> None:
    admin = await login(client, world.user("county"))
    name = f"{world.tag}.new"
    created = await gql(
        client,
        admin,
        CREATE,
        {
            "i": {
                "username": name,
                "displayName": "新人",
                "password": FIRST,
                "homeOrgUnitId": world.gid("a1"),
            }
        },
    )
    assert created.get("errors") is None, created

    refused = await _token(client, name, FIRST)
    assert refused.status_code == 403 and refused.json()["code"] == "PASSWORD_CHANGE_REQUIRED"
    assert "access_token" not in refused.json() and _session_count(owner_conn, name) == 0
    # the new password follows the rules, and is not the one chosen by the creator
    weak = await _token(client, name, FIRST, new_password="short")
    assert weak.status_code == 400 and weak.json()["code"] == "WEAK_PASSWORD"
    same = await _token(client, name, FIRST, new_password=FIRST)
    assert same.status_code == 400 and same.json()["code"] == "PASSWORD_REUSED"
    changed = await _token(client, name, FIRST, new_password=MINE)
    assert changed.status_code == 200, changed.text
    assert (await gql(client, changed.json()["access_token"], ME)).get("errors") is None
    # from now on the chosen password alone
    assert (await _token(client, name, MINE)).status_code == 200
    assert (await _token(client, name, FIRST)).status_code == 401


def test_create_admin_makes_an_account_that_must_change_its_password(
    database: TestDatabase, owner_conn: psycopg.Connection[Any], tmp_path: Path
) -> None:
    env = {"PINGYI_ADMIN_PASSWORD": "Handed-Over-2026!", "PINGYI_DATA_DIR": str(tmp_path)}
    done = run_cli(database.owner_url, "create-admin", "forced.admin", "--role", "auditor", **env)
    assert done.returncode == 0, done.stdout + done.stderr
    row = owner_conn.execute(
        "SELECT must_change_password FROM accounts WHERE username = 'forced.admin'"
    ).fetchone()
    assert row == (True,)


async def test_the_demo_password_must_be_changed_outside_demo_mode(
    client: httpx.AsyncClient,
    state: AppState,
    world: World,
    owner_conn: psycopg.Connection[Any],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The demo accounts share a published password: usable as is under `serve --demo`
    only."""
    owner_conn.execute(
        "UPDATE accounts SET password_hash = %s WHERE id = %s",
        (hash_password(DEMO_PASSWORD), world.accounts["memA1"]),
    )
    refused = await _token(client, world.user("memA1"), DEMO_PASSWORD)
    assert refused.status_code == 403 and refused.json()["code"] == "PASSWORD_CHANGE_REQUIRED"
    monkeypatch.setattr(state, "settings", replace(state.settings, demo_mode=True))
    assert (await _token(client, world.user("memA1"), DEMO_PASSWORD)).status_code == 200


async def test_change_password_checks_the_old_one_and_ends_other_sessions(
    client: httpx.AsyncClient, world: World
) -> None:
    other = await login(client, world.user("bsA1"))
    token = await login(client, world.user("bsA1"))
    wrong = await gql(client, token, CHANGE, {"i": {"oldPassword": "nope", "newPassword": MINE}})
    assert error_codes(wrong) == ["WRONG_PASSWORD"]
    weak = await gql(client, token, CHANGE, {"i": {"oldPassword": PASSWORD, "newPassword": "a"}})
    assert error_codes(weak) == ["WEAK_PASSWORD"]
    done = await gql(client, token, CHANGE, {"i": {"oldPassword": PASSWORD, "newPassword": MINE}})
    assert done == {"data": {"changePassword": {"ok": True}}}
    assert (await gql(client, token, ME)).get("errors") is None  # this session goes on
    assert error_codes(await gql(client, other, ME, status=401)) == ["UNAUTHENTICATED"]
    assert (await _token(client, world.user("bsA1"), PASSWORD)).status_code == 401
    assert (await _token(client, world.user("bsA1"), MINE)).status_code == 200


async def test_the_last_five_passwords_cannot_be_reused(
    client: httpx.AsyncClient, world: World
) -> None:
    token = await login(client, world.user("memA1"))
    history = [PASSWORD] + [f"Rotation-{n}-Pass!" for n in range(1, 6)]

    async def change(old: str, new: str) -> dict[str, Any]:
        return await gql(client, token, CHANGE, {"i": {"oldPassword": old, "newPassword": new}})

    for old, new in itertools.pairwise(history[:5]):
        assert (await change(old, new)).get("errors") is None
    # current: history[4]; the five most recent are history[0..4]
    for recent in history[:5]:
        assert error_codes(await change(history[4], recent)) == ["PASSWORD_REUSED"]
    assert (await change(history[4], history[5])).get("errors") is None
    # history[0] is now the sixth most recent: allowed again
    assert (await change(history[5], history[0])).get("errors") is None


async def test_an_expired_password_must_be_changed(
    client: httpx.AsyncClient,
    state: AppState,
    world: World,
    clock: FakeClock,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert (await _token(client, world.user("orgB"), PASSWORD)).status_code == 200  # off
    monkeypatch.setattr(state, "settings", replace(state.settings, password_max_age_days=90))
    assert (await _token(client, world.user("orgB"), PASSWORD)).status_code == 200
    clock.advance(91 * 86400)
    expired = await _token(client, world.user("orgB"), PASSWORD)
    assert expired.status_code == 403 and expired.json()["code"] == "PASSWORD_EXPIRED"
    renewed = await _token(client, world.user("orgB"), PASSWORD, new_password=MINE)
    assert renewed.status_code == 200, renewed.text


async def test_wrong_old_passwords_count_toward_the_login_lockout(
    client: httpx.AsyncClient,
    state: AppState,
    world: World,
    owner_conn: psycopg.Connection[Any],
    clock: FakeClock,
) -> None:
    """Someone holding a stolen session cannot guess the password through
    changePassword: each wrong old password is a failed login of the account (counted
    at the service's instant and audited although the mutation rolls back), and at the
    limit both the mutation and the login are locked."""
    # The service's clock, not the wall clock, stamps the failures and judges the
    # window: a day ahead of the wall clock, they still count.
    clock.advance(86_400)
    token = await login(client, world.user("memA1"))
    account = world.accounts["memA1"]
    limit = state.settings.login_max_failures
    for _ in range(limit):
        wrong = await gql(
            client, token, CHANGE, {"i": {"oldPassword": "guess", "newPassword": MINE}}
        )
        assert error_codes(wrong) == ["WRONG_PASSWORD"]
    counted = owner_conn.execute(
        "SELECT (SELECT count(*) FROM login_failures WHERE account_id = %(a)s),"
        " (SELECT count(*) FROM audit_events WHERE action = 'auth.password_check_failed'"
        "  AND object_id = %(s)s AND outcome = 'failed')",
        {"a": account, "s": str(account)},
    ).fetchone()
    assert counted == (limit, limit)
    right = await gql(client, token, CHANGE, {"i": {"oldPassword": PASSWORD, "newPassword": MINE}})
    assert error_codes(right) == ["ACCOUNT_LOCKED"]
    assert owner_conn.execute(  # the locked attempt is audited, not counted
        "SELECT (SELECT count(*) FROM login_failures WHERE account_id = %(a)s),"
        " (SELECT count(*) FROM audit_events WHERE action = 'auth.login_locked'"
        "  AND object_id = %(s)s)",
        {"a": account, "s": str(account)},
    ).fetchone() == (limit, 1)
    locked = await _token(client, world.user("memA1"), PASSWORD)
    assert (locked.status_code, locked.json()["code"]) == (423, "ACCOUNT_LOCKED")
    # Nothing changed: the password is still the old one once the failures are gone.
    owner_conn.execute("DELETE FROM login_failures WHERE account_id = %s", (account,))
    assert (await _token(client, world.user("memA1"), PASSWORD)).status_code == 200
