"""A case's materials: a document uploaded, attached to the investigation record, listed
on the case and downloaded by those who read the case; nobody of another township, and
no educator of another case, reaches it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx

from service.clock import business_today
from tests.attachments.test_attachments import get, uploaded
from tests.attachments.test_rules import PDF
from tests.cases.test_cases_http import INVESTIGATE, decide, ok, open_case, tokens
from tests.support import World

RECORDS = """query($id: ID!) { disposalCase(id: $id) {
  attachments { id }
  records(first: 20) { nodes { kind attachments { id filename sha256 downloadPath } } } } }"""


async def test_investigation_materials_follow_the_case(
    client: httpx.AsyncClient, world: World
) -> None:
    t = await tokens(client, world, "bsA1", "secA", "county", "secB")
    today = business_today(datetime.now(UTC))
    cid = await open_case(
        client,
        t["bsA1"],
        world.member_gid("memA1"),
        origin="SERIOUS_PROBLEMS",
        facts="长期不参加组织生活",
        statement="本案不涉及已受党纪处分的问题",
        openedOn=(today - timedelta(days=3)).isoformat(),
    )
    await decide(client, t["secA"], cid)
    made = await uploaded(client, t["bsA1"], world.gid("a1"), PDF, filename="调查材料.pdf")
    await ok(
        client,
        t["bsA1"],
        INVESTIGATE,
        i={
            "caseId": cid,
            "investigators": ["张三", "李四"],
            "findings": "查实",
            "attachmentIds": [made["id"]],
        },
    )
    case = (await ok(client, t["county"], RECORDS, id=cid))["disposalCase"]
    listed = [a for r in case["records"]["nodes"] for a in r["attachments"]]
    assert [a["id"] for a in listed] == [made["id"]] and case["attachments"] == []
    assert listed[0]["filename"] == "调查材料.pdf"
    # Who reads the case downloads its materials; the other township gets 404, as for a
    # document that does not exist.
    for who in ("bsA1", "secA", "county"):
        response = await get(client, t[who], listed[0]["downloadPath"])
        assert response.status_code == 200 and response.content == PDF, who
    assert (await get(client, t["secB"], listed[0]["downloadPath"])).status_code == 404
