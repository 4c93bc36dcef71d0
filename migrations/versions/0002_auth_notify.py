"""Tell every service process when a principal may have changed, and let it check.

Each process caches principals (account, grants, scope) per login session
(service/auth/cache.py). Two mechanisms keep a cached principal honest:

- Notifications. Triggers send `NOTIFY pingyi_auth` when the rows a principal is read
  from change; PostgreSQL delivers them after the commit to every listening process,
  which drops what they name: `account:<id>` (the account changed, or one of its role
  assignments came or went), `session:<uuid>` (a login session was revoked or its
  expiry moved), `tenants` (a tenant scope was created, moved or removed, changing
  the scope of every principal above it).
- Versions. Delivery is asynchronous, so a request could still meet a stale entry.
  `accounts.auth_version` goes up with every change of the account or its grants,
  and `auth_epoch.n` with every new tenant; a principal remembers both, and the first
  message of a request served from the cache checks them (with the session's
  liveness) in the same round trip. A mismatch discards the request's work and runs
  it again with a fresh principal.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-27
"""

from __future__ import annotations

from alembic import context, op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def _app_role() -> str:
    role = context.config.attributes.get("app_role", "pingyi_app")
    if not role.replace("_", "").isalnum():
        raise ValueError(f"bad application role name: {role!r}")
    return role


def upgrade() -> None:
    app = _app_role()
    op.execute(
        f"""
        ALTER TABLE accounts ADD COLUMN auth_version bigint NOT NULL DEFAULT 1;
        CREATE TABLE auth_epoch (
          one boolean PRIMARY KEY DEFAULT true CHECK (one),
          n   bigint NOT NULL
        );
        INSERT INTO auth_epoch (n) VALUES (1);
        GRANT SELECT ON auth_epoch TO {app};

        -- Any change of an account moves its version; the application cannot set it.
        CREATE FUNCTION pingyi_account_version() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
          NEW.auth_version := OLD.auth_version + 1;
          RETURN NEW;
        END $$;
        CREATE TRIGGER account_version BEFORE UPDATE ON accounts FOR EACH ROW
          EXECUTE FUNCTION pingyi_account_version();

        -- SECURITY DEFINER: the application role may not move versions itself.
        CREATE FUNCTION pingyi_notify_auth() RETURNS trigger LANGUAGE plpgsql
          SECURITY DEFINER SET search_path = public, pg_temp AS $$
        BEGIN
          IF TG_TABLE_NAME = 'auth_sessions' THEN
            PERFORM pg_notify('pingyi_auth', 'session:' || NEW.id::text);
          ELSIF TG_TABLE_NAME = 'accounts' THEN
            PERFORM pg_notify('pingyi_auth', 'account:' || NEW.id::text);
          ELSIF TG_TABLE_NAME = 'role_assignments' THEN
            IF TG_OP IN ('DELETE', 'UPDATE') THEN
              UPDATE accounts SET auth_version = auth_version + 1 WHERE id = OLD.account_id;
            END IF;
            IF TG_OP IN ('INSERT', 'UPDATE') THEN
              UPDATE accounts SET auth_version = auth_version + 1 WHERE id = NEW.account_id;
            END IF;
          ELSIF TG_TABLE_NAME = 'tenants' THEN
            UPDATE auth_epoch SET n = n + 1;
            PERFORM pg_notify('pingyi_auth', 'tenants');
          ELSE
            RAISE EXCEPTION 'pingyi_notify_auth is not for table %', TG_TABLE_NAME;
          END IF;
          RETURN NULL;
        END $$;

        -- Fired as a trigger only: nobody, the application least, may call it.
        REVOKE ALL ON FUNCTION pingyi_notify_auth() FROM PUBLIC;

        CREATE TRIGGER notify_auth AFTER UPDATE ON auth_sessions FOR EACH ROW
          WHEN (OLD.revoked_at IS DISTINCT FROM NEW.revoked_at
                OR OLD.expires_at IS DISTINCT FROM NEW.expires_at)
          EXECUTE FUNCTION pingyi_notify_auth();
        CREATE TRIGGER notify_auth AFTER UPDATE ON accounts FOR EACH ROW
          EXECUTE FUNCTION pingyi_notify_auth();
        CREATE TRIGGER notify_auth AFTER INSERT OR UPDATE OR DELETE ON role_assignments
          FOR EACH ROW EXECUTE FUNCTION pingyi_notify_auth();
        CREATE TRIGGER notify_auth AFTER INSERT OR DELETE OR UPDATE OF path, parent_id
          ON tenants FOR EACH STATEMENT EXECUTE FUNCTION pingyi_notify_auth();
        """
    )


def downgrade() -> None:
    op.execute(
        """
        DROP TRIGGER notify_auth ON auth_sessions;
        DROP TRIGGER notify_auth ON accounts;
        DROP TRIGGER notify_auth ON role_assignments;
        DROP TRIGGER notify_auth ON tenants;
        DROP TRIGGER account_version ON accounts;
        DROP FUNCTION pingyi_notify_auth(), pingyi_account_version();
        DROP TABLE auth_epoch;
        ALTER TABLE accounts DROP COLUMN auth_version;
        """
    )
