"""Approval chains (逐级审批): requests and their steps.

A request (`approval_requests`) lives in the tenant of the branch it comes from, and
so do its steps (`approval_steps`), also the county's: the branch, its committee and
the county organization department all read that one tenant's rows (the county's
scope reaches every tenant below it). A step's unit is kept as id and path without a
foreign key (the county unit is another tenant's row).

A decision is taken once, whatever arrives at the same moment:
- the service decides with `UPDATE ... WHERE state = 'pending' AND version = ...`;
- one pending step per request at most (`uq_approval_steps_pending`), one open request
  per subject (`uq_approval_requests_open`);
- a trigger keeps a decided step final and stamps the decision with the database's
  `now()`, whatever the statement said.

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-27
"""

from __future__ import annotations

from alembic import context, op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

TABLES = ("approval_requests", "approval_steps")


def _app_role() -> str:
    role = context.config.attributes.get("app_role", "pingyi_app")
    if not role.replace("_", "").isalnum():
        raise ValueError(f"bad application role name: {role!r}")
    return role


def upgrade() -> None:
    app = _app_role()
    op.execute(
        """
        CREATE TABLE approval_requests (
          tenant_id       bigint NOT NULL REFERENCES tenants (id),
          id              bigint NOT NULL DEFAULT nextval('ledger_id_seq'),
          kind            text NOT NULL CHECK (kind IN ('evaluation_result', 'case_disposal',
                            'case_filing')),
          subject_type    text NOT NULL CHECK (length(subject_type) BETWEEN 1 AND 64),
          subject_id      bigint NOT NULL,
          branch_id       bigint NOT NULL,
          branch_path     text COLLATE "C" NOT NULL,
          digest          text NOT NULL CHECK (length(digest) BETWEEN 1 AND 200),
          summary         jsonb NOT NULL DEFAULT '{}'::jsonb,
          -- the planned steps: [{position, org_unit_id, org_path, role, days}]
          chain           jsonb NOT NULL CHECK (jsonb_typeof(chain) = 'array'
                            AND jsonb_array_length(chain) BETWEEN 1 AND 5),
          to_county       boolean NOT NULL,
          step_days       integer NOT NULL CHECK (step_days BETWEEN 1 AND 365),
          state           text NOT NULL DEFAULT 'pending'
                            CHECK (state IN ('pending', 'approved', 'rejected', 'returned')),
          current_position integer NOT NULL DEFAULT 1 CHECK (current_position >= 1),
          attempt         integer NOT NULL DEFAULT 1 CHECK (attempt >= 1),
          submitted_by    bigint REFERENCES accounts (id),
          submitted_by_name text NOT NULL,
          submitted_at    timestamptz NOT NULL DEFAULT now(),
          resubmitted_by  bigint REFERENCES accounts (id),
          resubmitted_at  timestamptz,
          decided_at      timestamptz,
          version         integer NOT NULL DEFAULT 1,
          CONSTRAINT pk_approval_requests PRIMARY KEY (tenant_id, id),
          CONSTRAINT fk_approval_requests_branch FOREIGN KEY (tenant_id, branch_id)
            REFERENCES org_units (tenant_id, id),
          CONSTRAINT ck_approval_requests_decided
            CHECK ((state IN ('approved', 'rejected')) = (decided_at IS NOT NULL))
        );
        CREATE INDEX ix_approval_requests_id ON approval_requests (id);
        CREATE INDEX ix_approval_requests_branch_path ON approval_requests (branch_path, id);
        CREATE INDEX ix_approval_requests_subject
          ON approval_requests (tenant_id, kind, subject_type, subject_id, id);
        -- A double submit opens one request: one that is open (pending or waiting for
        -- more material) per subject and kind.
        CREATE UNIQUE INDEX uq_approval_requests_open
          ON approval_requests (tenant_id, kind, subject_type, subject_id)
          WHERE state IN ('pending', 'returned');

        CREATE TABLE approval_steps (
          tenant_id       bigint NOT NULL REFERENCES tenants (id),
          id              bigint NOT NULL DEFAULT nextval('ledger_id_seq'),
          request_id      bigint NOT NULL,
          attempt         integer NOT NULL CHECK (attempt >= 1),
          position        integer NOT NULL CHECK (position >= 1),
          org_unit_id     bigint NOT NULL,
          org_path        text COLLATE "C" NOT NULL,
          role            text NOT NULL
                            CHECK (role IN ('committee_secretary', 'county_organizer')),
          opened_at       timestamptz NOT NULL DEFAULT now(),
          due_at          timestamptz NOT NULL,
          state           text NOT NULL DEFAULT 'pending'
                            CHECK (state IN ('pending', 'approved', 'rejected', 'returned')),
          decision        text CHECK (decision IN ('approve', 'reject', 'return')),
          reason          text CHECK (reason IS NULL
                            OR length(btrim(reason)) BETWEEN 1 AND 1000),
          decided_by      bigint REFERENCES accounts (id),
          decided_by_name text,
          decided_role    text,
          decided_unit_id bigint,
          decided_at      timestamptz,
          -- the digest of the content this decision was taken on
          digest          text,
          version         integer NOT NULL DEFAULT 1,
          CONSTRAINT pk_approval_steps PRIMARY KEY (tenant_id, id),
          CONSTRAINT fk_approval_steps_request FOREIGN KEY (tenant_id, request_id)
            REFERENCES approval_requests (tenant_id, id),
          CONSTRAINT uq_approval_steps_position UNIQUE (tenant_id, request_id, attempt, position),
          CONSTRAINT ck_approval_steps_decision CHECK (
            (state = 'pending' AND decision IS NULL AND decided_at IS NULL
               AND decided_by_name IS NULL AND digest IS NULL)
            OR (state <> 'pending' AND decision IS NOT NULL AND decided_at IS NOT NULL
               AND decided_by_name IS NOT NULL AND decided_role IS NOT NULL
               AND decided_unit_id IS NOT NULL AND digest IS NOT NULL
               AND state = CASE decision WHEN 'approve' THEN 'approved'
                             WHEN 'reject' THEN 'rejected' ELSE 'returned' END)),
          CONSTRAINT ck_approval_steps_reason
            CHECK (decision IS NULL OR decision = 'approve' OR reason IS NOT NULL)
        );
        CREATE INDEX ix_approval_steps_id ON approval_steps (id);
        CREATE INDEX ix_approval_steps_request
          ON approval_steps (tenant_id, request_id, attempt, position);
        -- One pending step per request: two openings of a next step cannot both land.
        CREATE UNIQUE INDEX uq_approval_steps_pending ON approval_steps (tenant_id, request_id)
          WHERE state = 'pending';
        -- A decider's inbox: pending steps of a unit and role.
        CREATE INDEX ix_approval_steps_inbox ON approval_steps (org_unit_id, role, id)
          WHERE state = 'pending';
        -- The overdue list of the level above: pending steps under a path.
        CREATE INDEX ix_approval_steps_pending_path ON approval_steps (org_path, id)
          WHERE state = 'pending';

        -- A decided step is final, and its time is the database's.
        CREATE FUNCTION pingyi_approval_step_final() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
          IF OLD.state <> 'pending' THEN
            RAISE EXCEPTION 'approval step % is already decided', OLD.id
              USING ERRCODE = 'check_violation';
          END IF;
          IF NEW.state <> 'pending' THEN
            NEW.decided_at := now();
            NEW.version := OLD.version + 1;
          END IF;
          RETURN NEW;
        END
        $$;
        CREATE TRIGGER approval_step_final BEFORE UPDATE ON approval_steps FOR EACH ROW
          EXECUTE FUNCTION pingyi_approval_step_final();
        """
    )
    for table in TABLES:
        op.execute(
            f"""
            ALTER TABLE {table} ENABLE ROW LEVEL SECURITY;
            ALTER TABLE {table} FORCE ROW LEVEL SECURITY;
            CREATE POLICY tenant_isolation ON {table}
              USING (tenant_id = ANY (pingyi_tenant_scope()))
              WITH CHECK (tenant_id = ANY (pingyi_tenant_scope()));
            """
        )
    op.execute(f"GRANT SELECT, INSERT, UPDATE ON {', '.join(TABLES)} TO {app};")


def downgrade() -> None:
    op.execute(
        """
        DROP TABLE approval_steps, approval_requests;
        DROP FUNCTION pingyi_approval_step_final();
        """
    )
