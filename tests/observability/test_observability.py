"""Observability over HTTP against the real stack: the JSON line per request (and no
personal data in any log line), Prometheus metrics on /metrics, OpenTelemetry spans
(off by default; an in-memory exporter here)."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from datetime import date
from typing import Any

import httpx
import pytest
from graphql import parse
from hypothesis import given
from hypothesis import strategies as st
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind
from prometheus_client.parser import text_string_to_metric_families

from service.app import AppState, create_app
from service.observability import Metrics, build_tracing, operation_label
from service.observability.logs import ACCESS_LOGGER, JsonFormatter, uvicorn_log_config
from service.observability.metrics import MAX_OPERATIONS, OTHER
from service.schema.ids import to_global_id
from tests import factories
from tests.events.conftest import GraphQLWS, serve_app
from tests.support import World, build_world, gql, login

SCRAPE_TOKEN = "scrape-token-for-tests"


class Lines(logging.Handler):
    """Every record, formatted as the service writes it (JSON), kept in memory."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.setFormatter(JsonFormatter())
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))

    def access(self) -> list[dict[str, Any]]:
        return [line for line in map(json.loads, self.lines) if line["logger"] == ACCESS_LOGGER]


@pytest.fixture
def logged() -> Iterator[Lines]:
    """Every logger of the process at DEBUG into `Lines` for the test's duration."""
    handler = Lines()
    root = logging.getLogger()
    previous = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    try:
        yield handler
    finally:
        root.removeHandler(handler)
        root.setLevel(previous)


@pytest.fixture(scope="module")
async def world(state: AppState) -> World:
    return await build_world(state)


@dataclasses.dataclass
class Served:
    state: AppState
    client: httpx.AsyncClient
    exporter: InMemorySpanExporter


@pytest.fixture
async def served(state: AppState) -> AsyncIterator[Served]:
    """The app with metrics of its own (counts start at zero), /metrics open to
    SCRAPE_TOKEN, and tracing into an in-memory exporter."""
    exporter = InMemorySpanExporter()
    settings = dataclasses.replace(state.settings, metrics_token=SCRAPE_TOKEN)
    own = dataclasses.replace(
        state,
        settings=settings,
        metrics=Metrics(),
        tracing=build_tracing(settings, exporter=exporter),
    )
    app = create_app(own)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://pingyi.test") as c:
        yield Served(own, c, exporter)
    own.db.deferred_commit_timers.remove(own.metrics.audit_appended)
    own.db.tracer = None  # the session's Database, shared with the other tests


async def scrape(client: httpx.AsyncClient) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    response = await client.get("/metrics", headers={"Authorization": f"Bearer {SCRAPE_TOKEN}"})
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    samples = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def value(samples: dict[Any, float], name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


# -- the line per request ------------------------------------------------------------------


async def test_one_json_line_per_request(served: Served, world: World, logged: Lines) -> None:
    client = served.client
    token = await login(client, world.user("county"))
    response = await client.post(
        "/graphql",
        json={"query": "query Me { me { username } }"},
        headers={"Authorization": f"Bearer {token}", "X-Request-Id": "req-obs-1"},
    )
    assert response.status_code == 200
    # An unknown object: the outcome is the error's code
    missing = to_global_id("OrgUnit", 2**62)
    body = await gql(client, token, "query($id: ID!) { node(id: $id) { id } }", {"id": missing})
    assert body["errors"][0]["extensions"]["code"] == "NOT_FOUND"
    # A transport refusal (no GraphQL ran): its code is read from the JSON body
    refused = await client.get("/graphql")
    assert refused.status_code == 405
    # A refused login: its code is the /auth body's own
    wrong = await client.post(
        "/auth/token", data={"username": "nobody.observed", "password": "not-the-password"}
    )
    assert wrong.status_code == 401 and wrong.json()["code"]

    lines = logged.access()
    assert [(x["path"], x["status"]) for x in lines] == [
        ("/auth/token", 200),
        ("/graphql", 200),
        ("/graphql", 200),
        ("/graphql", 405),
        ("/auth/token", 401),
    ]
    login_line, me, not_found, get, failed = lines
    assert failed["outcome"] == wrong.json()["code"] != "HTTP_401"
    assert me["request_id"] == "req-obs-1" == response.headers["x-request-id"]
    assert me["method"] == "POST"
    assert me["operation"] == "Me"
    assert me["outcome"] == "OK"
    assert me["account_id"] == world.accounts["county"]
    assert me["tenant_id"] is not None  # the account's home tenant (the county's scope)
    assert me["duration_ms"] > 0
    assert me["level"] == "info" and me["msg"] == "request"
    assert not_found["operation"] == "query node"  # anonymous: type and root fields
    assert not_found["outcome"] == "NOT_FOUND"
    assert get["outcome"] == "METHOD_NOT_ALLOWED" and get["operation"] is None
    assert login_line["outcome"] == "OK" and login_line["operation"] is None
    # Nothing but the declared fields: no query text, variables, username or address
    fields = {"ts", "level", "logger", "msg", "request_id", "method", "path", "status"}
    fields |= {"operation", "outcome", "account_id", "tenant_id", "duration_ms"}
    assert all(set(line) == fields for line in lines), lines
    assert all(world.user("county") not in json.dumps(line) for line in lines)


async def test_no_personal_data_in_any_log_line(
    served: Served, world: World, logged: Lines
) -> None:
    client = served.client
    number = factories.id_number(date(1986, 5, 17))
    phone = "13900139000"
    org = await login(client, world.user("orgA"))
    created = await gql(
        client,
        org,
        "mutation($i: CreateMemberInput!) { createMember(input: $i) { member { id } } }",
        {
            "i": {
                "branchId": world.gid("a1"),
                "name": "李四",
                "idNumber": number,
                "joinedOn": "2012-07-01",
                "phone": phone,
            }
        },
    )
    assert "errors" not in created, created
    # The same number where it does not belong: a refusal that may quote its input
    bad = await gql(
        client,
        org,
        "query($u: ID!) { members(orgUnitId: $u) { nodes { name } } }",
        {"u": number},
    )
    assert bad["errors"]
    bad_type = await gql(
        client, org, "query($n: Int!) { tenants(first: $n) { nodes { id } } }", {"n": number}
    )
    assert bad_type["errors"]
    # ... and a second try of the same member: a coded refusal
    again = await gql(
        client,
        org,
        "mutation($i: CreateMemberInput!) { createMember(input: $i) { member { id } } }",
        {"i": {"branchId": world.gid("a1"), "name": "李四", "idNumber": number,
               "joinedOn": "2012-07-01"}},
    )  # fmt: skip
    assert again["errors"]

    assert len(logged.access()) == 5  # the test saw the requests' lines
    text = "\n".join(logged.lines)
    for secret in (number, number[:6] + "*" * 8, phone, "李四"):
        assert secret not in text, secret


# -- metrics -------------------------------------------------------------------------------


async def test_metrics_by_operation_code_pool_audit_and_caches(
    served: Served, world: World
) -> None:
    client, state = served.client, served.state
    token = await login(client, world.user("county"))
    for _ in range(3):
        body = await gql(client, token, "query Me { me { username } }")
        assert body["data"]["me"]["username"] == world.user("county")
    missing = to_global_id("OrgUnit", 2**62)
    await gql(client, token, "query Find($id: ID!) { node(id: $id) { id } }", {"id": missing})
    # A write: its audit event rides with the COMMIT
    renamed = await gql(
        client,
        token,
        "mutation($i: RenameOrgUnitInput!) { renameOrgUnit(input: $i) { orgUnit { name } } }",
        {"i": {"id": world.gid("a1"), "name": "甲镇第一支部（改）"}},
    )
    assert "errors" not in renamed, renamed
    # A connection in use while scraping
    conn = await state.db.getconn()
    try:
        samples = await scrape(client)
    finally:
        await state.db.putconn(conn)

    op = "pingyi_graphql_operation_duration_seconds"
    assert value(samples, f"{op}_count", operation="Me") == 3
    assert value(samples, f"{op}_count", operation="Find") == 1
    assert value(samples, f"{op}_bucket", operation="Me", le="+Inf") == 3
    assert value(samples, "pingyi_errors_total", code="NOT_FOUND") == 1
    assert value(samples, "pingyi_http_requests_total", path="/graphql", status="200") == 5
    assert value(samples, "pingyi_http_requests_total", path="/auth/token", status="200") == 1
    assert value(samples, "pingyi_audit_append_duration_seconds_count") >= 1
    assert value(samples, "pingyi_db_pool_in_use") >= 1
    assert value(samples, "pingyi_db_pool_max") == state.settings.db_pool_size
    assert ("pingyi_db_pool_waiting", ()) in samples
    assert ("pingyi_db_pool_wait_seconds_total", ()) in samples
    # The same document a second and third time: prepared, principal cached
    for cache in ("principal", "access_token", "graphql_prepared"):
        assert value(samples, "pingyi_cache_hits_total", cache=cache) >= 1, cache
        ratio = value(samples, "pingyi_cache_hit_ratio", cache=cache)
        assert 0 < ratio <= 1, cache
    assert value(samples, "process_resident_memory_bytes") > 0
    for cache in ("graphql_parse", "graphql_validation"):
        assert ("pingyi_cache_hits_total", (("cache", cache),)) in samples


async def test_metrics_stay_behind_their_token(served: Served) -> None:
    client = served.client
    await client.get("/healthz")
    for headers in ({}, {"Authorization": "Bearer nope"}, {"Authorization": SCRAPE_TOKEN}):
        response = await client.get("/metrics", headers=headers)
        assert response.status_code == 404, headers
        assert "pingyi_" not in response.text


def test_operation_labels_are_bounded() -> None:
    metrics = Metrics()
    for n in range(MAX_OPERATIONS + 50):
        metrics.operation(f"Op{n}", 0.001)
    text = metrics.render().decode()
    labels = {
        sample.labels["operation"]
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == "pingyi_graphql_operation_duration_seconds_count"
    }
    assert len(labels) == MAX_OPERATIONS  # `other` included
    assert OTHER in labels and "Op0" in labels and f"Op{MAX_OPERATIONS + 49}" not in labels


@pytest.mark.parametrize(
    ("document", "name", "label"),
    [
        ("query Me { me { username } }", None, "Me"),
        ("{ tenants(first: 1) { nodes { id } } me { username } }", None, "query me,tenants"),
        ("mutation { renameOrgUnit(input: {id: 1, name: \"x\"}) { orgUnit { id } } }", None,
         "mutation renameOrgUnit"),
        ("query A { me { username } } query B { me { id } }", "B", "B"),
        ("query A { me { username } }", "Nope", "unvalidated"),
    ],
)  # fmt: skip
def test_operation_label_examples(document: str, name: str | None, label: str) -> None:
    assert operation_label(parse(document), name) == label


@given(st.from_regex(r"[_A-Za-z][_0-9A-Za-z]{0,30}", fullmatch=True))
def test_a_named_operation_is_labelled_by_its_name(name: str) -> None:
    document = parse(f"query {name} {{ me {{ username }} }}")
    assert operation_label(document, None) == name == operation_label(document, name)


async def test_a_line_and_a_gauge_per_websocket_connection(
    settings: Any, database: Any, world: World, logged: Lines
) -> None:
    served = dataclasses.replace(settings, metrics_token=SCRAPE_TOKEN)
    async with serve_app(served, database.owner_url) as server, server.client() as http:
        token = await login(http, world.user("county"))
        async with GraphQLWS.connect(server.ws) as ws:
            assert (await ws.init(token))["type"] == "connection_ack"
            assert value(await scrape(http), "pingyi_websocket_connections") == 1
        async with GraphQLWS.connect(server.ws) as ws:  # refused: no token
            await ws.send({"type": "connection_init", "payload": {}})
            assert (await ws.closed())[0] == 4403
        for _ in range(100):  # the server's side of the second close may still be running
            samples = await scrape(http)
            if value(samples, "pingyi_websocket_closed_total", outcome="WS_4403"):
                break
            await asyncio.sleep(0.05)
    assert value(samples, "pingyi_websocket_connections") == 0
    assert value(samples, "pingyi_websocket_closed_total", outcome="OK") == 1
    assert value(samples, "pingyi_websocket_closed_total", outcome="WS_4403") == 1
    lines = [line for line in logged.access() if line["method"] == "WS"]
    assert [(x["path"], x["status"], x["outcome"]) for x in lines] == [
        ("/graphql", 1000, "OK"),
        ("/graphql", 4403, "WS_4403"),
    ]
    assert lines[0]["account_id"] == world.accounts["county"]
    assert lines[1]["account_id"] is None
    assert lines[0]["request_id"] != lines[1]["request_id"]


# -- tracing -------------------------------------------------------------------------------


async def test_tracing_is_off_by_default(state: AppState) -> None:
    assert state.settings.tracing is False
    assert build_tracing(state.settings) is None
    app_state = dataclasses.replace(state, metrics=Metrics())
    create_app(app_state)
    assert app_state.tracing is None
    state.db.deferred_commit_timers.remove(app_state.metrics.audit_appended)


async def test_a_span_per_request_continuing_the_callers_trace(
    served: Served, world: World
) -> None:
    client = served.client
    token = await login(client, world.user("county"))
    served.exporter.clear()
    trace_id = "4bf92f3577b34da6a3ce929d0e0e4736"
    response = await client.post(
        "/graphql",
        json={"query": "query Me { me { username } }"},
        headers={
            "Authorization": f"Bearer {token}",
            "traceparent": f"00-{trace_id}-00f067aa0ba902b7-01",
        },
    )
    assert response.status_code == 200
    spans = served.exporter.get_finished_spans()
    (span,) = [s for s in spans if s.kind is SpanKind.SERVER]
    assert span.name == "graphql Me"
    assert span.kind is SpanKind.SERVER
    assert format(span.context.trace_id, "032x") == trace_id
    assert span.parent is not None and format(span.parent.span_id, "016x") == "00f067aa0ba902b7"
    attributes = dict(span.attributes or {})
    assert attributes["http.response.status_code"] == 200
    assert attributes["http.route"] == "/graphql"
    assert attributes["graphql.operation.name"] == "Me"
    assert attributes["pingyi.outcome"] == "OK"
    assert attributes["pingyi.request_id"] == response.headers["x-request-id"]
    assert attributes["enduser.id"] == str(world.accounts["county"])
    assert world.user("county") not in json.dumps(attributes)
    # The database's messages, under the request's span: how many statements, no SQL
    messages = [s for s in spans if s.kind is SpanKind.CLIENT]
    assert messages, spans
    for message in messages:
        assert message.parent is not None and message.parent.span_id == span.context.span_id
        assert message.context.trace_id == span.context.trace_id
        assert message.name == "postgresql"
        assert dict(message.attributes or {}) == {
            "db.system": "postgresql",
            "db.statements": message.attributes["db.statements"],
        }
        assert message.attributes["db.statements"] >= 1


# -- the serving process's log configuration -----------------------------------------------


def test_serve_logs_json_lines_with_redaction() -> None:
    """`pingyi serve`'s logging config (applied by uvicorn in each worker), in a process of
    its own: uvicorn's and Pingyi's records are JSON lines, redacted."""
    number = factories.id_number(date(1990, 1, 2))
    script = f"""
import logging, logging.config, json
from service.redaction import install_log_redaction
from service.observability.logs import uvicorn_log_config, access_line
install_log_redaction()
logging.config.dictConfig(uvicorn_log_config("json", True))
logging.getLogger("uvicorn.error").info("Started server process")
logging.getLogger("pingyi.graphql").error("bad input %s", "{number}")
access_line(request_id="r1", method="POST", path="/graphql", status=200, operation="Me",
            outcome="OK", account_id=7, tenant_id=3, seconds=0.0123)
"""
    done = subprocess.run(  # noqa: S603 (our own interpreter and script)
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=True
    )
    lines = [json.loads(line) for line in done.stderr.splitlines()]
    assert [line["logger"] for line in lines] == ["uvicorn.error", "pingyi.graphql", ACCESS_LOGGER]
    assert number not in done.stderr
    assert lines[2]["operation"] == "Me" and lines[2]["duration_ms"] == 12.3
    quiet = uvicorn_log_config("json", access=False)
    assert quiet["loggers"][ACCESS_LOGGER]["level"] == "WARNING"
    assert "format" in uvicorn_log_config("text")["formatters"]["pingyi"]
