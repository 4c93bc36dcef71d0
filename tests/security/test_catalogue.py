"""The catalogue says lock 2 is in place: every tenant table has row-level security,
enabled and forced, with a tenant policy; the application role can neither bypass it
nor rewrite the audit log.

Everything is read from the PostgreSQL catalogue of the migrated test database, so a
table, view or function added later is checked without being listed here.
"""

from __future__ import annotations

from typing import Any

import psycopg
import pytest
from psycopg import errors, sql

from service.config import Settings
from tests.support import World

# Tables without tenant_id, on purpose: reference data and the identity layer, which is
# read before any tenant scope exists (login). A new table lands here only after a
# thought about whether it holds a tenant's data; if it does, give it tenant_id and RLS.
GLOBAL_TABLES = {
    "alembic_version": "migration bookkeeping",
    "tenants": "registry of tenant ids, kinds, codes and paths; no names, no business data",
    "accounts": "login identities, read by username before a scope exists",
    "auth_sessions": "refresh-token sessions of accounts",
    "login_failures": "failed-login counter of accounts",
    "auth_epoch": "one counter that moves when a tenant is created (principal cache guard)",
    "account_duties": "each account's duty class (三员分立) across tenants; trigger-written",
    "account_recovery_codes": "SHA-256 digests of accounts' MFA recovery codes",
    "password_history": "argon2 hashes of accounts' previous passwords (no reuse of the last 5)",
    "auth_refresh_tokens": "SHA-256 digests of every refresh token a session was given",
    "unknown_login_failures": "failed logins of unknown usernames, by a digest of the name",
    "account_wechat": "an account's WeChat binding (keyed openid digest), read at WeChat login",
}

# SECURITY DEFINER functions the application role may call, each reviewed: it must pin
# its search_path and confine itself to the caller's scope (pingyi_tenant_scope()),
# since RLS need not bind its owner.
REVIEWED_DEFINER_FUNCTIONS = {
    "evaluation_count_ballot": "adds a ballot to a balloting round's counters, nothing else",
    "evaluation_take_counts": "a closing round's counts, deleting its counters; closed only",
}

# The tenant policy, as pg_policies prints it: the scope read once per statement (an
# initplan), not once per row (migration 0016).
TENANT_POLICY = (
    "(tenant_id = ANY (( SELECT pingyi_tenant_scope() AS pingyi_tenant_scope)::bigint[]))"
)

# Policies besides the tenant policy, each read-only and reviewed: (table, policy).
EXTRA_POLICIES = {
    ("role_assignments", "own_grants"): "an account reads its own grants to learn its scope",
}


def tables(owner_conn: psycopg.Connection[Any]) -> dict[str, dict[str, Any]]:
    rows = owner_conn.execute(
        """
        SELECT c.relname, c.relrowsecurity, c.relforcerowsecurity,
               pg_get_userbyid(c.relowner),
               EXISTS (SELECT FROM pg_attribute a WHERE a.attrelid = c.oid
                       AND a.attname = 'tenant_id' AND NOT a.attisdropped),
               (SELECT a.attnotnull FROM pg_attribute a WHERE a.attrelid = c.oid
                AND a.attname = 'tenant_id' AND NOT a.attisdropped),
               c.relkind
        FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p')
        """
    ).fetchall()
    return {
        r[0]: {
            "rls": r[1],
            "forced": r[2],
            "owner": r[3],
            "tenant_id": r[4],
            "not_null": r[5],
            "kind": r[6],
        }
        for r in rows
    }


def tenant_tables(owner_conn: psycopg.Connection[Any]) -> list[str]:
    found = sorted(name for name, t in tables(owner_conn).items() if t["tenant_id"])
    assert {"org_units", "role_assignments", "audit_events"} <= set(found), found
    return found


def app_role(settings: Settings) -> str:
    return settings.app_db_role


def test_every_tenant_table_has_rls_enabled_forced_and_a_tenant_policy(
    owner_conn: psycopg.Connection[Any],
) -> None:
    catalogue = tables(owner_conn)
    policies = owner_conn.execute(
        "SELECT tablename, policyname, permissive, roles, cmd, qual, with_check"
        " FROM pg_policies WHERE schemaname = 'public'"
    ).fetchall()
    problems = []
    for table in tenant_tables(owner_conn):
        t = catalogue[table]
        if not t["rls"]:
            problems.append(f"{table}: row-level security not enabled")
        if not t["forced"]:
            problems.append(f"{table}: row-level security not forced (the owner bypasses it)")
        if not t["not_null"]:
            problems.append(f"{table}: tenant_id is nullable")
        tenant_policies = [
            p
            for p in policies
            if p[0] == table
            and p[2] == "PERMISSIVE"
            and p[4] == "ALL"
            and p[5] == TENANT_POLICY
            and p[6] == TENANT_POLICY
        ]
        if not tenant_policies:
            problems.append(
                f"{table}: no ALL policy USING and WITH CHECK"
                " tenant_id = ANY ((SELECT pingyi_tenant_scope())::bigint[])"
            )
    assert not problems, "\n".join(problems)


def test_every_table_either_holds_tenant_rows_or_is_a_known_global_table(
    owner_conn: psycopg.Connection[Any],
) -> None:
    catalogue = tables(owner_conn)
    unknown = sorted(
        name for name, t in catalogue.items() if not t["tenant_id"] and name not in GLOBAL_TABLES
    )
    assert not unknown, (
        f"tables without tenant_id: {unknown}. If they hold a tenant's data give them "
        "tenant_id and RLS; if not, add them to GLOBAL_TABLES in this file with the reason"
    )
    # And the global tables really are global (a tenant_id there would need RLS instead).
    for name in GLOBAL_TABLES:
        if name in catalogue:
            assert not catalogue[name]["tenant_id"], name


def test_tenant_keys_include_tenant_id(owner_conn: psycopg.Connection[Any]) -> None:
    """Primary keys, and foreign keys between tenant tables, carry tenant_id (Citus-ready,
    and a foreign key can never point into another tenant)."""
    tenant = set(tenant_tables(owner_conn))
    rows = owner_conn.execute(
        """
        SELECT con.conname, con.contype, src.relname, dst.relname,
               ARRAY(SELECT a.attname FROM unnest(con.conkey) k
                     JOIN pg_attribute a ON a.attrelid = con.conrelid AND a.attnum = k),
               ARRAY(SELECT a.attname FROM unnest(con.confkey) k
                     JOIN pg_attribute a ON a.attrelid = con.confrelid AND a.attnum = k)
        FROM pg_constraint con
        JOIN pg_class src ON src.oid = con.conrelid
        JOIN pg_namespace n ON n.oid = src.relnamespace
        LEFT JOIN pg_class dst ON dst.oid = con.confrelid
        WHERE n.nspname = 'public' AND con.contype IN ('p', 'f')
        """
    ).fetchall()
    problems = []
    primary = {r[2] for r in rows if r[1] == "p"}
    for table in tenant:
        if table not in primary:
            problems.append(f"{table}: no primary key")
    for name, kind, src, dst, cols, fcols in rows:
        if src not in tenant:
            continue
        if kind == "p" and "tenant_id" not in cols:
            problems.append(f"{src}: primary key {name} without tenant_id")
        if kind == "f" and dst in tenant:
            pairs = dict(zip(cols, fcols, strict=True))
            if not any(fc == "tenant_id" for c, fc in pairs.items() if c.endswith("tenant_id")):
                problems.append(f"{src}: foreign key {name} to {dst} without tenant_id")
    assert not problems, "\n".join(problems)


def test_extra_policies_are_known_and_read_only(owner_conn: psycopg.Connection[Any]) -> None:
    """Policies are OR-ed: any other permissive policy widens what a scope sees, so each
    must be reviewed (EXTRA_POLICIES) and must not open writes."""
    rows = owner_conn.execute(
        "SELECT tablename, policyname, permissive, cmd, qual FROM pg_policies"
        " WHERE schemaname = 'public'"
    ).fetchall()
    for table, name, permissive, cmd, qual in rows:
        is_tenant_policy = cmd == "ALL" and "pingyi_tenant_scope()" in (qual or "")
        if is_tenant_policy or permissive != "PERMISSIVE":
            continue
        assert (table, name) in EXTRA_POLICIES, (
            f"unreviewed policy {name} on {table}: {cmd} USING {qual}"
        )
        assert cmd == "SELECT", (table, name, cmd)


def test_app_role_is_not_superuser_owner_or_bypassing(
    owner_conn: psycopg.Connection[Any], settings: Settings
) -> None:
    role = app_role(settings)
    row = owner_conn.execute(
        "SELECT oid, rolsuper, rolbypassrls, rolcreaterole, rolcreatedb, rolreplication"
        " FROM pg_roles WHERE rolname = %s",
        (role,),
    ).fetchone()
    assert row is not None, f"application role {role} does not exist"
    oid, superuser, bypass, createrole, createdb, replication = row
    assert not superuser, "the application role is a superuser: RLS does not apply"
    assert not bypass, "the application role has BYPASSRLS"
    assert not createrole, "the application role may create roles (and grant itself more)"
    assert not createdb and not replication

    # It owns nothing in the schema: owners may disable RLS, drop policies, alter tables.
    owned = owner_conn.execute(
        """
        SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE n.nspname = 'public' AND c.relowner = %s
        UNION ALL
        SELECT p.proname FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
        WHERE n.nspname = 'public' AND p.proowner = %s
        UNION ALL
        SELECT n.nspname FROM pg_namespace n WHERE n.nspowner = %s
        """,
        (oid, oid, oid),
    ).fetchall()
    assert owned == [], owned

    # Nor can it become someone who could: no membership in a superuser, a BYPASSRLS
    # role or the owner of the tables.
    owners = {t["owner"] for t in tables(owner_conn).values()}
    inherited = owner_conn.execute(
        """
        SELECT r.rolname, r.rolsuper, r.rolbypassrls FROM pg_roles r
        WHERE r.oid <> %s AND pg_has_role(%s, r.oid, 'MEMBER')
        """,
        (oid, oid),
    ).fetchall()
    for name, superuser, bypass in inherited:
        assert not superuser and not bypass and name not in owners, (role, name)


def test_no_definer_rights_path_around_rls(
    owner_conn: psycopg.Connection[Any], settings: Settings
) -> None:
    """Views and SECURITY DEFINER functions run with their owner's rights, and the owner
    (a superuser here) is not bound by RLS: none may be reachable by the application role."""
    role = app_role(settings)
    views = owner_conn.execute(
        """
        SELECT c.relname, c.relkind, coalesce(c.reloptions, '{}') FROM pg_class c
        JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE n.nspname = 'public' AND c.relkind IN ('v', 'm')
          AND has_table_privilege(%s, c.oid, 'SELECT')
        """,
        (role,),
    ).fetchall()
    for name, kind, options in views:
        assert kind == "v" and "security_invoker=true" in options, (
            f"{name}: readable by {role} with its owner's rights"
        )
    definer = owner_conn.execute(
        """
        SELECT p.proname, coalesce(p.proconfig, '{}'), p.prosrc
        FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
        WHERE n.nspname = 'public' AND p.prosecdef
          AND has_function_privilege(%s, p.oid, 'EXECUTE')
        """,
        (role,),
    ).fetchall()
    for name, config, source in definer:
        assert name in REVIEWED_DEFINER_FUNCTIONS, f"{name}: unreviewed SECURITY DEFINER"
        assert any(c.startswith("search_path=") for c in config), f"{name}: no search_path"
        assert "pingyi_tenant_scope()" in source, f"{name}: does not check the tenant scope"


def test_app_role_cannot_switch_rls_off(app_conn: psycopg.Connection[Any]) -> None:
    with pytest.raises(errors.InsufficientPrivilege):
        with app_conn.transaction():
            app_conn.execute("ALTER TABLE org_units DISABLE ROW LEVEL SECURITY")
    with pytest.raises(errors.InsufficientPrivilege):
        with app_conn.transaction():
            app_conn.execute("DROP POLICY tenant_isolation ON org_units")
    # row_security = off does not lift the policies for a role without BYPASSRLS: the
    # query fails instead of returning unfiltered rows.
    with pytest.raises(errors.InsufficientPrivilege, match="row-level security"):
        with app_conn.transaction():
            app_conn.execute("SET LOCAL row_security = off")
            app_conn.execute("SELECT count(*) FROM org_units").fetchone()


def test_app_role_cannot_rewrite_the_audit_log(
    app_conn: psycopg.Connection[Any], owner_conn: psycopg.Connection[Any], world: World
) -> None:
    """The audit log is append-only for the application: not even its own tenant's events
    (visible under its scope) can be updated, deleted or truncated."""
    a = world.units["A"].tenant_id
    scope = sql.SQL("SET LOCAL app.tenant_ids = {}").format(sql.Literal(str(a)))
    with app_conn.transaction():
        app_conn.execute(scope)
        visible = app_conn.execute(
            "SELECT count(*) FROM audit_events WHERE tenant_id = %s", (a,)
        ).fetchone()
    assert visible is not None and visible[0] > 0
    statements = [
        "UPDATE audit_events SET action = 'tampered' WHERE tenant_id = %s",
        "DELETE FROM audit_events WHERE tenant_id = %s",
        "TRUNCATE audit_events",
    ]
    for statement in statements:
        with pytest.raises(errors.InsufficientPrivilege):
            with app_conn.transaction():
                app_conn.execute(scope)
                app_conn.execute(statement, (a,) if "%s" in statement else None)  # type: ignore[arg-type]
    with owner_conn.transaction():
        owner_conn.execute(scope)
        after = owner_conn.execute(
            "SELECT count(*), count(*) FILTER (WHERE action = 'tampered') FROM audit_events"
            " WHERE tenant_id = %s",
            (a,),
        ).fetchone()
    assert after == (visible[0], 0)

    for privilege in ("UPDATE", "DELETE", "TRUNCATE"):
        row = app_conn.execute(
            "SELECT has_table_privilege(current_user, 'audit_events', %s)", (privilege,)
        ).fetchone()
        assert row == (False,), privilege
    app_conn.rollback()


# -- Defence in depth (migration 0007): what the application role cannot write -----------
# Raw SQL as the application role, with a scope wide enough that row-level security is
# not what refuses: the constraints and privileges themselves must.


def _as_app(
    app_conn: psycopg.Connection[Any], scope: list[int], statement: str, params: Any = None
) -> int:
    """Run one statement as the application role in a transaction that is always rolled
    back (a refused write raises; an allowed one leaves nothing behind). Rows changed."""
    with app_conn.transaction(force_rollback=True):
        app_conn.execute(
            sql.SQL("SET LOCAL app.tenant_ids = {}").format(
                sql.Literal(",".join(str(int(t)) for t in scope))
            )
        )
        return app_conn.execute(statement, params).rowcount


def _world_scope(owner_conn: psycopg.Connection[Any], world: World) -> list[int]:
    """Every tenant of the world's county, its county and the platform root."""
    county = world.units["county"]
    rows = owner_conn.execute(
        "SELECT id FROM tenants WHERE starts_with(%s, path) OR starts_with(path, %s)",
        (county.path, county.path),
    ).fetchall()
    return [r[0] for r in rows]


def test_app_role_cannot_link_a_unit_into_another_tenant(
    app_conn: psycopg.Connection[Any], owner_conn: psycopg.Connection[Any], world: World
) -> None:
    """A unit's parent is in its own tenant; only a tenant's top unit links out, and
    only to the top unit of its tenant's parent in `tenants`."""
    scope = _world_scope(owner_conn, world)
    a, a1, b, b1 = (world.units[n] for n in ("A", "a1", "B", "b1"))
    # A new branch of A hung below B's branch, path and all consistent with b1.
    with pytest.raises(errors.CheckViolation, match="ck_org_units_parent_in_tenant"):
        _as_app(
            app_conn,
            scope,
            "INSERT INTO org_units (tenant_id, id, parent_tenant_id, parent_id, kind, code,"
            " name, path) VALUES (%s, 999991, %s, %s, 'branch', 'x-link', '越界', %s)",
            (a.tenant_id, b.tenant_id, b1.id, f"{b1.path}999991/"),
        )
    # An existing branch of A moved below B.
    with pytest.raises(errors.CheckViolation, match="ck_org_units_parent_in_tenant"):
        _as_app(
            app_conn,
            scope,
            "UPDATE org_units SET parent_tenant_id = %s, parent_id = %s, path = %s WHERE id = %s",
            (b.tenant_id, b1.id, f"{b1.path}{a1.id}/", a1.id),
        )
    # Township A's top unit hung below B's top unit: B is not A's parent tenant.
    with pytest.raises(errors.ForeignKeyViolation):
        _as_app(
            app_conn,
            scope,
            "UPDATE org_units SET parent_tenant_id = %s, parent_id = %s, path = %s"
            " WHERE id = %s AND tenant_id = %s",
            (b.tenant_id, b.id, f"{b.path}{a.id}/", a.id, a.tenant_id),
        )
    # A branch posing as a tenant's top unit (id = tenant_id is for scope kinds only).
    with pytest.raises(errors.CheckViolation, match="ck_org_units_scope_kinds_are_tops"):
        _as_app(
            app_conn,
            scope,
            "UPDATE org_units SET kind = 'branch' WHERE id = %s AND tenant_id = %s",
            (a.id, a.tenant_id),
        )
    # A second parentless unit (a root of its own inside A).
    with pytest.raises(errors.CheckViolation, match="ck_org_units_only_root_is_parentless"):
        _as_app(
            app_conn,
            scope,
            "UPDATE org_units SET parent_tenant_id = NULL, parent_id = NULL, path = %s"
            " WHERE id = %s",
            (f"/{a1.id}/", a1.id),
        )
    # What the service does is still allowed: a branch below a1 with a1's path.
    assert (
        _as_app(
            app_conn,
            scope,
            "INSERT INTO org_units (tenant_id, id, parent_tenant_id, parent_id, kind, code,"
            " name, path) VALUES (%s, 999992, %s, %s, 'branch', 'x-ok', '合法', %s)",
            (a.tenant_id, a.tenant_id, a1.id, f"{a1.path}999992/"),
        )
        == 1
    )


def test_app_role_cannot_give_a_unit_a_path_that_is_not_its_parents_plus_its_id(
    app_conn: psycopg.Connection[Any], owner_conn: psycopg.Connection[Any], world: World
) -> None:
    """Paths drive both locks (Casbin domains, tenant reach): a unit's path is its
    parent's path, its id and '/', and a path cannot move under its children."""
    scope = _world_scope(owner_conn, world)
    a, a1, ag, a3, b = (world.units[n] for n in ("A", "a1", "ag", "a3", "B"))
    insert = (
        "INSERT INTO org_units (tenant_id, id, parent_tenant_id, parent_id, kind, code,"
        " name, path) VALUES (%s, 999993, %s, %s, 'branch', 'x-path', '错路径', %s)"
    )
    # Claiming B's subtree as its path, with A as its parent.
    with pytest.raises(errors.ForeignKeyViolation, match="fk_org_units_parent_path"):
        _as_app(app_conn, scope, insert, (a.tenant_id, a.tenant_id, a.id, f"{b.path}999993/"))
    # A path that does not end in the unit's own id.
    with pytest.raises(errors.CheckViolation, match="ck_org_units_path_ends_with_id"):
        _as_app(app_conn, scope, insert, (a.tenant_id, a.tenant_id, a.id, f"{a.path}1/"))
    # A branch's path widened to the township's.
    with pytest.raises(errors.CheckViolation, match="ck_org_units_path_ends_with_id"):
        _as_app(app_conn, scope, "UPDATE org_units SET path = %s WHERE id = %s", (a.path, a1.id))
    # A general branch moved (path and all) while its branch still points at the old path.
    with pytest.raises(errors.ForeignKeyViolation):
        _as_app(
            app_conn,
            scope,
            "UPDATE org_units SET parent_id = %s, path = %s WHERE id = %s",
            (a1.id, f"{a1.path}{ag.id}/", ag.id),
        )
    assert a3.path.startswith(ag.path)


def test_app_role_cannot_grant_a_role_with_a_path_other_than_its_units(
    app_conn: psycopg.Connection[Any], owner_conn: psycopg.Connection[Any], world: World
) -> None:
    """Casbin decides on `org_path`: a grant at branch a1 carrying township A's path
    would reach all of A. The path must be the unit's."""
    scope = _world_scope(owner_conn, world)
    a, a1 = world.units["A"], world.units["a1"]
    grant = (
        "INSERT INTO role_assignments (tenant_id, account_id, role, org_unit_id, org_path)"
        " VALUES (%s, %s, 'branch_secretary', %s, %s)"
    )
    who = world.accounts["nobody"]
    with pytest.raises(errors.ForeignKeyViolation, match="fk_role_assignments_org_path"):
        _as_app(app_conn, scope, grant, (a.tenant_id, who, a1.id, a.path))
    assert _as_app(app_conn, scope, grant, (a.tenant_id, who, a1.id, a1.path)) == 1


def test_app_role_cannot_rewrite_the_tenant_registry(
    app_conn: psycopg.Connection[Any], owner_conn: psycopg.Connection[Any], world: World
) -> None:
    """`tenants` decides every principal's reach: the application may register a tenant
    consistent with its parent and archive one, nothing else."""
    scope = _world_scope(owner_conn, world)
    a, b, county = world.units["A"], world.units["B"], world.units["county"]
    for statement, params in [
        ("UPDATE tenants SET path = %s WHERE id = %s", (b.path, a.tenant_id)),
        ("UPDATE tenants SET parent_id = NULL WHERE id = %s", (a.tenant_id,)),
        ("UPDATE tenants SET kind = 'county' WHERE id = %s", (a.tenant_id,)),
        ("UPDATE tenants SET code = 'x' WHERE id = %s", (a.tenant_id,)),
        ("DELETE FROM tenants WHERE id = %s", (a.tenant_id,)),
        (
            "INSERT INTO tenants (id, parent_id, kind, code, path, created_at)"
            " VALUES (999994, %s, 'township', 'x-t', %s, now())",
            (county.tenant_id, f"{county.path}999994/"),
        ),
    ]:
        with pytest.raises(errors.InsufficientPrivilege):
            _as_app(app_conn, scope, statement, params)
    register = (
        "INSERT INTO tenants (id, parent_id, kind, code, path) VALUES (999995, %s, %s, 'x-t', %s)"
    )
    # A township registered under another tenant's path, under a township, or parentless.
    with pytest.raises(errors.ForeignKeyViolation, match="fk_tenants_parent_path"):
        _as_app(app_conn, scope, register, (county.tenant_id, "township", f"{a.path}999995/"))
    with pytest.raises(errors.ForeignKeyViolation, match="fk_tenants_parent_kind"):
        _as_app(app_conn, scope, register, (a.tenant_id, "township", f"{a.path}999995/"))
    with pytest.raises(errors.CheckViolation, match="ck_tenants_only_platform_is_parentless"):
        _as_app(app_conn, scope, register, (None, "township", "/999995/"))
    # What the service does: register a township below the county, archive a tenant.
    assert (
        _as_app(app_conn, scope, register, (county.tenant_id, "township", f"{county.path}999995/"))
        == 1
    )
    assert (
        _as_app(
            app_conn, scope, "UPDATE tenants SET archived_at = now() WHERE id = %s", (a.tenant_id,)
        )
        == 1
    )


def test_app_role_cannot_rewrite_who_an_account_is(
    app_conn: psycopg.Connection[Any], owner_conn: psycopg.Connection[Any], world: World
) -> None:
    """Login reads `accounts` before any scope exists, so no RLS there; column
    privileges keep an account's identity (id, username, home tenant and unit) fixed."""
    scope = _world_scope(owner_conn, world)
    a, b1 = world.units["A"], world.units["b1"]
    sec_a = world.accounts["secA"]
    for statement, params in [
        ("UPDATE accounts SET username = %s WHERE id = %s", (world.user("x"), sec_a)),
        ("UPDATE accounts SET home_tenant_id = %s WHERE id = %s", (b1.tenant_id, sec_a)),
        ("UPDATE accounts SET home_org_unit_id = %s WHERE id = %s", (b1.id, sec_a)),
        ("UPDATE accounts SET id = 999996 WHERE id = %s", (sec_a,)),
        ("UPDATE accounts SET auth_version = 1 WHERE id = %s", (sec_a,)),
        ("DELETE FROM accounts WHERE id = %s", (sec_a,)),
        (
            "INSERT INTO accounts (id, username, display_name, password_hash, home_tenant_id,"
            " home_org_unit_id) VALUES (999996, %s, 'x', 'x', %s, %s)",
            (world.user("forged"), a.tenant_id, a.id),
        ),
    ]:
        with pytest.raises(errors.InsufficientPrivilege):
            _as_app(app_conn, scope, statement, params)
    # An account whose home unit is not a unit of its home tenant.
    with pytest.raises(errors.ForeignKeyViolation, match="fk_accounts_home_unit"):
        _as_app(
            app_conn,
            scope,
            "INSERT INTO accounts (username, display_name, password_hash, home_tenant_id,"
            " home_org_unit_id) VALUES (%s, 'x', 'x', %s, %s)",
            (world.user("stray"), a.tenant_id, b1.id),
        )
    # The account's state is the application's to keep: active, password, lockout ...
    assert (
        _as_app(
            app_conn,
            scope,
            "UPDATE accounts SET is_active = false, password_hash = 'x',"
            " password_changed_at = now() WHERE id = %s",
            (sec_a,),
        )
        == 1
    )
    # ... and login's row lock (SELECT ... FOR UPDATE) still works without a scope.
    assert _as_app(app_conn, [], "SELECT id FROM accounts WHERE id = %s FOR UPDATE", (sec_a,)) == 1
