"""Separation of duties (三员分立) and the role hierarchy (issue 7).

- The three administrator roles exclude each other and every business role on one
  account: in the service, and in the database under two racing grants.
- What each administrator may do: the system administrator manages accounts as system
  resources and nothing else; the security administrator grants roles; the auditor
  audits; the org tree is the organizers'.
- Authority over a role: strictly below one's own unit, or at it for lower ranks only.
- Who may see whom is consistent: role:read implies account:read.
"""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import httpx
import psycopg
import pytest
from alembic import command
from psycopg import sql

from service.authz.enforcer import authorizer
from service.authz.roles import ADMIN_ROLES, RANK, Role, has_authority, outranks
from service.config import Settings
from service.db import libpq_url
from service.migrate import alembic_config
from service.schema.ids import to_global_id
from tests.conftest import TestDatabase
from tests.support import PASSWORD, World, error_codes, gql, login, scratch_database

ASSIGN = """
mutation($input: AssignRoleInput!) {
  assignRole(input: $input) { roleAssignment { id role } }
}"""
REVOKE = """
mutation($input: RevokeRoleInput!) { revokeRole(input: $input) { roleAssignment { id role } } }
"""
ACCOUNT_OP = "mutation($input: AccountIdInput!) {{ {name}(input: $input) {{ account {{ id }} }} }}"
RESET = """mutation($input: ResetAccountPasswordInput!) {
  resetAccountPassword(input: $input) { account { id } } }"""
NEW_PASSWORD = "Xin-Mima-2026-abc"


def assign_input(world: World, who: str, role: str, unit: str) -> dict[str, Any]:
    return {
        "input": {"accountId": world.account_gid(who), "role": role, "orgUnitId": world.gid(unit)}
    }


def grant_gid(owner_conn: psycopg.Connection[Any], world: World, who: str) -> str:
    row = owner_conn.execute(
        "SELECT id FROM role_assignments WHERE account_id = %s", (world.accounts[who],)
    ).fetchone()
    assert row is not None
    return to_global_id("RoleAssignment", row[0])


def roles_of(owner_conn: psycopg.Connection[Any], account_id: int) -> list[str]:
    rows = owner_conn.execute(
        "SELECT role FROM role_assignments WHERE account_id = %s ORDER BY role", (account_id,)
    ).fetchall()
    return [r[0] for r in rows]


async def account_op(
    client: httpx.AsyncClient, token: str, name: str, world: World, who: str
) -> dict[str, Any]:
    return await gql(
        client,
        token,
        ACCOUNT_OP.format(name=name),
        {"input": {"accountId": world.account_gid(who)}},
    )


# --- 三员分立: one duty class per account --------------------------------------------


async def test_admin_roles_exclude_business_roles_in_the_service(
    client: httpx.AsyncClient, world: World, owner_conn: psycopg.Connection[Any]
) -> None:
    security = await login(client, world.user("security"))
    # The auditor may not become 县委组织部, nor a branch member.
    for role, unit in (("COUNTY_ORGANIZER", "county"), ("MEMBER", "a1")):
        body = await gql(client, security, ASSIGN, assign_input(world, "auditor", role, unit))
        assert error_codes(body) == ["ADMIN_ROLES_EXCLUSIVE"], body
    # A business user may not become system administrator.
    body = await gql(
        client, security, ASSIGN, assign_input(world, "bsA1", "SYSTEM_ADMIN", "county")
    )
    assert error_codes(body) == ["ADMIN_ROLES_EXCLUSIVE"], body
    # A county organizer may not make the system administrator a branch secretary.
    county = await login(client, world.user("county"))
    body = await gql(
        client, county, ASSIGN, assign_input(world, "sysadmin", "BRANCH_SECRETARY", "a2")
    )
    assert error_codes(body) == ["ADMIN_ROLES_EXCLUSIVE"], body
    assert roles_of(owner_conn, world.accounts["auditor"]) == ["auditor"]
    assert roles_of(owner_conn, world.accounts["bsA1"]) == ["branch_secretary"]
    # Positive control: an account without roles may become an administrator.
    body = await gql(client, security, ASSIGN, assign_input(world, "nobody", "AUDITOR", "county"))
    assert body.get("errors") is None, body


def _insert_grant(conn: psycopg.Connection[Any], unit: Any, account_id: int, role: str) -> None:
    """As the application role, in the connection's open transaction."""
    conn.execute(sql.SQL("SET LOCAL app.tenant_ids = {}").format(sql.Literal(str(unit.tenant_id))))
    conn.execute(
        "INSERT INTO role_assignments (tenant_id, account_id, role, org_unit_id, org_path)"
        " VALUES (%s, %s, %s, %s, %s)",
        (unit.tenant_id, account_id, role, unit.id, unit.path),
    )


async def test_database_refuses_an_admin_role_beside_a_business_role(
    world: World, app_conn: psycopg.Connection[Any], owner_conn: psycopg.Connection[Any]
) -> None:
    """Raw SQL as the application role, past the service: both directions refused."""
    cases = (
        ("sysadmin", "a1", "member"),  # admin, then business
        ("memA1", "county", "security_admin"),  # business, then admin
    )
    for who, unit, role in cases:
        with pytest.raises(psycopg.errors.ExclusionViolation):
            with app_conn.transaction():
                _insert_grant(app_conn, world.units[unit], world.accounts[who], role)
    assert roles_of(owner_conn, world.accounts["sysadmin"]) == ["system_admin"]
    assert roles_of(owner_conn, world.accounts["memA1"]) == ["member"]
    # The application role cannot rewrite the duty table itself.
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        with app_conn.transaction():
            app_conn.execute(
                "UPDATE account_duties SET duty = 'business' WHERE account_id = %s",
                (world.accounts["sysadmin"],),
            )


async def test_revoking_the_last_grant_frees_the_account_for_another_duty(
    world: World, app_conn: psycopg.Connection[Any], owner_conn: psycopg.Connection[Any]
) -> None:
    nobody = world.accounts["nobody"]
    with app_conn.transaction():
        _insert_grant(app_conn, world.units["county"], nobody, "auditor")
    with app_conn.transaction():
        app_conn.execute(
            sql.SQL("SET LOCAL app.tenant_ids = {}").format(
                sql.Literal(str(world.units["county"].tenant_id))
            )
        )
        app_conn.execute("DELETE FROM role_assignments WHERE account_id = %s", (nobody,))
    for unit in ("a1", "a2"):  # two business grants: the count goes up and down
        with app_conn.transaction():
            _insert_grant(app_conn, world.units[unit], nobody, "member")
    duty = owner_conn.execute(
        "SELECT duty, grants FROM account_duties WHERE account_id = %s", (nobody,)
    ).fetchone()
    assert duty == ("business", 2)


def _wait_until_blocked(owner_conn: psycopg.Connection[Any], pid: int) -> None:
    """Until `pid` waits for a lock (the racing insert has reached the duty row)."""
    for _ in range(10_000):
        waiting = owner_conn.execute(
            "SELECT EXISTS (SELECT FROM pg_locks WHERE pid = %s AND NOT granted)", (pid,)
        ).fetchone()
        if waiting and waiting[0]:
            return
        threading.Event().wait(0.01)
    raise AssertionError("the racing insert never waited")


@pytest.mark.parametrize("first_commits", [True, False])
async def test_two_racing_grants_cannot_both_pass(
    world: World,
    database: TestDatabase,
    app_conn: psycopg.Connection[Any],
    owner_conn: psycopg.Connection[Any],
    first_commits: bool,
) -> None:
    """Two connections grant `nobody` an admin role and a business role at once: the
    second waits for the first; it is refused when the first commits and passes when
    the first rolls back (no false refusal)."""
    nobody = world.accounts["nobody"]
    outcome: dict[str, BaseException | None] = {}

    with psycopg.connect(database.app_url) as second:
        second_pid = second.info.backend_pid

        def race() -> None:
            try:
                with second.transaction():
                    _insert_grant(second, world.units["a1"], nobody, "member")
                outcome["second"] = None
            except BaseException as exc:
                outcome["second"] = exc

        tx = app_conn.transaction()
        tx.__enter__()
        try:
            _insert_grant(app_conn, world.units["county"], nobody, "system_admin")
            thread = threading.Thread(target=race)
            thread.start()
            _wait_until_blocked(owner_conn, second_pid)
        finally:
            if first_commits:
                tx.__exit__(None, None, None)
            else:
                tx.__exit__(RuntimeError, RuntimeError("roll back"), None)
        thread.join()

    if first_commits:
        assert isinstance(outcome["second"], psycopg.errors.ExclusionViolation), outcome
        assert roles_of(owner_conn, nobody) == ["system_admin"]
    else:
        assert outcome["second"] is None, outcome
        assert roles_of(owner_conn, nobody) == ["member"]


def test_the_database_knows_the_same_admin_roles(owner_conn: psycopg.Connection[Any]) -> None:
    """pingyi_role_duty (migration 0004) and roles.ADMIN_ROLES name the same roles."""
    for role in Role:
        duty = owner_conn.execute("SELECT pingyi_role_duty(%s)", (role.value,)).fetchone()
        assert duty is not None
        assert duty[0] == (role.value if role in ADMIN_ROLES else "business"), role


# --- what each administrator may do --------------------------------------------------

BUSINESS_PREFIXES = ("member:", "dues:", "life:", "sanction:", "registration:")


def test_policy_gives_each_administrator_one_duty() -> None:
    auth = authorizer()
    system = auth.actions_of("system_admin")
    security = auth.actions_of("security_admin")
    auditor = auth.actions_of("auditor")
    # System administrator: accounts as system resources (and reading the tree to
    # place them); no business data, no org-tree writes, no role grants, no audit.
    assert {
        "account:create",
        "account:disable",
        "account:enable",
        "account:reset_password",
        "account:unlock",
    } <= system
    assert system <= {"orgunit:read"} | {a for a in system if a.startswith("account:")}
    # Security administrator: role grants and revocations; no business data, no audit.
    assert {"role:assign", "role:assign_admin", "role:revoke"} <= security
    assert not {a for a in security if a.startswith((*BUSINESS_PREFIXES, "audit:"))}
    assert not {a for a in security if a.startswith("orgunit:") and a != "orgunit:read"}
    # Auditor: the audit log, nothing else; nobody else reads it (but the CLI).
    assert auditor and all(a.startswith("audit:") for a in auditor), auditor
    for role in Role:
        if role not in (Role.AUDITOR, Role.PLATFORM_OPERATOR):
            assert not any(a.startswith("audit:") for a in auth.actions_of(role)), role
    # The org tree is business data: the organizers (and the CLI) write it.
    writers = {
        role
        for role in Role
        if {"orgunit:create", "orgunit:update", "orgunit:archive"} & auth.actions_of(role)
    }
    assert writers == {Role.COUNTY_ORGANIZER, Role.COMMITTEE_ORGANIZER, Role.PLATFORM_OPERATOR}


async def test_system_admin_cannot_write_the_org_tree_but_organizers_can(
    client: httpx.AsyncClient, world: World
) -> None:
    create = """mutation($input: CreateOrgUnitInput!) {
      createOrgUnit(input: $input) { orgUnit { name } } }"""
    rename = """mutation($input: RenameOrgUnitInput!) {
      renameOrgUnit(input: $input) { orgUnit { name } } }"""
    archive = """mutation($input: ArchiveOrgUnitInput!) {
      archiveOrgUnit(input: $input) { orgUnit { name } } }"""
    sysadmin = await login(client, world.user("sysadmin"))
    new_branch = {
        "input": {"parentId": world.gid("A"), "kind": "BRANCH", "code": "x9", "name": "新支部"}
    }
    for query, variables in (
        (create, new_branch),
        (rename, {"input": {"id": world.gid("a2"), "name": "改名"}}),
        (archive, {"input": {"id": world.gid("a2")}}),
    ):
        body = await gql(client, sysadmin, query, variables)
        assert error_codes(body) == ["FORBIDDEN"], body
    # The township's organizer manages its tree.
    organizer = await login(client, world.user("orgA"))
    body = await gql(client, organizer, create, new_branch)
    assert body["data"]["createOrgUnit"]["orgUnit"]["name"] == "新支部", body


async def test_system_and_security_admins_see_no_business_data_and_grant_per_duty(
    client: httpx.AsyncClient, world: World
) -> None:
    members = "query($u: ID!) { members(orgUnitId: $u) { nodes { name } } }"
    member = "query($id: ID!) { member(id: $id) { name } }"
    for who in ("sysadmin", "security", "auditor"):
        token = await login(client, world.user(who))
        listed = await gql(client, token, members, {"u": world.gid("a1")})
        assert not ((listed.get("data") or {}).get("members") or {}).get("nodes"), (who, listed)
        one = await gql(client, token, member, {"id": world.member_gid("memA1")})
        assert error_codes(one) in (["FORBIDDEN"], ["NOT_FOUND"]), (who, one)
    # The system administrator grants no roles; the auditor neither.
    for who in ("sysadmin", "auditor"):
        token = await login(client, world.user(who))
        body = await gql(client, token, ASSIGN, assign_input(world, "nobody", "MEMBER", "a1"))
        assert error_codes(body) in (["FORBIDDEN"], ["NOT_FOUND"]), (who, body)


# --- accounts as system resources ----------------------------------------------------


async def test_system_admin_disables_and_enables_an_account(
    client: httpx.AsyncClient, world: World, owner_conn: psycopg.Connection[Any]
) -> None:
    member_token = await login(client, world.user("memA1"))
    sysadmin = await login(client, world.user("sysadmin"))
    body = await account_op(client, sysadmin, "disableAccount", world, "memA1")
    assert body.get("errors") is None, body
    # The running session ends, and no new one opens.
    me = await gql(client, member_token, "{ me { id } }", status=None)
    assert me.get("data") is None or me["data"].get("me") is None, me
    refused = await client.post(
        "/auth/token", data={"username": world.user("memA1"), "password": PASSWORD}
    )
    assert refused.status_code == 403 and refused.json()["code"] == "ACCOUNT_DISABLED"
    body = await account_op(client, sysadmin, "enableAccount", world, "memA1")
    assert body.get("errors") is None, body
    await login(client, world.user("memA1"))
    actions = [
        r[0]
        for r in owner_conn.execute(
            "SELECT action FROM audit_events WHERE object_type = 'Account' AND object_id = %s"
            " AND action IN ('account.disable', 'account.enable') ORDER BY seq",
            (str(world.accounts["memA1"]),),
        ).fetchall()
    ]
    assert actions == ["account.disable", "account.enable"]


async def test_system_admin_resets_a_password_and_unlocks_an_account(
    client: httpx.AsyncClient, world: World, settings: Any
) -> None:
    sysadmin = await login(client, world.user("sysadmin"))
    # Lock bsA1 out with wrong passwords ...
    for _ in range(settings.login_max_failures):
        await client.post(
            "/auth/token", data={"username": world.user("bsA1"), "password": "wrong-Pass-1"}
        )
    locked = await client.post(
        "/auth/token", data={"username": world.user("bsA1"), "password": PASSWORD}
    )
    assert locked.status_code == 423, locked.text
    # ... and unlock it before its window ends.
    body = await account_op(client, sysadmin, "unlockAccount", world, "bsA1")
    assert body.get("errors") is None, body
    old_token = await login(client, world.user("bsA1"))

    body = await gql(
        client,
        sysadmin,
        RESET,
        {"input": {"accountId": world.account_gid("bsA1"), "password": NEW_PASSWORD}},
    )
    assert body.get("errors") is None, body
    gone = await gql(client, old_token, "{ me { id } }", status=None)
    assert gone.get("data") is None or gone["data"].get("me") is None, gone
    old = await client.post(
        "/auth/token", data={"username": world.user("bsA1"), "password": PASSWORD}
    )
    assert old.status_code == 401, old.text
    new = await client.post(
        "/auth/token", data={"username": world.user("bsA1"), "password": NEW_PASSWORD}
    )
    # A password set by someone else must be changed at the next login.
    assert new.status_code == 403, new.text
    assert new.json()["code"] == "PASSWORD_CHANGE_REQUIRED"
    changed = await client.post(
        "/auth/token",
        data={
            "username": world.user("bsA1"),
            "password": NEW_PASSWORD,
            "new_password": "Own-Choice-2027!",
        },
    )
    assert changed.status_code == 200, changed.text
    weak = await gql(
        client,
        sysadmin,
        RESET,
        {"input": {"accountId": world.account_gid("memA1"), "password": "123"}},
    )
    assert error_codes(weak) == ["WEAK_PASSWORD"], weak


async def test_account_administration_is_the_system_admins_and_spares_administrators(
    client: httpx.AsyncClient, world: World
) -> None:
    sysadmin = await login(client, world.user("sysadmin"))
    # Another administrator's account: resetting the security administrator's password
    # would make the system administrator a security administrator.
    body = await gql(
        client,
        sysadmin,
        RESET,
        {"input": {"accountId": world.account_gid("security"), "password": NEW_PASSWORD}},
    )
    assert error_codes(body) == ["ADMIN_ACCOUNT_PROTECTED"], body
    body = await account_op(client, sysadmin, "disableAccount", world, "auditor")
    assert error_codes(body) == ["ADMIN_ACCOUNT_PROTECTED"], body
    body = await account_op(client, sysadmin, "disableAccount", world, "sysadmin")
    assert error_codes(body) == ["CANNOT_CHANGE_OWN_ACCOUNT"], body
    # Not the security administrator's, nor an organizer's, duty.
    for who in ("security", "orgA", "county"):
        token = await login(client, world.user(who))
        body = await account_op(client, token, "disableAccount", world, "memA1")
        assert error_codes(body) == ["FORBIDDEN"], (who, body)


# --- authority over a role: the rank order -------------------------------------------


def test_rank_order_examples() -> None:
    assert RANK[0] == frozenset({Role.PLATFORM_OPERATOR})
    assert outranks("county_organizer", "committee_secretary")
    assert outranks("committee_secretary", "committee_organizer")
    assert not outranks("committee_organizer", "committee_secretary")
    assert not outranks("committee_organizer", "committee_organizer")
    assert outranks("security_admin", "system_admin")
    town, branch = "/1/2/3/", "/1/2/3/4/"
    # Below one's unit: any role; at it: lower ranks only; elsewhere: none.
    assert has_authority("committee_organizer", town, "branch_secretary", branch)
    assert has_authority("committee_organizer", town, "member", town + "9/")
    assert not has_authority("committee_organizer", town, "committee_secretary", town)
    assert not has_authority("committee_organizer", town, "committee_organizer", town)
    assert has_authority("county_organizer", "/1/2/", "committee_secretary", town)
    assert not has_authority("committee_organizer", town, "member", "/1/2/8/")
    assert not has_authority("security_admin", "/1/2/", "security_admin", "/1/2/")
    assert has_authority("security_admin", "/1/2/", "auditor", "/1/2/")


async def test_township_organizer_cannot_touch_the_township_secretary(
    client: httpx.AsyncClient, world: World, owner_conn: psycopg.Connection[Any]
) -> None:
    organizer = await login(client, world.user("orgA"))
    secretary_grant = grant_gid(owner_conn, world, "secA")
    body = await gql(client, organizer, REVOKE, {"input": {"roleAssignmentId": secretary_grant}})
    assert error_codes(body) == ["FORBIDDEN"], body
    for role in ("COMMITTEE_SECRETARY", "COMMITTEE_ORGANIZER"):
        body = await gql(client, organizer, ASSIGN, assign_input(world, "nobody", role, "A"))
        assert error_codes(body) == ["FORBIDDEN"], (role, body)
    # Below the township, the organizer appoints the branch secretary.
    body = await gql(
        client, organizer, ASSIGN, assign_input(world, "nobody", "BRANCH_SECRETARY", "a2")
    )
    assert body.get("errors") is None, body
    # The county organization department may revoke the township secretary.
    county = await login(client, world.user("county"))
    body = await gql(client, county, REVOKE, {"input": {"roleAssignmentId": secretary_grant}})
    assert body["data"]["revokeRole"]["roleAssignment"]["role"] == "COMMITTEE_SECRETARY", body
    # ... and appoints at its own unit only roles below its own.
    body = await gql(
        client, county, ASSIGN, assign_input(world, "secB", "COUNTY_ORGANIZER", "county")
    )
    assert error_codes(body) == ["FORBIDDEN"], body


async def test_security_admin_grants_admin_roles_by_rank(
    client: httpx.AsyncClient, world: World
) -> None:
    security = await login(client, world.user("security"))
    body = await gql(
        client, security, ASSIGN, assign_input(world, "nobody", "SECURITY_ADMIN", "county")
    )
    assert error_codes(body) == ["FORBIDDEN"], body
    body = await gql(
        client, security, ASSIGN, assign_input(world, "nobody", "SYSTEM_ADMIN", "county")
    )
    assert body["data"]["assignRole"]["roleAssignment"]["role"] == "SYSTEM_ADMIN", body


# --- who may see whom ----------------------------------------------------------------


def test_who_sees_role_assignments_sees_the_accounts() -> None:
    auth = authorizer()
    for role in Role:
        actions = auth.actions_of(role)
        if "role:read" in actions:
            assert "account:read" in actions, role


async def test_branch_secretary_sees_the_accounts_of_the_branch_members(
    client: httpx.AsyncClient, world: World
) -> None:
    token = await login(client, world.user("bsA1"))
    query = """query($id: ID!) { node(id: $id) { ... on Account { id
      roleAssignments { nodes { role } } } } }"""
    body = await gql(client, token, query, {"id": world.account_gid("memA1")})
    assert body.get("errors") is None, body
    assert body["data"]["node"]["roleAssignments"]["nodes"] == [{"role": "MEMBER"}]
    # Not beyond the branch: the township secretary's account stays hidden.
    body = await gql(client, token, query, {"id": world.account_gid("secA")})
    assert error_codes(body) == ["NOT_FOUND"], body


async def test_a_grant_that_loses_the_race_answers_admin_roles_exclusive(
    client: httpx.AsyncClient,
    world: World,
    app_conn: psycopg.Connection[Any],
    owner_conn: psycopg.Connection[Any],
) -> None:
    """The service's own check passes (the other grant is not committed yet); the
    database refuses at commit of the other, and the API says why, not a 500."""
    nobody = world.accounts["nobody"]
    organizer = await login(client, world.user("orgA"))
    tx = app_conn.transaction()
    tx.__enter__()
    try:
        _insert_grant(app_conn, world.units["county"], nobody, "auditor")
        request = asyncio.create_task(
            gql(client, organizer, ASSIGN, assign_input(world, "nobody", "MEMBER", "a1"))
        )
        for _ in range(10_000):
            waiting = owner_conn.execute(
                "SELECT EXISTS (SELECT FROM pg_locks l JOIN pg_stat_activity a USING (pid)"
                " WHERE NOT l.granted AND a.datname = current_database()"
                " AND a.pid <> pg_backend_pid())"
            ).fetchone()
            if waiting and waiting[0]:
                break
            await asyncio.sleep(0.01)
        else:
            raise AssertionError("the racing request never waited")
    finally:
        tx.__exit__(None, None, None)
    body = await request
    assert error_codes(body) == ["ADMIN_ROLES_EXCLUSIVE"], body
    assert roles_of(owner_conn, nobody) == ["auditor"]


# --- the migration on an existing database -------------------------------------------


def _at_0003(owner: str, settings: Settings, grants: list[tuple[str, str]]) -> None:
    """The empty database at `owner` migrated to 0003 with a county, and accounts
    holding `grants` (username, role) at the county."""
    command.upgrade(alembic_config(owner, settings.app_db_role), "0003")
    with psycopg.connect(libpq_url(owner), autocommit=True) as conn:
        conn.execute(
            "INSERT INTO tenants (id, parent_id, kind, code, path)"
            " SELECT nextval('org_unit_id_seq'), id, 'county', 'old', '' FROM tenants"
            " WHERE kind = 'platform';"
            " UPDATE tenants SET path = '/1/' || id || '/' WHERE code = 'old'"
        )
        county = conn.execute("SELECT id, path FROM tenants WHERE code = 'old'").fetchone()
        assert county is not None
        conn.execute(f"SET app.tenant_ids = '{int(county[0])}'")
        conn.execute(
            "INSERT INTO org_units (tenant_id, id, parent_tenant_id, parent_id, kind, code,"
            " name, path) VALUES (%s, %s, 1, 1, 'county', 'old', '旧县', %s)",
            (county[0], county[0], county[1]),
        )
        for username, role in grants:
            conn.execute(
                "INSERT INTO accounts (username, display_name, password_hash, home_tenant_id,"
                " home_org_unit_id) VALUES (%s, 'x', 'x', %s, %s) ON CONFLICT DO NOTHING",
                (username, county[0], county[0]),
            )
            conn.execute(
                "INSERT INTO role_assignments (tenant_id, account_id, role, org_unit_id,"
                " org_path) SELECT %s, id, %s, %s, %s FROM accounts WHERE username = %s",
                (county[0], role, county[0], county[1], username),
            )


def test_upgrade_to_0004_records_the_duties_of_existing_grants(
    database: TestDatabase, settings: Settings
) -> None:
    with scratch_database(database.owner_url, "pingyi_duties") as owner:
        _at_0003(owner, settings, [("old.admin", "system_admin"), ("old.org", "county_organizer")])
        command.upgrade(alembic_config(owner, settings.app_db_role), "0004")
        with psycopg.connect(libpq_url(owner), autocommit=True) as conn:
            duties = conn.execute(
                "SELECT a.username, d.duty, d.grants FROM account_duties d"
                " JOIN accounts a ON a.id = d.account_id ORDER BY a.username"
            ).fetchall()
            assert duties == [("old.admin", "system_admin", 1), ("old.org", "business", 1)]
            assert conn.execute(
                "SELECT relforcerowsecurity FROM pg_class WHERE relname = 'role_assignments'"
            ).fetchone() == (True,)


def test_upgrade_to_0004_stops_at_an_account_holding_both_duties(
    database: TestDatabase, settings: Settings
) -> None:
    with scratch_database(database.owner_url, "pingyi_duties") as owner:
        _at_0003(owner, settings, [("old.both", "auditor"), ("old.both", "county_organizer")])
        with pytest.raises(Exception, match="三员分立"):
            command.upgrade(alembic_config(owner, settings.app_db_role), "0004")
        with psycopg.connect(libpq_url(owner), autocommit=True) as conn:
            assert conn.execute("SELECT version_num FROM alembic_version").fetchone() == ("0003",)
