"""Mobile members (流动党员) through the API: the contact log and the list of those not
reached lately, who may write and read them, audit events and isolation."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import httpx
import psycopg

from service.app import AppState
from service.auth.service import operator_principal
from service.members.mobile import months_before
from service.schema.ids import to_global_id
from tests import factories
from tests.support import World, error_codes, gql, login

RECORD = """mutation($i: RecordMobileContactInput!) { recordMobileContact(input: $i) {
  contact { contactedOn channel contactedBy reached outcome recordedBy } } }"""
UNREACHED = """query($u: ID!, $m: Int, $first: Int, $after: String) {
  unreachedMobileMembers(orgUnitId: $u, months: $m, first: $first, after: $after) {
    nodes { member { name } lastReachedOn } pageInfo { hasNextPage endCursor } } }"""


def _contact(member: str, **extra: Any) -> dict[str, Any]:
    return {
        "memberId": member,
        "contactedOn": date.today().isoformat(),
        "channel": "WECHAT",
        "contactedBy": "支部书记",
        "reached": True,
        "outcome": "在外务工，身体健康",
    } | extra


def test_months_before_stays_in_the_month() -> None:
    assert months_before(date(2026, 5, 31), 3) == date(2026, 2, 28)
    assert months_before(date(2026, 1, 15), 1) == date(2025, 12, 15)
    assert months_before(date(2024, 4, 30), 2) == date(2024, 2, 29)


async def test_branch_logs_contacts_of_a_mobile_member(
    client: httpx.AsyncClient, state: AppState, world: World, owner_conn: psycopg.Connection[Any]
) -> None:
    async with state.db.transaction() as tx:
        op = await operator_principal(tx, name="tests")
        away = await factories.member(
            tx, op, branch=world.units["a1"], name="外出甲", is_mobile=True
        )
    gid = to_global_id("Member", away.id)
    bs = await login(client, world.user("bsA1"))
    body = await gql(client, bs, RECORD, {"i": _contact(gid, reached=False, channel="PHONE")})
    assert "errors" not in body, body
    assert body["data"]["recordMobileContact"]["contact"] == {
        "contactedOn": date.today().isoformat(),
        "channel": "PHONE",
        "contactedBy": "支部书记",
        "reached": False,
        "outcome": "在外务工，身体健康",
        "recordedBy": world.user("bsA1"),
    }
    await gql(client, bs, RECORD, {"i": _contact(gid)})
    log = await gql(
        client,
        bs,
        "query($id: ID!) { member(id: $id) { mobileContacts(first: 10) { nodes { reached } } } }",
        {"id": gid},
    )
    assert [n["reached"] for n in log["data"]["member"]["mobileContacts"]["nodes"]] == [
        False,
        True,
    ]
    events = owner_conn.execute(
        "SELECT details->>'reached' FROM audit_events WHERE action = 'member.contact'"
        " AND object_id = %s ORDER BY seq",
        (str(away.id),),
    ).fetchall()
    assert [e[0] for e in events] == ["false", "true"]

    tomorrow = (date.today() + timedelta(days=1)).isoformat()
    cases = {
        "NOT_MOBILE_MEMBER": _contact(world.member_gid("otherA1")),
        "CONTACT_IN_FUTURE": _contact(gid, contactedOn=tomorrow),
        "CONTACTED_BY_MISSING": _contact(gid, contactedBy=" "),
        "OUTCOME_MISSING": _contact(gid, outcome=""),
    }
    for code, fields in cases.items():
        assert error_codes(await gql(client, bs, RECORD, {"i": fields})) == [code], code
    count = owner_conn.execute(
        "SELECT count(*) FROM mobile_contacts WHERE member_id = %s", (away.id,)
    ).fetchone()
    assert count == (2,)

    # The committee secretary reads the ledger but does not log contacts.
    sec = await login(client, world.user("secA"))
    assert error_codes(await gql(client, sec, RECORD, {"i": _contact(gid)})) == ["FORBIDDEN"]
    # A's organizer with B's mobile member: what a missing member gets.
    org = await login(client, world.user("orgA"))
    b = await gql(client, org, RECORD, {"i": _contact(world.member_gid("memB1"))})
    gone = await gql(client, org, RECORD, {"i": _contact(to_global_id("Member", 2**62))})
    assert error_codes(b) == ["NOT_FOUND"] and b == gone


async def test_unreached_mobile_members_in_the_last_months(
    client: httpx.AsyncClient, state: AppState, world: World
) -> None:
    today = date.today()
    async with state.db.transaction() as tx:
        op = await operator_principal(tx, name="tests")

        async def mobile(name: str, branch: str = "a1") -> Any:
            return await factories.member(
                tx, op, branch=world.units[branch], name=name, is_mobile=True
            )

        never = await mobile("从未联系")
        recent = await mobile("近期联系上")
        await factories.mobile_contact(tx, op, member=recent, contacted_on=today - timedelta(20))
        old = await mobile("久未联系上")
        await factories.mobile_contact(tx, op, member=old, contacted_on=today - timedelta(150))
        tried = await mobile("联系未果")
        await factories.mobile_contact(
            tx, op, member=tried, contacted_on=today - timedelta(10), reached=False
        )
        await mobile("二支部流动", branch="a2")
    assert never and tried

    org = await login(client, world.user("orgA"))

    async def unreached(unit: str, months: int | None = None) -> list[tuple[str, str | None]]:
        body = await gql(client, org, UNREACHED, {"u": world.gid(unit), "m": months})
        assert "errors" not in body, body
        nodes = body["data"]["unreachedMobileMembers"]["nodes"]
        return [(n["member"]["name"], n["lastReachedOn"]) for n in nodes]

    assert await unreached("a1") == [
        ("从未联系", None),
        ("久未联系上", (today - timedelta(150)).isoformat()),
        ("联系未果", None),
    ]
    assert [n for n, _ in await unreached("a1", 6)] == ["从未联系", "联系未果"]
    assert [n for n, _ in await unreached("A")] == [
        "从未联系",
        "久未联系上",
        "联系未果",
        "二支部流动",
    ]

    # Keyset pages.
    first = await gql(client, org, UNREACHED, {"u": world.gid("A"), "first": 2})
    page = first["data"]["unreachedMobileMembers"]
    assert page["pageInfo"]["hasNextPage"] is True
    rest = await gql(
        client, org, UNREACHED, {"u": world.gid("A"), "after": page["pageInfo"]["endCursor"]}
    )
    names = [n["member"]["name"] for n in rest["data"]["unreachedMobileMembers"]["nodes"]]
    assert names == ["联系未果", "二支部流动"]

    bad = await gql(client, org, UNREACHED, {"u": world.gid("A"), "m": 0})
    assert error_codes(bad) == ["MONTHS_INVALID"]
    # The branch secretary lists a1 only; A's committee never sees B's.
    bs = await login(client, world.user("bsA1"))
    for token, unit in ((bs, "a2"), (bs, "A"), (org, "B"), (org, "b1")):
        body = await gql(client, token, UNREACHED, {"u": world.gid(unit)})
        assert error_codes(body) == ["NOT_FOUND"], (unit, body)
    county = await login(client, world.user("county"))
    body = await gql(client, county, UNREACHED, {"u": world.gid("B")})
    assert [n["member"]["name"] for n in body["data"]["unreachedMobileMembers"]["nodes"]] == [
        "memB1同志"
    ]
