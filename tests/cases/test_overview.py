"""The county's view of disposal cases: counts by stage and origin per tenant, the three
kinds of overdue (an approval step past its deadline, a correction period over, an
education week without a session), role scoping, and the .xlsx export.

The cases are written straight into the tables (the 0012 contract) in the states the
overview must count, so this test does not depend on driving the whole procedure;
the dates are relative to the request's business day (the app's clock)."""

from __future__ import annotations

import base64
import io
from datetime import UTC, date, datetime, timedelta
from typing import Any

import httpx
import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from openpyxl import load_workbook

from service.app import AppState
from service.auth.service import operator_principal
from service.cases import rules
from service.cases.overview import per_case_sql
from service.clock import business_today
from service.schema.ids import to_global_id
from tests import factories
from tests.support import Traffic, World, error_codes, gql, login, watching

OVERVIEW = """query($u: ID!) { caseOverview(orgUnitId: $u) {
  tenants(first: 50) { nodes { tenant { name } total open stages { stage cases }
    origins { origin cases } approvalStepsOverdue correctionsOverdue casesMissingWeeks
    missedWeeks } }
  overdueCases(first: 50) { nodes { memberName stage overdue missedWeeks correctionDeadline
    stepOverdueSince case { id } } } } }"""
EXPORT = """mutation($u: ID!) { exportCases(input: {orgUnitId: $u}) {
  filename contentBase64 caseCount } }"""


def insert_case(
    owner_conn: psycopg.Connection[Any], branch: Any, member: Any, **columns: Any
) -> int:
    values = {
        "tenant_id": branch.tenant_id,
        "branch_id": branch.id,
        "branch_path": branch.path,
        "member_id": member.id,
        "member_name": member.name,
        "origin": "unqualified_grade",
        "stage": "filed",
        "facts": "事实",
        "not_sanctioned_statement": "不涉及",
        "opened_on": date(2026, 1, 5),
        "opened_by": "tests",
    } | columns
    names = ", ".join(values)
    slots = ", ".join(f"%({k})s" for k in values)
    row = owner_conn.execute(
        f"INSERT INTO disposal_cases ({names}) VALUES ({slots}) RETURNING id", values
    ).fetchone()
    assert row is not None
    return int(row[0])


def add_sessions(
    owner_conn: psycopg.Connection[Any], case_id: int, educator: Any, start: date, held: list[date]
) -> None:
    owner_conn.execute(
        "INSERT INTO case_educators (tenant_id, case_id, member_id, name, assigned_on)"
        " SELECT tenant_id, %(c)s, %(m)s, %(n)s, %(on)s FROM disposal_cases WHERE id = %(c)s",
        {"c": case_id, "m": educator.id, "n": educator.name, "on": start},
    )
    for day in held:
        owner_conn.execute(
            "INSERT INTO education_sessions (tenant_id, case_id, educator_member_id, held_on,"
            " summary, recorded_by) SELECT tenant_id, %(c)s, %(m)s, %(d)s, '谈心', 'tests'"
            " FROM disposal_cases WHERE id = %(c)s",
            {"c": case_id, "m": educator.id, "d": day},
        )


async def test_overview_counts_and_overdue(
    client: httpx.AsyncClient, state: AppState, world: World, owner_conn: psycopg.Connection[Any]
) -> None:
    today = business_today(state.clock())
    units, members = world.units, world.members
    async with state.db.transaction() as tx:
        op = await operator_principal(tx, name="tests")
        extra = await factories.member(tx, op, branch=units["a2"], name="改正者")
        educator = await factories.member(tx, op, branch=units["a1"], name="联系人")
        # an overdue filing step of B's case (its deadline moved to yesterday)
        case_b = insert_case(owner_conn, units["b1"], members["memB1"], origin="lapse_flag")
        await factories.approval_request(
            tx,
            op,
            branch=units["b1"],
            kind="case_filing",
            subject_type="DisposalCase",
            subject_id=case_b,
            overdue=True,
        )
    # A: one in education that missed its second week, one whose correction period is
    # over, one closed by withdrawal
    start = today - timedelta(days=21)  # three finished weeks
    educating = insert_case(
        owner_conn,
        units["a1"],
        members["memA1"],
        stage="educating",
        education_started_on=start,
    )
    add_sessions(
        owner_conn,
        educating,
        educator,
        start,
        [start + timedelta(days=2), start + timedelta(days=15)],
    )
    correcting = insert_case(
        owner_conn,
        units["a2"],
        extra,
        stage="correcting",
        disposal="correction",
        correction_months=6,
        correction_started_on=today - timedelta(days=190),
        correction_deadline=today - timedelta(days=1),
    )
    insert_case(
        owner_conn,
        units["a1"],
        members["otherA1"],
        origin="withdrawal_application",
        stage="closed",
        disposal="withdrawal",
        outcome="withdrew",
        closed_on=today,
    )

    county = await login(client, world.user("county"))
    body = await gql(client, county, OVERVIEW, {"u": world.gid("county")})
    assert "errors" not in body, body
    tenants = {n["tenant"]["name"]: n for n in body["data"]["caseOverview"]["tenants"]["nodes"]}
    assert set(tenants) == {"甲镇", "乙镇"}
    a, b = tenants["甲镇"], tenants["乙镇"]
    assert (a["total"], a["open"]) == (3, 2)
    assert {s["stage"]: s["cases"] for s in a["stages"]} == {
        "EDUCATING": 1,
        "CORRECTING": 1,
        "CLOSED": 1,
    }
    assert {o["origin"]: o["cases"] for o in a["origins"]} == {
        "UNQUALIFIED_GRADE": 2,
        "WITHDRAWAL_APPLICATION": 1,
    }
    assert (a["approvalStepsOverdue"], a["correctionsOverdue"]) == (0, 1)
    assert (a["casesMissingWeeks"], a["missedWeeks"]) == (1, 1)
    assert (b["total"], b["open"], b["approvalStepsOverdue"]) == (1, 1, 1)
    assert b["origins"] == [{"origin": "LAPSE_FLAG", "cases": 1}]

    overdue = {n["memberName"]: n for n in body["data"]["caseOverview"]["overdueCases"]["nodes"]}
    assert set(overdue) == {members["memA1"].name, "改正者", members["memB1"].name}
    assert overdue[members["memA1"].name]["overdue"] == ["EDUCATION_WEEK"]
    assert overdue[members["memA1"].name]["missedWeeks"] == 1
    assert overdue["改正者"]["overdue"] == ["CORRECTION_DEADLINE"]
    assert overdue[members["memB1"].name]["overdue"] == ["APPROVAL_STEP"]
    assert overdue[members["memB1"].name]["stepOverdueSince"] is not None
    assert overdue["改正者"]["case"] == {"id": to_global_id("DisposalCase", correcting)}

    # A's secretary: A only, even asking for A; B's unit is not found; a member sees
    # no overview at all
    sec_a = await login(client, world.user("secA"))
    body = await gql(client, sec_a, OVERVIEW, {"u": world.gid("A")})
    names = [n["tenant"]["name"] for n in body["data"]["caseOverview"]["tenants"]["nodes"]]
    assert names == ["甲镇"]
    overdue_names = {n["memberName"] for n in body["data"]["caseOverview"]["overdueCases"]["nodes"]}
    assert members["memB1"].name not in overdue_names
    for who, unit in (("secA", "B"), ("secA", "county"), ("memA1", "a1")):
        token = await login(client, world.user(who))
        body = await gql(client, token, OVERVIEW, {"u": world.gid(unit)})
        assert error_codes(body) in (["NOT_FOUND"], ["FORBIDDEN"]), (who, unit, body)
    # a branch secretary reads the cases of its branch only
    bs = await login(client, world.user("bsA1"))
    body = await gql(client, bs, OVERVIEW, {"u": world.gid("a1")})
    [mine] = body["data"]["caseOverview"]["tenants"]["nodes"]
    assert (mine["total"], mine["correctionsOverdue"]) == (2, 0)

    # The export: every case the county reads, audited; a branch secretary may not.
    made = await gql(client, county, EXPORT, {"u": world.gid("county")})
    assert "errors" not in made, made
    export = made["data"]["exportCases"]
    assert export["caseCount"] == 4 and export["filename"].endswith(".xlsx")
    sheet = load_workbook(io.BytesIO(base64.b64decode(export["contentBase64"]))).active
    lines = [[c for c in row] for row in sheet.iter_rows(values_only=True)]
    assert lines[1][:4] == ["序号", "乡镇（单位）", "党支部", "党员"]
    by_member = {line[3]: line for line in lines[2:]}
    assert by_member["改正者"][5] == "限期改正中" and by_member["改正者"][11] == "改正期满未评定"
    assert "教育转化缺周（1 周）" == by_member[members["memA1"].name][11]
    assert by_member[members["otherA1"].name][9] == "已退党"
    assert by_member[members["memB1"].name][11] == "审批超期"
    body = await gql(client, bs, EXPORT, {"u": world.gid("a1")})
    assert error_codes(body) == ["FORBIDDEN"]
    audited = owner_conn.execute(
        "SELECT details FROM audit_events WHERE action = 'case.export' AND object_id = %(u)s",
        {"u": str(world.units["county"].id)},
    ).fetchall()
    assert [d[0]["cases"] for d in audited] == [4]


# --- the SQL's missed weeks are the pure rule's ----------------------------------------


@pytest.fixture
async def shared_case(
    state: AppState, world: World, owner_conn: psycopg.Connection[Any]
) -> tuple[Any, ...]:
    """A case in education with one educator, whose start and sessions each example sets."""
    async with state.db.transaction() as tx:
        op = await operator_principal(tx, name="tests")
        educator = await factories.member(tx, op, branch=world.units["a1"], name="联系人")
    today = business_today(state.clock())
    case_id = insert_case(
        owner_conn,
        world.units["a1"],
        world.members["memA1"],
        stage="educating",
        education_started_on=today,
    )
    add_sessions(owner_conn, case_id, educator, today, [])
    return owner_conn, case_id, educator.id, today


@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    st.integers(min_value=0, max_value=60),
    st.lists(st.integers(min_value=0, max_value=60), max_size=8),
)
def test_missed_weeks_in_sql_match_the_rule(
    shared_case: tuple[Any, ...], elapsed: int, session_days: list[int]
) -> None:
    owner_conn, case_id, educator_id, today = shared_case
    start = today - timedelta(days=elapsed)
    held = sorted({start + timedelta(days=d) for d in session_days if d <= elapsed})
    owner_conn.execute("DELETE FROM education_sessions WHERE case_id = %(c)s", {"c": case_id})
    owner_conn.execute(
        "UPDATE disposal_cases SET education_started_on = %(s)s WHERE id = %(c)s",
        {"s": start, "c": case_id},
    )
    for day in held:
        owner_conn.execute(
            "INSERT INTO education_sessions (tenant_id, case_id, educator_member_id, held_on,"
            " summary, recorded_by) SELECT tenant_id, %(c)s, %(m)s, %(d)s, '谈心', 'tests'"
            " FROM disposal_cases WHERE id = %(c)s",
            {"c": case_id, "m": educator_id, "d": day},
        )
    row = owner_conn.execute(
        f"SELECT missed_weeks FROM ({per_case_sql('TRUE')}) k WHERE k.id = %(c)s",
        {"c": case_id, "within": "/", "today": today, "now": datetime.now(UTC)},
    ).fetchone()
    assert row is not None
    assert row[0] == len(rules.missed_weeks(start, held, today))


# --- the demo's cases ---------------------------------------------------------------------


async def test_demo_cases_show_each_part_of_the_procedure(
    client: httpx.AsyncClient, state: AppState, world: World, owner_conn: psycopg.Connection[Any]
) -> None:
    """service/demo_cases.py against a test world's branch a1 (the loader acting for the
    demo accounts it does not find): one case in education with a missed week, one
    awaiting the county's pre-review, one closed by removal and archived."""
    from service.demo_cases import load_demo_cases

    async with state.db.transaction() as tx:
        op = await operator_principal(tx, name="tests")
        for i in range(7):
            await factories.member(tx, op, branch=world.units["a1"], name=f"演示党员{i}")
        made = await load_demo_cases(
            tx,
            op,
            progress=lambda _: None,
            branch_code=world.units["a1"].code,
            usernames=(world.user("bsA1"), world.user("secA"), world.user("county")),
        )
    assert made == 3
    county = await login(client, world.user("county"))
    body = await gql(client, county, OVERVIEW, {"u": world.gid("county")})
    [a] = [
        n for n in body["data"]["caseOverview"]["tenants"]["nodes"] if n["tenant"]["name"] == "甲镇"
    ]
    assert {s["stage"]: s["cases"] for s in a["stages"]} == {
        "EDUCATING": 1,
        "PROPOSED": 1,
        "CLOSED": 1,
    }
    assert (a["casesMissingWeeks"], a["missedWeeks"]) == (1, 1)
    rows = owner_conn.execute(
        "SELECT c.stage, c.outcome, c.committee_pre_reviewed, c.county_pre_reviewed,"
        " (SELECT count(*) FROM case_records r WHERE r.case_id = c.id AND r.kind = 'archive'),"
        " (SELECT count(*) FROM member_file_entries f WHERE f.case_id = c.id),"
        " m.status, m.left_by"
        " FROM disposal_cases c JOIN members m ON m.id = c.member_id"
        " WHERE c.tenant_id = %(t)s ORDER BY c.id",
        {"t": world.units["A"].tenant_id},
    ).fetchall()
    assert rows == [
        ("educating", None, False, False, 0, 0, "active", None),
        ("proposed", None, True, False, 0, 0, "active", None),
        ("closed", "removed", True, True, 1, 1, "removed", "removal"),
    ]


# --- the request's cost stays flat as cases grow ------------------------------------------

COST = """query($u: ID!) { caseOverview(orgUnitId: $u) {
  tenants(first: 20) { nodes { total open stages { stage cases } missedWeeks } }
  overdueCases(first: 20) { nodes { memberName overdue } } } }"""


async def test_overview_cost_is_pinned_and_flat(
    client: httpx.AsyncClient, state: AppState, world: World, owner_conn: psycopg.Connection[Any]
) -> None:
    """Two round trips (the unit for both fields, then both pages in one message), the
    same with 1 case as with 13."""
    today = business_today(state.clock())
    token = await login(client, world.user("county"))

    async def measured() -> Traffic:
        first = await gql(client, token, COST, {"u": world.gid("county")})
        assert "errors" not in first, first
        with watching(state.db) as traffic:
            again = await gql(client, token, COST, {"u": world.gid("county")})
        assert again == first
        return traffic

    async with state.db.transaction() as tx:
        op = await operator_principal(tx, name="tests")
        people = [
            await factories.member(tx, op, branch=world.units["a2"], name=f"成本{i}")
            for i in range(12)
        ]
    insert_case(
        owner_conn,
        world.units["a1"],
        world.members["memA1"],
        stage="correcting",
        correction_deadline=today - timedelta(days=1),
    )
    few = await measured()
    for person in people:
        insert_case(
            owner_conn,
            world.units["a2"],
            person,
            stage="correcting",
            correction_deadline=today - timedelta(days=1),
        )
    many = await measured()
    assert few.round_trips == many.round_trips == 2, many.messages
    assert few.statements == many.statements, (few.messages, many.messages)
