"""Approval requests can be withdrawn: a case dropped before its filing or disposal was
decided takes its request out of the superior's inbox.

A withdrawn request is closed without a decision (`decided_at` stays NULL, as for an
open one; the unique index of open requests no longer holds it). Its pending step, if
any, is withdrawn with it: `decided_at` (the trigger's database time), who withdrew it
(`decided_by`, `decided_by_name`) and why (`reason`); no decision, role, unit or digest.

Revision ID: 0017
Revises: 0016
Create Date: 2026-11-28
"""

from __future__ import annotations

from alembic import op

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None

_DECIDED = """
  (state NOT IN ('pending', 'withdrawn') AND decision IS NOT NULL AND decided_at IS NOT NULL
     AND decided_by_name IS NOT NULL AND decided_role IS NOT NULL
     AND decided_unit_id IS NOT NULL AND digest IS NOT NULL
     AND state = CASE decision WHEN 'approve' THEN 'approved'
                   WHEN 'reject' THEN 'rejected' ELSE 'returned' END)
"""
_PENDING = """
  (state = 'pending' AND decision IS NULL AND decided_at IS NULL
     AND decided_by_name IS NULL AND digest IS NULL)
"""
_WITHDRAWN = """
  (state = 'withdrawn' AND decision IS NULL AND decided_at IS NOT NULL
     AND decided_by_name IS NOT NULL AND reason IS NOT NULL AND digest IS NULL)
"""


def upgrade() -> None:
    op.execute(
        f"""
        ALTER TABLE approval_requests DROP CONSTRAINT approval_requests_state_check,
          ADD CONSTRAINT approval_requests_state_check CHECK (state IN
            ('pending', 'approved', 'rejected', 'returned', 'withdrawn'));
        ALTER TABLE approval_steps DROP CONSTRAINT approval_steps_state_check,
          ADD CONSTRAINT approval_steps_state_check CHECK (state IN
            ('pending', 'approved', 'rejected', 'returned', 'withdrawn'));
        ALTER TABLE approval_steps DROP CONSTRAINT ck_approval_steps_decision,
          ADD CONSTRAINT ck_approval_steps_decision
            CHECK ({_PENDING} OR {_WITHDRAWN} OR {_DECIDED});
        """
    )


def downgrade() -> None:
    # Before 0017 nothing could be withdrawn: such rows have no form there.
    op.execute(
        """
        DO $$
        BEGIN
          IF EXISTS (SELECT 1 FROM approval_requests WHERE state = 'withdrawn')
             OR EXISTS (SELECT 1 FROM approval_steps WHERE state = 'withdrawn') THEN
            RAISE EXCEPTION 'withdrawn approval requests exist: 0016 cannot hold them';
          END IF;
        END
        $$;
        ALTER TABLE approval_steps DROP CONSTRAINT ck_approval_steps_decision,
          ADD CONSTRAINT ck_approval_steps_decision CHECK (
            (state = 'pending' AND decision IS NULL AND decided_at IS NULL
               AND decided_by_name IS NULL AND digest IS NULL)
            OR (state <> 'pending' AND decision IS NOT NULL AND decided_at IS NOT NULL
               AND decided_by_name IS NOT NULL AND decided_role IS NOT NULL
               AND decided_unit_id IS NOT NULL AND digest IS NOT NULL
               AND state = CASE decision WHEN 'approve' THEN 'approved'
                             WHEN 'reject' THEN 'rejected' ELSE 'returned' END));
        ALTER TABLE approval_steps DROP CONSTRAINT approval_steps_state_check,
          ADD CONSTRAINT approval_steps_state_check CHECK (state IN
            ('pending', 'approved', 'rejected', 'returned'));
        ALTER TABLE approval_requests DROP CONSTRAINT approval_requests_state_check,
          ADD CONSTRAINT approval_requests_state_check CHECK (state IN
            ('pending', 'approved', 'rejected', 'returned'));
        """
    )
