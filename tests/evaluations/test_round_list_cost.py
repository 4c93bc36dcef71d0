"""No N+1 on the list of evaluation rounds: a page of rounds with their branch costs the
same statements for 3 rounds as for 9 (the lean read path: the unit `orgUnitId` names,
the page of rounds, then one batch of the branches' org units)."""

from __future__ import annotations

from datetime import date

import httpx

from service.app import AppState
from service.auth.service import operator_principal
from service.schema.ids import to_global_id
from service.tenants.rules import OrgUnitKind
from tests import factories
from tests.support import World, gql, login, watching

LIST = """query($u: ID!) { evaluationRounds(orgUnitId: $u, first: 50) { nodes {
  title year half stage stageLabel policyVersion ballotsCast countsVisible
  branch { name } } pageInfo { hasNextPage endCursor } } }"""


async def _township_with_rounds(state: AppState, world: World, branches: int) -> str:
    """A new township of the county with `branches` branches, each with a round."""
    async with state.db.transaction() as tx:
        op = await operator_principal(tx, name="tests")
        town = await factories.org_unit(
            tx, op, parent=world.units["county"], kind=OrgUnitKind.TOWNSHIP
        )
        for _ in range(branches):
            branch = await factories.org_unit(tx, op, parent=town)
            await factories.member(tx, op, branch=branch)
        from service.evaluations.service import open_rounds

        await open_rounds(
            tx, op, org_unit_id=town.id, year=date.today().year, half=1, title="民主评议"
        )
    return to_global_id("OrgUnit", town.id)


async def test_round_list_with_branches_is_flat(
    client: httpx.AsyncClient, state: AppState, world: World
) -> None:
    # Both townships first: a new tenant moves the principals' epoch (a reload).
    units = {size: await _township_with_rounds(state, world, size) for size in (3, 9)}
    token = await login(client, world.user("county"))
    counts = []
    for size, unit in units.items():
        first = await gql(client, token, LIST, {"u": unit})  # caches the principal
        assert "errors" not in first, first
        with watching(state.db) as traffic:
            again = await gql(client, token, LIST, {"u": unit})
        assert again == first
        nodes = again["data"]["evaluationRounds"]["nodes"]
        assert len(nodes) == size and all(n["branch"]["name"] for n in nodes)
        counts.append((traffic.statements, traffic.round_trips))
    assert counts[0] == counts[1], counts
    # the principal's guard with the unit `orgUnitId` names, the page, the branches
    assert counts[0][1] == 3, counts
