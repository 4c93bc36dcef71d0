"""Attachments over HTTP: upload (multipart), limits by bytes not by declared type,
download with the owner's read check, tenant isolation, and `link` as case steps use it."""

from __future__ import annotations

import hashlib
import json
from dataclasses import replace
from typing import Any

import httpx
import pytest

from service import attachments
from service.app import AppState
from service.auth.principal import Principal
from service.auth.service import load_principal
from service.errors import DomainError
from service.schema.ids import from_global_id, to_global_id
from tests.attachments.test_rules import DOCX, JPEG, PDF, PNG
from tests.support import World, error_codes, login

UPLOAD = """mutation($input: UploadAttachmentInput!) {
  uploadAttachment(input: $input) {
    attachment { id filename contentType sizeBytes sha256 linked downloadPath }
  }
}"""


async def upload(
    client: httpx.AsyncClient,
    token: str | None,
    branch: str,
    data: bytes,
    *,
    filename: str = "调查材料.pdf",
    declared: str = "application/pdf",
) -> dict[str, Any]:
    operations = {"query": UPLOAD, "variables": {"input": {"branchId": branch, "file": None}}}
    response = await client.post(
        "/graphql",
        data={
            "operations": json.dumps(operations),
            "map": json.dumps({"0": ["variables.input.file"]}),
        },
        files={"0": (filename, data, declared)},
        headers={"Authorization": f"Bearer {token}"} if token else {},
    )
    body: dict[str, Any] = response.json()
    return body


async def uploaded(
    client: httpx.AsyncClient, token: str, branch: str, data: bytes, **kw: Any
) -> Any:
    body = await upload(client, token, branch, data, **kw)
    assert "errors" not in body, body
    return body["data"]["uploadAttachment"]["attachment"]


async def get(client: httpx.AsyncClient, token: str | None, path: str) -> httpx.Response:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return await client.get(path, headers=headers)


async def principal_of(state: AppState, token: str) -> Principal:
    claims = state.tokens.validate_access_token(token)
    assert claims is not None
    return await load_principal(state.db, claims)


async def test_upload_then_download_by_the_uploader(
    client: httpx.AsyncClient, world: World, state: AppState
) -> None:
    token = await login(client, world.user("bsA1"))
    made = await uploaded(client, token, world.gid("a1"), PDF, filename="谈话记录.pdf")
    assert made["filename"] == "谈话记录.pdf"
    assert made["contentType"] == "application/pdf"
    assert made["sizeBytes"] == len(PDF)
    assert made["sha256"] == hashlib.sha256(PDF).hexdigest()
    assert made["linked"] is False
    assert made["downloadPath"] == f"/attachments/{made['id']}"

    response = await get(client, token, made["downloadPath"])
    assert response.status_code == 200, response.text
    assert response.content == PDF
    assert response.headers["content-type"].startswith("application/pdf")
    assert response.headers["x-content-type-options"] == "nosniff"
    disposition = response.headers["content-disposition"]
    assert disposition.startswith("attachment;")
    assert "filename*=UTF-8''%E8%B0%88%E8%AF%9D%E8%AE%B0%E5%BD%95.pdf" in disposition
    assert "no-store" in response.headers["cache-control"]

    # Both the upload and the download are on record, in a1's tenant.
    local = from_global_id(made["id"], "Attachment")[1]
    async with state.db.transaction() as tx:
        from service.auth.service import operator_principal

        await operator_principal(tx, name="tests")
        actions = await tx.rows(
            "SELECT action FROM audit_events WHERE object_type = 'Attachment'"
            " AND object_id = %(id)s ORDER BY seq",
            {"id": str(local)},
        )
    assert [r.action for r in actions] == ["attachment.upload", "attachment.download"]


async def test_the_type_is_told_by_the_bytes_not_the_declared_type(
    client: httpx.AsyncClient, world: World
) -> None:
    token = await login(client, world.user("bsA1"))
    script = b"<html><script>alert(1)</script></html>"
    body = await upload(client, token, world.gid("a1"), script, filename="a.pdf")
    assert error_codes(body) == ["ATTACHMENT_TYPE_NOT_ALLOWED"]
    body = await upload(client, token, world.gid("a1"), b"", filename="a.pdf")
    assert error_codes(body) == ["ATTACHMENT_EMPTY"]
    # A PNG declared as a PDF and named .pdf is stored and served as the PNG it is.
    made = await uploaded(client, token, world.gid("a1"), PNG, filename="会议记录.pdf")
    assert made["contentType"] == "image/png"
    assert made["filename"] == "会议记录.pdf.png"
    for data, kind in ((JPEG, "image/jpeg"), (DOCX, "wordprocessingml")):
        made = await uploaded(client, token, world.gid("a1"), data, filename="x")
        assert kind in made["contentType"]


async def test_size_and_type_limits_are_settings(
    client: httpx.AsyncClient, world: World, state: AppState
) -> None:
    principal = await principal_of(state, await login(client, world.user("bsA1")))
    branch = world.units["a1"].id
    small = replace(state.settings, attachment_max_bytes=len(PDF) - 1)
    no_pdf = replace(state.settings, attachment_types=("png",))
    for settings, code in (
        (small, "ATTACHMENT_TOO_LARGE"),
        (no_pdf, "ATTACHMENT_TYPE_NOT_ALLOWED"),
    ):
        async with state.db.transaction() as tx:
            tx.rescope(principal.scope)
            with pytest.raises(DomainError) as refused:
                await attachments.upload(
                    tx, principal, branch_id=branch, data=PDF, filename="a.pdf", settings=settings
                )
        assert refused.value.code == code
    assert "PNG" in refused.value.message and "PDF" not in refused.value.message


async def test_upload_needs_the_right_at_the_branch(
    client: httpx.AsyncClient, world: World
) -> None:
    # a1's secretary cannot upload into B's branch (not even see it), nor a member into a1
    token = await login(client, world.user("bsA1"))
    body = await upload(client, token, world.gid("b1"), PDF)
    assert error_codes(body) == ["NOT_FOUND"]
    member = await login(client, world.user("memA1"))
    body = await upload(client, member, world.gid("a1"), PDF)
    assert error_codes(body) in (["FORBIDDEN"], ["NOT_FOUND"])
    response = await client.post(
        "/graphql",
        data={
            "operations": json.dumps(
                {
                    "query": UPLOAD,
                    "variables": {"input": {"branchId": world.gid("a1"), "file": None}},
                }
            ),
            "map": json.dumps({"0": ["variables.input.file"]}),
        },
        files={"0": ("a.pdf", PDF, "application/pdf")},
    )
    assert response.status_code in (400, 401)


async def test_download_isolation(client: httpx.AsyncClient, world: World) -> None:
    """Another tenant's id, a missing id, a malformed id and another type's id all
    answer the same 404; without a token, 401; an unlinked upload is its uploader's."""
    token = await login(client, world.user("bsA1"))
    made = await uploaded(client, token, world.gid("a1"), PDF)
    path = made["downloadPath"]
    local = from_global_id(made["id"], "Attachment")[1]

    other_tenant = await login(client, world.user("secB"))
    answers = [
        await get(client, other_tenant, path),
        await get(client, token, f"/attachments/{to_global_id('Attachment', local + 10**9)}"),
        await get(client, token, "/attachments/not-an-id"),
        await get(client, token, f"/attachments/{to_global_id('Member', local)}"),
    ]
    for response in answers:
        assert response.status_code == 404, response.text
        assert response.json()["errors"][0]["extensions"]["code"] == "NOT_FOUND"
        assert response.headers["content-type"].startswith("application/json")
        assert PDF not in response.content
    # Same tenant, even the county organizer: an unlinked upload is not theirs to read.
    for who in ("secA", "county"):
        other = await login(client, world.user(who))
        assert (await get(client, other, path)).status_code == 404
    anonymous = await get(client, None, path)
    assert anonymous.status_code == 401
    assert anonymous.json()["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
    forged = await get(client, "not.a.jwt", path)
    assert forged.status_code == 401


async def test_link_rules(client: httpx.AsyncClient, world: World, state: AppState) -> None:
    token = await login(client, world.user("bsA1"))
    first = await uploaded(client, token, world.gid("a1"), PDF)
    second = await uploaded(client, token, world.gid("a1"), PNG, filename="签字页.png")
    ids = [from_global_id(a["id"], "Attachment")[1] for a in (first, second)]
    secretary = await principal_of(state, token)
    organizer = await principal_of(state, await login(client, world.user("orgA")))
    tenant_a = world.units["A"].tenant_id

    async def link(principal: Principal, wanted: list[int], owner: int, **kw: Any) -> list[Any]:
        async with state.db.transaction() as tx:
            tx.rescope(principal.scope)
            return await attachments.link(tx, principal, wanted, "case", owner, **kw)

    # only the uploader links an upload
    with pytest.raises(DomainError) as refused:
        await link(organizer, ids, 101)
    assert refused.value.code == "ATTACHMENT_NOT_YOURS"
    # an unknown owner kind, the wrong tenant, a missing id: refused, nothing linked
    with pytest.raises(DomainError) as refused:
        async with state.db.transaction() as tx:
            tx.rescope(secretary.scope)
            await attachments.link(tx, secretary, ids, "meeting", 101)
    assert refused.value.code == "ATTACHMENT_OWNER_KIND_UNKNOWN"
    with pytest.raises(DomainError) as refused:
        await link(secretary, ids, 101, tenant_id=world.units["B"].tenant_id)
    assert refused.value.code == "NOT_FOUND"
    with pytest.raises(DomainError) as refused:
        await link(secretary, [*ids, ids[1] + 10**9], 101)
    assert refused.value.code == "NOT_FOUND"

    rows = await link(secretary, [ids[1], ids[0], ids[1]], 101, tenant_id=tenant_a)
    assert [r.id for r in rows] == [ids[1], ids[0]]
    assert all((r.owner_kind, r.owner_id) == ("case", 101) for r in rows)
    # linking again to the same owner is harmless; to another owner refused
    again = await link(secretary, ids, 101)
    assert [r.owner_id for r in again] == [101, 101]
    with pytest.raises(DomainError) as refused:
        await link(secretary, ids[:1], 202)
    assert refused.value.code == "ATTACHMENT_ALREADY_LINKED"
    assert await link(secretary, [], 101) == []

    # Reading now follows the owner: the uploader alone no longer suffices when the
    # case (id 101 here: none) is not one the principal may read.
    response = await get(client, token, first["downloadPath"])
    assert response.status_code == 404
