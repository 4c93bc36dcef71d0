"""The cost of a request in round trips and statements, pinned for the two workloads of
the benchmark (bench/README.md). A change that adds a round trip to a request fails
here; a deliberate one updates the numbers and the README's Performance section.

With the principal cached (the usual case: every request but a session's first), a
one-page read is one message: the transaction made read-only, SET LOCAL of the account,
SET LOCAL of the tenants, the guard that checks the cached principal is still current,
and the one SELECT that reads the parent and the page together. `me` comes from the
cached principal.
"""

from __future__ import annotations

import httpx

from service.app import AppState
from tests.support import Traffic, World, build_world, gql, login, watching

CHILDREN = """query($p: ID!) {
  children(parentId: $p, first: 20) { edges { node { id name kind } } }
}"""
ME_AND_TENANTS = "{ me { username } tenants(first: 20) { edges { node { id name kind } } } }"


async def _measured(
    client: httpx.AsyncClient, state: AppState, token: str, query: str, variables: dict
) -> tuple[dict, Traffic]:
    first = await gql(client, token, query, variables)  # loads and caches the principal
    with watching(state.db) as traffic:
        again = await gql(client, token, query, variables)
    assert again == first and again.get("errors") is None, again
    return again, traffic


async def test_children_page_is_one_round_trip(
    client: httpx.AsyncClient, state: AppState, world: World
) -> None:
    token = await login(client, world.user("secA"))
    body, traffic = await _measured(client, state, token, CHILDREN, {"p": world.gid("A")})
    assert {e["node"]["name"] for e in body["data"]["children"]["edges"]} == {
        "甲镇第一支部",
        "甲镇第二支部",
        "甲镇企业党总支",
    }
    assert traffic.round_trips == 1, traffic.messages
    assert traffic.statements == 5, traffic.messages
    ((message, _),) = traffic.messages
    assert "SET LOCAL app.account_id" in message
    assert "BEGIN" not in message and "COMMIT" not in message


async def test_me_and_tenants_is_one_round_trip(
    client: httpx.AsyncClient, state: AppState, world: World
) -> None:
    token = await login(client, world.user("county"))
    body, traffic = await _measured(client, state, token, ME_AND_TENANTS, {})
    assert body["data"]["me"]["username"] == world.user("county")
    assert [e["node"]["name"] for e in body["data"]["tenants"]["edges"]] == ["甲镇", "乙镇"]
    assert traffic.round_trips == 1, traffic.messages
    assert traffic.statements == 5, traffic.messages


async def test_a_sessions_first_request_adds_one_round_trip_for_the_principal(
    client: httpx.AsyncClient, state: AppState, world: World
) -> None:
    token = await login(client, world.user("secA"))
    with watching(state.db) as traffic:
        body = await gql(client, token, CHILDREN, {"p": world.gid("A")})
    assert body.get("errors") is None
    assert traffic.round_trips == 2, traffic.messages
    assert "FROM role_assignments" in traffic.messages[0][0]
    assert "principal_current" not in traffic.messages[1][0]  # just read: no guard


async def test_a_request_that_needs_no_statement_still_sends_the_guard(
    client: httpx.AsyncClient, state: AppState, world: World
) -> None:
    """`me` alone is answered from the cached principal; the guard goes alone."""
    token = await login(client, world.user("secA"))
    await gql(client, token, "{ me { username } }")
    with watching(state.db) as traffic:
        body = await gql(client, token, "{ me { username } }")
    assert body["data"]["me"]["username"] == world.user("secA")
    assert traffic.round_trips == 1 and traffic.statements == 4, traffic.messages
    assert "principal_current" in traffic.messages[0][0]


async def test_a_mutation_is_its_statements_plus_commit(
    client: httpx.AsyncClient, state: AppState, world: World
) -> None:
    token = await login(client, world.user("orgA"))
    rename = (
        """mutation($i: RenameOrgUnitInput!) { renameOrgUnit(input: $i) { orgUnit { name } } }"""
    )
    variables = {"i": {"id": world.gid("a2"), "name": "甲镇第二支部（新）"}}
    await gql(client, token, "{ me { username } }")  # the principal is cached now
    with watching(state.db) as traffic:
        body = await gql(client, token, rename, variables)
    assert body["data"]["renameOrgUnit"]["orgUnit"]["name"] == "甲镇第二支部（新）"
    first, last = traffic.messages[0][0], traffic.messages[-1][0]
    account = world.accounts["orgA"]
    assert first.split("\n;\n")[:2] == ["BEGIN", f"SET LOCAL app.account_id = '{account}'"]
    # The audit insert (the database numbers and chains it) rides with the COMMIT:
    # the tenant's chain lock is held for one step on the server, never a round trip.
    assert last.lstrip().startswith("INSERT INTO audit_events") and last.endswith("COMMIT")
    # unit, rename, audit insert + commit
    assert traffic.round_trips == 3, traffic.messages


ACCOUNTS = """query($f: AccountFilter) {
  accounts(filter: $f, first: 20) { nodes { id username isActive } pageInfo { hasNextPage } }
}"""


async def test_accounts_page_is_one_round_trip(
    client: httpx.AsyncClient, state: AppState, world: World
) -> None:
    """The account list, also narrowed to a unit (read with the page), is one message:
    the four statements of every request and the one SELECT."""
    token = await login(client, world.user("sysadmin"))
    for f in (None, {"orgUnitId": world.gid("A"), "role": "MEMBER"}):
        body, traffic = await _measured(client, state, token, ACCOUNTS, {"f": f})
        assert body["data"]["accounts"]["nodes"], body
        assert traffic.round_trips == 1, traffic.messages
        assert traffic.statements == 5, traffic.messages


DISPOSAL_CASES = """query($b: ID) {
  disposalCases(branchId: $b, first: 20) { nodes { id stage memberName } }
}"""


async def test_disposal_cases_page_is_one_round_trip(
    client: httpx.AsyncClient, state: AppState
) -> None:
    """The case list of a tenant, and of one unit (read with the page), is one message:
    the four statements of every request and the one SELECT (service/cases)."""
    world = await build_world(state, cases=True)
    token = await login(client, world.user("secA"))
    for b in (None, world.gid("a1")):
        body, traffic = await _measured(client, state, token, DISPOSAL_CASES, {"b": b})
        assert [n["id"] for n in body["data"]["disposalCases"]["nodes"]] == [
            world.record_gid("caseA1")
        ]
        assert traffic.round_trips == 1, traffic.messages
        assert traffic.statements == 5, traffic.messages
