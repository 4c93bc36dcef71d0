"""Persisted queries over HTTP: the Apollo protocol (miss, register, hit, a hash that is
not its document's) and trusted-documents mode, against the real stack; the store's
bound as a property; the parser and validation caches still hitting for hashed requests.
"""

from __future__ import annotations

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
from service.errors import DomainError
from service.schema.persisted import (
    DocumentStore,
    PersistedQueries,
    RedisDocuments,
    load_manifest,
    sha256_hex,
)
from tests.support import World, build_world, error_codes, login

ME = "query Me { me { username } }"
TRUSTED = "query Trusted { me { username } }"


def apq(document_hash: str) -> dict[str, Any]:
    return {"persistedQuery": {"version": 1, "sha256Hash": document_hash}}


@pytest.fixture(scope="module")
async def world(state: AppState) -> World:
    return await build_world(state)


@pytest.fixture(scope="module")
async def token(app: Any, world: World) -> str:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://pingyi.test") as c:
        return await login(c, world.user("county"))


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


@pytest.fixture
async def trusted_client(
    state: AppState, tmp_path: Path, request: pytest.FixtureRequest
) -> AsyncIterator[httpx.AsyncClient]:
    manifest = tmp_path / "manifest.json"
    form = getattr(request, "param", "map")
    if form == "apollo":
        body: Any = {
            "format": "apollo-persisted-query-manifest",
            "version": 1,
            "operations": [
                {"id": sha256_hex(TRUSTED), "name": "Trusted", "type": "query", "body": TRUSTED}
            ],
        }
    else:
        body = {sha256_hex(TRUSTED): TRUSTED}
    manifest.write_text(json.dumps(body), encoding="utf-8")
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
        pytest.skip("no Redis on 127.0.0.1:6379")
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
