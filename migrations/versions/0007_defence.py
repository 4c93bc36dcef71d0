"""Defence in depth: the tree, the grants and the identity tables hold their shape even
against the application role writing raw SQL.

Row-level security keeps a scope inside its tenants; it does not stop a buggy or
subverted application from writing a well-scoped row that lies. This revision makes
the database refuse such rows, with declarative constraints wherever one suffices
(foreign-key checks see every row, whatever the scope, so they need no definer rights):

- org_units: a unit's parent is in its own tenant, except a tenant's top unit
  (id = tenant_id), whose parent is the top unit of the tenant's parent in `tenants`;
  a unit's path is its parent's path, its id and '/' (the path drives both locks);
  only the root has no parent; exactly the scope kinds are top units; a top unit's
  path is its tenant's path.
- tenants: a tenant's path is its parent's path, its id and '/'; its parent has the
  kind above its own; one platform root.
- role_assignments: org_path is the path of the grant's unit (Casbin decides on it).
- accounts: home unit exists in the home tenant.
- Privileges: the application inserts tenants (creating a township opens one) but may
  update only `archived_at`; it inserts accounts and updates their state (active,
  password, lockout, MFA ...), never id, username, home tenant or home unit.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-27
"""

from __future__ import annotations

from alembic import context, op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

SCOPE_KINDS = (
    "'root', 'county', 'township', 'development_zone', 'new_district', 'county_department'"
)

# Columns of `accounts` that say who an account is: never written by the application
# after the insert (and the generated ones never by it at all).
ACCOUNT_IDENTITY = ("id", "username", "home_tenant_id", "home_org_unit_id", "created_at")
ACCOUNT_NO_INSERT = ("id", "created_at", "auth_version")
ACCOUNT_NO_UPDATE = (*ACCOUNT_IDENTITY, "auth_version")
TENANT_INSERT = ("id", "parent_id", "kind", "code", "path")
TENANT_UPDATE = ("archived_at",)


def _app_role() -> str:
    role = context.config.attributes.get("app_role", "pingyi_app")
    if not role.replace("_", "").isalnum():
        raise ValueError(f"bad application role name: {role!r}")
    return role


def _column_grant(app: str, privilege: str, table: str, excluded: tuple[str, ...]) -> str:
    """GRANT `privilege` on every column of `table` but `excluded`, read from the
    catalogue at upgrade time, so columns that earlier revisions added (MFA, lockout,
    password history ...) keep working without being listed here."""
    names = ", ".join(f"'{c}'" for c in excluded)
    return f"""
        DO $$ DECLARE cols text; BEGIN
          SELECT string_agg(quote_ident(attname), ', ' ORDER BY attnum) INTO cols
          FROM pg_attribute WHERE attrelid = 'public.{table}'::regclass AND attnum > 0
            AND NOT attisdropped AND attgenerated = '' AND attname NOT IN ({names});
          EXECUTE format('GRANT {privilege} (%s) ON {table} TO {app}', cols);
        END $$;
    """


def upgrade() -> None:
    app = _app_role()
    op.execute(
        f"""
        -- tenants: a tree whose paths and kinds agree with the parent's.
        ALTER TABLE tenants
          ADD COLUMN parent_path text COLLATE "C" GENERATED ALWAYS AS (
            CASE WHEN parent_id IS NOT NULL
                 THEN left(path, length(path) - length(id::text) - 1) END) STORED,
          ADD COLUMN parent_kind text GENERATED ALWAYS AS (
            CASE kind WHEN 'platform' THEN NULL WHEN 'county' THEN 'platform'
                      ELSE 'county' END) STORED,
          ADD CONSTRAINT ck_tenants_not_own_parent CHECK (parent_id <> id),
          ADD CONSTRAINT ck_tenants_only_platform_is_parentless
            CHECK ((parent_id IS NULL) = (kind = 'platform')),
          ADD CONSTRAINT ck_tenants_path_ends_with_id
            CHECK (right(path, length(id::text) + 2) = '/' || id || '/'),
          ADD CONSTRAINT ck_tenants_platform_path
            CHECK (parent_id IS NOT NULL OR path = '/' || id || '/'),
          ADD CONSTRAINT uq_tenants_id_path UNIQUE (id, path),
          ADD CONSTRAINT uq_tenants_id_parent UNIQUE (id, parent_id),
          ADD CONSTRAINT uq_tenants_id_kind UNIQUE (id, kind);
        ALTER TABLE tenants
          ADD CONSTRAINT fk_tenants_parent_path FOREIGN KEY (parent_id, parent_path)
            REFERENCES tenants (id, path),
          ADD CONSTRAINT fk_tenants_parent_kind FOREIGN KEY (parent_id, parent_kind)
            REFERENCES tenants (id, kind);
        CREATE UNIQUE INDEX uq_tenants_one_platform ON tenants (kind) WHERE kind = 'platform';

        -- org_units: parent links stay inside the tenant but for a top unit's, and
        -- every path is its parent's path + id + '/'.
        ALTER TABLE org_units
          ADD COLUMN parent_path text COLLATE "C" GENERATED ALWAYS AS (
            CASE WHEN parent_id IS NOT NULL
                 THEN left(path, length(path) - length(id::text) - 1) END) STORED,
          ADD COLUMN top_parent_tenant_id bigint GENERATED ALWAYS AS (
            CASE WHEN id = tenant_id THEN parent_tenant_id END) STORED,
          ADD COLUMN top_path text COLLATE "C" GENERATED ALWAYS AS (
            CASE WHEN id = tenant_id THEN path END) STORED,
          ADD CONSTRAINT ck_org_units_parent_in_tenant CHECK (
            parent_tenant_id = tenant_id
            OR (id = tenant_id AND parent_id = parent_tenant_id)),
          ADD CONSTRAINT ck_org_units_only_root_is_parentless CHECK (
            (parent_id IS NULL) = (kind = 'root')),
          ADD CONSTRAINT ck_org_units_scope_kinds_are_tops CHECK (
            (id = tenant_id) = (kind IN ({SCOPE_KINDS}))),
          ADD CONSTRAINT ck_org_units_path_ends_with_id CHECK (
            right(path, length(id::text) + 2) = '/' || id || '/'),
          ADD CONSTRAINT ck_org_units_root_path CHECK (
            parent_id IS NOT NULL OR path = '/' || id || '/'),
          ADD CONSTRAINT uq_org_units_tenant_id_path UNIQUE (tenant_id, id, path);
        ALTER TABLE org_units
          ADD CONSTRAINT fk_org_units_parent_path
            FOREIGN KEY (parent_tenant_id, parent_id, parent_path)
            REFERENCES org_units (tenant_id, id, path),
          ADD CONSTRAINT fk_org_units_top_parent FOREIGN KEY (tenant_id, top_parent_tenant_id)
            REFERENCES tenants (id, parent_id),
          ADD CONSTRAINT fk_org_units_top_path FOREIGN KEY (tenant_id, top_path)
            REFERENCES tenants (id, path);

        -- role_assignments: the path Casbin decides on is the unit's path.
        ALTER TABLE role_assignments
          ADD CONSTRAINT fk_role_assignments_org_path
            FOREIGN KEY (tenant_id, org_unit_id, org_path)
            REFERENCES org_units (tenant_id, id, path);

        -- accounts: the home unit is a unit of the home tenant.
        ALTER TABLE accounts
          ADD CONSTRAINT fk_accounts_home_unit FOREIGN KEY (home_tenant_id, home_org_unit_id)
            REFERENCES org_units (tenant_id, id);

        -- Privileges: no more table-wide INSERT/UPDATE on the identity tables.
        REVOKE INSERT, UPDATE ON tenants, accounts FROM {app};
        GRANT INSERT ({", ".join(TENANT_INSERT)}) ON tenants TO {app};
        GRANT UPDATE ({", ".join(TENANT_UPDATE)}) ON tenants TO {app};
        """
    )
    op.execute(_column_grant(app, "INSERT", "accounts", ACCOUNT_NO_INSERT))
    op.execute(_column_grant(app, "UPDATE", "accounts", ACCOUNT_NO_UPDATE))


def downgrade() -> None:
    app = _app_role()
    op.execute(
        f"""
        REVOKE INSERT, UPDATE ON tenants, accounts FROM {app};
        GRANT INSERT, UPDATE ON tenants, accounts TO {app};
        ALTER TABLE accounts DROP CONSTRAINT fk_accounts_home_unit;
        ALTER TABLE role_assignments DROP CONSTRAINT fk_role_assignments_org_path;
        ALTER TABLE org_units
          DROP CONSTRAINT fk_org_units_parent_path,
          DROP CONSTRAINT fk_org_units_top_parent,
          DROP CONSTRAINT fk_org_units_top_path,
          DROP CONSTRAINT ck_org_units_parent_in_tenant,
          DROP CONSTRAINT ck_org_units_only_root_is_parentless,
          DROP CONSTRAINT ck_org_units_scope_kinds_are_tops,
          DROP CONSTRAINT ck_org_units_path_ends_with_id,
          DROP CONSTRAINT ck_org_units_root_path,
          DROP CONSTRAINT uq_org_units_tenant_id_path,
          DROP COLUMN parent_path,
          DROP COLUMN top_parent_tenant_id,
          DROP COLUMN top_path;
        DROP INDEX uq_tenants_one_platform;
        ALTER TABLE tenants
          DROP CONSTRAINT fk_tenants_parent_path,
          DROP CONSTRAINT fk_tenants_parent_kind,
          DROP CONSTRAINT ck_tenants_not_own_parent,
          DROP CONSTRAINT ck_tenants_only_platform_is_parentless,
          DROP CONSTRAINT ck_tenants_path_ends_with_id,
          DROP CONSTRAINT ck_tenants_platform_path,
          DROP CONSTRAINT uq_tenants_id_path,
          DROP CONSTRAINT uq_tenants_id_parent,
          DROP CONSTRAINT uq_tenants_id_kind,
          DROP COLUMN parent_path,
          DROP COLUMN parent_kind;
        """
    )
