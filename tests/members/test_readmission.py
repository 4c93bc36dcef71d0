"""Re-admission: the 5-year bar (pure rule: worked examples and properties), and the
service over HTTP: refused at 4 years 364 days, allowed at 5 years with a NEW record
linked to the old one, which stays as it was."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import httpx
import psycopg
import pytest
from hypothesis import given
from hypothesis import strategies as st

from service.app import AppState
from service.auth.service import load_principal, operator_principal
from service.errors import DomainError
from service.members import readmission, rules
from service.members.readmission import (
    Readmission,
    rejoin_allowed_from,
    rejoin_barred,
    years_later,
)
from service.members.service import open_pii
from service.schema.ids import from_global_id, to_global_id
from tests import factories
from tests.support import World, error_codes, gql, login

READMIT = """mutation($input: ReadmitMemberInput!) {
  readmitMember(input: $input) {
    member { id name status category joinedOn }
    previousMemberId
  }
}"""

# --- the rule -----------------------------------------------------------------------


def test_bar_worked_examples() -> None:
    left = date(2020, 3, 10)
    assert rejoin_allowed_from(left) == date(2025, 3, 10)
    # 4 calendar years and 364 days (2024-03-10 + 364 days, 2024-02-29 being before)
    four_364 = years_later(left, 4) + timedelta(days=364)
    assert four_364 == date(2025, 3, 9)
    assert rejoin_barred("removal", left, four_364)
    assert not rejoin_barred("removal", left, date(2025, 3, 10))
    assert rejoin_barred("persuasion", left, date(2025, 3, 9))
    # a voluntary withdrawal, or no known way of leaving, has no bar
    assert not rejoin_barred("withdrawal", left, date(2020, 3, 11))
    assert not rejoin_barred(None, left, date(2020, 3, 11))
    # a barring way without a known day: five years cannot be shown to have passed
    assert rejoin_barred("removal", None, date(2040, 1, 1))
    assert not rejoin_barred("withdrawal", None, date(2020, 3, 11))
    # Feb 29: the period ends on the last day of February (民法典第二百零二条)
    assert rejoin_allowed_from(date(2020, 2, 29)) == date(2025, 2, 28)
    assert rejoin_barred("removal", date(2020, 2, 29), date(2025, 2, 27))
    assert not rejoin_barred("removal", date(2020, 2, 29), date(2025, 2, 28))
    # into a leap year: Feb 29 has its corresponding day
    assert rejoin_allowed_from(date(2019, 2, 28)) == date(2024, 2, 28)
    assert years_later(date(2024, 2, 29), 4) == date(2028, 2, 29)


days = st.dates(min_value=date(1950, 1, 1), max_value=date(2090, 12, 31))


@given(days)
def test_allowed_from_is_five_calendar_years_on(left: date) -> None:
    allowed = rejoin_allowed_from(left)
    assert (allowed.year, allowed.month) == (left.year + 5, left.month)
    assert allowed.day == left.day or (left.month, left.day, allowed.day) == (2, 29, 28)
    assert 5 * 365 <= (allowed - left).days <= 5 * 365 + 2


@given(days, st.integers(min_value=-400, max_value=3000))
def test_barred_exactly_before_the_day(left: date, offset: int) -> None:
    on = left + timedelta(days=offset)
    barred = rejoin_barred("removal", left, on)
    assert barred == (on < rejoin_allowed_from(left))
    # the day before the allowed day is always barred, the day itself never
    assert rejoin_barred("persuasion", left, rejoin_allowed_from(left) - timedelta(days=1))
    assert not rejoin_barred("persuasion", left, rejoin_allowed_from(left))


@given(days, days, days)
def test_a_later_leaving_is_never_allowed_earlier(a: date, b: date, on: date) -> None:
    early, late = sorted((a, b))
    assert rejoin_allowed_from(early) <= rejoin_allowed_from(late)
    if rejoin_barred("removal", early, on):
        assert rejoin_barred("removal", late, on)


# --- the service --------------------------------------------------------------------


async def left_member(
    state: AppState,
    owner_conn: psycopg.Connection[Any],
    world: World,
    *,
    left_by: str,
    left_on: date,
    status: str = "removed",
) -> Any:
    """A member of a1 who left `left_by` on `left_on` (set directly, as cases-core's
    approved disposal sets it)."""
    async with state.db.transaction() as tx:
        op = await operator_principal(tx, name="tests")
        # Born 1980, so that joining in 2005 is after 18 whatever the serial gives.
        row = await factories.member(
            tx,
            op,
            branch=world.units["a1"],
            joined_on=date(2005, 7, 1),
            name="离党者",
            id_number=factories.id_number(date(1980, 5, 1)),
        )
    owner_conn.execute(
        "UPDATE members SET status = %(s)s, status_changed_on = %(on)s, left_on = %(on)s,"
        " left_by = %(by)s WHERE id = %(id)s",
        {"s": status, "on": left_on, "by": left_by, "id": row.id},
    )
    return row


def old_state(owner_conn: psycopg.Connection[Any], member_id: int) -> tuple[Any, ...]:
    row = owner_conn.execute(
        "SELECT m.*, (SELECT count(*) FROM member_history h WHERE h.member_id = m.id)"
        " FROM members m WHERE id = %(id)s",
        {"id": member_id},
    ).fetchone()
    assert row is not None
    return tuple(row)


async def test_removed_member_is_refused_at_4y364d_and_readmitted_at_5y(
    client: httpx.AsyncClient, state: AppState, world: World, owner_conn: psycopg.Connection[Any]
) -> None:
    left_on = date(2020, 3, 10)
    old = await left_member(state, owner_conn, world, left_by="removal", left_on=left_on)
    before = old_state(owner_conn, old.id)
    token = await login(client, world.user("orgA"))
    variables = {
        "input": {
            "previousMemberId": to_global_id("Member", old.id),
            "branchId": world.gid("a2"),
            "joinedOn": "2025-03-09",
        }
    }
    saved = state.clock
    try:
        # 4 years 364 days later (Asia/Shanghai): refused
        state.clock = lambda: datetime(2025, 3, 9, 15, 0, tzinfo=UTC)  # 23:00 in Shanghai
        body = await gql(client, token, READMIT, variables)
        assert error_codes(body) == ["REJOIN_BARRED"]
        assert "2025-03-10" in body["errors"][0]["message"]
        # 16:00 UTC on the 9th is already the 10th in Shanghai: 5 years, allowed
        state.clock = lambda: datetime(2025, 3, 9, 16, 0, tzinfo=UTC)
        variables["input"]["joinedOn"] = "2025-03-10"
        body = await gql(client, token, READMIT, variables)
    finally:
        state.clock = saved
    assert "errors" not in body, body
    made = body["data"]["readmitMember"]
    assert made["previousMemberId"] == to_global_id("Member", old.id)
    assert made["member"]["status"] == "ACTIVE"
    assert made["member"]["category"] == "PROBATIONARY"
    assert made["member"]["joinedOn"] == "2025-03-10"
    new_id = from_global_id(made["member"]["id"], "Member")[1]
    assert new_id != old.id

    # The old record is untouched; the new one links it, same person, next generation.
    assert old_state(owner_conn, old.id) == before
    new = owner_conn.execute(
        "SELECT previous_member_id, generation, branch_id, id_number_hmac, tenant_id"
        " FROM members WHERE id = %(id)s",
        {"id": new_id},
    ).fetchone()
    old_key = owner_conn.execute(
        "SELECT id_number_hmac FROM members WHERE id = %(id)s", {"id": old.id}
    ).fetchone()
    assert new is not None and old_key is not None
    assert (new[0], new[1], new[2]) == (old.id, 1, world.units["a2"].id)
    assert new[3] == old_key[0]
    async with state.db.transaction() as tx:
        await operator_principal(tx, name="tests")
        assert (await open_pii(tx, new_id)).id_number == (await open_pii(tx, old.id)).id_number
        entries = await tx.rows(
            "SELECT kind, data FROM member_file_entries WHERE member_id = %(id)s", {"id": new_id}
        )
        events = await tx.rows(
            "SELECT action FROM audit_events WHERE object_type = 'Member' AND object_id = %(id)s",
            {"id": str(new_id)},
        )
    assert [(e.kind, e.data["previous_member_id"]) for e in entries] == [("readmission", old.id)]
    assert [e.action for e in events] == ["member.readmit"]

    # Once only: the same old record again is ALREADY_READMITTED.
    state.clock = lambda: datetime(2025, 6, 1, tzinfo=UTC)
    try:
        body = await gql(client, token, READMIT, variables)
    finally:
        state.clock = saved
    assert error_codes(body) == ["ALREADY_READMITTED"]


async def readmit(
    state: AppState,
    client: httpx.AsyncClient,
    world: World,
    who: str,
    new: Readmission,
    today: date,
) -> Any:
    claims = state.tokens.validate_access_token(await login(client, world.user(who)))
    assert claims is not None
    principal = await load_principal(state.db, claims)
    async with state.db.transaction() as tx:
        tx.rescope(principal.scope)
        return await readmission.readmit_member(tx, principal, new, today=today)


@pytest.mark.parametrize(
    ("left_by", "left_on", "today", "code"),
    [
        ("persuasion", date(2020, 2, 29), date(2025, 2, 27), "REJOIN_BARRED"),
        ("persuasion", date(2020, 2, 29), date(2025, 2, 28), None),
        ("withdrawal", date(2024, 1, 5), date(2024, 6, 1), None),
    ],
)
async def test_bar_by_way_of_leaving(
    client: httpx.AsyncClient,
    state: AppState,
    world: World,
    owner_conn: psycopg.Connection[Any],
    left_by: str,
    left_on: date,
    today: date,
    code: str | None,
) -> None:
    status = "removed" if left_by == "removal" else "withdrew"
    old = await left_member(
        state, owner_conn, world, left_by=left_by, left_on=left_on, status=status
    )
    new = Readmission(previous_member_id=old.id, branch_id=world.units["a1"].id, joined_on=today)
    if code is None:
        row = await readmit(state, client, world, "orgA", new, today)
        assert row.status == "active"
    else:
        with pytest.raises(DomainError) as refused:
            await readmit(state, client, world, "orgA", new, today)
        assert refused.value.code == code


async def test_only_a_left_record_in_reach_can_be_readmitted(
    client: httpx.AsyncClient, state: AppState, world: World, owner_conn: psycopg.Connection[Any]
) -> None:
    today = date(2030, 1, 1)
    # an active member is not a left record
    active = Readmission(
        previous_member_id=world.members["otherA1"].id,
        branch_id=world.units["a1"].id,
        joined_on=today,
    )
    with pytest.raises(DomainError) as refused:
        await readmit(state, client, world, "orgA", active, today)
    assert refused.value.code == "REJOIN_NOT_LEFT"
    old = await left_member(state, owner_conn, world, left_by="removal", left_on=date(2020, 1, 1))
    # B's organizer cannot reach A's old record, nor can A's put it into B's branch
    into_b = Readmission(previous_member_id=old.id, branch_id=world.units["b1"].id, joined_on=today)
    for who in ("orgB", "orgA"):
        with pytest.raises(DomainError) as refused:
            await readmit(state, client, world, who, into_b, today)
        assert refused.value.code == "NOT_FOUND"
    # the county may: the person re-joins in the other township, linked across tenants
    row = await readmit(state, client, world, "county", into_b, today)
    assert row.tenant_id == world.units["B"].tenant_id
    assert row.tenant_id != old.tenant_id


async def test_name_phone_and_age_are_checked_as_when_adding_a_member(
    client: httpx.AsyncClient, state: AppState, world: World, owner_conn: psycopg.Connection[Any]
) -> None:
    """One person is accepted or refused the same way by `addMember` and by re-admission:
    the name cleaned alike (spaces between Chinese characters go), the phone normalized
    alike (+86, spaces, full-width digits), the 18th birthday of someone born on
    29 February falling on 1 March in a common year (`rules.joined_under_18`)."""
    old = await left_member(
        state, owner_conn, world, left_by="withdrawal", left_on=date(2018, 2, 1), status="withdrew"
    )
    owner_conn.execute(
        "UPDATE members SET birth_date = '2000-02-29' WHERE id = %(id)s", {"id": old.id}
    )
    branch = world.units["a1"].id
    today = date(2018, 3, 5)

    def asked(**changes: Any) -> Readmission:
        values = {"previous_member_id": old.id, "branch_id": branch, "joined_on": today}
        return Readmission(**(values | changes))

    for new, code in (
        (asked(joined_on=date(2018, 2, 28)), "JOINED_UNDER_18"),
        (asked(phone="12345"), "PHONE_INVALID"),
        (asked(name="张" * 51), "NAME_MISSING"),
    ):
        with pytest.raises(DomainError) as refused:
            await readmit(state, client, world, "orgA", new, today)
        assert refused.value.code == code
    assert rules.joined_under_18(date(2000, 2, 29), date(2018, 2, 28))
    assert not rules.joined_under_18(date(2000, 2, 29), date(2018, 3, 1))

    row = await readmit(
        state,
        client,
        world,
        "orgA",
        asked(joined_on=date(2018, 3, 1), name=" 张  三 ", phone="+86 138 0013 8000"),
        today,
    )
    assert row.name == rules.clean_name(" 张  三 ") == "张三"
    async with state.db.transaction() as tx:
        await operator_principal(tx, name="tests")
        phone = (await open_pii(tx, row.id)).phone
    assert phone == rules.normalize_phone("+86 138 0013 8000") == "13800138000"
