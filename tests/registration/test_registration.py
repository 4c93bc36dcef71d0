"""The registration drive (党员登记) through the API: opening (a tenant, or the county
for every tenant below it), members submitting their own application in the window
(late ones accepted and marked), the branch's review, the lists of submissions and of
who is missing, audit events and isolation between tenants."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import httpx
import psycopg

from service.app import AppState
from service.auth.service import operator_principal
from service.authz.roles import Role
from service.members.rules import MemberCategory
from service.members.service import link_account
from service.registration.rules import closes_on, window
from tests import factories
from tests.support import World, error_codes, gql, login

OPEN = """mutation($i: OpenRegistrationDriveInput!) { openRegistrationDrive(input: $i) {
  drives { id batch title opensOn closesOn tenant { name } } } }"""
SUBMIT = """mutation($i: SubmitRegistrationInput!) { submitRegistration(input: $i) {
  application { id isLate review wishesToStay channel member { name } drive { title } } } }"""
REVIEW = """mutation($i: ReviewRegistrationInput!) { reviewRegistration(input: $i) {
  application { id review reviewNote reviewedBy } } }"""
APPLICATIONS = """query($d: ID!, $u: ID, $late: Boolean, $stay: Boolean,
  $review: RegistrationReview) {
  registrationApplications(driveId: $d, orgUnitId: $u, late: $late, wishesToStay: $stay,
    review: $review) { nodes { member { name } isLate wishesToStay review } } }"""
MISSING = """query($d: ID!, $u: ID) { registrationMissing(driveId: $d, orgUnitId: $u) {
  nodes { member { name } isLate } } }"""


def _days_ago(n: int) -> str:
    return (date.today() - timedelta(days=n)).isoformat()


def _summary(drive: str, **extra: Any) -> dict[str, Any]:
    return {
        "driveId": drive,
        "thought": "坚定理想信念",
        "work": "完成本职工作",
        "conduct": "遵守纪律",
        "life": "勤俭节约",
        "wishesToStay": True,
        "channel": "MINI_PROGRAM",
    } | extra


async def _open(client: httpx.AsyncClient, world: World, unit: str, **extra: Any) -> list[Any]:
    county = await login(client, world.user("county"))
    fields = {"orgUnitId": world.gid(unit), "title": "2026年党员登记", "opensOn": _days_ago(1)}
    body = await gql(client, county, OPEN, {"i": fields | extra})
    assert "errors" not in body, body
    return list(body["data"]["openRegistrationDrive"]["drives"])


def test_window_rules() -> None:
    assert closes_on(date(2026, 3, 1), 15) == date(2026, 3, 15)
    assert closes_on(date(2026, 3, 1), 1) == date(2026, 3, 1)
    opens, last = date(2026, 3, 1), date(2026, 3, 15)
    assert window(opens, last, date(2026, 2, 28)).value == "not_open"
    assert window(opens, last, date(2026, 3, 15)).value == "open"
    assert window(opens, last, date(2026, 3, 16)).value == "closed"


async def test_county_drive_is_one_row_per_tenant_sharing_a_batch(
    client: httpx.AsyncClient, world: World, owner_conn: psycopg.Connection[Any]
) -> None:
    drives = await _open(client, world, "county", opensOn="2026-03-01")
    assert sorted(d["tenant"]["name"] for d in drives) == ["乙镇", "甲镇"]
    assert len({d["batch"] for d in drives}) == 1
    assert {(d["opensOn"], d["closesOn"]) for d in drives} == {("2026-03-01", "2026-03-15")}
    for unit in ("A", "B"):
        events = owner_conn.execute(
            "SELECT count(*) FROM audit_events WHERE tenant_id = %s"
            " AND action = 'registration.open' AND details->>'batch' = %s",
            (world.units[unit].tenant_id, drives[0]["batch"]),
        ).fetchone()
        assert events == (1,)
    # A township drive covers that township only; days may be set.
    [one] = await _open(client, world, "A", days=7, opensOn="2026-03-01")
    assert (one["tenant"]["name"], one["closesOn"]) == ("甲镇", "2026-03-07")


async def test_who_may_open_and_what_is_refused(client: httpx.AsyncClient, world: World) -> None:
    county = await login(client, world.user("county"))
    base = {"orgUnitId": world.gid("A"), "title": "登记", "opensOn": "2026-03-01"}
    cases = {
        "DRIVE_UNIT_INVALID": {"orgUnitId": world.gid("a1")},
        "DAYS_INVALID": {"days": 0},
        "TITLE_MISSING": {"title": " "},
    }
    for code, extra in cases.items():
        body = await gql(client, county, OPEN, {"i": base | extra})
        assert error_codes(body) == [code], body
    sec = await login(client, world.user("secA"))
    assert error_codes(await gql(client, sec, OPEN, {"i": base})) == ["FORBIDDEN"]
    org = await login(client, world.user("orgA"))
    b = await gql(client, org, OPEN, {"i": base | {"orgUnitId": world.gid("B")}})
    missing = await gql(client, org, OPEN, {"i": base | {"orgUnitId": "T3JnVW5pdDo5OTk5OTk5OTk="}})
    assert error_codes(b) == ["NOT_FOUND"] and b == missing


async def test_member_submits_once_in_the_window_and_late_is_marked(
    client: httpx.AsyncClient, world: World, owner_conn: psycopg.Connection[Any]
) -> None:
    [drive] = await _open(client, world, "A")
    mem = await login(client, world.user("memA1"))
    body = await gql(client, mem, SUBMIT, {"i": _summary(drive["id"])})
    assert "errors" not in body, body
    app = body["data"]["submitRegistration"]["application"]
    assert app["isLate"] is False and app["review"] == "PENDING"
    assert app["channel"] == "MINI_PROGRAM" and app["member"]["name"] == "memA1同志"
    again = await gql(client, mem, SUBMIT, {"i": _summary(drive["id"])})
    assert error_codes(again) == ["ALREADY_SUBMITTED"]

    [future] = await _open(client, world, "A", opensOn=(date.today() + timedelta(1)).isoformat())
    early = await gql(client, mem, SUBMIT, {"i": _summary(future["id"])})
    assert error_codes(early) == ["DRIVE_NOT_OPEN"]

    [closed] = await _open(client, world, "A", opensOn=_days_ago(30))
    late = await gql(client, mem, SUBMIT, {"i": _summary(closed["id"], wishesToStay=False)})
    assert late["data"]["submitRegistration"]["application"]["isLate"] is True

    [other] = await _open(client, world, "A")
    blank = await gql(client, mem, SUBMIT, {"i": _summary(other["id"], work=" ")})
    assert error_codes(blank) == ["SUMMARY_MISSING"]

    # Not a member record: the secretary may see the drive but has nothing to submit.
    sec = await login(client, world.user("secA"))
    assert error_codes(await gql(client, sec, SUBMIT, {"i": _summary(drive["id"])})) == [
        "FORBIDDEN"
    ]
    # B's drive is not there for A's member.
    b = await gql(client, mem, SUBMIT, {"i": _summary(world.record_gid("driveB1"))})
    assert error_codes(b) == ["NOT_FOUND"]

    # The member sees their own applications through `me`.
    me = await gql(
        client, mem, "{ me { member { registrations(first: 10) { nodes { isLate review } } } } }"
    )
    nodes = me["data"]["me"]["member"]["registrations"]["nodes"]
    assert [n["isLate"] for n in nodes] == [False, False, True]  # build_world's first
    actions = owner_conn.execute(
        "SELECT details->>'late' FROM audit_events WHERE action = 'registration.submit'"
        " AND tenant_id = %s ORDER BY seq",
        (world.units["A"].tenant_id,),
    ).fetchall()
    assert [a[0] for a in actions] == ["false", "true"]


async def test_only_full_members_on_the_rolls_submit(
    client: httpx.AsyncClient, state: AppState, world: World
) -> None:
    async with state.db.transaction() as tx:
        op = await operator_principal(tx, name="tests")
        probationary = await factories.member(
            tx, op, branch=world.units["a1"], category=MemberCategory.PROBATIONARY
        )
        account = await factories.account(
            tx,
            op,
            home=world.units["a1"],
            username=world.user("prob"),
            role=Role.MEMBER,
        )
        await link_account(tx, op, member_id=probationary.id, account_id=account.id)
    [drive] = await _open(client, world, "A")
    token = await login(client, world.user("prob"))
    body = await gql(client, token, SUBMIT, {"i": _summary(drive["id"])})
    assert error_codes(body) == ["NOT_FULL_MEMBER"]
    # ... and they are not listed as missing either.
    org = await login(client, world.user("orgA"))
    missing = await gql(client, org, MISSING, {"d": drive["id"]})
    names = [n["member"]["name"] for n in missing["data"]["registrationMissing"]["nodes"]]
    assert sorted(names) == ["memA1同志", "otherA1同志"]


async def test_branch_reviews_returns_with_a_note_and_member_resubmits(
    client: httpx.AsyncClient, world: World, owner_conn: psycopg.Connection[Any]
) -> None:
    [drive] = await _open(client, world, "A")
    mem = await login(client, world.user("memA1"))
    body = await gql(client, mem, SUBMIT, {"i": _summary(drive["id"])})
    app_id = body["data"]["submitRegistration"]["application"]["id"]
    bs = await login(client, world.user("bsA1"))
    no_note = await gql(
        client, bs, REVIEW, {"i": {"applicationId": app_id, "decision": "RETURNED"}}
    )
    assert error_codes(no_note) == ["NOTE_REQUIRED"]
    returned = await gql(
        client,
        bs,
        REVIEW,
        {"i": {"applicationId": app_id, "decision": "RETURNED", "note": "工作方面请写具体"}},
    )
    assert returned["data"]["reviewRegistration"]["application"] == {
        "id": app_id,
        "review": "RETURNED",
        "reviewNote": "工作方面请写具体",
        "reviewedBy": world.user("bsA1"),
    }
    again = await gql(client, mem, SUBMIT, {"i": _summary(drive["id"], work="带头完成任务")})
    assert again["data"]["submitRegistration"]["application"]["review"] == "PENDING"
    assert again["data"]["submitRegistration"]["application"]["id"] == app_id
    accept = {"i": {"applicationId": app_id, "decision": "ACCEPTED"}}
    ok = await gql(client, bs, REVIEW, accept)
    assert ok["data"]["reviewRegistration"]["application"]["review"] == "ACCEPTED"
    assert error_codes(await gql(client, bs, REVIEW, accept)) == ["ALREADY_REVIEWED"]
    # A member may not review, not even their own.
    assert error_codes(await gql(client, mem, REVIEW, accept)) == ["NOT_FOUND"]
    events = owner_conn.execute(
        "SELECT action, details->>'decision' FROM audit_events WHERE object_type ="
        " 'RegistrationApplication' AND tenant_id = %s ORDER BY seq",
        (world.units["A"].tenant_id,),
    ).fetchall()
    assert events == [
        ("registration.submit", None),
        ("registration.review", "returned"),
        ("registration.submit", None),
        ("registration.review", "accepted"),
    ]


async def test_lists_of_submissions_and_of_the_missing(
    client: httpx.AsyncClient, world: World
) -> None:
    [closed] = await _open(client, world, "A", opensOn=_days_ago(30))
    mem = await login(client, world.user("memA1"))
    await gql(client, mem, SUBMIT, {"i": _summary(closed["id"], wishesToStay=False)})
    org = await login(client, world.user("orgA"))

    async def listed(**variables: Any) -> list[Any]:
        body = await gql(client, org, APPLICATIONS, {"d": closed["id"]} | variables)
        assert "errors" not in body, body
        return list(body["data"]["registrationApplications"]["nodes"])

    [only] = await listed()
    assert only == {
        "member": {"name": "memA1同志"},
        "isLate": True,
        "wishesToStay": False,
        "review": "PENDING",
    }
    assert await listed(stay=False) == [only] and await listed(stay=True) == []
    assert await listed(late=True) == [only] and await listed(late=False) == []
    assert await listed(review="ACCEPTED") == []
    assert await listed(u=world.gid("a2")) == []
    missing = await gql(client, org, MISSING, {"d": closed["id"]})
    assert missing["data"]["registrationMissing"]["nodes"] == [
        {"member": {"name": "otherA1同志"}, "isLate": True}
    ]
    # The branch secretary lists their branch; A's units above it are not theirs.
    bs = await login(client, world.user("bsA1"))
    mine = await gql(client, bs, MISSING, {"d": closed["id"], "u": world.gid("a1")})
    assert [n["member"]["name"] for n in mine["data"]["registrationMissing"]["nodes"]] == [
        "otherA1同志"
    ]
    above = await gql(client, bs, MISSING, {"d": closed["id"], "u": world.gid("A")})
    assert error_codes(above) == ["NOT_FOUND"]
    # Drives: the member sees their tenant's, A's committee not B's, the county both.
    titles = "{ registrationDrives(first: 100) { nodes { title } } }"
    for who, expect_b in (("memA1", False), ("bsA1", False), ("orgA", False), ("county", True)):
        token = await login(client, world.user(who))
        body = await gql(client, token, titles)
        names = [n["title"] for n in body["data"]["registrationDrives"]["nodes"]]
        assert "甲镇党员登记" in names, (who, names)
        assert ("乙镇党员登记" in names) is expect_b, (who, names)


async def test_a_committee_finds_nothing_of_b(client: httpx.AsyncClient, world: World) -> None:
    missing_drive = "UmVnaXN0cmF0aW9uRHJpdmU6OTk5OTk5OTk5"
    for who in ("secA", "orgA", "bsA1"):
        token = await login(client, world.user(who))
        for query in (APPLICATIONS, MISSING):
            b = await gql(client, token, query, {"d": world.record_gid("driveB1")})
            gone = await gql(client, token, query, {"d": missing_drive})
            assert error_codes(b) == ["NOT_FOUND"] and b == gone, (who, b)
        review = {"applicationId": world.record_gid("applicationB1"), "decision": "ACCEPTED"}
        assert error_codes(await gql(client, token, REVIEW, {"i": review})) == ["NOT_FOUND"]
        node = "query($id: ID!) { node(id: $id) { id } }"
        for name in ("driveB1", "applicationB1"):
            body = await gql(client, token, node, {"id": world.record_gid(name)})
            assert error_codes(body) == ["NOT_FOUND"], (who, name)


def test_the_docstring_examples_hold() -> None:
    import doctest

    from service.members import mobile
    from service.registration import rules

    assert doctest.testmod(rules).failed == 0
    assert doctest.testmod(mobile).failed == 0
