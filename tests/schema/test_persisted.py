"""Persisted queries over HTTP: the Apollo protocol (miss, register, hit, a hash that is
not its document's) and trusted-documents mode, against the real stack; the store's
bound as a property; the parser and validation caches still hitting for hashed requests.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import secrets
import socket
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st
from strawberry.extensions.parser_cache import _get_parse_cache
from strawberry.extensions.validation_cache import _get_validate_cache

import service.schema.root
from service.app import AppState, create_app
from service.config import Settings
from service.errors import DomainError
from service.schema.persisted import (
    DocumentStore,
    PersistedQueries,
    RedisDocuments,
    load_manifest,
    sha256_hex,
)
from tests.attachments.test_rules import PDF
from tests.events.conftest import GraphQLWS, serve_app
from tests.support import (
    World,
    error_codes,
    login,
    module_token,  # noqa: F401 (the module's `token` fixture)
    module_world,  # noqa: F401 (the module's `world` fixture)
    unavailable,
)

ME = "query Me { me { username } }"
TRUSTED = "query Trusted { me { username } }"
# An upload (the GraphQL multipart request spec) and a subscription, listed too.
UPLOAD = """mutation Upload($input: UploadAttachmentInput!) {
  uploadAttachment(input: $input) { attachment { filename sizeBytes } }
}"""
INBOX = "subscription Inbox { approvalInbox { change } }"
LISTED = (TRUSTED, UPLOAD, INBOX)
# What an attacker would run instead: unlisted, each of them.
UNLISTED_UPLOAD = UPLOAD.replace("filename sizeBytes", "filename sizeBytes sha256")
UNLISTED_INBOX = "subscription { approvalInbox { change step { id } } }"


def apq(document_hash: str) -> dict[str, Any]:
    return {"persistedQuery": {"version": 1, "sha256Hash": document_hash}}


async def post(
    client: httpx.AsyncClient, token: str, body: dict[str, Any], accept: str | None = None
) -> httpx.Response:
    headers = {"Authorization": f"Bearer {token}"}
    if accept:
        headers["Accept"] = accept
    return await client.post("/graphql", json=body, headers=headers)


# -- the Apollo protocol ----------------------------------------------------------------


async def test_miss_register_hit(client: httpx.AsyncClient, token: str, world: World) -> None:
    # A document of its own (a fresh process-wide store may hold ME from another test).
    document = f'query Fresh {{ me {{ username }} orgUnit(id: "{world.gid("A")}") {{ name }} }}'
    key = sha256_hex(document)

    missed = await post(client, token, {"extensions": apq(key)})
    assert missed.status_code == 200  # Apollo's cue to send the text (application/json)
    assert error_codes(missed.json()) == ["PERSISTED_QUERY_NOT_FOUND"]
    assert "data" not in missed.json()

    registered = await post(client, token, {"query": document, "extensions": apq(key)})
    assert registered.status_code == 200, registered.text
    assert registered.json()["data"]["me"]["username"] == world.user("county")

    hit = await post(client, token, {"extensions": apq(key.upper())})  # hex in any case
    assert hit.status_code == 200
    assert hit.json() == registered.json()


async def test_a_hash_that_is_not_its_documents_is_refused(
    client: httpx.AsyncClient, token: str
) -> None:
    wrong = sha256_hex(ME + " ")
    refused = await post(client, token, {"query": ME, "extensions": apq(wrong)})
    assert refused.status_code == 400
    assert error_codes(refused.json()) == ["PERSISTED_QUERY_HASH_MISMATCH"]
    # Nothing was registered under that hash.
    again = await post(client, token, {"extensions": apq(wrong)})
    assert error_codes(again.json()) == ["PERSISTED_QUERY_NOT_FOUND"]


@pytest.mark.parametrize(
    "extension",
    [
        {"version": 2, "sha256Hash": "0" * 64},
        {"version": True, "sha256Hash": "0" * 64},
        {"version": 1, "sha256Hash": "xyz"},
        {"version": 1},
        "0" * 64,
    ],
)
async def test_malformed_extensions_are_refused(
    client: httpx.AsyncClient, token: str, extension: Any
) -> None:
    response = await post(client, token, {"query": ME, "extensions": {"persistedQuery": extension}})
    assert response.status_code == 400
    assert error_codes(response.json()) == ["PERSISTED_QUERY_INVALID"]


async def test_miss_in_the_newer_media_type_is_a_404_without_data(
    client: httpx.AsyncClient, token: str
) -> None:
    response = await post(
        client,
        token,
        {"extensions": apq(sha256_hex("query Never { me { id } }"))},
        accept="application/graphql-response+json",
    )
    assert response.status_code == 404
    assert response.headers["content-type"].startswith("application/graphql-response+json")
    assert response.json() == {
        "errors": [
            {
                "message": "PersistedQueryNotFound：请连同完整查询文本重新发送",
                "extensions": {"code": "PERSISTED_QUERY_NOT_FOUND"},
            }
        ]
    }


async def test_a_hashed_request_is_parsed_and_validated_once(
    client: httpx.AsyncClient, token: str
) -> None:
    """The hash resolves to the text before execution: after the registering request,
    hashed requests touch neither cache (the prepared document runs), like plain ones."""
    document = "query Cached { me { username displayName } }"
    key = sha256_hex(document)
    validate = _get_validate_cache(service.schema.root.VALIDATION_CACHE_SIZE)
    parse = _get_parse_cache(service.schema.root.VALIDATION_CACHE_SIZE)
    first = await post(client, token, {"query": document, "extensions": apq(key)})
    assert "errors" not in first.json(), first.text
    before_v, before_p = validate.cache_info(), parse.cache_info()
    for _ in range(5):
        hit = await post(client, token, {"extensions": apq(key)})
        assert hit.json() == first.json()
    after_v, after_p = validate.cache_info(), parse.cache_info()
    assert after_v.misses == before_v.misses
    assert after_p.misses == before_p.misses
    # And the same text sent plainly shares that work too (one key: the text).
    plain = await post(client, token, {"query": document})
    assert plain.json() == first.json()
    assert validate.cache_info().misses == before_v.misses


async def test_without_a_token_nothing_runs_and_nothing_is_registered(
    client: httpx.AsyncClient, token: str
) -> None:
    document = "query Anonymous { me { username } }"
    response = await client.post(
        "/graphql", json={"query": document, "extensions": apq(sha256_hex(document))}
    )
    assert response.status_code == 401
    assert error_codes(response.json()) == ["UNAUTHENTICATED"]
    # An anonymous caller cannot fill the store: the hash is still unknown.
    later = await post(client, token, {"extensions": apq(sha256_hex(document))})
    assert error_codes(later.json()) == ["PERSISTED_QUERY_NOT_FOUND"]


# -- trusted documents -----------------------------------------------------------------


def write_manifest(tmp_path: Path, form: str = "map") -> Path:
    manifest = tmp_path / "manifest.json"
    if form == "apollo":
        body: Any = {
            "format": "apollo-persisted-query-manifest",
            "version": 1,
            "operations": [{"id": sha256_hex(d), "body": d} for d in LISTED],
        }
    else:
        body = {sha256_hex(d): d for d in LISTED}
    manifest.write_text(json.dumps(body), encoding="utf-8")
    return manifest


@pytest.fixture
async def trusted_client(
    state: AppState, tmp_path: Path, request: pytest.FixtureRequest
) -> AsyncIterator[httpx.AsyncClient]:
    manifest = write_manifest(tmp_path, getattr(request, "param", "map"))
    settings = dataclasses.replace(state.settings, trusted_documents_file=manifest)
    app = create_app(dataclasses.replace(state, settings=settings))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://pingyi.test") as c:
        yield c


@pytest.mark.parametrize("trusted_client", ["map", "apollo"], indirect=True)
async def test_trusted_documents_run_by_hash_or_text(
    trusted_client: httpx.AsyncClient, token: str, world: World
) -> None:
    by_hash = await post(trusted_client, token, {"extensions": apq(sha256_hex(TRUSTED))})
    assert by_hash.json() == {"data": {"me": {"username": world.user("county")}}}
    by_text = await post(trusted_client, token, {"query": TRUSTED})
    assert by_text.json() == by_hash.json()


async def test_trusted_mode_refuses_any_other_document(
    trusted_client: httpx.AsyncClient, token: str
) -> None:
    other = "query Other { me { id } }"
    for body in (
        {"query": other},
        {"query": other, "extensions": apq(sha256_hex(other))},  # no registering either
        {"extensions": apq(sha256_hex(other))},
    ):
        response = await post(trusted_client, token, body)
        assert response.status_code == 403, response.text
        assert error_codes(response.json()) == ["PERSISTED_QUERY_NOT_IN_LIST"]
    # The trusted text with a hash that is not its own is still a mismatch.
    mismatch = await post(trusted_client, token, {"query": TRUSTED, "extensions": apq("0" * 64)})
    assert error_codes(mismatch.json()) == ["PERSISTED_QUERY_HASH_MISMATCH"]


@pytest.mark.parametrize(
    "accept", ["multipart/mixed;subscriptionSpec=1.0, application/json", "multipart/mixed"]
)
async def test_trusted_mode_holds_with_a_streaming_accept(
    trusted_client: httpx.AsyncClient, token: str, accept: str
) -> None:
    """A JSON POST asking for a multipart answer takes strawberry's general road: the
    manifest holds there too, by text and by hash."""
    other = "query Other { me { id } }"
    for body in ({"query": other}, {"extensions": apq(sha256_hex(other))}):
        response = await post(trusted_client, token, body, accept=accept)
        assert response.status_code == 403, response.text
        assert error_codes(response.json()) == ["PERSISTED_QUERY_NOT_IN_LIST"]


async def multipart(
    client: httpx.AsyncClient, token: str, operations: dict[str, Any], data: bytes
) -> httpx.Response:
    """A GraphQL multipart request (`operations`, `map`, one file)."""
    return await client.post(
        "/graphql",
        data={
            "operations": json.dumps(operations),
            "map": json.dumps({"0": ["variables.input.file"]}),
        },
        files={"0": ("材料.pdf", data, "application/pdf")},
        headers={"Authorization": f"Bearer {token}"},
    )


async def test_trusted_mode_holds_for_multipart_uploads(
    trusted_client: httpx.AsyncClient, client: httpx.AsyncClient, world: World
) -> None:
    """The upload road resolves `operations` by the manifest as a JSON body is: a listed
    upload runs (sent as text or by hash), anything else is refused before it runs."""
    token = await login(client, world.user("bsA1"))
    variables = {"input": {"branchId": world.gid("a1"), "file": None}}
    for operations in (
        {"query": UNLISTED_UPLOAD, "variables": variables},
        {"query": "query Other { me { id } }", "variables": variables},
        {"variables": variables, "extensions": apq(sha256_hex(UNLISTED_UPLOAD))},
    ):
        refused = await multipart(trusted_client, token, operations, PDF)
        assert refused.status_code == 403, refused.text
        assert error_codes(refused.json()) == ["PERSISTED_QUERY_NOT_IN_LIST"]
    for operations in (
        {"query": UPLOAD, "variables": variables},
        {"variables": variables, "extensions": apq(sha256_hex(UPLOAD))},
    ):
        listed = await multipart(trusted_client, token, operations, PDF)
        assert listed.status_code == 200, listed.text
        assert listed.json() == {
            "data": {
                "uploadAttachment": {"attachment": {"filename": "材料.pdf", "sizeBytes": len(PDF)}}
            }
        }


async def test_trusted_mode_holds_for_websocket_subscriptions(
    settings: Settings, database: Any, token: str, tmp_path: Path
) -> None:
    """A `subscribe` not in the manifest is that subscription's `error` (nothing runs,
    the connection stays usable); a listed one runs, sent as text or by hash."""
    trusted = dataclasses.replace(settings, trusted_documents_file=write_manifest(tmp_path))
    async with serve_app(trusted, database.owner_url) as server:
        assert server.state is not None
        hub = server.state.events
        async with GraphQLWS.connect(server.ws) as ws:
            assert await ws.init(token) == {"type": "connection_ack"}
            refusals = [
                {"query": UNLISTED_INBOX},
                {"query": UNLISTED_INBOX, "extensions": apq(sha256_hex(UNLISTED_INBOX))},
                {"extensions": apq(sha256_hex(UNLISTED_INBOX))},
            ]
            for n, payload in enumerate(refusals):
                await ws.send({"id": f"x{n}", "type": "subscribe", "payload": payload})
                await ws.send({"type": "ping"})  # and the connection is still usable
                # (unrefused, the subscription would wait for events: no second message)
                answers = [await asyncio.wait_for(ws.recv(), 10) for _ in range(2)]
                assert {"type": "pong"} in answers, answers
                [answer] = [a for a in answers if a["type"] != "pong"]
                assert answer["type"] == "error" and answer["id"] == f"x{n}", answer
                codes = [e["extensions"]["code"] for e in answer["payload"]]
                assert codes == ["PERSISTED_QUERY_NOT_IN_LIST"]
            assert hub.subscribers("approval_step") == 0
            await ws.subscribe("t", INBOX)
            await asyncio.wait_for(hub.wait_for_subscribers("approval_step", 1), 10)
            await ws.send(
                {"id": "h", "type": "subscribe", "payload": {"extensions": apq(sha256_hex(INBOX))}}
            )
            await asyncio.wait_for(hub.wait_for_subscribers("approval_step", 2), 10)


def test_a_manifest_whose_ids_are_not_the_documents_hashes_stops_the_start(
    tmp_path: Path,
) -> None:
    manifest = tmp_path / "manifest.json"
    manifest.write_text(json.dumps({"0" * 64: TRUSTED}), encoding="utf-8")
    with pytest.raises(ValueError, match="not the SHA-256"):
        load_manifest(manifest)


# -- the store, pure -----------------------------------------------------------------------


async def test_apq_off_answers_not_supported() -> None:
    queries = PersistedQueries(cache_bytes=0)
    with pytest.raises(DomainError) as raised:
        await queries.resolve(None, {"version": 1, "sha256Hash": sha256_hex(ME)})
    assert raised.value.code == "PERSISTED_QUERY_NOT_SUPPORTED"
    assert await queries.resolve(ME, None) == ME  # plain documents are untouched


# -- the store shared by processes, against Redis on 127.0.0.1:6379 ----------------------


def redis_url() -> str:
    url = "redis://127.0.0.1:6379/0"
    host, port = "127.0.0.1", 6379
    try:
        with socket.create_connection((host, port), timeout=0.5):
            pass
    except OSError:  # the shared store is optional; so is a Redis to test it with
        # a skip outside CI only: CI's machine has one (.ci/run sets CI)
        unavailable("no Redis on 127.0.0.1:6379 to test the shared store with")
    return url


async def test_processes_share_registrations_through_redis() -> None:
    url = redis_url()
    prefix = f"pingyi:test:{secrets.token_hex(6)}:"
    first = PersistedQueries(cache_bytes=2**20, shared=RedisDocuments(url, prefix=prefix))
    second = PersistedQueries(cache_bytes=2**20, shared=RedisDocuments(url, prefix=prefix))
    document = f"query Shared{secrets.token_hex(4)} {{ me {{ username }} }}"
    key = sha256_hex(document)
    extension = {"version": 1, "sha256Hash": key}
    with pytest.raises(DomainError):
        await second.resolve(None, extension)  # nobody registered it yet
    assert await first.resolve(document, extension) == document  # registered in one
    assert await second.resolve(None, extension) == document  # found by the other
    assert second.store is not None and second.store.get(key) == document  # kept locally
    # A value in Redis that is not its key's document is ignored (a miss).
    other = PersistedQueries(cache_bytes=2**20, shared=RedisDocuments(url, prefix=prefix))
    forged = sha256_hex("query Forged { me { id } }")
    await first.shared.client.set(prefix + forged, "mutation { logout }")  # type: ignore[union-attr]
    with pytest.raises(DomainError):
        await other.resolve(None, {"version": 1, "sha256Hash": forged})
    await first.shared.client.delete(prefix + key, prefix + forged)  # type: ignore[union-attr]


async def test_an_unreachable_redis_is_a_miss_not_a_failure() -> None:
    # A port nothing listens on: the request still runs on the local store.
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    queries = PersistedQueries(
        cache_bytes=2**20, shared=RedisDocuments(f"redis://127.0.0.1:{port}/0")
    )
    document = "query Local { me { username } }"
    extension = {"version": 1, "sha256Hash": sha256_hex(document)}
    assert await queries.resolve(document, extension) == document
    assert await queries.resolve(None, extension) == document
    with pytest.raises(DomainError) as raised:
        await queries.resolve(
            None, {"version": 1, "sha256Hash": sha256_hex("query X { me { id } }")}
        )
    assert raised.value.code == "PERSISTED_QUERY_NOT_FOUND"


@given(
    budget=st.integers(min_value=1, max_value=200),
    documents=st.lists(st.text(max_size=60), max_size=40),
)
def test_the_store_never_holds_more_than_its_budget(budget: int, documents: list[str]) -> None:
    store = DocumentStore(budget)
    for document in documents:
        store.put(sha256_hex(document), document)
        assert store.used <= budget
        assert store.used == sum(
            len(store.get(k).encode())
            for k in list(store._documents)  # type: ignore[union-attr]
        )
    # The last document put is always there, unless it alone is over the budget.
    if documents and len(documents[-1].encode()) <= budget:
        assert store.get(sha256_hex(documents[-1])) == documents[-1]


def test_least_recently_used_goes_first() -> None:
    store = DocumentStore(10)
    store.put("a", "aaaa")
    store.put("b", "bbbb")
    assert store.get("a") == "aaaa"  # a is now the most recent
    store.put("c", "cccc")  # 12 bytes > 10: b goes
    assert store.get("b") is None
    assert store.get("a") == "aaaa"
    assert store.get("c") == "cccc"
