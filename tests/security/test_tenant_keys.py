"""The schema stays ready for Citus: `tenant_id` is the distribution column.

A province outgrows one PostgreSQL (docs/scaling.md); Citus then spreads the tenant
tables over workers by `tenant_id` and copies a few small tables to every node. That
only works if the keys say so, so this file reads PostgreSQL's catalogue of the
migrated test database and checks Citus's rules, with every exception listed here
with its reason:

- every table is placed: a tenant table (with `tenant_id`) is DISTRIBUTED unless listed
  in REFERENCE_TENANT_TABLES; a table without `tenant_id` is listed in
  REFERENCE_TABLES (copied to every node) or COORDINATOR_TABLES (kept on the
  coordinator: the login path and migration bookkeeping);
- every tenant table's primary key starts with `tenant_id` (a distributed table's
  primary key must contain it; first, so a tenant's rows are one index range);
- every foreign key between tenant tables pairs `tenant_id` with `tenant_id`: the
  rows are co-located and the key can never point into another tenant (Citus refuses
  a key between distributed tables that does not include the distribution column on
  both sides);
- a distributed table refers only to distributed tables (as above) or reference
  tables; a reference table only to reference tables; a coordinator table only to
  reference or coordinator tables: nothing refers INTO a distributed table from
  outside it (Citus has no such key);
- every unique constraint or index of a distributed table contains `tenant_id` (Citus
  enforces uniqueness per shard only).

Because the catalogue is read, a table added by a later migration is checked without
being listed here; a new table WITHOUT tenant_id must be placed by hand, which is the
moment to ask whether it holds a tenant's data (see also test_catalogue.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import psycopg

# Tables with tenant_id (so RLS and the tenant policy) that Citus would still copy to
# every node rather than distribute: small, read across tenants on every request.
REFERENCE_TENANT_TABLES = {
    "org_units": "the org tree spans tenants (a township's parent unit is its county's);"
    " 42,000 rows for a province; read by every scope check and overview",
    "role_assignments": "an account's grants are read across tenants at every principal"
    " load (policy own_grants); one row per grant",
    "grading_policies": "a county's policy applies to its townships' rounds (read across"
    " tenants); a handful of rows",
}

# Tables without tenant_id copied to every node: the tenant registry and the identity
# that distributed and reference tables refer to.
REFERENCE_TABLES = {
    "tenants": "registry every tenant_id refers to; ids, kinds, codes, paths",
    "accounts": "every table's recorded_by / account_id refers to it",
    "account_duties": "each account's duty class, trigger-written from role_assignments",
    "auth_epoch": "one counter read by every principal guard",
}

# Tables without tenant_id kept on the coordinator only: read and written by login and
# token refresh, which run before any tenant scope exists; they refer only to accounts
# (a reference table: Citus allows keys from coordinator tables to it).
COORDINATOR_TABLES = {
    "alembic_version": "migration bookkeeping",
    "auth_sessions": "refresh-token sessions",
    "auth_refresh_tokens": "digests of every refresh token a session was given",
    "login_failures": "failed-login counters of accounts",
    "unknown_login_failures": "failed logins of unknown usernames",
    "account_recovery_codes": "MFA recovery code digests",
    "password_history": "previous password hashes",
    "account_wechat": "WeChat openid digests bound to accounts (login by openid)",
}

# Foreign keys between tenant tables that do NOT pair tenant_id with tenant_id, on
# purpose: (table, constraint) -> why. Only between reference tables (Citus then has
# nothing to co-locate).
CROSS_TENANT_KEYS = {
    ("org_units", "fk_org_units_parent"): "a tenant's top unit hangs below its county's"
    " unit (another tenant): the tree is one, its edges cross tenants",
    ("org_units", "fk_org_units_parent_path"): "the same edge, with the parent's path so a"
    " unit's path always extends its parent's",
}

# Unique constraints/indexes of distributed tables without tenant_id: (table, index)
# -> why, and what replaces it on Citus (docs/scaling.md, "What changes in migrations").
UNIQUE_WITHOUT_TENANT = {
    ("members", "uq_members_account"): "an account is linked to at most one member record"
    " in the whole platform; on Citus: unique (tenant_id, account_id) plus the link"
    " checked in the service under the account's row lock (accounts is a reference"
    " table)",
}


@dataclass(frozen=True)
class Key:
    name: str
    kind: str  # 'p' primary, 'f' foreign, 'u' unique constraint, 'i' unique index
    table: str
    columns: tuple[str, ...]
    target: str | None = None
    target_columns: tuple[str, ...] = ()


def catalogue(conn: psycopg.Connection[Any]) -> tuple[dict[str, bool], list[Key]]:
    """Every table of the public schema (name -> has tenant_id) and its keys: primary,
    foreign, unique constraints and unique indexes (columns in key order)."""
    tables = {
        r[0]: bool(r[1])
        for r in conn.execute(
            """
            SELECT c.relname, EXISTS (SELECT FROM pg_attribute a WHERE a.attrelid = c.oid
                                      AND a.attname = 'tenant_id' AND NOT a.attisdropped)
            FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
            WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p')
            """
        )
    }
    rows = conn.execute(
        """
        SELECT con.conname, con.contype::text, src.relname, dst.relname,
               ARRAY(SELECT a.attname::text FROM unnest(con.conkey) WITH ORDINALITY k(n, i)
                     JOIN pg_attribute a ON a.attrelid = con.conrelid AND a.attnum = k.n
                     ORDER BY k.i),
               ARRAY(SELECT a.attname::text FROM unnest(con.confkey) WITH ORDINALITY k(n, i)
                     JOIN pg_attribute a ON a.attrelid = con.confrelid AND a.attnum = k.n
                     ORDER BY k.i)
        FROM pg_constraint con
        JOIN pg_class src ON src.oid = con.conrelid
        JOIN pg_namespace n ON n.oid = src.relnamespace
        LEFT JOIN pg_class dst ON dst.oid = con.confrelid
        WHERE n.nspname = 'public' AND con.contype IN ('p', 'f', 'u')
        UNION ALL
        -- unique indexes that back no constraint (partial or expression indexes too)
        SELECT i.relname, 'i', c.relname, NULL,
               ARRAY(SELECT coalesce(a.attname::text, '(expression)')
                     FROM unnest(ix.indkey::int2[]) WITH ORDINALITY k(n, o)
                     LEFT JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum = k.n
                     WHERE k.o <= ix.indnkeyatts ORDER BY k.o),
               ARRAY[]::text[]
        FROM pg_index ix
        JOIN pg_class i ON i.oid = ix.indexrelid
        JOIN pg_class c ON c.oid = ix.indrelid
        JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE n.nspname = 'public' AND ix.indisunique
          AND NOT EXISTS (SELECT FROM pg_constraint con WHERE con.conindid = ix.indexrelid)
        """
    ).fetchall()
    keys = [Key(r[0], r[1], r[2], tuple(r[4]), r[3], tuple(r[5])) for r in rows]
    return tables, keys


def placement(tables: dict[str, bool]) -> dict[str, str]:
    """table -> 'distributed' | 'reference' | 'coordinator' | 'unplaced'."""
    placed = {}
    for name, has_tenant in tables.items():
        if has_tenant:
            placed[name] = "reference" if name in REFERENCE_TENANT_TABLES else "distributed"
        elif name in REFERENCE_TABLES:
            placed[name] = "reference"
        elif name in COORDINATOR_TABLES:
            placed[name] = "coordinator"
        else:
            placed[name] = "unplaced"
    return placed


# Which placements a table of each placement may refer to (Citus's foreign-key rules).
MAY_REFER_TO = {
    "distributed": {"distributed", "reference"},
    "reference": {"reference"},
    "coordinator": {"reference", "coordinator"},
}


def problems_of(conn: psycopg.Connection[Any]) -> list[str]:
    """Every breach of the rules in the module docstring, as readable lines."""
    tables, keys = catalogue(conn)
    placed = placement(tables)
    found: list[str] = []
    for name, where in sorted(placed.items()):
        if where == "unplaced":
            found.append(
                f"{name}: no tenant_id and not placed: add it to REFERENCE_TABLES or "
                "COORDINATOR_TABLES with the reason (or give it tenant_id if it holds a "
                "tenant's data)"
            )
    primary = {k.table: k for k in keys if k.kind == "p"}
    for name, has_tenant in sorted(tables.items()):
        if not has_tenant:
            continue
        pk = primary.get(name)
        if pk is None:
            found.append(f"{name}: no primary key")
        elif pk.columns[0] != "tenant_id":
            found.append(
                f"{name}: primary key {pk.name} {pk.columns} does not start with tenant_id"
            )
    for key in keys:
        src = placed.get(key.table)
        if key.kind == "f" and key.target is not None:
            dst = placed.get(key.target)
            listed = (key.table, key.name) in CROSS_TENANT_KEYS
            if tables.get(key.table) and tables.get(key.target):
                pairs = dict(zip(key.columns, key.target_columns, strict=True))
                if pairs.get("tenant_id") != "tenant_id":
                    if not listed:
                        found.append(
                            f"{key.table}: foreign key {key.name} to {key.target} does not pair "
                            f"tenant_id with tenant_id ({key.columns} -> {key.target_columns})"
                        )
                    elif src != "reference" or dst != "reference":
                        found.append(
                            f"{key.table}: cross-tenant key {key.name} is listed but joins "
                            f"{src} to {dst} tables: only reference tables may"
                        )
            if src in MAY_REFER_TO and dst not in MAY_REFER_TO[src] | {"unplaced"}:
                found.append(
                    f"{key.table} ({src}): foreign key {key.name} to {key.target} ({dst}): "
                    "Citus has no such key"
                )
        if key.kind in ("u", "i") and src == "distributed" and "tenant_id" not in key.columns:
            if (key.table, key.name) not in UNIQUE_WITHOUT_TENANT:
                found.append(
                    f"{key.table}: unique {key.name} {key.columns} without tenant_id: "
                    "Citus keeps it per shard only"
                )
    return found


def test_tenant_keys_are_ready_for_citus(owner_conn: psycopg.Connection[Any]) -> None:
    problems = problems_of(owner_conn)
    assert not problems, "\n".join(problems)


def test_every_listed_table_and_exception_exists(owner_conn: psycopg.Connection[Any]) -> None:
    """The lists above are not stale: each names a table or key the schema has, placed
    as the list says (a listed reference table without tenant_id, etc.)."""
    tables, keys = catalogue(owner_conn)
    stale = [t for t in REFERENCE_TENANT_TABLES if tables.get(t) is not True]
    stale += [t for t in {**REFERENCE_TABLES, **COORDINATOR_TABLES} if tables.get(t) is not False]
    names = {(k.table, k.name) for k in keys}
    stale += [
        f"{t}.{n}" for t, n in {**CROSS_TENANT_KEYS, **UNIQUE_WITHOUT_TENANT} if (t, n) not in names
    ]
    assert not stale, f"listed here but not so in the schema: {stale}"
    assert not set(REFERENCE_TABLES) & set(COORDINATOR_TABLES)


def test_the_checks_catch_a_table_that_breaks_them(owner_conn: psycopg.Connection[Any]) -> None:
    """The checker is not vacuous: a tenant table keyed the wrong way, a key into another
    tenant, a platform-wide unique index, a key from the login path into a tenant table
    and an unplaced global table are each reported (created and rolled back)."""
    with owner_conn.transaction(force_rollback=True):
        owner_conn.execute(
            """
            CREATE TABLE zz_bad_parent (
              tenant_id bigint NOT NULL, id bigint NOT NULL, code text,
              PRIMARY KEY (id, tenant_id));
            CREATE UNIQUE INDEX zz_bad_code ON zz_bad_parent (code);
            CREATE TABLE zz_bad_child (
              tenant_id bigint NOT NULL, id bigint NOT NULL, other_tenant bigint,
              parent_id bigint, PRIMARY KEY (tenant_id, id),
              CONSTRAINT zz_bad_fk FOREIGN KEY (other_tenant, parent_id)
                REFERENCES zz_bad_parent (tenant_id, id));
            CREATE TABLE zz_unplaced (id bigint PRIMARY KEY);
            ALTER TABLE auth_sessions ADD COLUMN zz_member bigint, ADD COLUMN zz_tenant bigint,
              ADD CONSTRAINT zz_login_into_tenant FOREIGN KEY (zz_tenant, zz_member)
                REFERENCES members (tenant_id, id);
            """
        )
        problems = "\n".join(problems_of(owner_conn))
    assert "zz_bad_parent: primary key" in problems
    assert "zz_bad_parent: unique zz_bad_code" in problems
    assert "zz_bad_child: foreign key zz_bad_fk to zz_bad_parent does not pair" in problems
    assert "zz_unplaced: no tenant_id and not placed" in problems
    assert "auth_sessions (coordinator): foreign key zz_login_into_tenant" in problems
    # ... and nothing is left behind.
    assert not [p for p in problems_of(owner_conn) if "zz_" in p]
