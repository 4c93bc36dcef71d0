"""Separation of duties (三员分立) held by the database: one duty class per account.

An account's role grants all share one duty class: one of the three administrator
roles (system_admin, security_admin, auditor), or `business` for every other role. The
unique index of 0001 already keeps two administrator grants apart; this revision keeps
an administrator role apart from every business role as well, under concurrency.

Why a table and a trigger, not an exclusion constraint: an exclusion constraint over
(account_id =, class <>) needs btree_gist, which the embedded PostgreSQL does not ship;
and a trigger that counted an account's grants in `role_assignments` would see only the
grants of the tenants in scope (forced row-level security binds the owner too). So
`account_duties` keeps, per account that holds any grant, its duty class and how many
grants it holds; an AFTER trigger on `role_assignments` claims the class on insert
(INSERT ... ON CONFLICT DO UPDATE ... WHERE the class matches) and gives a grant back
on delete. Two racing grants meet on the account's `account_duties` row: the second
waits for the first to commit and then finds the other class (exclusion_violation), or,
under REPEATABLE READ, fails to serialize. The application role may read the table (the
service checks before writing, to answer ADMIN_ROLES_EXCLUSIVE) but not write it; the
trigger function runs with its owner's rights and nobody may call it.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-27
"""

from __future__ import annotations

from alembic import context, op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

# Also service/authz/roles.ADMIN_ROLES; tests/authz/test_duties.py holds the two together.
ADMIN_ROLES_SQL = "('system_admin', 'security_admin', 'auditor')"


def _app_role() -> str:
    role = context.config.attributes.get("app_role", "pingyi_app")
    if not role.replace("_", "").isalnum():
        raise ValueError(f"bad application role name: {role!r}")
    return role


def upgrade() -> None:
    app = _app_role()
    op.execute(
        f"""
        CREATE TABLE account_duties (
          account_id bigint PRIMARY KEY REFERENCES accounts (id),
          duty       text NOT NULL
            CHECK (duty IN ('system_admin', 'security_admin', 'auditor', 'business')),
          grants     integer NOT NULL CHECK (grants > 0)
        );

        CREATE FUNCTION pingyi_role_duty(role text) RETURNS text
          LANGUAGE sql IMMUTABLE AS $$
          SELECT CASE WHEN role IN {ADMIN_ROLES_SQL} THEN role ELSE 'business' END
        $$;

        -- Runs with the owner's rights (the application role cannot write
        -- account_duties); fired as a trigger only.
        CREATE FUNCTION pingyi_claim_duty() RETURNS trigger LANGUAGE plpgsql
          SECURITY DEFINER SET search_path = public, pg_temp AS $$
        DECLARE
          claimed text;
        BEGIN
          IF TG_OP IN ('DELETE', 'UPDATE') THEN
            UPDATE account_duties SET grants = grants - 1 WHERE account_id = OLD.account_id
              AND grants > 1;
            IF NOT FOUND THEN
              DELETE FROM account_duties WHERE account_id = OLD.account_id;
            END IF;
          END IF;
          IF TG_OP IN ('INSERT', 'UPDATE') THEN
            INSERT INTO account_duties AS d (account_id, duty, grants)
              VALUES (NEW.account_id, pingyi_role_duty(NEW.role), 1)
              ON CONFLICT (account_id) DO UPDATE SET grants = d.grants + 1
                WHERE d.duty = EXCLUDED.duty
              RETURNING d.duty INTO claimed;
            IF claimed IS NULL THEN
              RAISE EXCEPTION USING
                ERRCODE = 'exclusion_violation',
                CONSTRAINT = 'account_duties_one_duty',
                MESSAGE = '三员分立: an account holds one administrator role or business'
                          ' roles, never both';
            END IF;
          END IF;
          RETURN NULL;
        END $$;
        REVOKE ALL ON FUNCTION pingyi_claim_duty() FROM PUBLIC;

        CREATE TRIGGER claim_duty AFTER INSERT OR DELETE OR UPDATE OF account_id, role
          ON role_assignments FOR EACH ROW EXECUTE FUNCTION pingyi_claim_duty();

        GRANT SELECT ON account_duties TO {app};
        """
    )
    # The grants there are: read past row-level security (forced, so binding the owner:
    # lifted for this statement's transaction only). An account that already holds an
    # administrator role beside another role stops the upgrade, naming the account.
    op.execute(
        """
        ALTER TABLE role_assignments NO FORCE ROW LEVEL SECURITY;
        DO $$
        DECLARE
          mixed bigint[];
        BEGIN
          SELECT array_agg(account_id ORDER BY account_id) INTO mixed FROM (
            SELECT account_id FROM role_assignments
            GROUP BY account_id HAVING count(DISTINCT pingyi_role_duty(role)) > 1
          ) m;
          IF mixed IS NOT NULL THEN
            RAISE EXCEPTION '三员分立: accounts % hold an administrator role beside another'
              ' role; revoke one of them and migrate again', mixed;
          END IF;
        END $$;
        INSERT INTO account_duties (account_id, duty, grants)
          SELECT account_id, min(pingyi_role_duty(role)), count(*)
          FROM role_assignments GROUP BY account_id;
        ALTER TABLE role_assignments FORCE ROW LEVEL SECURITY;
        """
    )


def downgrade() -> None:
    op.execute(
        """
        DROP TRIGGER claim_duty ON role_assignments;
        DROP FUNCTION pingyi_claim_duty();
        DROP FUNCTION pingyi_role_duty(text);
        DROP TABLE account_duties;
        """
    )
