"""Relations a list can reach go through DataLoaders: statements do not grow with rows."""

from __future__ import annotations

import httpx

from service.app import AppState
from service.auth.service import operator_principal
from service.tenants.rules import OrgUnitKind
from service.tenants.service import create_org_unit
from tests.support import World, gql, login, watching

QUERY = """
query($p: ID!) {
  children(parentId: $p, first: 50) {
    nodes { name kind parent { name tenant { name } } tenant { name } }
  }
}"""


async def test_children_with_parents_and_tenants_is_constant_in_sql(
    client: httpx.AsyncClient, world: World, state: AppState
) -> None:
    token = await login(client, world.user("orgA"))
    await gql(client, token, QUERY, {"p": world.gid("ag")})  # the principal is cached now
    with watching(state.db) as few:
        small = await gql(client, token, QUERY, {"p": world.gid("ag")})
    assert len(small["data"]["children"]["nodes"]) == 1

    async with state.db.transaction() as tx:
        op = await operator_principal(tx, name="tests")
        for i in range(15):
            await create_org_unit(
                tx,
                op,
                parent_id=world.units["ag"].id,
                kind=OrgUnitKind.BRANCH,
                code=f"{world.tag}-n{i}",
                name=f"企业支部{i}",
            )
    with watching(state.db) as many:
        large = await gql(client, token, QUERY, {"p": world.gid("ag")})
    nodes = large["data"]["children"]["nodes"]
    assert len(nodes) == 16
    assert {n["parent"]["name"] for n in nodes} == {"甲镇企业党总支"}
    assert {n["tenant"]["name"] for n in nodes} == {"甲镇"}
    assert many.messages and len(many.messages) == len(few.messages), (few, many)
    assert many.statements == few.statements
