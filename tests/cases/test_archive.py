"""The case archive: a voluntary withdrawal driven over HTTP to its end, with documents
attached, exported as one zip (manifest with every file's digest, a readable Chinese
summary, the documents); the first export of the closed case archives it once (an
`archive` record, the decision in the member's personal file); readers only."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import io
import json
import zipfile
from typing import Any

import httpx
import psycopg

from service.app import AppState
from service.attachments.graphql import load_owner_attachments
from service.auth.service import load_principal
from service.schema.context import Context
from service.schema.ids import from_global_id
from tests.attachments.test_attachments import uploaded
from tests.attachments.test_rules import PDF, PNG
from tests.cases.test_cases_http import (
    ASSEMBLY,
    CASE,
    DROP,
    PRE_REVIEW,
    PROPOSE,
    SUBMIT,
    assembly_vote,
    decide,
    ok,
    open_case,
    tokens,
    voters,
)
from tests.support import World, error_codes, gql

EXPORT = """mutation($i: ExportCaseArchiveInput!) { exportCaseArchive(input: $i) {
  filename contentBase64 sha256 fileCount final archivedNow } }"""


async def closed_withdrawal(
    client: httpx.AsyncClient, world: World, t: dict[str, str]
) -> tuple[str, list[str]]:
    """otherA1's application to withdraw, filed and approved: (case id, attachment ids)."""
    application = await uploaded(client, t["bsA1"], world.gid("a1"), PDF, filename="退党申请书.pdf")
    minutes = await uploaded(client, t["bsA1"], world.gid("a1"), PNG, filename="会议记录签字页.png")
    cid = await open_case(
        client,
        t["bsA1"],
        world.member_gid("otherA1"),
        origin="WITHDRAWAL_APPLICATION",
        facts="本人书面申请退党<script>alert(1)</script>",
        statement="不涉及已处分事项",
        attachmentIds=[application["id"]],
    )
    await decide(client, t["secA"], cid)
    await ok(
        client,
        t["bsA1"],
        PROPOSE,
        i={"caseId": cid, "disposal": "WITHDRAWAL", "reasons": "本人申请"},
    )
    await ok(client, t["secA"], PRE_REVIEW, i={"caseId": cid, "agreed": True, "opinion": "同意"})
    await ok(
        client,
        t["bsA1"],
        ASSEMBLY,
        i={
            "caseId": cid,
            **assembly_vote(await voters(client, t["bsA1"], cid)),
            "defence": "本人无异议",
            "attachmentIds": [minutes["id"]],
        },
    )
    await ok(client, t["bsA1"], SUBMIT, c=cid)
    await decide(client, t["secA"], cid)
    await decide(client, t["county"], cid)
    seen = await ok(client, t["bsA1"], CASE, id=cid)
    assert seen["disposalCase"]["stage"] == "CLOSED"
    return cid, [application["id"], minutes["id"]]


def unzip(content: bytes) -> dict[str, bytes]:
    with zipfile.ZipFile(io.BytesIO(content)) as bundle:
        assert bundle.testzip() is None
        return {name: bundle.read(name) for name in bundle.namelist()}


async def test_archive_bundle_of_a_closed_case(
    client: httpx.AsyncClient, state: AppState, world: World, owner_conn: psycopg.Connection[Any]
) -> None:
    t = await tokens(client, world, "bsA1", "secA", "county", "secB", "memA1")
    cid, attachment_ids = await closed_withdrawal(client, world, t)
    case_id = from_global_id(cid, "DisposalCase")[1]

    # The member reads their own case but does not archive it: only those who may export
    # the branch's cases make the bundle (its first export is the archive).
    refused = await gql(client, t["memA1"], EXPORT, {"i": {"caseId": cid}})
    assert error_codes(refused) in (["FORBIDDEN"], ["NOT_FOUND"]), refused
    made = (await ok(client, t["county"], EXPORT, i={"caseId": cid}))["exportCaseArchive"]
    assert made["final"] is True and made["archivedNow"] is True
    assert made["filename"].endswith(".zip") and str(case_id) in made["filename"]
    content = base64.b64decode(made["contentBase64"])
    assert hashlib.sha256(content).hexdigest() == made["sha256"]
    entries = unzip(content)

    manifest = json.loads(entries["manifest.json"])
    assert manifest["case_id"] == cid
    assert manifest["generated_by"] == world.user("county")
    assert manifest["final"] is True
    listed = {f["path"]: f for f in manifest["files"]}
    # every file but the manifest is listed, with its true size and digest
    assert set(listed) == set(entries) - {"manifest.json"}
    assert made["fileCount"] == len(listed) == 3
    for path, data in entries.items():
        if path != "manifest.json":
            assert listed[path]["size"] == len(data)
            assert listed[path]["sha256"] == hashlib.sha256(data).hexdigest()
    documents = {p: d for p, d in entries.items() if p.startswith("attachments/")}
    assert sorted(documents.values()) == sorted([PDF, PNG])
    assert any(p.endswith("退党申请书.pdf") for p in documents)

    summary = entries["summary.html"].decode("utf-8")
    for text in (
        "处置不合格党员案件材料",
        "本人申请退党",
        "退党",
        "党员大会表决",
        "赞成票",
        "本人无异议",
        "事前备案",
        "县委组织部",
        "同意",
        "会议记录签字页.png",
    ):
        assert text in summary, text
    assert "<script>" not in summary  # the facts are escaped
    assert "&lt;script&gt;" in summary

    # Archived once: the archive record and the decision in the personal file.
    rows = owner_conn.execute(
        "SELECT kind, data FROM case_records WHERE case_id = %(c)s AND kind = 'archive'",
        {"c": case_id},
    ).fetchall()
    assert len(rows) == 1 and rows[0][1]["bundle_sha256"] == made["sha256"]
    entries_in_file = owner_conn.execute(
        "SELECT member_id, kind, data FROM member_file_entries WHERE case_id = %(c)s",
        {"c": case_id},
    ).fetchall()
    assert [(e[0], e[1], e[2]["outcome"]) for e in entries_in_file] == [
        (world.members["otherA1"].id, "case_decision", "withdrew")
    ]
    again = (await ok(client, t["bsA1"], EXPORT, i={"caseId": cid}))["exportCaseArchive"]
    assert again["archivedNow"] is False
    count = owner_conn.execute(
        "SELECT count(*) FROM case_records WHERE case_id = %(c)s AND kind = 'archive'",
        {"c": case_id},
    ).fetchone()
    assert count == (1,)
    # the bundle now shows the archive step too
    assert "立卷归档" in unzip(base64.b64decode(again["contentBase64"]))["summary.html"].decode()
    audited = owner_conn.execute(
        "SELECT count(*) FROM audit_events WHERE action = 'case.archive_export'"
        " AND object_id = %(c)s",
        {"c": str(case_id)},
    ).fetchone()
    assert audited == (2,)

    # The case's documents now follow the case: its readers download them, B does not.
    for token, status in ((t["county"], 200), (t["secA"], 200), (t["secB"], 404)):
        response = await client.get(
            f"/attachments/{attachment_ids[0]}", headers={"Authorization": f"Bearer {token}"}
        )
        assert response.status_code == status

    # The loader a case's GraphQL type shows its documents with: per owner, in order.
    claims = state.tokens.validate_access_token(t["county"])
    assert claims is not None
    principal = await load_principal(state.db, claims)
    record_id = owner_conn.execute(
        "SELECT owner_id FROM attachments WHERE owner_kind = 'case_record' AND id = %(a)s",
        {"a": from_global_id(attachment_ids[1], "Attachment")[1]},
    ).fetchone()
    assert record_id is not None
    async with state.db.transaction() as tx:
        tx.rescope(principal.scope)
        ctx = Context(tx=tx, principal=principal, settings=state.settings)
        loader = ctx.loader(load_owner_attachments)
        on_case, on_record, on_nothing = await asyncio.gather(
            loader.load(("case", case_id)),
            loader.load(("case_record", record_id[0])),
            loader.load(("case", case_id + 10**9)),
        )
    assert [a.id for a in on_case] == attachment_ids[:1]
    assert [(a.id, a.filename) for a in on_record] == [(attachment_ids[1], "会议记录签字页.png")]
    assert on_nothing == []

    # Only readers of the branch's cases export: B's secretary and a member cannot.
    for who in ("secB", "memA1"):
        body = await gql(client, t[who], EXPORT, {"i": {"caseId": cid}})
        assert error_codes(body) == ["NOT_FOUND"], body


async def test_the_archive_of_a_dropped_case_shows_its_filing_withdrawn(
    client: httpx.AsyncClient, world: World
) -> None:
    """A case dropped before its filing was decided: the archive shows the filing as
    已撤回, withdrawn by the branch secretary, not as decided by anyone."""
    t = await tokens(client, world, "bsA1", "secA")
    cid = await open_case(client, t["bsA1"], world.member_gid("memA1"))
    await ok(client, t["bsA1"], DROP, c=cid, r="已补交党费")
    made = (await ok(client, t["bsA1"], EXPORT, i={"caseId": cid}))["exportCaseArchive"]
    summary = unzip(base64.b64decode(made["contentBase64"]))["summary.html"].decode("utf-8")
    assert "事前备案" in summary and "已撤回" in summary
    assert f"（{world.user('bsA1')}撤回）" in summary
    assert "withdrawn" not in summary
