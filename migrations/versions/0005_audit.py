"""Audit log the application cannot forge: outcome, and seq/hash computed by the database.

- `outcome` (success / denied / failed), default success.
- A BEFORE INSERT trigger takes the tenant's advisory lock (class 7301, the same the
  application used before), numbers the event (`seq`), stamps its time, links it to
  the previous event (`prev_hash`) and hashes it with PostgreSQL's built-in
  `sha256(bytea)` over the canonical text `pingyi_audit_canonical(...)`. The canonical
  text is defined in ONE documented place, service/audit/chain.py, which `pingyi
  audit verify` uses to recompute it; this SQL is its transcription (the test
  tests/audit checks both agree on every row).
- Column privileges: the application role may INSERT only the business columns;
  `seq`, `occurred_at`, `prev_hash` and `hash` are not its to send.
- Rows written before this revision were hashed by the application over a JSON text;
  they are re-hashed here, in seq order, with the database's canonical form (a format
  change; verify the old chain with `pingyi audit verify` before upgrading).

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-28
"""

from __future__ import annotations

from alembic import context, op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

BUSINESS_COLUMNS = (
    "tenant_id, actor_account_id, actor, action, object_type, object_id, request_id, "
    "details, outcome"
)


def _app_role() -> str:
    role = context.config.attributes.get("app_role", "pingyi_app")
    if not role.replace("_", "").isalnum():
        raise ValueError(f"bad application role name: {role!r}")
    return role


def upgrade() -> None:
    app = _app_role()
    op.execute(
        """
        ALTER TABLE audit_events
          ADD COLUMN outcome text NOT NULL DEFAULT 'success',
          ADD CONSTRAINT ck_audit_events_outcome
            CHECK (outcome IN ('success', 'denied', 'failed'));
        CREATE INDEX ix_audit_events_occurred_at ON audit_events (occurred_at, tenant_id, seq);

        -- The canonical text of one event (see service/audit/chain.py): every field as
        -- `<octets>:<text>;` or `N;` for NULL, in a fixed order, so no value can spill
        -- into its neighbour.
        CREATE FUNCTION pingyi_audit_field(v text) RETURNS text
          LANGUAGE sql IMMUTABLE AS $$
            SELECT CASE WHEN v IS NULL THEN 'N;' ELSE octet_length(v)::text || ':' || v || ';' END
          $$;
        CREATE FUNCTION pingyi_audit_canonical(
          tenant_id bigint, seq bigint, occurred_at timestamptz, actor_account_id bigint,
          actor text, action text, object_type text, object_id text, outcome text,
          request_id text, details jsonb, prev_hash text
        ) RETURNS text LANGUAGE sql IMMUTABLE AS $$
          SELECT 'pingyi-audit-v1;'
            || pingyi_audit_field(tenant_id::text)
            || pingyi_audit_field(seq::text)
            || pingyi_audit_field(
                 to_char(occurred_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'))
            || pingyi_audit_field(actor_account_id::text)
            || pingyi_audit_field(actor)
            || pingyi_audit_field(action)
            || pingyi_audit_field(object_type)
            || pingyi_audit_field(object_id)
            || pingyi_audit_field(outcome)
            || pingyi_audit_field(request_id)
            || pingyi_audit_field(details::text)
            || pingyi_audit_field(prev_hash)
        $$;
        CREATE FUNCTION pingyi_audit_hash(canonical text) RETURNS text
          LANGUAGE sql IMMUTABLE AS $$
            SELECT encode(sha256(convert_to(canonical, 'UTF8')), 'hex')
          $$;

        -- Runs as the owner (SECURITY DEFINER) so the application role needs no right
        -- on seq/hash; forced RLS still confines its read to the inserting tenant.
        CREATE FUNCTION pingyi_audit_chain() RETURNS trigger
          LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
          DECLARE
            last_seq bigint;
            last_hash text;
          BEGIN
            PERFORM pg_advisory_xact_lock(7301, NEW.tenant_id::integer);
            -- A new statement: its snapshot is taken after the lock is held, so it sees
            -- the previous holder's committed event.
            SELECT e.seq, e.hash INTO last_seq, last_hash FROM audit_events e
              WHERE e.tenant_id = NEW.tenant_id ORDER BY e.seq DESC LIMIT 1;
            NEW.seq := coalesce(last_seq, 0) + 1;
            NEW.prev_hash := coalesce(last_hash, repeat('0', 64));
            NEW.occurred_at := date_trunc('microseconds', clock_timestamp());
            NEW.outcome := coalesce(NEW.outcome, 'success');
            NEW.details := coalesce(NEW.details, '{}'::jsonb);
            NEW.hash := pingyi_audit_hash(pingyi_audit_canonical(
              NEW.tenant_id, NEW.seq, NEW.occurred_at, NEW.actor_account_id, NEW.actor,
              NEW.action, NEW.object_type, NEW.object_id, NEW.outcome, NEW.request_id,
              NEW.details, NEW.prev_hash));
            RETURN NEW;
          END
        $$;
        """
    )

    # Re-hash what exists in the new form, chain by chain (a format change).
    op.execute(
        """
        DO $$
        DECLARE
          ev record;
          prev text;
          cur_tenant bigint := NULL;
          digest text;
        BEGIN
          FOR ev IN SELECT * FROM audit_events ORDER BY tenant_id, seq LOOP
            IF cur_tenant IS DISTINCT FROM ev.tenant_id THEN
              cur_tenant := ev.tenant_id;
              prev := repeat('0', 64);
            END IF;
            digest := pingyi_audit_hash(pingyi_audit_canonical(
              ev.tenant_id, ev.seq, ev.occurred_at, ev.actor_account_id, ev.actor, ev.action,
              ev.object_type, ev.object_id, ev.outcome, ev.request_id, ev.details, prev));
            UPDATE audit_events SET prev_hash = prev, hash = digest
              WHERE tenant_id = ev.tenant_id AND seq = ev.seq;
            prev := digest;
          END LOOP;
        END $$;
        """
    )

    op.execute(
        f"""
        CREATE TRIGGER audit_events_chain BEFORE INSERT ON audit_events
          FOR EACH ROW EXECUTE FUNCTION pingyi_audit_chain();
        REVOKE INSERT ON audit_events FROM {app};
        GRANT INSERT ({BUSINESS_COLUMNS}) ON audit_events TO {app};
        REVOKE ALL ON FUNCTION pingyi_audit_chain() FROM PUBLIC;
        """
    )


def downgrade() -> None:
    app = _app_role()
    op.execute(
        f"""
        DROP TRIGGER audit_events_chain ON audit_events;
        DROP FUNCTION pingyi_audit_chain();
        DROP FUNCTION pingyi_audit_hash(text);
        DROP FUNCTION pingyi_audit_canonical(
          bigint, bigint, timestamptz, bigint, text, text, text, text, text, text, jsonb, text);
        DROP FUNCTION pingyi_audit_field(text);
        REVOKE INSERT ({BUSINESS_COLUMNS}) ON audit_events FROM {app};
        GRANT INSERT ON audit_events TO {app};
        DROP INDEX ix_audit_events_occurred_at;
        ALTER TABLE audit_events DROP COLUMN outcome;
        """
    )
