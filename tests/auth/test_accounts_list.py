"""`accounts(filter, first, after)`: who sees which accounts, the filters, the pages.

The scope is `node(id:)`'s for an Account (`account:read` at the account's home unit):
the county's system administrator sees the county, a township's secretary the
township, a branch secretary the branch, a member nobody."""

from __future__ import annotations

from typing import Any

import httpx

from service.schema.ids import to_global_id
from tests.support import World, error_codes, gql, login

ACCOUNTS = """query($f: AccountFilter, $first: Int, $after: String) {
  accounts(filter: $f, first: $first, after: $after) {
    nodes { id username isActive homeOrgUnit { name } }
    pageInfo { hasNextPage endCursor }
  }
}"""

A_ACCOUNTS = {"secA", "orgA", "bsA1", "memA1", "nobody"}
COUNTY_ACCOUNTS = {"county", "security", "sysadmin", "auditor"}
B_ACCOUNTS = {"secB", "orgB"}


async def _names(
    client: httpx.AsyncClient, token: str, world: World, f: dict[str, Any] | None = None
) -> set[str]:
    body = await gql(client, token, ACCOUNTS, {"f": f, "first": 100})
    assert body.get("errors") is None, body
    prefix = f"{world.tag}.".lower()
    names = {n["username"] for n in body["data"]["accounts"]["nodes"]}
    assert all(n.startswith(prefix) for n in names), names  # nothing of other counties
    return {n.removeprefix(prefix) for n in names}


def _short(world: World, names: set[str]) -> set[str]:
    """The names `_names` answers with: usernames are lower case."""
    return {n.lower() for n in names}


async def test_each_manager_sees_the_accounts_of_their_scope(
    client: httpx.AsyncClient, world: World
) -> None:
    everyone = A_ACCOUNTS | COUNTY_ACCOUNTS | B_ACCOUNTS
    sysadmin = await login(client, world.user("sysadmin"))
    assert await _names(client, sysadmin, world) == _short(world, everyone)
    sec_a = await login(client, world.user("secA"))
    assert await _names(client, sec_a, world) == _short(world, A_ACCOUNTS)
    bs_a1 = await login(client, world.user("bsA1"))
    assert await _names(client, bs_a1, world) == _short(world, {"bsA1", "memA1"})
    member = await login(client, world.user("memA1"))
    assert await _names(client, member, world) == set()


async def test_the_filters(client: httpx.AsyncClient, world: World) -> None:
    admin = await login(client, world.user("sysadmin"))
    assert await _names(client, admin, world, {"usernameContains": " SECA "}) == _short(
        world, {"secA"}
    )
    assert await _names(client, admin, world, {"orgUnitId": world.gid("a1")}) == _short(
        world, {"bsA1", "memA1"}
    )
    assert await _names(client, admin, world, {"orgUnitId": world.gid("A")}) == _short(
        world, A_ACCOUNTS
    )
    assert await _names(client, admin, world, {"role": "BRANCH_SECRETARY"}) == _short(
        world, {"bsA1"}
    )
    assert await _names(
        client, admin, world, {"role": "COMMITTEE_SECRETARY", "orgUnitId": world.gid("B")}
    ) == _short(world, {"secB"})
    disabled = await gql(
        client,
        admin,
        "mutation($i: AccountIdInput!) { disableAccount(input: $i) { account { id } } }",
        {"i": {"accountId": world.account_gid("nobody")}},
    )
    assert disabled.get("errors") is None, disabled
    assert await _names(client, admin, world, {"active": False}) == _short(world, {"nobody"})
    assert "nobody" not in await _names(client, admin, world, {"active": True})
    # a filter matching nothing is an empty page, not an error
    assert await _names(client, admin, world, {"usernameContains": "%"}) == set()


async def test_a_unit_outside_the_scope_is_not_found(
    client: httpx.AsyncClient, world: World
) -> None:
    sec_a = await login(client, world.user("secA"))
    for unit in (world.gid("B"), world.gid("b1"), to_global_id("OrgUnit", 2**62)):
        body = await gql(client, sec_a, ACCOUNTS, {"f": {"orgUnitId": unit}})
        assert error_codes(body) == ["NOT_FOUND"], body
    # a branch secretary may not read the township above the branch
    bs_a1 = await login(client, world.user("bsA1"))
    body = await gql(client, bs_a1, ACCOUNTS, {"f": {"orgUnitId": world.gid("A")}})
    assert error_codes(body) == ["NOT_FOUND"], body


async def test_pages_follow_the_cursor_without_gaps_or_repeats(
    client: httpx.AsyncClient, world: World
) -> None:
    admin = await login(client, world.user("sysadmin"))
    seen: list[str] = []
    after = None
    for _ in range(10):
        body = await gql(
            client,
            admin,
            ACCOUNTS,
            {"f": {"orgUnitId": world.gid("county")}, "first": 3, "after": after},
        )
        assert body.get("errors") is None, body
        page = body["data"]["accounts"]
        assert len(page["nodes"]) <= 3
        seen += [n["id"] for n in page["nodes"]]
        if not page["pageInfo"]["hasNextPage"]:
            break
        after = page["pageInfo"]["endCursor"]
    assert len(seen) == len(set(seen)) == len(A_ACCOUNTS | COUNTY_ACCOUNTS | B_ACCOUNTS)
    too_big = await gql(client, admin, ACCOUNTS, {"first": 1000})
    assert error_codes(too_big) == ["PAGE_SIZE_EXCEEDED"]
