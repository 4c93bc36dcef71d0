"""Assigning and revoking roles over HTTP, with the rules beyond Casbin."""

from __future__ import annotations

import httpx
import psycopg

from tests.support import World, error_codes, gql, login

ASSIGN = """
mutation($input: AssignRoleInput!) {
  assignRole(input: $input) { roleAssignment { id role orgUnit { name } } }
}"""
REVOKE = """
mutation($input: RevokeRoleInput!) { revokeRole(input: $input) { roleAssignment { id role } } }
"""


def assign_input(world: World, who: str, role: str, unit: str) -> dict:
    return {
        "input": {"accountId": world.account_gid(who), "role": role, "orgUnitId": world.gid(unit)}
    }


async def test_organizer_assigns_branch_secretary_who_then_reaches_the_branch(
    client: httpx.AsyncClient, world: World
) -> None:
    organizer = await login(client, world.user("orgA"))
    before = await gql(
        client,
        await login(client, world.user("nobody")),
        "query($id: ID!) { orgUnit(id: $id) { name } }",
        {"id": world.gid("a2")},
    )
    assert error_codes(before) == ["NOT_FOUND"]

    body = await gql(
        client, organizer, ASSIGN, assign_input(world, "nobody", "BRANCH_SECRETARY", "a2")
    )
    assert body["data"]["assignRole"]["roleAssignment"]["role"] == "BRANCH_SECRETARY"
    assignment_id = body["data"]["assignRole"]["roleAssignment"]["id"]

    nobody = await login(client, world.user("nobody"))
    after = await gql(
        client, nobody, "query($id: ID!) { orgUnit(id: $id) { name } }", {"id": world.gid("a2")}
    )
    assert after["data"]["orgUnit"]["name"] == "甲镇第二支部"

    revoked = await gql(client, organizer, REVOKE, {"input": {"roleAssignmentId": assignment_id}})
    assert revoked["data"]["revokeRole"]["roleAssignment"]["role"] == "BRANCH_SECRETARY"
    # The grant is read per request: the same token loses access at once.
    gone = await gql(
        client, nobody, "query($id: ID!) { orgUnit(id: $id) { name } }", {"id": world.gid("a2")}
    )
    assert error_codes(gone) == ["NOT_FOUND"]


async def test_branch_secretary_cannot_assign_roles(
    client: httpx.AsyncClient, world: World
) -> None:
    token = await login(client, world.user("bsA1"))
    body = await gql(
        client, token, ASSIGN, assign_input(world, "memA1", "BRANCH_COMMITTEE_MEMBER", "a1")
    )
    assert error_codes(body) == ["FORBIDDEN"]


async def test_three_admin_roles_are_never_held_together(
    client: httpx.AsyncClient, world: World, owner_conn: psycopg.Connection
) -> None:
    security = await login(client, world.user("security"))
    # The auditor may not also become system admin (三员分立).
    body = await gql(
        client, security, ASSIGN, assign_input(world, "auditor", "SYSTEM_ADMIN", "county")
    )
    assert error_codes(body) == ["ADMIN_ROLES_EXCLUSIVE"]
    # Nor may the county organizer hand out admin roles at all.
    county = await login(client, world.user("county"))
    body = await gql(client, county, ASSIGN, assign_input(world, "nobody", "AUDITOR", "county"))
    assert error_codes(body) == ["FORBIDDEN"]
    # The database holds the line too, whatever the service does.
    try:
        owner_conn.execute(
            "INSERT INTO role_assignments (tenant_id, account_id, role, org_unit_id, org_path) "
            "SELECT tenant_id, %s, 'security_admin', id, path FROM org_units WHERE id = %s",
            (world.accounts["auditor"], world.units["county"].id),
        )
        raise AssertionError("a second admin role was stored")
    except psycopg.errors.UniqueViolation:
        pass


async def test_role_must_fit_the_unit_kind_and_not_repeat(
    client: httpx.AsyncClient, world: World
) -> None:
    organizer = await login(client, world.user("orgA"))
    wrong_level = await gql(
        client, organizer, ASSIGN, assign_input(world, "nobody", "COMMITTEE_SECRETARY", "a1")
    )
    assert error_codes(wrong_level) == ["ROLE_NOT_ALLOWED_AT_UNIT"]
    first = await gql(client, organizer, ASSIGN, assign_input(world, "nobody", "MEMBER", "a1"))
    assert first.get("errors") is None, first
    again = await gql(client, organizer, ASSIGN, assign_input(world, "nobody", "MEMBER", "a1"))
    assert error_codes(again) == ["ROLE_ALREADY_ASSIGNED"]
    itself = await gql(client, organizer, ASSIGN, assign_input(world, "orgA", "MEMBER", "a1"))
    assert error_codes(itself) == ["CANNOT_ASSIGN_SELF"]


async def test_create_account_enforces_password_policy_and_unique_username(
    client: httpx.AsyncClient, world: World
) -> None:
    token = await login(client, world.user("orgA"))
    mutation = """mutation($input: CreateAccountInput!) {
      createAccount(input: $input) { account { id } } }"""

    def data(username: str, password: str) -> dict:
        return {
            "input": {
                "username": username,
                "displayName": "测试",
                "password": password,
                "homeOrgUnitId": world.gid("a1"),
            }
        }

    weak = await gql(client, token, mutation, data(world.tag + ".weak", "short"))
    assert error_codes(weak) == ["WEAK_PASSWORD"]
    assert "长度至少" in weak["errors"][0]["message"]
    taken = await gql(client, token, mutation, data(world.user("secB"), "Good-Passw0rd!"))
    assert error_codes(taken) == ["USERNAME_TAKEN"]
    bad_name = await gql(client, token, mutation, data("张三", "Good-Passw0rd!"))
    assert error_codes(bad_name) == ["INVALID_USERNAME"]


async def test_account_without_roles_sees_itself_and_nothing_else(
    client: httpx.AsyncClient, world: World
) -> None:
    token = await login(client, world.user("nobody"))
    body = await gql(client, token, "{ me { username roleAssignments { nodes { role } } } }")
    assert body["data"]["me"] == {
        "username": world.user("nobody"),
        "roleAssignments": {"nodes": []},
    }
    tenants = await gql(client, token, "{ tenants { nodes { name } } }")
    assert tenants["data"]["tenants"]["nodes"] == []
