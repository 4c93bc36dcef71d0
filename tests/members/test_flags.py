"""三不 through the API: dues, organizational life and tasks read from the ledger's rows,
the `flagged` list, recorded reasons that break a run, family payments shown."""

from __future__ import annotations

from typing import Any

import httpx
import psycopg

from service.app import AppState
from service.auth.service import operator_principal
from service.members import flags
from service.members.service import MemberQuery
from service.pagination import PageRequest
from tests import factories
from tests.members.ledger_rows import LAST, meeting, month, pay, task
from tests.support import World, error_codes, gql, login

LAPSE = """query($id: ID!) { member(id: $id) { name lapse {
  flagged flags { kind label months reachedWindow } duesWarning familyPaidMonths
  unpaidRun lifeRun taskRun lastClosedMonth } } }"""
RECORD = """mutation($i: RecordExcuseInput!) { recordExcuse(input: $i) {
  excuse { kind fromMonth toMonth reason recordedBy }
  member { lapse { flagged unpaidRun duesWarning } excuses { nodes { kind reason } } } } }"""


async def _member(state: AppState, world: World, *, tracked_back: int, **kw: Any) -> Any:
    """A member of a1 tracked from `tracked_back` closed months before LAST."""
    async with state.db.transaction() as tx:
        op = await operator_principal(tx, name="tests")
        return await factories.member(
            tx, op, branch=world.units["a1"], tracked_since=month(tracked_back).first_day, **kw
        )


async def _lapse(client: httpx.AsyncClient, token: str, member: Any) -> dict[str, Any]:
    from service.schema.ids import to_global_id

    body = await gql(client, token, LAPSE, {"id": to_global_id("Member", member.id)})
    assert "errors" not in body, body
    return body["data"]["member"]["lapse"]  # type: ignore[no-any-return]


async def test_five_unpaid_months_warn_six_flag(
    client: httpx.AsyncClient, state: AppState, world: World
) -> None:
    five = await _member(state, world, tracked_back=4)
    six = await _member(state, world, tracked_back=5)
    token = await login(client, world.user("bsA1"))

    shown = await _lapse(client, token, five)
    assert shown["flagged"] is False and shown["flags"] == []
    assert shown["unpaidRun"] == 5
    assert shown["duesWarning"] == [str(month(b)) for b in range(4, -1, -1)]
    assert shown["lastClosedMonth"] == str(LAST)

    shown = await _lapse(client, token, six)
    assert shown["flagged"] is True
    assert shown["flags"] == [
        {
            "kind": "DUES",
            "label": "不交纳党费",
            "months": [str(month(b)) for b in range(5, -1, -1)],
            "reachedWindow": False,
        }
    ]
    assert shown["unpaidRun"] == 6


async def test_a_recorded_reason_breaks_the_run_and_is_audited(
    client: httpx.AsyncClient,
    state: AppState,
    world: World,
    owner_conn: psycopg.Connection[Any],
) -> None:
    member = await _member(state, world, tracked_back=30)
    token = await login(client, world.user("bsA1"))
    before = await _lapse(client, token, member)
    assert before["flags"][0]["kind"] == "DUES" and before["flags"][0]["reachedWindow"] is True
    assert before["unpaidRun"] == 24

    from service.schema.ids import to_global_id

    gid = to_global_id("Member", member.id)
    excused = str(month(3))
    body = await gql(
        client,
        token,
        RECORD,
        {
            "i": {
                "memberId": gid,
                "kind": "DUES",
                "fromMonth": excused,
                "toMonth": excused,
                "reason": "外出务工，已联系说明",
            }
        },
    )
    assert "errors" not in body, body
    payload = body["data"]["recordExcuse"]
    assert payload["excuse"] == {
        "kind": "DUES",
        "fromMonth": excused,
        "toMonth": excused,
        "reason": "外出务工，已联系说明",
        "recordedBy": world.user("bsA1"),
    }
    # The months after the reason still count: three, a warning, no flag.
    assert payload["member"]["lapse"] == {
        "flagged": False,
        "unpaidRun": 3,
        "duesWarning": [str(month(b)) for b in (2, 1, 0)],
    }
    assert payload["member"]["excuses"]["nodes"] == [
        {"kind": "DUES", "reason": "外出务工，已联系说明"}
    ]
    events = owner_conn.execute(
        "SELECT action, details FROM audit_events WHERE object_type = 'Member'"
        " AND object_id = %s ORDER BY seq",
        (str(member.id),),
    ).fetchall()
    assert [e[0] for e in events] == ["member.create", "member.excuse"]
    assert events[1][1]["reason"] == "外出务工，已联系说明"
    assert events[1][1]["from"] == excused

    # An open-ended reason of kind ALL covers up to today.
    body = await gql(
        client,
        token,
        RECORD,
        {"i": {"memberId": gid, "kind": "ALL", "fromMonth": str(month(1)), "reason": "病休"}},
    )
    assert body["data"]["recordExcuse"]["member"]["lapse"]["unpaidRun"] == 0


async def test_record_excuse_refuses_bad_input_and_others_members(
    client: httpx.AsyncClient, state: AppState, world: World
) -> None:
    from service.schema.ids import to_global_id

    mine = world.member_gid("otherA1")
    bs = await login(client, world.user("bsA1"))

    def excuse(gid: str, **fields: Any) -> dict[str, Any]:
        return {
            "i": {
                "memberId": gid,
                "kind": "LIFE",
                "fromMonth": "2026-01",
                "reason": "住院",
                **fields,
            }
        }

    cases = {
        "EXCUSE_MONTH_INVALID": excuse(mine, fromMonth="2026-1"),
        "EXCUSE_MONTHS_REVERSED": excuse(mine, toMonth="2025-12"),
        "EXCUSE_REASON_INVALID": excuse(mine, reason="   "),
    }
    for code, variables in cases.items():
        assert error_codes(await gql(client, bs, RECORD, variables)) == [code]
    # B's member is as missing as a member that does not exist.
    assert error_codes(await gql(client, bs, RECORD, excuse(world.member_gid("memB1")))) == [
        "NOT_FOUND"
    ]
    assert error_codes(await gql(client, bs, RECORD, excuse(to_global_id("Member", 2**62)))) == [
        "NOT_FOUND"
    ]
    # The township secretary reads the ledger but records no reasons.
    sec = await login(client, world.user("secA"))
    assert error_codes(await gql(client, sec, RECORD, excuse(mine))) == ["FORBIDDEN"]


async def test_family_payment_counts_and_is_shown(
    client: httpx.AsyncClient, state: AppState, world: World
) -> None:
    member = await _member(state, world, tracked_back=8, is_mobile=True, dues_by_family=True)
    async with state.db.transaction() as tx:
        await operator_principal(tx, name="tests")
        await pay(tx, member, [month(b) for b in range(8, 1, -1)])
        await pay(tx, member, [month(1), month(0)], paid_by="family")
    token = await login(client, world.user("bsA1"))
    shown = await _lapse(client, token, member)
    assert shown["flagged"] is False and shown["unpaidRun"] == 0
    assert shown["duesWarning"] is None
    assert shown["familyPaidMonths"] == [str(month(1)), str(month(0))]


async def test_life_and_tasks_runs(
    client: httpx.AsyncClient, state: AppState, world: World
) -> None:
    member = await _member(state, world, tracked_back=10)
    async with state.db.transaction() as tx:
        await operator_principal(tx, name="tests")
        await pay(tx, member, [month(b) for b in range(10, -1, -1)])
        # Absent from a meeting in each of the last 7 months but one, which had none:
        # the month without a meeting neither counts nor breaks.
        for back in (0, 1, 2, 4, 5, 6, 7):
            await meeting(tx, member, month(back), "absent")
        await meeting(tx, member, month(8), "attended")
        # Tasks: one done 3 months ago, undone since.
        await task(tx, member, month(3), "done")
        for back in (0, 1, 2):
            await task(tx, member, month(back), "not_done")
    token = await login(client, world.user("bsA1"))
    shown = await _lapse(client, token, member)
    assert [f["kind"] for f in shown["flags"]] == ["LIFE"]
    assert shown["flags"][0]["months"] == [str(month(b)) for b in (7, 6, 5, 4, 2, 1, 0)]
    assert shown["lifeRun"] == 7 and shown["taskRun"] == 3 and shown["unpaidRun"] == 0


FLAGGED = """query($u: ID!, $f: Boolean!, $after: String) {
  members(orgUnitId: $u, flagged: $f, first: 2, after: $after) {
    nodes { name lapse { flagged } } pageInfo { hasNextPage endCursor } } }"""


async def test_flagged_filter_pages_through_the_list(
    client: httpx.AsyncClient, state: AppState, world: World
) -> None:
    names = []
    for i, back in enumerate((30, 1, 12, 2, 7)):
        await _member(state, world, tracked_back=back, name=f"筛查{i}")
        names.append((f"筛查{i}", back >= 5))
    token = await login(client, world.user("bsA1"))
    flagged: list[str] = []
    after = None
    while True:
        body = await gql(client, token, FLAGGED, {"u": world.gid("a1"), "f": True, "after": after})
        assert "errors" not in body, body
        page = body["data"]["members"]
        assert all(n["lapse"]["flagged"] for n in page["nodes"])
        flagged += [n["name"] for n in page["nodes"]]
        if not page["pageInfo"]["hasNextPage"]:
            break
        after = page["pageInfo"]["endCursor"]
    assert flagged == [name for name, is_flagged in names if is_flagged]
    body = await gql(
        client, token, FLAGGED.replace("first: 2", "first: 20"), {"u": world.gid("a1"), "f": False}
    )
    unflagged = {n["name"] for n in body["data"]["members"]["nodes"]}
    assert unflagged == {"memA1同志", "otherA1同志", *(n for n, f in names if not f)}


async def test_a_flagged_scan_cut_short_resumes_where_it_stopped(
    state: AppState, world: World
) -> None:
    """A bound on the members looked at per request: a page cut short says there is
    more and resumes after the last member looked at, never skipping one."""
    for i in range(4):
        await _member(state, world, tracked_back=1, name=f"未满{i}")
    late = await _member(state, world, tracked_back=9, name="已满")
    query = MemberQuery(org_unit_id=world.units["a1"].id, flagged=True)
    async with state.db.transaction() as tx:
        op = await operator_principal(tx, name="tests")
        seen: list[str] = []
        after, rounds = None, 0
        while True:
            rounds += 1
            found = await flags.flagged_page(
                tx, op, PageRequest(first=5, after=after), query, scan_limit=3, chunk=2
            )
            seen += [row.name for row in found.page.items]
            if not found.page.has_next_page:
                break
            after = found.resume_after
        assert seen == ["已满"] and rounds == 3
        assert found.assessments[late.id] is not None
