"""Party dues through the API: a branch records payments (own, by family, back-paid),
agrees a quarterly schedule; what the rules refuse comes back as a declared code;
another township's member is not found; a page of members reads the latest paid
month in one statement."""

from __future__ import annotations

from datetime import date
from typing import Any

import httpx
import psycopg
import pytest

from service.app import AppState
from service.auth.service import operator_principal
from service.schema.ids import from_global_id, to_global_id
from tests import factories
from tests.support import World, error_codes, gql, login, watching

RECORD = """mutation($i: RecordDuesPaymentInput!) { recordDuesPayment(input: $i) {
  duesPayment { id paidOn amountFen paidBy months isBackPayment note recordedBy } } }"""
AGREE = """mutation($i: AgreeDuesScheduleInput!) { agreeDuesSchedule(input: $i) {
  arrangement { schedule fromMonth member { name duesSchedule } } } }"""
MEMBER_DUES = """query($id: ID!) { member(id: $id) { latestDuesMonth duesSchedule
  duesPayments(first: 10) { nodes { paidOn amountFen paidBy months isBackPayment } } } }"""


async def new_member(state: AppState, world: World, branch: str = "a1", **fields: Any) -> str:
    async with state.db.transaction() as tx:
        op = await operator_principal(tx, name="tests")
        row = await factories.member(tx, op, branch=world.units[branch], **fields)
    return to_global_id("Member", row.id)


def pay(member: str, paid_on: str, months: list[str], **fields: Any) -> dict[str, Any]:
    return {
        "i": {
            "memberId": member,
            "paidOn": paid_on,
            "amountFen": 2000,
            "paidBy": "SELF",
            "months": months,
            **fields,
        }
    }


async def test_branch_records_own_and_family_payments_and_the_member_shows_them(
    client: httpx.AsyncClient, state: AppState, world: World, owner_conn: psycopg.Connection[Any]
) -> None:
    member = await new_member(state, world, joined_on=date(2010, 7, 1))
    bs = await login(client, world.user("bsA1"))
    own = await gql(client, bs, RECORD, pay(member, "2026-03-05", ["2026-03"], note="  三月 "))
    assert "errors" not in own, own
    payment = own["data"]["recordDuesPayment"]["duesPayment"]
    assert payment["months"] == ["2026-03"] and payment["paidBy"] == "SELF"
    assert payment["isBackPayment"] is False and payment["note"] == "三月"

    family = await gql(
        client, bs, RECORD, pay(member, "2026-04-20", ["2026-04"], paidBy="FAMILY", amountFen=3500)
    )
    assert "errors" not in family, family
    assert family["data"]["recordDuesPayment"]["duesPayment"]["paidBy"] == "FAMILY"

    shown = await gql(client, bs, MEMBER_DUES, {"id": member})
    assert shown["data"]["member"]["latestDuesMonth"] == "2026-04"
    assert shown["data"]["member"]["duesSchedule"] == "MONTHLY"
    assert [
        (p["months"], p["paidBy"], p["amountFen"])
        for p in shown["data"]["member"]["duesPayments"]["nodes"]
    ] == [(["2026-03"], "SELF", 2000), (["2026-04"], "FAMILY", 3500)]
    # The month row keeps who paid, for the 三不 walk.
    rows = owner_conn.execute(
        "SELECT month, paid_by FROM dues_months WHERE member_id = %s ORDER BY month",
        (from_global_id(member)[1],),
    ).fetchall()
    assert [r[1] for r in rows] == ["self", "family"]

    # A DuesPayment is a node, for whoever reads the ledger.
    node = await gql(
        client,
        bs,
        "query($id: ID!) { node(id: $id) { ... on DuesPayment { months paidBy } } }",
        {"id": payment["id"]},
    )
    assert node["data"]["node"] == {"months": ["2026-03"], "paidBy": "SELF"}

    events = owner_conn.execute(
        "SELECT action, details FROM audit_events WHERE object_type = 'DuesPayment'"
        " AND object_id = %s",
        (str(from_global_id(payment["id"])[1]),),
    ).fetchall()
    assert [(e[0], e[1]["months"]) for e in events] == [("dues.record", ["2026-03"])]


async def test_back_payment_within_six_months_is_accepted_and_older_refused(
    client: httpx.AsyncClient, state: AppState, world: World
) -> None:
    member = await new_member(state, world, joined_on=date(2010, 7, 1))
    org = await login(client, world.user("orgA"))
    too_old = await gql(client, org, RECORD, pay(member, "2026-08-10", ["2026-01", "2026-02"]))
    assert error_codes(too_old) == ["BACK_PAYMENT_TOO_OLD"]
    back = await gql(
        client, org, RECORD, pay(member, "2026-08-10", ["2026-02", "2026-03", "2026-08"])
    )
    assert "errors" not in back, back
    assert back["data"]["recordDuesPayment"]["duesPayment"]["isBackPayment"] is True
    assert back["data"]["recordDuesPayment"]["duesPayment"]["months"] == [
        "2026-02",
        "2026-03",
        "2026-08",
    ]


async def test_a_month_is_paid_once(
    client: httpx.AsyncClient, state: AppState, world: World, owner_conn: psycopg.Connection[Any]
) -> None:
    member = await new_member(state, world, joined_on=date(2010, 7, 1))
    org = await login(client, world.user("orgA"))
    first = await gql(client, org, RECORD, pay(member, "2026-05-02", ["2026-04", "2026-05"]))
    assert "errors" not in first, first
    again = await gql(client, org, RECORD, pay(member, "2026-05-20", ["2026-05"], paidBy="FAMILY"))
    assert error_codes(again) == ["DUES_MONTH_ALREADY_PAID"]
    assert "2026年5月" in again["errors"][0]["message"]
    count = owner_conn.execute(
        "SELECT count(*) FROM dues_payments WHERE member_id = %s", (from_global_id(member)[1],)
    ).fetchone()
    assert count == (1,)  # nothing half-written


@pytest.mark.parametrize(
    ("paid_on", "months", "fields", "code"),
    [
        ("2026-05-02", [], {}, "MONTHS_EMPTY"),
        ("2026-05-02", ["2026-05", "2026-05"], {}, "MONTHS_DUPLICATED"),
        ("2026-05-02", ["2026-06"], {}, "MONTH_IN_FUTURE"),
        ("2026-05-02", ["2026-5"], {}, "MONTH_INVALID"),
        ("2026-05-02", ["2026-05"], {"amountFen": 0}, "AMOUNT_INVALID"),
        ("2026-05-02", ["2026-05"], {"note": "长" * 501}, "NOTE_TOO_LONG"),
        ("2010-08-02", ["2010-06", "2010-07"], {}, "DUES_MONTH_BEFORE_JOINED"),
    ],
)
async def test_refused_payments_have_a_declared_code(
    client: httpx.AsyncClient,
    state: AppState,
    world: World,
    paid_on: str,
    months: list[str],
    fields: dict[str, Any],
    code: str,
) -> None:
    member = await new_member(state, world, joined_on=date(2010, 7, 1))
    org = await login(client, world.user("orgA"))
    body = await gql(client, org, RECORD, pay(member, paid_on, months, **fields))
    assert error_codes(body) == [code], body
    assert body["data"] is None


async def test_back_payment_of_more_than_six_months_is_refused(
    client: httpx.AsyncClient, state: AppState, world: World
) -> None:
    """With the default window the cap and the window fail together: the first named."""
    member = await new_member(state, world, joined_on=date(2010, 7, 1))
    org = await login(client, world.user("orgA"))
    months = [f"2026-{m:02d}" for m in range(1, 8)]
    body = await gql(client, org, RECORD, pay(member, "2026-08-01", months))
    assert error_codes(body) == ["BACK_PAYMENT_TOO_OLD"]


async def test_members_not_on_the_rolls_pay_no_dues(
    client: httpx.AsyncClient, state: AppState, world: World
) -> None:
    member = await new_member(state, world, joined_on=date(2010, 7, 1))
    org = await login(client, world.user("orgA"))
    moved = await gql(
        client,
        org,
        "mutation($i: ChangeMemberStatusInput!)"
        " { changeMemberStatus(input: $i) { member { id } } }",
        {"i": {"memberId": member, "status": "DECEASED", "effectiveOn": "2026-01-10"}},
    )
    assert "errors" not in moved, moved
    body = await gql(client, org, RECORD, pay(member, "2026-01-05", ["2026-01"]))
    assert error_codes(body) == ["MEMBER_NOT_ON_ROLLS"]


async def test_quarterly_schedule_lets_the_quarter_be_prepaid(
    client: httpx.AsyncClient, state: AppState, world: World, owner_conn: psycopg.Connection[Any]
) -> None:
    member = await new_member(state, world, joined_on=date(2010, 7, 1))
    org = await login(client, world.user("orgA"))
    early = await gql(client, org, RECORD, pay(member, "2020-04-02", ["2020-04", "2020-05"]))
    assert error_codes(early) == ["MONTH_IN_FUTURE"]  # monthly: May is not yet payable

    agreed = await gql(
        client,
        org,
        AGREE,
        {
            "i": {
                "memberId": member,
                "schedule": "QUARTERLY",
                "fromMonth": "2020-01",
                "agreedOn": "2019-12-20",
            }
        },
    )
    assert "errors" not in agreed, agreed
    assert agreed["data"]["agreeDuesSchedule"]["arrangement"]["schedule"] == "QUARTERLY"
    quarter = await gql(
        client, org, RECORD, pay(member, "2020-04-02", ["2020-04", "2020-05", "2020-06"])
    )
    assert "errors" not in quarter, quarter

    # Back to monthly from 2020-07: the quarterly arrangement ends in 2020-06.
    monthly = await gql(
        client,
        org,
        AGREE,
        {
            "i": {
                "memberId": member,
                "schedule": "MONTHLY",
                "fromMonth": "2020-07",
                "agreedOn": "2020-06-20",
            }
        },
    )
    assert "errors" not in monthly, monthly
    stale = await gql(
        client,
        org,
        AGREE,
        {
            "i": {
                "memberId": member,
                "schedule": "QUARTERLY",
                "fromMonth": "2020-07",
                "agreedOn": "2020-06-21",
            }
        },
    )
    assert error_codes(stale) == ["SCHEDULE_FROM_MONTH_INVALID"]
    periods = owner_conn.execute(
        "SELECT schedule, from_month, to_month FROM dues_arrangements WHERE member_id = %s"
        " ORDER BY from_month",
        (from_global_id(member)[1],),
    ).fetchall()
    assert periods == [("quarterly", 2020 * 12, 2020 * 12 + 5), ("monthly", 2020 * 12 + 6, None)]
    actions = owner_conn.execute(
        "SELECT action FROM audit_events WHERE object_type = 'Member' AND object_id = %s"
        " AND action LIKE 'dues.%%'",
        (str(from_global_id(member)[1]),),
    ).fetchall()
    assert actions == [("dues.schedule",), ("dues.schedule",)]


async def test_a_member_of_another_township_is_not_found(
    client: httpx.AsyncClient, state: AppState, world: World
) -> None:
    org = await login(client, world.user("orgA"))
    theirs = world.member_gid("memB1")
    missing = to_global_id("Member", 2**62)
    for variables in (
        pay(theirs, "2026-03-05", ["2026-03"]),
        pay(missing, "2026-03-05", ["2026-03"]),
    ):
        body = await gql(client, org, RECORD, variables)
        assert error_codes(body) == ["NOT_FOUND"]
    b_payment = world.record_gid("duesB1")
    body = await gql(client, org, "query($id: ID!) { node(id: $id) { id } }", {"id": b_payment})
    assert error_codes(body) == ["NOT_FOUND"]
    # A's secretary reads A's ledger but records no dues.
    sec = await login(client, world.user("secA"))
    denied = await gql(
        client, sec, RECORD, pay(world.member_gid("otherA1"), "2026-03-05", ["2026-03"])
    )
    assert error_codes(denied) == ["FORBIDDEN"]


async def test_latest_dues_month_of_a_page_of_members_is_one_statement(
    client: httpx.AsyncClient, state: AppState, world: World
) -> None:
    async with state.db.transaction() as tx:
        op = await operator_principal(tx, name="tests")
        branch = await factories.org_unit(tx, op, parent=world.units["A"])
        for i in range(20):
            member = await factories.member(tx, op, branch=branch, joined_on=date(2010, 7, 1))
            await factories.dues_payment(
                tx, op, member=member, paid_on=date(2026, 3, 1 + i), months=["2026-03"]
            )
    token = await login(client, world.user("orgA"))
    page = """query($u: ID!) { members(orgUnitId: $u, first: 20) { nodes { name } } }"""
    latest = """query($u: ID!) { members(orgUnitId: $u, first: 20) {
      nodes { name latestDuesMonth } } }"""
    unit = to_global_id("OrgUnit", branch.id)
    await gql(client, token, page, {"u": unit})  # the principal is cached now
    with watching(state.db) as plain:
        await gql(client, token, page, {"u": unit})
    with watching(state.db) as traffic:
        body = await gql(client, token, latest, {"u": unit})
    nodes = body["data"]["members"]["nodes"]
    assert len(nodes) == 20 and {n["latestDuesMonth"] for n in nodes} == {"2026-03"}
    # One message more than the page alone, holding one statement besides the scope
    # (the page's own messages alike but for the guard's idle cut-off, a time).
    same = traffic.messages[: plain.round_trips]
    assert [n for _, n in same] == [n for _, n in plain.messages], traffic.messages
    [(extra, statements)] = traffic.messages[plain.round_trips :]
    assert statements - extra.count("SET LOCAL") == 1 and "FROM dues_months" in extra, extra
