"""Relations a list can reach go through DataLoaders: statements do not grow with rows."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
from sqlalchemy import event

from service.app import AppState
from service.auth.service import operator_principal
from service.tenants.rules import OrgUnitKind
from service.tenants.service import create_org_unit
from tests.support import World, gql, login

QUERY = """
query($p: ID!) {
  children(parentId: $p, first: 50) {
    nodes { name kind parent { name tenant { name } } tenant { name } }
  }
}"""


@contextmanager
def counting(state: AppState) -> Iterator[list[str]]:
    statements: list[str] = []

    def before(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        statements.append(statement)

    engine = state.db.engine.sync_engine
    event.listen(engine, "before_cursor_execute", before)
    try:
        yield statements
    finally:
        event.remove(engine, "before_cursor_execute", before)


async def test_children_with_parents_and_tenants_is_constant_in_sql(
    client: httpx.AsyncClient, world: World, state: AppState
) -> None:
    token = await login(client, world.user("orgA"))
    with counting(state) as few:
        small = await gql(client, token, QUERY, {"p": world.gid("ag")})
    assert len(small["data"]["children"]["nodes"]) == 1

    async with state.db.transaction() as session:
        op = await operator_principal(session, name="tests")
        for i in range(15):
            await create_org_unit(
                session,
                op,
                parent_id=world.units["ag"].id,
                kind=OrgUnitKind.BRANCH,
                code=f"{world.tag}-n{i}",
                name=f"企业支部{i}",
            )
    with counting(state) as many:
        large = await gql(client, token, QUERY, {"p": world.gid("ag")})
    nodes = large["data"]["children"]["nodes"]
    assert len(nodes) == 16
    assert {n["parent"]["name"] for n in nodes} == {"甲镇企业党总支"}
    assert {n["tenant"]["name"] for n in nodes} == {"甲镇"}
    assert len(many) == len(few), (few, many)
