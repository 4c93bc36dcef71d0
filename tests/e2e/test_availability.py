"""Availability and data in logs (issue 7), over HTTP against the real stack.

Statement, lock and idle-transaction timeouts on the application's connections; a busy
pool answered fast as 503 UNAVAILABLE; a mutation whose client went away rolled back;
every answer of /graphql JSON with a code; text PostgreSQL cannot hold refused as
INVALID_INPUT; /metrics behind a token; canonical global ids; aliases in fragments.
"""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import orjson
import psycopg
import pytest
import strawberry
from strawberry.types import Info

from service.app import AppState, create_app
from service.db import Database, libpq_url
from service.schema.context import Context
from service.schema.ids import to_global_id
from service.schema.root import Query, build_schema
from tests.conftest import TestDatabase
from tests.support import World, error_codes, gql, login


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@strawberry.type
class SlowQuery(Query):
    @strawberry.field
    async def slow(self, info: Info[Context, None]) -> str:
        """Longer than any statement timeout a test sets."""
        await info.context.tx.execute("SELECT pg_sleep(30)")
        return "done"

    @strawberry.field
    async def backend(self, info: Info[Context, None]) -> int:
        """Which server process answered: the same one means the same connection."""
        return int(await info.context.tx.scalar("SELECT pg_backend_pid()"))


@asynccontextmanager
async def app_with_db(
    state: AppState, database: TestDatabase, schema: Any = None, **options: Any
) -> AsyncIterator[tuple[httpx.AsyncClient, Database]]:
    """The real app on its own pool (`options` for Database), sharing everything else."""
    db = Database(database.app_url, **options)
    app = create_app(dataclasses.replace(state, db=db), schema=schema)
    transport = httpx.ASGITransport(app=app)
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://pingyi.test") as c:
            yield c, db
    finally:
        await db.dispose()


def create_branch(world: World, code: str, name: str = "新支部") -> tuple[str, dict[str, Any]]:
    return (
        "mutation($i: CreateOrgUnitInput!) { createOrgUnit(input: $i) { orgUnit { code } } }",
        {"i": {"parentId": world.gid("A"), "kind": "BRANCH", "code": code, "name": name}},
    )


def units_with_code(conn: psycopg.Connection[Any], code: str) -> int:
    row = conn.execute("SELECT count(*) FROM org_units WHERE code = %s", (code,)).fetchone()
    return int((row or (0,))[0])


# -- timeouts --------------------------------------------------------------------------------


async def test_a_slow_statement_is_cancelled_with_a_code_and_the_connection_reused(
    state: AppState, database: TestDatabase, client: httpx.AsyncClient, world: World
) -> None:
    token = await login(client, world.user("orgA"))
    schema = build_schema(state.settings, query=SlowQuery)
    async with app_with_db(state, database, schema, pool_size=1, statement_timeout_ms=200) as (
        c,
        db,
    ):
        first = await gql(c, token, "{ backend }")
        response = await c.post("/graphql", json={"query": "{ slow }"}, headers=auth(token))
        assert response.status_code == 503, response.text
        assert response.headers["content-type"].startswith("application/json")
        assert response.headers["retry-after"].isdigit()
        body = response.json()
        assert error_codes(body) == ["STATEMENT_TIMEOUT"]
        assert "pg_sleep" not in response.text and "cancel" not in response.text
        # The one connection of the pool serves the next request as if nothing happened.
        after = await gql(c, token, "{ backend }")
        assert after == first
        assert db.checked_out() == 0


async def test_the_three_timeouts_are_set_on_application_connections(
    state: AppState, database: TestDatabase, client: httpx.AsyncClient, world: World
) -> None:
    """Seen from the database, as the application role sees its own session."""

    @strawberry.type
    class SettingsQuery(Query):
        @strawberry.field
        async def timeouts(self, info: Info[Context, None]) -> list[str]:
            rows = await info.context.tx.rows(
                "SELECT current_setting('statement_timeout') AS s,"
                " current_setting('lock_timeout') AS l,"
                " current_setting('idle_in_transaction_session_timeout') AS i"
            )
            return list(rows[0])

    token = await login(client, world.user("orgA"))
    schema = build_schema(state.settings, query=SettingsQuery)
    async with app_with_db(
        state,
        database,
        schema,
        statement_timeout_ms=1500,
        lock_timeout_ms=700,
        idle_in_transaction_timeout_ms=9000,
    ) as (c, _):
        body = await gql(c, token, "{ timeouts }")
    assert body == {"data": {"timeouts": ["1500ms", "700ms", "9s"]}}
    # The service's own pool has the defaults of the settings.
    defaults = state.settings
    assert defaults.db_statement_timeout_ms > 0 and defaults.db_lock_timeout_ms > 0
    assert defaults.db_idle_in_transaction_timeout_ms > 0
    assert defaults.db_pool_timeout <= 5


async def test_a_mutation_waiting_on_a_lock_gives_up_and_writes_nothing(
    state: AppState,
    database: TestDatabase,
    client: httpx.AsyncClient,
    world: World,
    owner_conn: psycopg.Connection[Any],
) -> None:
    token = await login(client, world.user("orgA"))
    unit = world.units["a2"].id
    rename = "mutation($i: RenameOrgUnitInput!) { renameOrgUnit(input: $i) { orgUnit { name } } }"
    variables = {"i": {"id": world.gid("a2"), "name": "等锁的新名"}}
    with psycopg.connect(libpq_url(database.owner_url)) as holder:
        locked = holder.execute("SELECT 1 FROM org_units WHERE id = %s FOR UPDATE", (unit,))
        assert locked.fetchone() is not None
        async with app_with_db(state, database, lock_timeout_ms=200) as (c, _):
            response = await c.post(
                "/graphql", json={"query": rename, "variables": variables}, headers=auth(token)
            )
        holder.rollback()
    assert response.status_code == 503, response.text
    assert error_codes(response.json()) == ["STATEMENT_TIMEOUT"]
    name = owner_conn.execute("SELECT name FROM org_units WHERE id = %s", (unit,)).fetchone()
    assert name is not None and name[0] != "等锁的新名"


# -- pool exhaustion -------------------------------------------------------------------------


async def test_an_exhausted_pool_answers_503_unavailable_fast(
    state: AppState, database: TestDatabase, client: httpx.AsyncClient, world: World
) -> None:
    token = await login(client, world.user("orgA"))
    async with app_with_db(state, database, pool_size=1, pool_timeout=0.2) as (c, db):
        held = await db.getconn()  # every connection of the pool is in use
        try:
            for query in ("{ me { username } }", "{ tenants { nodes { name } } }"):
                response = await c.post("/graphql", json={"query": query}, headers=auth(token))
                assert response.status_code == 503, response.text
                assert response.headers["retry-after"].isdigit()
                assert response.headers["content-type"].startswith("application/json")
                body = response.json()
                assert error_codes(body) == ["UNAVAILABLE"], body
                assert body["errors"][0]["message"] == "服务繁忙，请稍后重试"
        finally:
            await db.putconn(held)
        # Once a connection is free again, the same request is served.
        body = await gql(c, token, "{ me { username } }")
        assert body["data"]["me"]["username"] == world.user("orgA")


async def test_the_pool_checks_a_connection_before_handing_it_out(
    state: AppState, database: TestDatabase, client: httpx.AsyncClient, world: World
) -> None:
    """A connection the server ended (restart, idle timeout) while it sat idle in the
    pool is replaced, not used. (Here any idle time counts; the default pings only
    connections idle over a second, so a busy pool pays no extra round trip.)"""
    token = await login(client, world.user("orgA"))
    schema = build_schema(state.settings, query=SlowQuery)
    async with app_with_db(state, database, schema, pool_size=1, pre_ping_after=0.0) as (c, _):
        first = (await gql(c, token, "{ backend }"))["data"]["backend"]
        with psycopg.connect(libpq_url(database.owner_url), autocommit=True) as o:
            o.execute("SELECT pg_terminate_backend(%s)", (first,))
        body = await gql(c, token, "{ backend }")
    assert body.get("errors") is None, body
    assert body["data"]["backend"] != first


# -- a client that went away -----------------------------------------------------------------


async def call_app(app: Any, body: bytes, token: str, *, gone: bool) -> int:
    """One POST /graphql straight through ASGI; with `gone`, the client has closed the
    connection once its body was sent (the server learns it from the next receive)."""
    sent = False
    never = asyncio.Event()
    status = 0

    async def receive() -> dict[str, Any]:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        if not gone:
            await never.wait()  # still connected: nothing more arrives
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/graphql",
        "raw_path": b"/graphql",
        "root_path": "",
        "query_string": b"",
        "server": ("pingyi.test", 80),
        "client": ("127.0.0.1", 5000),
        "headers": [
            (b"host", b"pingyi.test"),
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
            (b"authorization", f"Bearer {token}".encode()),
        ],
    }
    await app(scope, receive, send)
    return status


async def test_a_mutation_whose_client_went_away_is_rolled_back(
    app: Any, client: httpx.AsyncClient, world: World, owner_conn: psycopg.Connection[Any]
) -> None:
    token = await login(client, world.user("orgA"))
    gone_code = f"{world.tag}-gone-{secrets.token_hex(3)}"
    query, variables = create_branch(world, gone_code)
    await call_app(app, orjson.dumps({"query": query, "variables": variables}), token, gone=True)
    assert units_with_code(owner_conn, gone_code) == 0
    # The same request from a client that stays is committed: the rollback was the
    # disconnect's, not the harness's.
    stay_code = f"{world.tag}-stay-{secrets.token_hex(3)}"
    query, variables = create_branch(world, stay_code)
    status = await call_app(
        app, orjson.dumps({"query": query, "variables": variables}), token, gone=False
    )
    assert status == 200
    assert units_with_code(owner_conn, stay_code) == 1


# -- every answer of /graphql is JSON with a code --------------------------------------------


JSON = {"Content-Type": "application/json"}


@pytest.mark.parametrize(
    ("method", "content", "headers", "status", "code"),
    [
        ("GET", None, {}, 405, "METHOD_NOT_ALLOWED"),
        ("GET", None, {"Accept": "text/html"}, 405, "METHOD_NOT_ALLOWED"),
        ("PUT", b"{}", JSON, 405, "METHOD_NOT_ALLOWED"),
        ("POST", b"{not json", JSON, 400, "INVALID_REQUEST"),
        ("POST", b'{"query": "\xff\xfe"}', JSON, 400, "INVALID_REQUEST"),  # not UTF-8
        ("POST", b"", JSON, 400, "INVALID_REQUEST"),
        ("POST", b"{}", JSON, 401, "UNAUTHENTICATED"),  # no query, and no token
        ("POST", b'[{"query": "{ me { username } }"}]', JSON, 400, "INVALID_REQUEST"),
        ("POST", b'{"query": 5}', JSON, 400, "INVALID_REQUEST"),
        ("POST", b"query=1", {"Content-Type": "text/plain"}, 415, "UNSUPPORTED_MEDIA_TYPE"),
        ("POST", b"{}", {}, 415, "UNSUPPORTED_MEDIA_TYPE"),
        ("POST", b"#" * 100_001, JSON, 413, "REQUEST_TOO_LARGE"),
        ("POST", b'{"query": "{ me { username } }"}', JSON, 401, "UNAUTHENTICATED"),
    ],
)
async def test_every_answer_of_graphql_is_json_with_a_code(
    client: httpx.AsyncClient,
    method: str,
    content: bytes | None,
    headers: dict[str, str],
    status: int,
    code: str,
) -> None:
    response = await client.request(method, "/graphql", content=content, headers=headers)
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json"), response.text
    assert error_codes(response.json()) == [code], response.text
    assert "x-request-id" in response.headers


# -- text the database cannot hold -----------------------------------------------------------


async def test_a_nul_byte_or_a_lone_surrogate_is_invalid_input(
    client: httpx.AsyncClient, world: World, owner_conn: psycopg.Connection[Any]
) -> None:
    token = await login(client, world.user("orgA"))
    code = f"{world.tag}-nul-{secrets.token_hex(3)}"
    query, variables = create_branch(world, code, name="名\x00称")
    assert error_codes(await gql(client, token, query, variables)) == ["INVALID_INPUT"]
    # A lone surrogate can only arrive as a JSON escape (it is no UTF-8 at all).
    query, variables = create_branch(world, code)
    raw = orjson.dumps({"query": query, "variables": variables}).replace(
        "新支部".encode(), b"\\ud800"
    )
    response = await client.post("/graphql", content=raw, headers={**auth(token), **JSON})
    assert response.status_code == 200, response.text
    assert error_codes(response.json()) == ["INVALID_INPUT"]
    # Written into the document itself, as an escape.
    for escape in ("\\u0000", "\\ud800"):
        literal = (
            f'mutation {{ createOrgUnit(input: {{parentId: "{world.gid("A")}", kind: BRANCH,'
            f' code: "{code}", name: "名{escape}称"}}) {{ orgUnit {{ code }} }} }}'
        )
        body = await gql(client, token, literal)
        assert error_codes(body) == ["INVALID_INPUT"], body
    assert units_with_code(owner_conn, code) == 0
    # The same mutation with ordinary text goes through.
    query, variables = create_branch(world, code, name="名称 😀")
    body = await gql(client, token, query, variables)
    assert body.get("errors") is None, body
    assert units_with_code(owner_conn, code) == 1


# -- /metrics --------------------------------------------------------------------------------


async def test_metrics_are_not_public(state: AppState, client: httpx.AsyncClient) -> None:
    response = await client.get("/metrics")
    assert response.status_code == 404  # no token configured: no endpoint
    assert "pingyi_http" not in response.text
    secret = secrets.token_urlsafe(16)
    settings = dataclasses.replace(state.settings, metrics_token=secret)
    app = create_app(dataclasses.replace(state, settings=settings))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://pingyi.test") as c:
        await c.get("/healthz")
        for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": secret}):
            response = await c.get("/metrics", headers=headers)
            assert response.status_code == 404, headers
            assert "pingyi_http" not in response.text
        response = await c.get("/metrics", headers={"Authorization": f"Bearer {secret}"})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    assert "# TYPE pingyi_http_requests_total counter" in response.text
    assert 'pingyi_http_requests_total{path="/healthz",status="200"}' in response.text


# -- canonical global ids --------------------------------------------------------------------


def raw_id(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).decode()


async def test_only_the_canonical_global_id_finds_an_object(
    client: httpx.AsyncClient, world: World
) -> None:
    token = await login(client, world.user("orgA"))
    unit = world.units["a2"].id
    query = "query($id: ID!) { orgUnit(id: $id) { code } }"
    ok = await gql(client, token, query, {"id": to_global_id("OrgUnit", unit)})
    assert ok["data"]["orgUnit"] is not None, ok
    padded = to_global_id("OrgUnit", unit)
    variants = [
        raw_id(f"OrgUnit: {unit}"),
        raw_id(f"OrgUnit:0{unit}"),
        raw_id(f"OrgUnit:+{unit}"),
        raw_id(f"OrgUnit:{unit} "),
        raw_id(f"OrgUnit:{unit}\n"),
        raw_id(f"OrgUnit:{unit}_0") if unit > 9 else raw_id(f"OrgUnit:{unit}_"),
        raw_id("OrgUnit:" + "".join(chr(0x0660 + int(d)) for d in str(unit))),  # Arabic-Indic
        raw_id("OrgUnit:" + "".join(chr(0xFF10 + int(d)) for d in str(unit))),  # full-width
        # Padding dropped (where there is any) or added (an id of 12 bytes has none).
        padded.rstrip("=") if padded.endswith("=") else padded + "=",
        padded + "=" if padded.endswith("=") else padded + "==",
    ]
    for variant in variants:
        body = await gql(client, token, query, {"id": variant})
        assert error_codes(body) == ["NOT_FOUND"], (variant, body)


# -- aliases inside fragments ----------------------------------------------------------------


async def test_aliases_in_a_fragment_count_at_each_use(
    client: httpx.AsyncClient, world: World
) -> None:
    token = await login(client, world.user("orgA"))
    fragment = "fragment F on Account { u1: username u2: username u3: username }"
    # 2 aliased fields and the fragment's 3 aliases used 3 times: 11, over the limit of 10.
    spread = "{ me { ...F } x: me { ...F } y: me { ...F } } " + fragment
    body = await gql(client, token, spread)
    assert error_codes(body) == ["TOO_MANY_ALIASES"], body
    assert "11" in body["errors"][0]["message"]
    # Nested fragments multiply too: G holds F and one alias, used 3 times (2 + 3 * 4).
    nested = (
        "{ me { ...G } z: me { ...G } y: me { ...G } } "
        "fragment G on Account { ...F w: username } " + fragment
    )
    assert error_codes(await gql(client, token, nested)) == ["TOO_MANY_ALIASES"]
    # Used twice it stays within the limit (1 + 3 * 2 = 7) and runs.
    within = "{ me { ...F } x: me { ...F } } " + fragment
    body = await gql(client, token, within)
    assert body.get("errors") is None, body


@pytest.mark.parametrize(
    "body",
    [
        '{"username": "a\\u0000b", "password": "x"}',
        '{"username": "someone", "password": "\\ud800"}',
        '{"username": {"k\\u0000": 1}, "password": "x"}',
    ],
)
async def test_login_with_invalid_text_is_invalid_input(
    client: httpx.AsyncClient, body: str
) -> None:
    """/auth/token refuses a NUL or a lone surrogate in any field as INVALID_INPUT (400),
    before it reaches the database or the password hash."""
    response = await client.post(
        "/auth/token", content=body, headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 400, response.text
    assert response.json()["code"] == "INVALID_INPUT"
