"""Discipline sanctions (党纪处分): the pure rules evaluations will rely on (probation,
the grading overrides) with worked examples and properties, and recording and reading
sanctions through the API: who may, what expulsion does, the audit trail, isolation."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import httpx
import psycopg
from hypothesis import given
from hypothesis import strategies as st

from service.sanctions.rules import (
    Override,
    Sanction,
    SanctionKind,
    add_years,
    grade_override,
    probation_ends_on,
    sanctions_in_year,
    under_probation,
)
from service.schema.ids import from_global_id
from tests.support import World, error_codes, gql, login

K = SanctionKind

# --- rules: worked examples -----------------------------------------------------------


def test_probation_ends_one_or_two_years_after_the_decision() -> None:
    assert probation_ends_on(K.PROBATION_ONE_YEAR, date(2024, 6, 3)) == date(2025, 6, 3)
    assert probation_ends_on(K.PROBATION_TWO_YEARS, date(2024, 6, 3)) == date(2026, 6, 3)
    assert probation_ends_on(K.PROBATION_ONE_YEAR, date(2024, 2, 29)) == date(2025, 2, 28)
    for kind in (K.WARNING, K.SERIOUS_WARNING, K.REMOVAL_FROM_POST, K.EXPULSION):
        assert probation_ends_on(kind, date(2024, 6, 3)) is None


def test_under_probation_from_the_decision_until_the_end() -> None:
    s = [Sanction.decided(K.PROBATION_TWO_YEARS, date(2024, 6, 3))]
    assert not under_probation(s, date(2024, 6, 2))
    assert under_probation(s, date(2024, 6, 3))
    assert under_probation(s, date(2026, 6, 2))
    assert not under_probation(s, date(2026, 6, 3))
    # Other kinds never take the vote away.
    others = [Sanction.decided(k, date(2024, 6, 3)) for k in (K.WARNING, K.SERIOUS_WARNING)]
    assert not under_probation(others, date(2024, 7, 1))


def test_sanctions_in_year_by_decision_date() -> None:
    a = Sanction.decided(K.WARNING, date(2024, 12, 31))
    b = Sanction.decided(K.SERIOUS_WARNING, date(2025, 1, 1))
    c = Sanction.decided(K.WARNING, date(2024, 3, 1))
    assert sanctions_in_year([a, b, c], 2024) == [c, a]
    assert sanctions_in_year([a, b, c], 2025) == [b]
    assert sanctions_in_year([a, b, c], 2023) == []


def test_grade_overrides_worked_examples() -> None:
    """DOMAIN.md "Discipline overrides", for the round's calendar year."""

    def of(kind: SanctionKind, day: date, year: int) -> Override:
        return grade_override([Sanction.decided(kind, day)], year)

    day = date(2024, 9, 10)
    # 警告: cannot be excellent in that year, nothing the year after.
    assert of(K.WARNING, day, 2024) is Override.NOT_EXCELLENT
    assert of(K.WARNING, day, 2025) is Override.NONE
    # 严重警告, 撤销党内职务, 留党察看一年: unqualified in that year only.
    for kind in (K.SERIOUS_WARNING, K.REMOVAL_FROM_POST, K.PROBATION_ONE_YEAR):
        assert of(kind, day, 2024) is Override.UNQUALIFIED
        assert of(kind, day, 2025) is Override.NONE
        assert of(kind, day, 2023) is Override.NONE
    # 留党察看二年: unqualified in that year, a written comment only the next, then graded.
    assert of(K.PROBATION_TWO_YEARS, day, 2024) is Override.UNQUALIFIED
    assert of(K.PROBATION_TWO_YEARS, day, 2025) is Override.COMMENT_ONLY
    assert of(K.PROBATION_TWO_YEARS, day, 2026) is Override.NONE
    # 开除党籍: not evaluated, then or ever after.
    assert of(K.EXPULSION, day, 2024) is Override.NOT_EVALUATED
    assert of(K.EXPULSION, day, 2027) is Override.NOT_EVALUATED
    assert of(K.EXPULSION, day, 2023) is Override.NONE
    # A sanction of the year outranks the comment-only year; a warning does not.
    p2 = Sanction.decided(K.PROBATION_TWO_YEARS, date(2024, 1, 5))
    warning = Sanction.decided(K.WARNING, date(2025, 4, 1))
    serious = Sanction.decided(K.SERIOUS_WARNING, date(2025, 4, 1))
    assert grade_override([p2, warning], 2025) is Override.COMMENT_ONLY
    assert grade_override([p2, serious], 2025) is Override.UNQUALIFIED
    assert grade_override([], 2025) is Override.NONE


# --- rules: properties ----------------------------------------------------------------

days = st.dates(min_value=date(1990, 1, 1), max_value=date(2090, 12, 31))
kinds = st.sampled_from(list(SanctionKind))
sanctions = st.lists(st.builds(Sanction.decided, kinds, days), max_size=6)


@given(days, st.integers(min_value=1, max_value=5))
def test_add_years_keeps_the_month(day: date, years: int) -> None:
    later = add_years(day, years)
    assert (later.year, later.month) == (day.year + years, day.month)
    assert later.day == day.day or (day.month, day.day, later.day) == (2, 29, 28)


@given(sanctions, st.integers(min_value=1990, max_value=2095))
def test_override_depends_only_on_this_and_earlier_years(s: list[Sanction], year: int) -> None:
    later = [x for x in s if x.decided_on.year > year]
    earlier = [x for x in s if x.decided_on.year <= year]
    assert grade_override(s, year) is grade_override(earlier, year)
    assert grade_override(later, year) is Override.NONE


# Weakest to strongest, as grade_override's docstring rules: a fresh sanction's 不合格
# outranks the comment-only year after 留党察看二年 (not the enum's declaration order).
STRENGTH = (
    Override.NONE,
    Override.NOT_EXCELLENT,
    Override.COMMENT_ONLY,
    Override.UNQUALIFIED,
    Override.NOT_EVALUATED,
)


def test_a_fresh_serious_sanction_outranks_the_comment_only_year() -> None:
    probation = Sanction.decided(SanctionKind.PROBATION_TWO_YEARS, date(2003, 1, 1))
    warning = Sanction.decided(SanctionKind.SERIOUS_WARNING, date(2004, 1, 1))
    assert grade_override([probation], 2004) is Override.COMMENT_ONLY
    assert grade_override([probation, warning], 2004) is Override.UNQUALIFIED


@given(sanctions, st.integers(min_value=1990, max_value=2095))
def test_override_is_the_strongest_of_each_alone(s: list[Sanction], year: int) -> None:
    order = list(STRENGTH)
    assert set(order) == set(Override)
    alone = [grade_override([x], year) for x in s]
    strongest = max(alone, key=order.index, default=Override.NONE)
    assert grade_override(s, year) is strongest


@given(sanctions, days)
def test_no_vote_only_within_a_probation(s: list[Sanction], on: date) -> None:
    within = any(
        x.probation_ends_on is not None and x.decided_on <= on < x.probation_ends_on for x in s
    )
    assert under_probation(s, on) is within


# --- through the API ------------------------------------------------------------------

RECORD = """mutation($i: RecordSanctionInput!) { recordSanction(input: $i) {
  sanction { id kind decidedOn probationEndsOn decidedBy matter recordedBy
             member { name status } } } }"""
SANCTIONS = """query($id: ID!) { member(id: $id) { status
  sanctions(first: 10) { nodes { id kind decidedOn probationEndsOn } } } }"""


def _input(world: World, who: str = "otherA1", **extra: Any) -> dict[str, Any]:
    return {
        "memberId": world.member_gid(who),
        "kind": "PROBATION_ONE_YEAR",
        "decidedOn": "2025-03-15",
        "decidedBy": "中共甲镇委员会",
        "matter": "违反廉洁纪律",
    } | extra


def _audit(owner_conn: psycopg.Connection[Any], tenant: int) -> list[tuple[str, str, str]]:
    rows = owner_conn.execute(
        "SELECT action, object_type, details::text FROM audit_events WHERE tenant_id = %s"
        " AND action IN ('sanction.record', 'member.status') ORDER BY seq",
        (tenant,),
    ).fetchall()
    return [(r[0], r[1], r[2]) for r in rows]


async def test_secretary_records_a_probation_with_its_end(
    client: httpx.AsyncClient, world: World, owner_conn: psycopg.Connection[Any]
) -> None:
    token = await login(client, world.user("secA"))
    body = await gql(client, token, RECORD, {"i": _input(world)})
    assert "errors" not in body, body
    s = body["data"]["recordSanction"]["sanction"]
    assert s["kind"] == "PROBATION_ONE_YEAR"
    assert (s["decidedOn"], s["probationEndsOn"]) == ("2025-03-15", "2026-03-15")
    assert s["recordedBy"] == world.user("secA")
    assert s["member"] == {"name": "otherA1同志", "status": "ACTIVE"}

    # The branch secretary reads it on the member and as a node.
    bs = await login(client, world.user("bsA1"))
    read = await gql(client, bs, SANCTIONS, {"id": world.member_gid("otherA1")})
    kinds = [n["kind"] for n in read["data"]["member"]["sanctions"]["nodes"]]
    assert kinds == ["WARNING", "PROBATION_ONE_YEAR"]  # build_world's warning first
    node = await gql(
        client,
        bs,
        "query($id: ID!) { node(id: $id) { ... on Sanction { matter } } }",
        {"id": s["id"]},
    )
    assert node["data"]["node"] == {"matter": "违反廉洁纪律"}

    tenant = world.units["A"].tenant_id
    events = _audit(owner_conn, tenant)
    assert events[-1][:2] == ("sanction.record", "Sanction")
    assert '"probation_one_year"' in events[-1][2]


async def test_expulsion_moves_the_member_to_expelled_in_the_same_write(
    client: httpx.AsyncClient, world: World, owner_conn: psycopg.Connection[Any]
) -> None:
    token = await login(client, world.user("orgA"))
    body = await gql(client, token, RECORD, {"i": _input(world, kind="EXPULSION")})
    assert "errors" not in body, body
    s = body["data"]["recordSanction"]["sanction"]
    assert s["probationEndsOn"] is None
    read = await gql(client, token, SANCTIONS, {"id": world.member_gid("otherA1")})
    assert read["data"]["member"]["status"] == "EXPELLED"
    history = owner_conn.execute(
        "SELECT kind, effective_on, details->>'to' FROM member_history WHERE member_id = %s"
        " ORDER BY id DESC LIMIT 1",
        (world.members["otherA1"].id,),
    ).fetchone()
    assert history == ("status_changed", date(2025, 3, 15), "expelled")
    actions = [e[0] for e in _audit(owner_conn, world.units["A"].tenant_id)]
    assert actions[-2:] == ["sanction.record", "member.status"]

    # An expelled member is sanctioned no more.
    again = await gql(client, token, RECORD, {"i": _input(world, kind="WARNING")})
    assert error_codes(again) == ["MEMBER_HAS_LEFT"]


async def test_bad_input_is_refused_with_its_code_and_writes_nothing(
    client: httpx.AsyncClient, world: World, owner_conn: psycopg.Connection[Any]
) -> None:
    token = await login(client, world.user("secA"))
    tomorrow = (date.today() + timedelta(days=1)).isoformat()
    cases = {
        "DECIDED_BY_MISSING": {"decidedBy": "  "},
        "MATTER_MISSING": {"matter": "x" * 1001},
        "DECIDED_IN_FUTURE": {"decidedOn": tomorrow},
    }
    count = "SELECT count(*) FROM sanctions WHERE member_id = %s"
    before = owner_conn.execute(count, (world.members["otherA1"].id,)).fetchone()
    for code, extra in cases.items():
        body = await gql(client, token, RECORD, {"i": _input(world, kind="EXPULSION", **extra)})
        assert error_codes(body) == [code], body
    assert owner_conn.execute(count, (world.members["otherA1"].id,)).fetchone() == before
    status = owner_conn.execute(
        "SELECT status FROM members WHERE id = %s", (world.members["otherA1"].id,)
    ).fetchone()
    assert status == ("active",)


async def test_who_may_record_and_read(client: httpx.AsyncClient, world: World) -> None:
    # The branch secretary reads the ledger but does not record sanctions.
    bs = await login(client, world.user("bsA1"))
    assert error_codes(await gql(client, bs, RECORD, {"i": _input(world)})) == ["FORBIDDEN"]
    # A's committee with B's member, or B's sanction: what a missing id gets.
    for who in ("secA", "orgA"):
        token = await login(client, world.user(who))
        b = await gql(client, token, RECORD, {"i": _input(world, who="memB1")})
        missing = await gql(
            client, token, RECORD, {"i": _input(world) | {"memberId": "TWVtYmVyOjk5OTk5OTk5OTk="}}
        )
        assert error_codes(b) == ["NOT_FOUND"] and b == missing, (b, missing)
        node = "query($id: ID!) { node(id: $id) { id } }"
        b_sanction = await gql(client, token, node, {"id": world.record_gid("sanctionB1")})
        assert error_codes(b_sanction) == ["NOT_FOUND"]
    # The member sees their own sanctions through `me`; another's stay hidden.
    org = await login(client, world.user("orgA"))
    await gql(client, org, RECORD, {"i": _input(world, who="memA1", kind="WARNING")})
    mem = await login(client, world.user("memA1"))
    me = await gql(client, mem, "{ me { member { sanctions { nodes { kind decidedBy } } } } }")
    assert me["data"]["me"]["member"]["sanctions"]["nodes"] == [
        {"kind": "WARNING", "decidedBy": "中共甲镇委员会"}
    ]
    other = await gql(
        client,
        mem,
        "query($id: ID!) { node(id: $id) { id } }",
        {"id": world.record_gid("sanctionA1")},
    )
    assert error_codes(other) == ["NOT_FOUND"]
    assert from_global_id(world.record_gid("sanctionA1"))[0] == "Sanction"


def test_the_docstring_examples_hold() -> None:
    import doctest

    from service.sanctions import rules

    assert doctest.testmod(rules).failed == 0
