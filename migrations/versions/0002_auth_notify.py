"""Tell every service process when a principal may have changed (LISTEN/NOTIFY).

Each process caches principals (account, grants, scope) per login session. These
triggers send a notification on the channel `pingyi_auth` when the rows a principal is
read from change; PostgreSQL delivers it when the transaction commits, to every
process listening, which drops what it names (service/auth/cache.py):
- `account:<id>`: the account changed, or one of its role assignments came or went;
- `session:<uuid>`: a login session was revoked or its expiry moved;
- `tenants`: a tenant scope was created, which widens every principal above it.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-27
"""

from __future__ import annotations

from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        CREATE FUNCTION pingyi_notify_auth() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
          IF TG_TABLE_NAME = 'auth_sessions' THEN
            PERFORM pg_notify('pingyi_auth', 'session:' || NEW.id::text);
          ELSIF TG_TABLE_NAME = 'accounts' THEN
            PERFORM pg_notify('pingyi_auth', 'account:' || NEW.id::text);
          ELSIF TG_TABLE_NAME = 'role_assignments' THEN
            IF TG_OP = 'DELETE' THEN
              PERFORM pg_notify('pingyi_auth', 'account:' || OLD.account_id::text);
            ELSE
              PERFORM pg_notify('pingyi_auth', 'account:' || NEW.account_id::text);
              IF TG_OP = 'UPDATE' AND OLD.account_id <> NEW.account_id THEN
                PERFORM pg_notify('pingyi_auth', 'account:' || OLD.account_id::text);
              END IF;
            END IF;
          ELSE
            PERFORM pg_notify('pingyi_auth', 'tenants');
          END IF;
          RETURN NULL;
        END $$;

        CREATE TRIGGER notify_auth AFTER UPDATE ON auth_sessions FOR EACH ROW
          WHEN (OLD.revoked_at IS DISTINCT FROM NEW.revoked_at
                OR OLD.expires_at IS DISTINCT FROM NEW.expires_at)
          EXECUTE FUNCTION pingyi_notify_auth();
        CREATE TRIGGER notify_auth AFTER UPDATE ON accounts FOR EACH ROW
          EXECUTE FUNCTION pingyi_notify_auth();
        CREATE TRIGGER notify_auth AFTER INSERT OR UPDATE OR DELETE ON role_assignments
          FOR EACH ROW EXECUTE FUNCTION pingyi_notify_auth();
        CREATE TRIGGER notify_auth AFTER INSERT ON tenants
          FOR EACH STATEMENT EXECUTE FUNCTION pingyi_notify_auth();
        """
    )


def downgrade() -> None:
    op.execute(
        """
        DROP TRIGGER notify_auth ON auth_sessions;
        DROP TRIGGER notify_auth ON accounts;
        DROP TRIGGER notify_auth ON role_assignments;
        DROP TRIGGER notify_auth ON tenants;
        DROP FUNCTION pingyi_notify_auth();
        """
    )
