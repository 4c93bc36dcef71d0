"""The county admin's day: tenants, branches, rename, archive — through HTTP."""

from __future__ import annotations

import secrets

import httpx
import psycopg

from tests.support import World, error_codes, first_login, gql, login

CREATE = """
mutation($input: CreateOrgUnitInput!) {
  createOrgUnit(input: $input) { orgUnit { id kind code name archived version parent { name } } }
}"""
RENAME = """
mutation($input: RenameOrgUnitInput!) {
  renameOrgUnit(input: $input) { orgUnit { id name version } }
}"""
ARCHIVE = """
mutation($input: ArchiveOrgUnitInput!) { archiveOrgUnit(input: $input) { orgUnit { id archived } } }
"""
CHILDREN = """
query($p: ID!, $all: Boolean!) {
  children(parentId: $p, includeArchived: $all) { nodes { name kind archived } }
}"""


async def _create(
    client: httpx.AsyncClient, token: str, parent: str, kind: str, code: str, name: str
) -> dict:
    body = await gql(
        client,
        token,
        CREATE,
        {"input": {"parentId": parent, "kind": kind, "code": code, "name": name}},
    )
    assert body.get("errors") is None, body
    return body["data"]["createOrgUnit"]["orgUnit"]


async def test_county_admin_creates_township_and_branches_renames_and_archives(
    client: httpx.AsyncClient, world: World, owner_conn: psycopg.Connection
) -> None:
    token = await login(client, world.user("county"))
    code = "new" + secrets.token_hex(3)
    town = await _create(client, token, world.gid("county"), "TOWNSHIP", code, "新兴镇")
    assert town["kind"] == "TOWNSHIP" and town["parent"]["name"].startswith("测试县")
    b1 = await _create(client, token, town["id"], "BRANCH", code + "-1", "新兴镇第一支部")
    b2 = await _create(client, token, town["id"], "BRANCH", code + "-2", "新兴镇第二支部")

    tenants = await gql(
        client, token, '{ tenants(first: 100, nameContains: "新兴") { nodes { id name } } }'
    )
    assert town["id"] in [n["id"] for n in tenants["data"]["tenants"]["nodes"]]

    renamed = await gql(
        client, token, RENAME, {"input": {"id": b1["id"], "name": " 新兴镇 机关支部 "}}
    )
    assert renamed["data"]["renameOrgUnit"]["orgUnit"]["name"] == "新兴镇 机关支部"
    assert renamed["data"]["renameOrgUnit"]["orgUnit"]["version"] == b1["version"] + 1

    archived = await gql(client, token, ARCHIVE, {"input": {"id": b2["id"]}})
    assert archived["data"]["archiveOrgUnit"]["orgUnit"]["archived"] is True

    active = await gql(client, token, CHILDREN, {"p": town["id"], "all": False})
    assert [n["name"] for n in active["data"]["children"]["nodes"]] == ["新兴镇 机关支部"]
    everything = await gql(client, token, CHILDREN, {"p": town["id"], "all": True})
    assert [(n["name"], n["archived"]) for n in everything["data"]["children"]["nodes"]] == [
        ("新兴镇 机关支部", False),
        ("新兴镇第二支部", True),
    ]

    # The new tenant is a tenant of its own: its rows carry its own tenant_id.
    rows = owner_conn.execute(
        "SELECT count(*) FROM org_units WHERE tenant_id = (SELECT id FROM tenants WHERE code = %s)",
        (code,),
    ).fetchone()
    assert rows == (3,)
    # Every write was audited.
    actions = [
        r[0]
        for r in owner_conn.execute(
            "SELECT action FROM audit_events e JOIN tenants t ON t.id = e.tenant_id "
            "WHERE t.code = %s ORDER BY seq",
            (code,),
        )
    ]
    assert actions == [
        "orgunit.create",
        "orgunit.create",
        "orgunit.create",
        "orgunit.rename",
        "orgunit.archive",
    ]


async def test_new_township_secretary_sees_only_own_township(
    client: httpx.AsyncClient, world: World
) -> None:
    admin = await login(client, world.user("county"))
    code = "sec" + secrets.token_hex(3)
    town = await _create(client, admin, world.gid("county"), "TOWNSHIP", code, "丰收镇")
    await _create(client, admin, town["id"], "BRANCH", code + "-1", "丰收镇第一支部")
    username = f"{code}.secretary"
    created = await gql(
        client,
        admin,
        """mutation($input: CreateAccountInput!) {
             createAccount(input: $input) { account { id username homeOrgUnit { name } } } }""",
        {
            "input": {
                "username": username,
                "displayName": "丰收镇书记",
                "password": "Harvest-2026!",
                "homeOrgUnitId": town["id"],
            }
        },
    )
    assert created.get("errors") is None, created
    account_id = created["data"]["createAccount"]["account"]["id"]
    assigned = await gql(
        client,
        admin,
        """mutation($input: AssignRoleInput!) {
             assignRole(input: $input) { roleAssignment { role orgUnit { name } } } }""",
        {
            "input": {
                "accountId": account_id,
                "role": "COMMITTEE_SECRETARY",
                "orgUnitId": town["id"],
            }
        },
    )
    assert assigned["data"]["assignRole"]["roleAssignment"] == {
        "role": "COMMITTEE_SECRETARY",
        "orgUnit": {"name": "丰收镇"},
    }

    refused = await client.post(
        "/auth/token", data={"username": username, "password": "Harvest-2026!"}
    )
    assert refused.json()["code"] == "PASSWORD_CHANGE_REQUIRED"
    secretary = await first_login(client, username, "Harvest-2026!", "Bumper-Crop-2027!")
    mine = await gql(client, secretary, "{ tenants { nodes { name } } }")
    assert [n["name"] for n in mine["data"]["tenants"]["nodes"]] == ["丰收镇"]
    branches = await gql(client, secretary, CHILDREN, {"p": town["id"], "all": False})
    assert [n["name"] for n in branches["data"]["children"]["nodes"]] == ["丰收镇第一支部"]
    other = await gql(client, secretary, CHILDREN, {"p": world.gid("A"), "all": False})
    assert error_codes(other) == ["NOT_FOUND"]
    # A secretary decides approvals; managing branches is the organizer's job.
    denied = await gql(
        client,
        secretary,
        CREATE,
        {"input": {"parentId": town["id"], "kind": "BRANCH", "code": code + "-x", "name": "x"}},
    )
    assert error_codes(denied) == ["FORBIDDEN"]


async def test_org_tree_rules_give_coded_chinese_errors(
    client: httpx.AsyncClient, world: World
) -> None:
    token = await login(client, world.user("county"))
    cases = [
        (
            {"parentId": world.gid("a1"), "kind": "BRANCH", "code": "x1", "name": "支部下的支部"},
            "INVALID_PARENT_KIND",
        ),
        (
            {"parentId": world.gid("county"), "kind": "BRANCH", "code": "x2", "name": "县下的支部"},
            "INVALID_PARENT_KIND",
        ),
        (
            {"parentId": world.gid("A"), "kind": "BRANCH", "code": "坏编码", "name": "x"},
            "INVALID_CODE",
        ),
        (
            {"parentId": world.gid("A"), "kind": "BRANCH", "code": "ok-1", "name": "   "},
            "INVALID_NAME",
        ),
        (
            {
                "parentId": world.gid("A"),
                "kind": "BRANCH",
                "code": f"{world.tag}-a1",
                "name": "重号",
            },
            "DUPLICATE_CODE",
        ),
    ]
    for data, code in cases:
        body = await gql(client, token, CREATE, {"input": data})
        assert error_codes(body) == [code], (data, body)
        message = body["errors"][0]["message"]
        assert any("\u4e00" <= ch <= "\u9fff" for ch in message), message

    busy = await gql(client, token, ARCHIVE, {"input": {"id": world.gid("ag")}})
    assert error_codes(busy) == ["ORG_UNIT_HAS_ACTIVE_CHILDREN"]
    await gql(client, token, ARCHIVE, {"input": {"id": world.gid("a2")}})
    again = await gql(client, token, ARCHIVE, {"input": {"id": world.gid("a2")}})
    assert error_codes(again) == ["ORG_UNIT_ARCHIVED"]
    rename_archived = await gql(
        client, token, RENAME, {"input": {"id": world.gid("a2"), "name": "n"}}
    )
    assert error_codes(rename_archived) == ["ORG_UNIT_ARCHIVED"]
    under_archived = await gql(
        client,
        token,
        CREATE,
        {"input": {"parentId": world.gid("a2"), "kind": "BRANCH", "code": "z", "name": "z"}},
    )
    assert error_codes(under_archived) == ["ORG_UNIT_ARCHIVED"]


async def test_stale_version_is_a_conflict_and_changes_nothing(
    client: httpx.AsyncClient, world: World
) -> None:
    token = await login(client, world.user("orgA"))
    first = await gql(
        client,
        token,
        RENAME,
        {"input": {"id": world.gid("a1"), "name": "改名一", "expectedVersion": 1}},
    )
    assert first["data"]["renameOrgUnit"]["orgUnit"]["version"] == 2
    stale = await gql(
        client,
        token,
        RENAME,
        {"input": {"id": world.gid("a1"), "name": "改名二", "expectedVersion": 1}},
    )
    assert error_codes(stale) == ["VERSION_CONFLICT"]
    now = await gql(
        client, token, "query($id: ID!) { orgUnit(id: $id) { name } }", {"id": world.gid("a1")}
    )
    assert now["data"]["orgUnit"]["name"] == "改名一"


async def test_failed_mutation_in_a_document_rolls_back_the_whole_request(
    client: httpx.AsyncClient, world: World, owner_conn: psycopg.Connection
) -> None:
    token = await login(client, world.user("orgA"))
    body = await gql(
        client,
        token,
        """mutation($ok: CreateOrgUnitInput!, $bad: CreateOrgUnitInput!) {
             a: createOrgUnit(input: $ok) { orgUnit { id } }
             b: createOrgUnit(input: $bad) { orgUnit { id } } }""",
        {
            "ok": {
                "parentId": world.gid("A"),
                "kind": "BRANCH",
                "code": "roll-1",
                "name": "回滚支部",
            },
            "bad": {"parentId": world.gid("a1"), "kind": "BRANCH", "code": "roll-2", "name": "x"},
        },
    )
    assert error_codes(body) == ["INVALID_PARENT_KIND"]
    left = owner_conn.execute(
        "SELECT count(*) FROM org_units WHERE tenant_id = %s AND code = 'roll-1'",
        (world.units["A"].id,),
    ).fetchone()
    assert left == (0,)
