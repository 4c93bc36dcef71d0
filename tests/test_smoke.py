from __future__ import annotations

import httpx

from tests.support import World, gql, login


async def test_county_organizer_lists_tenants_of_own_county(
    client: httpx.AsyncClient, world: World
) -> None:
    token = await login(client, world.user("county"))
    body = await gql(
        client,
        token,
        "query($c: ID!) { children(parentId: $c) { nodes { name kind } } }",
        {"c": world.gid("county")},
    )
    assert body.get("errors") is None, body
    assert [n["name"] for n in body["data"]["children"]["nodes"]] == ["甲镇", "乙镇"]
