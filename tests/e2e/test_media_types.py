"""Media types, status codes and encoding of every answer, over HTTP through the app.

The GraphQL-over-HTTP specification: `application/graphql-response+json` when the
Accept header prefers it, and then a request error (parse, validation, variables,
nothing ran) is a 4xx without a `data` entry; `application/json` keeps the legacy
answer (200 with the errors). Every answer of /graphql is JSON with `extensions.code`,
transport refusals included, in the media type asked for; Chinese travels as UTF-8
(never `\\u` escapes) on every endpoint, auth routes and unknown paths too.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from service.schema.view import prefers_graphql_response
from tests.support import (
    error_codes,
    module_token,  # noqa: F401 (the module's `token` fixture)
    module_world,  # noqa: F401 (the module's `world` fixture)
)

NEW = "application/graphql-response+json"


def headers(token: str | None, accept: str | None = None) -> dict[str, str]:
    out = {"Authorization": f"Bearer {token}"} if token else {}
    if accept is not None:
        out["Accept"] = accept
    return out


@pytest.mark.parametrize(
    ("accept", "newer"),
    [
        ("", False),
        ("*/*", False),
        ("application/json", False),
        (NEW, True),
        (f"{NEW}, application/json;q=0.9", True),  # what Apollo Client and urql send
        (f"application/json, {NEW}", True),  # a tie: the specification's type
        (f"application/json, {NEW};q=0.5", False),
        (f"{NEW};q=0", False),
        (f"{NEW};q=oops", False),
        ("text/html, */*;q=0.1", False),
    ],
)
def test_accept_negotiation(accept: str, newer: bool) -> None:
    assert prefers_graphql_response(accept) is newer


async def test_success_in_the_media_type_asked_for(client: httpx.AsyncClient, token: str) -> None:
    for accept, media in [
        (NEW, NEW),
        ("application/json", "application/json"),
        ("*/*", "application/json"),
        (None, "application/json"),
    ]:
        response = await client.post(
            "/graphql", json={"query": "{ __typename }"}, headers=headers(token, accept)
        )
        assert response.status_code == 200
        assert response.headers["content-type"].split(";")[0] == media
        assert response.json() == {"data": {"__typename": "Query"}}


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"query": "{ me { "}, "GRAPHQL_PARSE_FAILED"),
        ({"query": "{ me { nosuchfield } }"}, "GRAPHQL_VALIDATION_FAILED"),
        ({"query": "{ __schema { types { name } } }"}, "INTROSPECTION_DISABLED"),
        (
            {"query": "query($id: ID!) { orgUnit(id: $id) { name } }", "variables": {"id": None}},
            "GRAPHQL_VALIDATION_FAILED",
        ),
    ],
)
async def test_request_errors(
    client: httpx.AsyncClient, token: str, body: dict[str, Any], code: str
) -> None:
    newer = await client.post("/graphql", json=body, headers=headers(token, NEW))
    assert newer.status_code == 400, newer.text
    assert newer.headers["content-type"] == NEW
    assert "data" not in newer.json()
    assert error_codes(newer.json()) == [code]

    legacy = await client.post("/graphql", json=body, headers=headers(token, "application/json"))
    assert legacy.status_code == 200
    assert error_codes(legacy.json()) == [code]


async def test_a_field_error_keeps_data_and_200_in_either_type(
    client: httpx.AsyncClient, token: str
) -> None:
    body = {"query": '{ me { username } orgUnit(id: "T3JnVW5pdDox") { name } }'}
    for accept in (NEW, "application/json"):
        response = await client.post("/graphql", json=body, headers=headers(token, accept))
        assert response.status_code == 200
        # Execution started: the `data` entry is there (null: orgUnit is non-null)
        assert "data" in response.json()
        assert error_codes(response.json()) == ["NOT_FOUND"]


@pytest.mark.parametrize("accept", [NEW, "application/json"])
@pytest.mark.parametrize(
    ("request_args", "status", "code"),
    [
        ({"method": "GET", "url": "/graphql"}, 405, "METHOD_NOT_ALLOWED"),
        (
            {"method": "PUT", "url": "/graphql", "json": {"query": "{ __typename }"}},
            405,
            "METHOD_NOT_ALLOWED",
        ),
        ({"method": "POST", "url": "/graphql", "content": b'{"query": '}, 400, "INVALID_REQUEST"),
        ({"method": "POST", "url": "/graphql", "content": b"\xff\xfe{}"}, 400, "INVALID_REQUEST"),
        (
            {"method": "POST", "url": "/graphql", "json": [{"query": "{ __typename }"}]},
            400,
            "INVALID_REQUEST",
        ),
        ({"method": "POST", "url": "/graphql", "json": {"query": 1}}, 400, "INVALID_REQUEST"),
        (
            {"method": "POST", "url": "/graphql", "json": {"qeury": "{ __typename }"}},
            400,
            "INVALID_REQUEST",
        ),
        ({"method": "POST", "url": "/graphql", "json": {}}, 400, "INVALID_REQUEST"),
        (
            {
                "method": "POST",
                "url": "/graphql",
                "content": b"query { __typename }",
                "headers": {"content-type": "application/graphql"},
            },
            415,
            "UNSUPPORTED_MEDIA_TYPE",
        ),
        (
            {"method": "POST", "url": "/graphql", "content": b"x" * 100_001},
            413,
            "REQUEST_TOO_LARGE",
        ),
    ],
)
async def test_transport_refusals_are_coded_json(
    client: httpx.AsyncClient,
    token: str,
    accept: str,
    request_args: dict[str, Any],
    status: int,
    code: str,
) -> None:
    args = dict(request_args)
    sent = {"content-type": "application/json", **headers(token, accept), **args.pop("headers", {})}
    response = await client.request(**args, headers=sent)
    assert response.status_code == status, response.text
    assert response.headers["content-type"].split(";")[0] == accept
    assert error_codes(response.json()) == [code]
    assert "data" not in response.json()
    assert "\\u" not in response.text  # the Chinese message as UTF-8


@pytest.mark.parametrize("accept", [NEW, "application/json"])
async def test_missing_and_bad_tokens_are_coded_json(
    client: httpx.AsyncClient, accept: str
) -> None:
    for auth in ({}, {"Authorization": "Bearer not-a-token"}, {"Authorization": "Basic eDp5"}):
        response = await client.post(
            "/graphql", json={"query": "{ me { username } }"}, headers={**auth, "Accept": accept}
        )
        assert response.status_code == 401
        assert response.headers["content-type"].split(";")[0] == accept
        assert error_codes(response.json()) == ["UNAUTHENTICATED"]
        if accept == NEW:
            assert "data" not in response.json()


@pytest.mark.parametrize(
    ("method", "url", "kwargs", "status"),
    [
        ("POST", "/auth/token", {"data": {"username": "nobody", "password": "wrong"}}, 401),
        ("POST", "/auth/refresh", {"data": {"refresh_token": "nothing"}}, 401),
        ("GET", "/auth/token", {}, 405),
        ("GET", "/no/such/page", {}, 404),
        ("POST", "/healthz", {}, 405),
        ("POST", "/graphql", {"json": {"query": "{ me { "}}, 401),
    ],
)
async def test_chinese_is_utf8_on_every_endpoint(
    client: httpx.AsyncClient, method: str, url: str, kwargs: dict[str, Any], status: int
) -> None:
    response = await client.request(method, url, **kwargs)
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    raw = response.content
    assert b"\\u" not in raw
    text = raw.decode("utf-8")  # strict: not UTF-8 would raise
    assert any("\u4e00" <= ch <= "\u9fff" for ch in text), text
    body = response.json()
    assert body.get("code") or error_codes(body)
