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
}

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
            and "tenant_id" in (p[5] or "")
            and "pingyi_tenant_scope()" in (p[5] or "")
            and "tenant_id" in (p[6] or "")
            and "pingyi_tenant_scope()" in (p[6] or "")
        ]
        if not tenant_policies:
            problems.append(f"{table}: no ALL policy on tenant_id with USING and WITH CHECK")
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
        SELECT p.proname FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
        WHERE n.nspname = 'public' AND p.prosecdef
          AND has_function_privilege(%s, p.oid, 'EXECUTE')
        """,
        (role,),
    ).fetchall()
    assert definer == [], definer


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
