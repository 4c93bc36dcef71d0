"""No N+1 on the member list: a page of members with their branch, latest dues month and
三不 assessment costs the same statements for 10 members as for 50.

With the principal cached, the request is two messages (round trips), each opened by
the read-only prefix (3 SET LOCAL):
1. the principal guard and the page, with the unit `orgUnitId` names folded into the
   same SELECT (its path is checked before the page is used, as `children` does);
2. the three DataLoaders of the page, sent together: branches (org_units), latest dues
   months (dues_months), and the 三不 facts (one statement with a LATERAL json_agg per
   member over dues, schedules, reasons, meetings and tasks).
So 5 + 6 = 11 statements: list + branches + dues + facts, whatever the page size.

A `flagged` list folds the facts into the list statement (the walk of
service/members/flags.py, one statement per 500 members looked at) and primes the
loader, so the facts statement disappears: 5 + 4 + 5 = 14 for a list of one chunk.
"""

from __future__ import annotations

from typing import Any

import httpx

from service.app import AppState
from service.auth.service import operator_principal
from service.schema.ids import to_global_id
from tests import factories
from tests.members.ledger_rows import meeting, month, pay, task
from tests.support import Traffic, World, gql, login, watching

LIST = """query($u: ID!) { members(orgUnitId: $u, first: 50) { nodes {
  name branch { name } latestDuesMonth
  lapse { flagged flags { kind months } unpaidRun lifeRun taskRun } } } }"""
FLAGGED = """query($u: ID!) { members(orgUnitId: $u, first: 50, flagged: true) { nodes {
  name branch { name } latestDuesMonth lapse { flagged flags { kind } } } } }"""


async def _branch_with(state: AppState, world: World, count: int) -> str:
    """A new branch of A with `count` members, some with dues, meetings and
    tasks on record, every third tracked long enough to be flagged (and paying nothing)."""
    async with state.db.transaction() as tx:
        op = await operator_principal(tx, name="tests")
        branch = await factories.org_unit(tx, op, parent=world.units["A"])
        for i in range(count):
            member = await factories.member(
                tx,
                op,
                branch=branch,
                tracked_since=month(12 if i % 3 == 0 else 2).first_day,
            )
            if i % 2 and i % 3:
                await pay(tx, member, [month(3), month(2)])
                await meeting(tx, member, month(1), "absent")
                await task(tx, member, month(1), "done")
    return to_global_id("OrgUnit", branch.id)


async def _measured(
    client: httpx.AsyncClient, state: AppState, token: str, query: str, unit: str
) -> tuple[dict[str, Any], Traffic]:
    first = await gql(client, token, query, {"u": unit})  # caches the principal
    assert first.get("errors") is None, first
    with watching(state.db) as traffic:
        again = await gql(client, token, query, {"u": unit})
    assert again == first
    return again, traffic


async def test_member_list_with_branch_dues_and_flags_is_flat(
    client: httpx.AsyncClient, state: AppState, world: World
) -> None:
    token = await login(client, world.user("orgA"))
    for count in (10, 50):
        unit = await _branch_with(state, world, count)
        body, traffic = await _measured(client, state, token, LIST, unit)
        nodes = body["data"]["members"]["nodes"]
        assert len(nodes) == count
        assert sum(n["lapse"]["flagged"] for n in nodes) == len(range(0, count, 3))
        paying = sum(1 for i in range(count) if i % 2 and i % 3)
        assert sum(n["latestDuesMonth"] == str(month(2)) for n in nodes) == paying
        assert traffic.round_trips == 2, traffic.messages
        assert traffic.statements == 11, traffic.messages
        assert "FROM org_units u LEFT JOIN LATERAL" in traffic.messages[0][0]
        loaders = traffic.messages[1][0]
        assert "FROM org_units" in loaders and "dues_months" in loaders
        assert "CROSS JOIN LATERAL" in loaders


async def test_flagged_member_list_is_flat(
    client: httpx.AsyncClient, state: AppState, world: World
) -> None:
    token = await login(client, world.user("orgA"))
    for count in (10, 50):
        unit = await _branch_with(state, world, count)
        body, traffic = await _measured(client, state, token, FLAGGED, unit)
        nodes = body["data"]["members"]["nodes"]
        assert len(nodes) == len(range(0, count, 3))
        assert all(n["lapse"]["flagged"] for n in nodes)
        # unit; list-with-facts (one chunk); branches + latest dues months (facts primed)
        assert traffic.round_trips == 3, traffic.messages
        assert traffic.statements == 14, traffic.messages
        assert "CROSS JOIN LATERAL" in traffic.messages[1][0]
        assert "CROSS JOIN LATERAL" not in traffic.messages[2][0]


async def test_unflagged_list_shows_dues_of_members_whose_rows_carry_facts(
    client: httpx.AsyncClient, state: AppState, world: World
) -> None:
    """A `flagged` list's rows carry the members' facts (JSON lists); the dues loaders
    key members by what identifies them, not by the row, so paying members show their
    latest month and schedule there too."""
    token = await login(client, world.user("orgA"))
    unit = await _branch_with(state, world, 10)
    body = await gql(
        client,
        token,
        """query($u: ID!) { members(orgUnitId: $u, flagged: false) { nodes {
          latestDuesMonth duesSchedule lapse { flagged } } } }""",
        {"u": unit},
    )
    assert body.get("errors") is None, body
    nodes = body["data"]["members"]["nodes"]
    paying = sum(1 for i in range(10) if i % 2 and i % 3)
    assert sum(n["latestDuesMonth"] == str(month(2)) for n in nodes) == paying > 0
    assert {n["duesSchedule"] for n in nodes} == {"MONTHLY"}
    assert not any(n["lapse"]["flagged"] for n in nodes)
