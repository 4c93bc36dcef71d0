"""Organizational life and tasks through the API: a branch records a meeting (members
not listed are absent), corrects an entry, gives tasks and records their outcome;
bad input has a declared code; another township's meetings, tasks and members are
not found."""

from __future__ import annotations

from datetime import date
from typing import Any

import httpx
import psycopg

from service.app import AppState
from service.auth.service import operator_principal
from service.schema.ids import from_global_id, to_global_id
from tests import factories
from tests.support import World, error_codes, gql, login

RECORD = """mutation($i: RecordMeetingInput!) { recordMeeting(input: $i) { meeting {
  id kind kindLabel heldOn topic branch { name }
  attendance(first: 50) { nodes { presence reason month member { name } } } } } }"""
UPDATE = """mutation($i: UpdateAttendanceInput!) { updateAttendance(input: $i) {
  attendance { presence reason member { name } } } }"""
ASSIGN = """mutation($i: AssignTaskInput!) { assignTask(input: $i) {
  task { id title dueOn outcome note member { name } } } }"""
OUTCOME = """mutation($i: RecordTaskOutcomeInput!) { recordTaskOutcome(input: $i) {
  task { id outcome note } } }"""
MEETINGS = """query($u: ID!, $from: Date, $to: Date) {
  meetings(orgUnitId: $u, first: 50, fromDate: $from, toDate: $to) {
    nodes { topic branch { name } } } }"""


async def branch_with_members(state: AppState, world: World, names: list[str]) -> tuple[Any, list]:
    """A new branch of A with members of these names."""
    async with state.db.transaction() as tx:
        op = await operator_principal(tx, name="tests")
        branch = await factories.org_unit(tx, op, parent=world.units["A"], name="甲镇新支部")
        members = [await factories.member(tx, op, branch=branch, name=n) for n in names]
    return branch, members


def gid(kind: str, row: Any) -> str:
    return to_global_id(kind, row.id)


def meeting_input(branch: Any, attendance: list[dict[str, Any]], **fields: Any) -> dict:
    return {
        "i": {
            "branchId": gid("OrgUnit", branch),
            "kind": "PARTY_LECTURE",
            "heldOn": "2026-03-12",
            "topic": "学习党章",
            "attendance": attendance,
            **fields,
        }
    }


async def test_a_meeting_lists_every_member_on_the_rolls_absent_unless_named(
    client: httpx.AsyncClient, state: AppState, world: World, owner_conn: psycopg.Connection[Any]
) -> None:
    branch, (zhang, li, wang) = await branch_with_members(state, world, ["张一", "李二", "王三"])
    org = await login(client, world.user("orgA"))
    body = await gql(
        client,
        org,
        RECORD,
        meeting_input(
            branch,
            [
                {"memberId": gid("Member", zhang), "presence": "ATTENDED"},
                {"memberId": gid("Member", li), "presence": "EXCUSED", "reason": "外出务工"},
            ],
        ),
    )
    assert "errors" not in body, body
    meeting = body["data"]["recordMeeting"]["meeting"]
    assert meeting["kind"] == "PARTY_LECTURE" and meeting["kindLabel"] == "党课"
    assert meeting["branch"]["name"] == "甲镇新支部"
    assert [
        (a["member"]["name"], a["presence"], a["reason"], a["month"])
        for a in meeting["attendance"]["nodes"]
    ] == [
        ("张一", "ATTENDED", None, "2026-03"),
        ("李二", "EXCUSED", "外出务工", "2026-03"),
        ("王三", "ABSENT", None, "2026-03"),
    ]
    months = owner_conn.execute(
        "SELECT DISTINCT month FROM meeting_attendance WHERE meeting_id = %s",
        (from_global_id(meeting["id"])[1],),
    ).fetchall()
    assert months == [(2026 * 12 + 2,)]

    # The absent member came after all: one entry corrected, audited.
    fixed = await gql(
        client,
        org,
        UPDATE,
        {
            "i": {
                "meetingId": meeting["id"],
                "memberId": gid("Member", wang),
                "presence": "ATTENDED",
            }
        },
    )
    assert fixed["data"]["updateAttendance"]["attendance"] == {
        "presence": "ATTENDED",
        "reason": None,
        "member": {"name": "王三"},
    }
    no_reason = await gql(
        client,
        org,
        UPDATE,
        {
            "i": {
                "meetingId": meeting["id"],
                "memberId": gid("Member", zhang),
                "presence": "EXCUSED",
            }
        },
    )
    assert error_codes(no_reason) == ["EXCUSE_REASON_REQUIRED"]

    mine = await gql(
        client,
        org,
        """query($id: ID!) { member(id: $id) { attendance { nodes { presence
          meeting { topic kind } } } } }""",
        {"id": gid("Member", wang)},
    )
    assert mine["data"]["member"]["attendance"]["nodes"] == [
        {"presence": "ATTENDED", "meeting": {"topic": "学习党章", "kind": "PARTY_LECTURE"}}
    ]
    events = owner_conn.execute(
        "SELECT action, details FROM audit_events WHERE object_type = 'Meeting'"
        " AND object_id = %s ORDER BY seq",
        (str(from_global_id(meeting["id"])[1]),),
    ).fetchall()
    assert [e[0] for e in events] == ["meeting.record", "meeting.attendance"]
    assert events[0][1]["absent"] == 1 and events[1][1]["to"] == "attended"


async def test_meetings_of_a_unit_and_its_branches_between_dates(
    client: httpx.AsyncClient, state: AppState, world: World
) -> None:
    async with state.db.transaction() as tx:
        op = await operator_principal(tx, name="tests")
        for unit, day, topic in (
            ("a2", date(2026, 1, 8), "一月党课"),
            ("a3", date(2026, 2, 8), "二月主题党日"),
            ("a3", date(2026, 3, 8), "三月支委会"),
        ):
            await factories.meeting(tx, op, branch=world.units[unit], held_on=day, topic=topic)
    org = await login(client, world.user("orgA"))
    ag = await gql(client, org, MEETINGS, {"u": world.gid("ag")})
    assert [m["topic"] for m in ag["data"]["meetings"]["nodes"]] == ["二月主题党日", "三月支委会"]
    between = await gql(
        client, org, MEETINGS, {"u": world.gid("A"), "from": "2026-01-01", "to": "2026-02-28"}
    )
    assert [m["topic"] for m in between["data"]["meetings"]["nodes"]] == [
        "一月党课",
        "二月主题党日",
    ]
    # a1's branch secretary reads a1's meetings only; A is not found for them.
    bs = await login(client, world.user("bsA1"))
    own = await gql(client, bs, MEETINGS, {"u": world.gid("a1")})
    assert [m["topic"] for m in own["data"]["meetings"]["nodes"]] == ["甲镇一支部党员大会"]
    assert error_codes(await gql(client, bs, MEETINGS, {"u": world.gid("A")})) == ["NOT_FOUND"]


async def test_refused_meetings_have_a_declared_code(
    client: httpx.AsyncClient, state: AppState, world: World
) -> None:
    branch, (zhang,) = await branch_with_members(state, world, ["张一"])
    org = await login(client, world.user("orgA"))
    other = world.member_gid("otherA1")  # a member of a1, not of this branch
    cases: list[tuple[dict[str, Any], str]] = [
        (
            meeting_input(branch, [{"memberId": other, "presence": "ATTENDED"}]),
            "ATTENDEE_NOT_IN_BRANCH",
        ),
        (
            meeting_input(branch, [{"memberId": gid("Member", zhang), "presence": "EXCUSED"}]),
            "EXCUSE_REASON_REQUIRED",
        ),
        (
            meeting_input(
                branch,
                [
                    {"memberId": gid("Member", zhang), "presence": "ATTENDED"},
                    {"memberId": gid("Member", zhang), "presence": "ABSENT"},
                ],
            ),
            "ATTENDEE_DUPLICATED",
        ),
        (meeting_input(branch, [], topic="  "), "TOPIC_INVALID"),
        (meeting_input(world.units["ag"], []), "NOT_A_BRANCH"),
    ]
    for variables, code in cases:
        body = await gql(client, org, RECORD, variables)
        assert error_codes(body) == [code], (code, body)
        if code == "ATTENDEE_NOT_IN_BRANCH":
            message = body["errors"][0]["message"]
            assert "otherA1同志" in message and str(world.members["otherA1"].id) not in message


async def test_tasks_are_assigned_and_their_outcome_recorded(
    client: httpx.AsyncClient, state: AppState, world: World, owner_conn: psycopg.Connection[Any]
) -> None:
    member = world.member_gid("otherA1")
    bs = await login(client, world.user("bsA1"))
    body = await gql(
        client,
        bs,
        ASSIGN,
        {
            "i": {
                "memberId": member,
                "title": "联系流动党员",
                "assignedOn": "2026-03-01",
                "dueOn": "2026-03-31",
            }
        },
    )
    assert "errors" not in body, body
    task = body["data"]["assignTask"]["task"]
    assert task["outcome"] is None and task["member"] == {"name": "otherA1同志"}
    due_month = owner_conn.execute(
        "SELECT due_month FROM member_tasks WHERE id = %s", (from_global_id(task["id"])[1],)
    ).fetchone()
    assert due_month == (2026 * 12 + 2,)

    late = await gql(
        client,
        bs,
        ASSIGN,
        {
            "i": {
                "memberId": member,
                "title": "x",
                "assignedOn": "2026-03-02",
                "dueOn": "2026-03-01",
            }
        },
    )
    assert error_codes(late) == ["TASK_DUE_BEFORE_ASSIGNED"]
    untitled = await gql(
        client,
        bs,
        ASSIGN,
        {
            "i": {
                "memberId": member,
                "title": " ",
                "assignedOn": "2026-03-02",
                "dueOn": "2026-03-03",
            }
        },
    )
    assert error_codes(untitled) == ["TASK_TITLE_INVALID"]

    for outcome in ("NOT_DONE", "EXCUSED"):
        silent = await gql(client, bs, OUTCOME, {"i": {"taskId": task["id"], "outcome": outcome}})
        assert error_codes(silent) == ["TASK_NOTE_REQUIRED"]
    excused = await gql(
        client, bs, OUTCOME, {"i": {"taskId": task["id"], "outcome": "EXCUSED", "note": "住院"}}
    )
    assert excused["data"]["recordTaskOutcome"]["task"] == {
        "id": task["id"],
        "outcome": "EXCUSED",
        "note": "住院",
    }
    listed = await gql(
        client,
        bs,
        "query($id: ID!) { member(id: $id) { tasks { nodes { title outcome } } } }",
        {"id": member},
    )
    assert listed["data"]["member"]["tasks"]["nodes"] == [
        {"title": "联系流动党员", "outcome": "EXCUSED"}
    ]
    events = owner_conn.execute(
        "SELECT action FROM audit_events WHERE object_type = 'MemberTask' AND object_id = %s"
        " ORDER BY seq",
        (str(from_global_id(task["id"])[1]),),
    ).fetchall()
    assert events == [("task.assign",), ("task.outcome",)]


async def test_another_townships_ids_are_not_found(
    client: httpx.AsyncClient, world: World, owner_conn: psycopg.Connection[Any]
) -> None:
    org = await login(client, world.user("orgA"))
    b_meeting, b_task = world.record_gid("meetingB1"), world.record_gid("taskB1")
    b_member = world.member_gid("memB1")
    missing = {k: to_global_id(k, 2**62) for k in ("Meeting", "MemberTask", "Member", "OrgUnit")}
    attempts = [
        (
            UPDATE,
            {"meetingId": b_meeting, "memberId": b_member, "presence": "ABSENT"},
            {"meetingId": missing["Meeting"], "memberId": b_member, "presence": "ABSENT"},
        ),
        (
            UPDATE,
            {
                "meetingId": world.record_gid("meetingA1"),
                "memberId": b_member,
                "presence": "ABSENT",
            },
            {
                "meetingId": world.record_gid("meetingA1"),
                "memberId": missing["Member"],
                "presence": "ABSENT",
            },
        ),
        (
            OUTCOME,
            {"taskId": b_task, "outcome": "DONE"},
            {"taskId": missing["MemberTask"], "outcome": "DONE"},
        ),
        (
            ASSIGN,
            {"memberId": b_member, "title": "t", "assignedOn": "2026-03-01", "dueOn": "2026-03-02"},
            {
                "memberId": missing["Member"],
                "title": "t",
                "assignedOn": "2026-03-01",
                "dueOn": "2026-03-02",
            },
        ),
        (
            RECORD,
            meeting_input(world.units["b1"], [])["i"],
            {**meeting_input(world.units["b1"], [])["i"], "branchId": missing["OrgUnit"]},
        ),
        (
            RECORD,
            meeting_input(world.units["a1"], [{"memberId": b_member, "presence": "ATTENDED"}])["i"],
            meeting_input(
                world.units["a1"], [{"memberId": missing["Member"], "presence": "ATTENDED"}]
            )["i"],
        ),
    ]
    before = owner_conn.execute("SELECT count(*) FROM meetings").fetchone()
    for document, theirs, control in attempts:
        body = await gql(client, org, document, {"i": theirs})
        expected = await gql(client, org, document, {"i": control})
        assert error_codes(body) == ["NOT_FOUND"], (theirs, body)
        assert body == expected
        assert "乙镇" not in str(body) and "memB1" not in str(body)
    assert owner_conn.execute("SELECT count(*) FROM meetings").fetchone() == before
    for node in (b_meeting, b_task):
        body = await gql(client, org, "query($id: ID!) { node(id: $id) { id } }", {"id": node})
        assert error_codes(body) == ["NOT_FOUND"]
    body = await gql(client, org, MEETINGS, {"u": world.gid("b1")})
    assert error_codes(body) == ["NOT_FOUND"]
