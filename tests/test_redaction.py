"""No ID-card or phone number, password, hash or SQL value in a log line, also when the
database raises."""

from __future__ import annotations

import logging
import secrets
from typing import Any

import psycopg
import pytest

from service.app import AppState
from service.redaction import HIDDEN_PLACEHOLDER, ID_PLACEHOLDER, PHONE_PLACEHOLDER, redact
from tests import factories
from tests.support import PASSWORD, World, gql, login


def test_numbers_are_replaced_and_other_digits_kept() -> None:
    number = factories.id_number()
    text = redact(f"id {number} x {number[:17]}x phone 13812345678 +86 138-1234-5678 seq 123456")
    assert number not in text and "13812345678" not in text and "1234-5678" not in text
    assert text.count(ID_PLACEHOLDER) == 2 and text.count(PHONE_PLACEHOLDER) == 2
    assert "seq 123456" in text
    # Longer digit runs (hashes, big ids) are not numbers of a person.
    assert redact("a" + "1" * 40) == "a" + "1" * 40


async def test_a_failing_statement_with_a_number_logs_no_number(
    state: AppState, caplog: pytest.LogCaptureFixture
) -> None:
    number = factories.id_number()
    log = logging.getLogger("pingyi.test")
    with caplog.at_level(logging.DEBUG):
        try:
            async with state.db.transaction(write=True) as tx:
                await tx.execute(
                    "INSERT INTO tenants (id, kind, code, path) VALUES (1, 'x', %(n)s, %(p)s)",
                    {"n": number, "p": "13812345678"},
                )
        except Exception as exc:
            # The database quotes the failing row: the number is in the exception.
            assert number in str(exc)
            log.error("statement failed: %s (phone %s)", exc, "13812345678", exc_info=exc)
    assert caplog.records
    for record in caplog.records:
        rendered = caplog.handler.format(record)
        assert number not in rendered, rendered
        assert "13812345678" not in rendered, rendered


def test_password_hashes_secrets_and_quoted_values_are_replaced() -> None:
    argon = "$argon2id$v=19$m=65536,t=3,p=4$c2FsdHNhbHRzYWx0$aGFzaGhhc2hoYXNoaGFzaA"
    bcrypt = "$2b$12$R9h/cIPz0gi.URNNX3kh2OPST9/PgBkqquzi.Ss7KIUgO2t0jWMUW"
    text = redact(
        f"hash {argon} old {bcrypt} password=hunter2 "
        '{"new_password": "s3cret!", "username": "bob"}\n'
        "DETAIL:  Key (code)=(X-4711) already exists.\nCONTEXT: kept"
    )
    for secret in (argon, "c2FsdHNhbHRzYWx0", bcrypt, "hunter2", "s3cret!", "X-4711"):
        assert secret not in text, text
    assert "bob" in text and "CONTEXT: kept" in text and HIDDEN_PLACEHOLDER in text


async def test_no_parameter_password_or_hash_reaches_a_log_line(
    state: AppState,
    client: Any,
    world: World,
    owner_conn: psycopg.Connection[Any],
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Every logger at DEBUG while a user logs in and writes: no engine or driver logs
    the statements' values, and what an error quotes is redacted."""
    name = f"日志探针-{secrets.token_hex(4)}"
    code = f"{world.tag}-log-{secrets.token_hex(3)}"
    mutation = "mutation($i: CreateOrgUnitInput!) { createOrgUnit(input: $i) { orgUnit { code } } }"
    variables = {"i": {"parentId": world.gid("A"), "kind": "BRANCH", "code": code, "name": name}}
    with caplog.at_level(logging.DEBUG):
        await client.post("/auth/token", data={"username": world.user("orgA"), "password": "x1"})
        token = await login(client, world.user("orgA"))
        first = await gql(client, token, mutation, variables)
        again = await gql(client, token, mutation, variables)  # the code is taken now
        try:
            async with state.db.transaction(write=True) as tx:
                await tx.execute(
                    "INSERT INTO tenants (id, kind, code, path) VALUES (1, 'x', %(c)s, 'p')",
                    {"c": code},
                )
        except Exception as exc:
            logging.getLogger("pingyi.test").error("failed: %s", exc, exc_info=exc)
    assert first.get("errors") is None, first
    assert again.get("errors"), again
    row = owner_conn.execute(
        "SELECT password_hash FROM accounts WHERE username = %s", (world.user("orgA"),)
    ).fetchone()
    assert row is not None
    logged = "\n".join(caplog.handler.format(r) for r in caplog.records)
    for value in (name, code, PASSWORD, "x1", row[0], token):
        assert value not in logged, value
