"""Every production default of /graphql, shown over HTTP against the real stack.

The settings are the defaults (dev_mode off, depth 10, aliases 10, tokens 2000, body
100 000 bytes, page size 100). One county world and one county-organizer login serve
the module; tests that write use unique codes and check the rows with the owner
connection.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import secrets
from collections.abc import AsyncIterator
from dataclasses import replace
from typing import Any

import httpx
import psycopg
import pytest
import strawberry
from starlette.requests import Request
from starlette.routing import Route
from strawberry.extensions.parser_cache import _get_parse_cache
from strawberry.extensions.validation_cache import _get_validate_cache
from strawberry.types import Info

import service.schema.root
from service.app import AppState, create_app
from service.config import Settings
from service.errors import DomainError
from service.migrate import head_revision
from service.schema.context import Context
from service.schema.ids import to_global_id
from service.schema.root import Query, build_schema
from service.schema.view import PingyiGraphQL
from tests.support import (
    World,
    error_codes,
    gql,
    login,
    module_token,  # noqa: F401 (the module's `token` fixture)
    module_world,  # noqa: F401 (the module's `world` fixture)
)

ID_NUMBER = "110101199003071234"


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def create_branch(world: World, code: str) -> str:
    return (
        "mutation { createOrgUnit(input: {"
        f'parentId: "{world.gid("A")}", kind: BRANCH, code: "{code}", name: "新支部"'
        "}) { orgUnit { code } } }"
    )


def units_with_code(conn: psycopg.Connection[Any], *codes: str) -> int:
    row = conn.execute("SELECT count(*) FROM org_units WHERE code = ANY(%s)", (list(codes),))
    return int((row.fetchone() or (0,))[0])


def nested_parents(world: World, depth: int) -> str:
    """`orgUnit { parent { ... { name } } }` whose depth is exactly `depth`."""
    assert depth >= 2
    inner = "name"
    for _ in range(depth - 2):
        inner = f"parent {{ {inner} }}"
    return f'{{ orgUnit(id: "{world.gid("a3")}") {{ {inner} }} }}'


def only_code(body: dict[str, Any]) -> str:
    codes = error_codes(body)
    assert len(codes) == 1, body
    return str(codes[0])


# -- transport: methods, batches, body size ------------------------------------------------


async def test_get_is_refused_for_mutations_and_queries(
    client: httpx.AsyncClient, world: World, token: str, owner_conn: psycopg.Connection[Any]
) -> None:
    code = f"{world.tag}-get-{secrets.token_hex(3)}"
    response = await client.get(
        "/graphql", params={"query": create_branch(world, code)}, headers=auth(token)
    )
    assert response.status_code == 405
    assert only_code(response.json()) == "METHOD_NOT_ALLOWED"  # JSON like every answer
    assert units_with_code(owner_conn, code) == 0
    response = await client.get(
        "/graphql", params={"query": "{ me { username } }"}, headers=auth(token)
    )
    assert response.status_code == 405
    assert "username" not in response.text
    # No GraphiQL page either.
    response = await client.get("/graphql", headers={"Accept": "text/html"})
    assert response.status_code == 405
    # The same mutation over POST does run: the refusal above is the method's.
    body = await gql(client, token, create_branch(world, code))
    assert body == {"data": {"createOrgUnit": {"orgUnit": {"code": code}}}}
    assert units_with_code(owner_conn, code) == 1


async def test_batches_are_refused_and_nothing_runs(
    client: httpx.AsyncClient, world: World, token: str, owner_conn: psycopg.Connection[Any]
) -> None:
    codes = [f"{world.tag}-batch{i}-{secrets.token_hex(3)}" for i in range(2)]
    response = await client.post(
        "/graphql",
        json=[{"query": create_branch(world, code)} for code in codes],
        headers=auth(token),
    )
    assert 400 <= response.status_code < 500, response.text
    assert only_code(response.json()) == "INVALID_REQUEST"
    assert "createOrgUnit" not in response.text
    assert units_with_code(owner_conn, *codes) == 0
    # A batch of one is still a batch.
    response = await client.post(
        "/graphql", json=[{"query": "{ me { username } }"}], headers=auth(token)
    )
    assert 400 <= response.status_code < 500
    assert world.user("county") not in response.text


async def test_oversized_body_is_413(client: httpx.AsyncClient, token: str) -> None:
    padding = "#" + "x" * 100_000 + "\n"
    response = await client.post(
        "/graphql", json={"query": padding + "{ me { username } }"}, headers=auth(token)
    )
    assert response.status_code == 413
    assert only_code(response.json()) == "REQUEST_TOO_LARGE"
    assert "x-request-id" in response.headers
    # Without a token too: the size is checked before anything else.
    response = await client.post("/graphql", json={"query": padding})
    assert response.status_code == 413
    # The login endpoint is behind the same limit.
    response = await client.post("/auth/token", data={"username": "u", "password": "p" * 100_001})
    assert response.status_code == 413


async def test_oversized_chunked_body_without_length_is_413(
    client: httpx.AsyncClient, token: str
) -> None:
    sent: list[int] = []

    async def chunks() -> AsyncIterator[bytes]:
        yield b'{"query": "#'
        for _ in range(30):
            sent.append(1)
            yield b"x" * 10_000
        yield b'\\n{ me { username } }"}'

    response = await client.post(
        "/graphql",
        content=chunks(),
        headers={**auth(token), "Content-Type": "application/json"},
    )
    assert "content-length" not in response.request.headers
    assert response.request.headers["transfer-encoding"] == "chunked"
    assert response.status_code == 413
    assert only_code(response.json()) == "REQUEST_TOO_LARGE"
    # The server stopped reading once past the limit, rather than buffering it all.
    assert len(sent) <= 11
    # A small chunked body is fine: the limit is on size, not on chunking.

    async def small() -> AsyncIterator[bytes]:
        yield b'{"query": "{ me '
        yield b'{ username } }"}'

    response = await client.post(
        "/graphql", content=small(), headers={**auth(token), "Content-Type": "application/json"}
    )
    assert response.status_code == 200, response.text
    assert response.json()["data"]["me"]["username"].endswith(".county")


async def test_body_just_under_the_limit_is_accepted(
    client: httpx.AsyncClient, token: str, settings: Settings
) -> None:
    query = "{ me { username } }"
    overhead = len(f'{{"query": "#\\n{query}"}}'.encode())
    body = f'{{"query": "#{"x" * (settings.max_body_bytes - overhead)}\\n{query}"}}'.encode()
    assert len(body) == settings.max_body_bytes
    response = await client.post(
        "/graphql", content=body, headers={**auth(token), "Content-Type": "application/json"}
    )
    # The comment is a single token, so only the size could refuse it, and it is within.
    assert response.status_code == 200, response.text[:300]
    response = await client.post(
        "/graphql",
        content=body[:-2] + b' "}',
        headers={**auth(token), "Content-Type": "application/json"},
    )
    assert response.status_code == 413


# -- validation: introspection, suggestions, aliases, depth, tokens ------------------------


@pytest.mark.parametrize(
    "query",
    [
        "{ __schema { types { name } } }",
        '{ __type(name: "OrgUnit") { fields { name } } }',
        "query { ...F } fragment F on Query { __schema { queryType { name } } }",
        '{ me { username } t: __type(name: "Account") { name } }',
    ],
)
async def test_introspection_is_disabled(client: httpx.AsyncClient, token: str, query: str) -> None:
    body = await gql(client, token, query)
    assert "INTROSPECTION_DISABLED" in error_codes(body), body
    assert body["data"] is None
    assert "已关闭" in body["errors"][0]["message"]


async def test_typename_is_still_allowed(client: httpx.AsyncClient, token: str) -> None:
    body = await gql(client, token, "{ __typename me { __typename } }")
    assert body == {"data": {"__typename": "Query", "me": {"__typename": "Account"}}}


@pytest.mark.parametrize(
    ("query", "variables", "hidden"),
    [
        ("{ me { usernam } }", None, "'username'"),  # field
        ("{ mee { username } }", None, "'me'"),  # root field
        ('{ orgUnit(idd: "x") { name } }', None, "'id'"),  # argument
        ("query { ...F } fragment F on Acount { username }", None, "'Account'"),  # type
        ("{ tenants(kind: TOWNSHP) { nodes { name } } }", None, "'TOWNSHIP'"),  # enum value
        ("query($k: OrgUnitKnd) { tenants(kind: $k) { nodes { name } } }", None, "'OrgUnitKind'"),
        (  # enum value in a variable: coerced before execution
            "query($k: OrgUnitKind) { tenants(kind: $k) { nodes { name } } }",
            {"k": "TOWNSHP"},
            "'TOWNSHIP'",
        ),
        (  # input field
            'mutation { createOrgUnit(input: {parentId: "x", kind: BRANCH, code: "c",'
            ' name: "n", parentCode: "p"}) { orgUnit { id } } }',
            None,
            "'parentId'",
        ),
    ],
)
async def test_no_suggestions_reveal_the_schema(
    client: httpx.AsyncClient,
    token: str,
    query: str,
    variables: dict[str, Any] | None,
    hidden: str,
) -> None:
    body = await gql(client, token, query, variables)
    assert body["data"] is None
    assert body["errors"], body
    for error in body["errors"]:
        assert error["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED", body
        message = error["message"]
        assert message.startswith("查询无效：")
        assert "Did you mean" not in message
        # The name the query misspelled is not completed for the client.
        assert hidden not in message, message


@pytest.mark.parametrize(
    ("query", "variables"),
    [
        ("query($f: Int) { tenants(first: $f) { nodes { name } } }", {"f": "ten"}),
        ("query($f: Int) { tenants(first: $f) { nodes { name } } }", {"f": 2**40}),
        ("query($id: ID!) { orgUnit(id: $id) { name } }", {}),
        ("query($id: ID!) { orgUnit(id: $id) { name } }", {"id": {"nested": 1}}),
    ],
)
async def test_bad_variables_are_the_clients_error_not_an_internal_one(
    client: httpx.AsyncClient, token: str, query: str, variables: dict[str, Any]
) -> None:
    body = await gql(client, token, query, variables)
    assert body["data"] is None
    assert error_codes(body) == ["GRAPHQL_VALIDATION_FAILED"], body
    assert body["errors"][0]["message"].startswith("查询无效：Variable '$")


def aliased(count: int) -> str:
    return "{ " + " ".join(f"a{i}: __typename" for i in range(count)) + " }"


async def test_alias_limit(client: httpx.AsyncClient, token: str, settings: Settings) -> None:
    assert settings.max_aliases == 10
    body = await gql(client, token, aliased(10))
    assert body.get("errors") is None, body
    assert len(body["data"]) == 10
    body = await gql(client, token, aliased(11))
    assert only_code(body) == "TOO_MANY_ALIASES"
    assert body["data"] is None
    # Aliases inside fragments count too.
    fragment_query = (
        "query { me { ...F } } fragment F on Account { "
        + " ".join(f"u{i}: username" for i in range(11))
        + " }"
    )
    assert only_code(await gql(client, token, fragment_query)) == "TOO_MANY_ALIASES"


async def test_depth_limit(
    client: httpx.AsyncClient, world: World, token: str, settings: Settings
) -> None:
    assert settings.max_query_depth == 10
    body = await gql(client, token, nested_parents(world, 10))
    assert body.get("errors") is None, body
    # a3 < ag < A < county < platform root, which the county organizer may not read.
    unit = body["data"]["orgUnit"]
    assert unit["parent"]["parent"]["parent"]["parent"] is None

    body = await gql(client, token, nested_parents(world, 11))
    assert only_code(body) == "QUERY_TOO_DEEP"
    assert body["data"] is None
    # Fragments do not hide depth.
    deep_fragment = (
        f'{{ orgUnit(id: "{world.gid("a3")}") {{ ...P }} }}'
        "fragment P on OrgUnit { parent { parent { parent { parent { parent { parent {"
        " parent { parent { parent { name } } } } } } } } } }"
    )
    assert only_code(await gql(client, token, deep_fragment)) == "QUERY_TOO_DEEP"


async def test_token_limit(client: httpx.AsyncClient, token: str, settings: Settings) -> None:
    assert settings.max_tokens == 2000
    query = "{ me { username } }"  # six tokens
    # Comments count as tokens too, so they pad a query to the limit exactly, and a
    # flood of them cannot slip past it.
    body = await gql(client, token, "#\n" * 1994 + query)
    assert body == {"data": {"me": {"username": body["data"]["me"]["username"]}}}, body
    body = await gql(client, token, "#\n" * 1995 + query)
    assert only_code(body) == "QUERY_TOO_LARGE"
    assert body["data"] is None
    assert body["errors"][0]["message"] == "查询过长，超过词法单元上限"
    # Many fields, far below the byte limit, are refused the same way.
    body = await gql(client, token, "{ " + "__typename " * 1999 + "}")
    assert only_code(body) == "QUERY_TOO_LARGE"
    assert "__typename" not in str(body)  # the query is not echoed back


# -- pagination ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("arguments", "code"),
    [
        ("first: 100000", "PAGE_SIZE_EXCEEDED"),
        ("first: 101", "PAGE_SIZE_EXCEEDED"),
        ("first: 0", "INVALID_PAGE_SIZE"),
        ("first: -1", "INVALID_PAGE_SIZE"),
        ('after: "not-a-cursor"', "INVALID_CURSOR"),
        ('after: "Y3Vyc29yOng="', "INVALID_CURSOR"),  # cursor:x
        ('after: "T3JnVW5pdDox"', "INVALID_CURSOR"),  # OrgUnit:1, a global id
        ('after: "Y3Vyc29yOjk5OTk5OTk5OTk5OTk5OTk5OTk5OTk5OTk="', "INVALID_CURSOR"),  # 10**28
    ],
)
async def test_page_arguments_are_checked(
    client: httpx.AsyncClient, token: str, arguments: str, code: str
) -> None:
    body = await gql(client, token, f"{{ tenants({arguments}) {{ nodes {{ name }} }} }}")
    assert only_code(body) == code
    assert body["data"] is None


async def test_page_limits_that_hold(
    client: httpx.AsyncClient, token: str, settings: Settings
) -> None:
    body = await gql(
        client,
        token,
        f"{{ tenants(first: {settings.max_page_size}) {{ nodes {{ name }} pageInfo"
        " { hasNextPage endCursor } } }",
    )
    assert body.get("errors") is None, body
    assert [n["name"] for n in body["data"]["tenants"]["nodes"]] == ["甲镇", "乙镇"]
    body = await gql(
        client, token, "{ tenants(first: 1) { nodes { name } pageInfo { endCursor } } }"
    )
    cursor = body["data"]["tenants"]["pageInfo"]["endCursor"]
    body = await gql(
        client,
        token,
        "query($a: String) { tenants(first: 1, after: $a) { nodes { name } } }",
        {"a": cursor},
    )
    assert body["data"]["tenants"]["nodes"] == [{"name": "乙镇"}]


async def test_an_edge_cursor_continues_after_its_edge(
    client: httpx.AsyncClient, token: str
) -> None:
    page = "query($a: String) { tenants(first: 2, after: $a) { edges { cursor node { name } }"
    page += " pageInfo { startCursor endCursor } } }"
    body = await gql(client, token, page, {"a": None})
    edges = body["data"]["tenants"]["edges"]
    info = body["data"]["tenants"]["pageInfo"]
    assert [e["node"]["name"] for e in edges] == ["甲镇", "乙镇"]
    assert (info["startCursor"], info["endCursor"]) == (edges[0]["cursor"], edges[1]["cursor"])
    after_first = await gql(client, token, page, {"a": edges[0]["cursor"]})
    assert [e["node"]["name"] for e in after_first["data"]["tenants"]["edges"]] == ["乙镇"]


# -- errors: coded ones kept, unexpected ones masked ---------------------------------------


async def test_coded_errors_keep_code_and_message(client: httpx.AsyncClient, token: str) -> None:
    missing = to_global_id("OrgUnit", 2**62)
    body = await gql(
        client, token, "query($id: ID!) { orgUnit(id: $id) { name } }", {"id": missing}
    )
    assert body["data"] is None
    (error,) = body["errors"]
    assert error["extensions"] == {"code": "NOT_FOUND"}
    assert error["message"] == "组织不存在或无权访问"
    assert error["path"] == ["orgUnit"]


SIBLINGS_FINISHED: list[str] = []


@strawberry.type
class BoomQuery(Query):
    @strawberry.field
    def boom(self) -> str:
        raise RuntimeError(f"身份证号 {ID_NUMBER} 对不上")

    @strawberry.field
    async def slow(self, info: Info[Context, None]) -> str:
        """A sibling still using the transaction when boom fails."""
        await info.context.tx.execute("SELECT pg_sleep(0.05)")
        SIBLINGS_FINISHED.append("slow")
        return "done"


async def test_unexpected_errors_are_masked(
    state: AppState, settings: Settings, token: str, caplog: pytest.LogCaptureFixture
) -> None:
    # The production schema but for the extra field: same limits, caches and errors.
    app = create_app(state, schema=build_schema(settings, query=BoomQuery))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://pingyi.test") as c:
        with caplog.at_level(logging.ERROR, logger="pingyi.graphql"):
            response = await c.post(
                "/graphql",
                json={"query": "{ slow me { username } boom }"},
                headers=auth(token),
            )
        # The sibling resolvers ran to their end before the transaction was closed, and
        # the connection went back to the pool.
        assert SIBLINGS_FINISHED == ["slow"]
        assert state.db.checked_out() == 0
        # Introspection stays off in the derived schema: the limits came along.
        introspect = await gql(c, token, "{ __schema { types { name } } }")
    assert response.status_code == 200
    body = response.json()
    assert body["data"] is None  # boom is non-null, so the whole data is null
    (error,) = body["errors"]
    assert error["extensions"] == {"code": "INTERNAL_SERVER_ERROR"}
    assert error["message"] == "服务器内部错误"
    assert error["path"] == ["boom"]
    for seen in (response.text, str(response.headers)):
        assert ID_NUMBER not in seen
        assert "RuntimeError" not in seen and "Traceback" not in seen
    assert "身份证" not in body["errors"][0]["message"]
    # The details stay on the server, in the log, with the ID number redacted.
    logged = [caplog.handler.format(r) for r in caplog.records]
    assert any("RuntimeError" in line and "对不上" in line for line in logged), logged
    assert all(ID_NUMBER not in line for line in logged), logged
    assert error_codes(introspect) == ["INTROSPECTION_DISABLED"]


# -- caches still hit with the limits on ---------------------------------------------------


async def test_a_repeated_document_is_parsed_and_validated_once(
    client: httpx.AsyncClient, token: str, app: Any
) -> None:
    """The first sight of a document goes through strawberry's parse and validation
    caches (a miss each); after that the schema runs it as prepared, touching neither."""
    validate = _get_validate_cache(service.schema.root.VALIDATION_CACHE_SIZE)
    parse = _get_parse_cache(service.schema.root.VALIDATION_CACHE_SIZE)
    schema = graphql_schema_of(app)
    query = f"query Q{secrets.token_hex(6)} {{ me {{ username }} }}"  # never seen before

    before_v, before_p = validate.cache_info(), parse.cache_info()
    first = await gql(client, token, query)
    middle_v, middle_p = validate.cache_info(), parse.cache_info()
    second = await gql(client, token, query)
    after_v, after_p = validate.cache_info(), parse.cache_info()

    assert first == second and first.get("errors") is None
    assert (middle_v.misses - before_v.misses, middle_v.hits - before_v.hits) == (1, 0)
    assert (middle_p.misses - before_p.misses, middle_p.hits - before_p.hits) == (1, 0)
    assert (after_v.misses, after_v.hits) == (middle_v.misses, middle_v.hits)
    assert (after_p.misses, after_p.hits) == (middle_p.misses, middle_p.hits)
    assert schema.prepared(query, None) is not None


async def test_a_prepared_document_still_checks_its_variables(
    client: httpx.AsyncClient, token: str, app: Any
) -> None:
    name = f"K{secrets.token_hex(6)}"
    query = f"query {name}($k: OrgUnitKind) {{ tenants(kind: $k) {{ nodes {{ name }} }} }}"
    ok = await gql(client, token, query, {"k": "TOWNSHIP"})
    assert ok.get("errors") is None
    assert graphql_schema_of(app).prepared(query, None) is not None
    bad = await gql(client, token, query, {"k": "TOWNSHP"})
    assert bad["data"] is None
    (error,) = bad["errors"]
    assert error["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED"
    assert "Did you mean" not in error["message"] and "'TOWNSHIP'" not in error["message"]
    wrong_type = await gql(client, token, query, {"k": 5})
    assert error_codes(wrong_type) == ["GRAPHQL_VALIDATION_FAILED"]


async def test_a_prepared_mutation_is_still_refused_over_get(
    state: AppState, world: World, client: httpx.AsyncClient
) -> None:
    """Even where GET is served (development mode), a mutation prepared by a POST is
    not run by a GET of the same text: the operation type is checked on every request."""
    dev = create_app(dataclasses.replace(state, settings=replace(state.settings, dev_mode=True)))
    transport = httpx.ASGITransport(app=dev)
    token = await login(client, world.user("orgA"))
    rename = "mutation($i: RenameOrgUnitInput!) { renameOrgUnit(input: $i) { orgUnit { name } } }"
    unit = world.gid("a2")
    async with httpx.AsyncClient(transport=transport, base_url="http://pingyi.test") as c:
        posted = await gql(c, token, rename, {"i": {"id": unit, "name": "经 POST 改名"}})
        assert posted["data"]["renameOrgUnit"]["orgUnit"]["name"] == "经 POST 改名"
        assert graphql_schema_of(dev).prepared(rename, None) is not None
        response = await c.get(
            "/graphql",
            params={
                "query": rename,
                "variables": json.dumps({"i": {"id": unit, "name": "经 GET"}}),
            },
            headers=auth(token),
        )
        assert response.status_code == 400, response.text
        check = await gql(c, token, "query($id: ID!) { orgUnit(id: $id) { name } }", {"id": unit})
    assert check["data"]["orgUnit"]["name"] == "经 POST 改名"


async def test_one_text_with_two_operations_runs_the_one_named(
    client: httpx.AsyncClient, token: str
) -> None:
    text = (
        f"query Me{secrets.token_hex(4)} {{ me {{ username }} }} "
        "query Towns { tenants { nodes { name } } }"
    )
    me_name = text.split()[1]
    for _ in range(2):  # the second round runs both as prepared documents
        me = await gql_named(client, token, text, me_name)
        towns = await gql_named(client, token, text, "Towns")
        assert set(me["data"]) == {"me"}, me
        assert set(towns["data"]) == {"tenants"}, towns


async def gql_named(client: httpx.AsyncClient, token: str, query: str, name: str) -> Any:
    response = await client.post(
        "/graphql", json={"query": query, "operationName": name}, headers=auth(token)
    )
    assert response.status_code == 200, response.text
    return response.json()


def graphql_schema_of(app: Any) -> Any:
    (route,) = [r for r in app.routes if isinstance(r, Route) and r.path == "/graphql"]
    return route.endpoint.schema


async def test_a_cached_rejection_still_rejects(client: httpx.AsyncClient, token: str) -> None:
    validate = _get_validate_cache(service.schema.root.VALIDATION_CACHE_SIZE)
    query = f"query Q{secrets.token_hex(6)} " + aliased(11)[0:]
    hits = validate.cache_info().hits
    for _ in range(2):
        assert only_code(await gql(client, token, query)) == "TOO_MANY_ALIASES"
    assert validate.cache_info().hits == hits + 1


# -- operational endpoints -----------------------------------------------------------------


async def test_health_readiness_and_metrics(
    state: AppState, client: httpx.AsyncClient, token: str
) -> None:
    response = await client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}
    response = await client.get("/readyz")
    assert response.status_code == 200
    assert response.json() == {"status": "ready", "revision": head_revision()}
    await gql(client, token, "{ me { username } }")
    # /metrics is not public: without PINGYI_METRICS_TOKEN it does not exist.
    assert (await client.get("/metrics")).status_code == 404
    settings = replace(state.settings, metrics_token="scrape-token")
    scraper = create_app(dataclasses.replace(state, settings=settings))
    transport = httpx.ASGITransport(app=scraper)
    async with httpx.AsyncClient(transport=transport, base_url="http://pingyi.test") as c:
        response = await c.get("/metrics", headers={"Authorization": "Bearer scrape-token"})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    text = response.text
    assert "# TYPE pingyi_http_requests_total counter" in text
    assert 'pingyi_http_requests_total{path="/graphql",status="200"}' in text
    assert 'pingyi_http_requests_total{path="/readyz",status="200"}' in text
    assert "pingyi_http_request_seconds_total" in text


# -- the view's short road for plain JSON operations ---------------------------------------


def _request(body: bytes, headers: dict[str, str], method: str = "POST") -> Request:
    sent = False

    async def receive() -> dict[str, Any]:
        nonlocal sent
        if sent:
            return {"type": "http.disconnect"}
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    scope = {
        "type": "http",
        "method": method,
        "path": "/graphql",
        "headers": [(k.lower().encode(), v.encode()) for k, v in headers.items()],
        "query_string": b"",
    }
    return Request(scope, receive)


JSON_TYPE = {"content-type": "application/json"}
ME = b'"query": "{ me { username } }"'


@pytest.mark.parametrize(
    ("body", "headers", "method", "road"),
    [
        (b"{" + ME + b"}", JSON_TYPE, "POST", "short"),
        (
            b'{"query": "query Q($x: ID!) { orgUnit(id: $x) { name } }", "variables": {"x": "1"},'
            b' "operationName": "Q", "extensions": {}}',
            {"content-type": "application/json; charset=utf-8"},
            "POST",
            "short",
        ),
        # unknown extensions are ignored, as the GraphQL-over-HTTP specification allows
        (b"{" + ME + b', "extensions": {"note": 1}}', JSON_TYPE, "POST", "short"),
        (b"[{" + ME + b"}]", JSON_TYPE, "POST", "general"),  # a batch
        # parameters of the wrong type: 400 INVALID_REQUEST (or a persisted-query code)
        (
            b"{" + ME + b', "extensions": {"persistedQuery": {}}}',
            JSON_TYPE,
            "POST",
            "PERSISTED_QUERY_INVALID",
        ),
        (b'{"query": 5}', JSON_TYPE, "POST", "INVALID_REQUEST"),
        (b"{" + ME + b', "variables": []}', JSON_TYPE, "POST", "INVALID_REQUEST"),
        (b"{" + ME + b', "operationName": {}}', JSON_TYPE, "POST", "INVALID_REQUEST"),
        (b"{" + ME + b', "extensions": 1}', JSON_TYPE, "POST", "INVALID_REQUEST"),
        # no query: without a token (as here) that is the answer, with one INVALID_REQUEST
        (b'{"qeury": "{ me { username } }"}', JSON_TYPE, "POST", "UNAUTHENTICATED"),
        (b"{not json", JSON_TYPE, "POST", "general"),
        (b"{" + ME + b"}", {"content-type": "text/plain"}, "POST", "general"),
        (b"{" + ME + b"}", {**JSON_TYPE, "accept": "multipart/mixed"}, "POST", "general"),
        (b"", {}, "GET", "general"),
    ],
)
async def test_only_plain_json_operations_take_the_short_road(
    body: bytes, headers: dict[str, str], method: str, road: str
) -> None:
    view = PingyiGraphQL(build_schema(Settings()))
    try:
        found = await view._json_operation(_request(body, headers, method))
    except DomainError as exc:
        assert exc.code == road
        return
    assert road == ("short" if found is not None else "general")


async def test_short_and_general_roads_answer_alike(client: httpx.AsyncClient, token: str) -> None:
    """The same operations, once plain (short road) and once through strawberry's
    general handling: the same status and body."""
    for query, variables in [
        ("{ me { username } tenants { nodes { name } } }", {}),
        ("query($id: ID!) { orgUnit(id: $id) { name } }", {"id": to_global_id("OrgUnit", 2**62)}),
        ("{ me { usernam } }", {}),
    ]:
        answers = []
        # Accepting multipart/mixed (incremental delivery) sends a request the general way.
        for accept in ("application/json", "multipart/mixed, application/json"):
            payload: dict[str, Any] = {"query": query, "variables": variables}
            response = await client.post(
                "/graphql", json=payload, headers={**auth(token), "accept": accept}
            )
            answers.append((response.status_code, response.json()))
        assert answers[0] == answers[1], answers
