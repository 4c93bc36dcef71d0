"""Grading policies (评议办法): versioned, of the county or of a tenant.

One row per version. A policy belongs to a unit that opens a tenant scope of its own
(the county unit, or a tenant's top unit), so `scope_unit_id = tenant_id` always and the
row lives in that unit's tenant, under the same row-level security as every tenant
table. Versions are never changed or deleted (the application role may only insert):
a round records the version it used, and a finished round must never change with the
policy. The policy itself is JSON with shares as exact "n/d" strings
(service/evaluations/rules.py: GradingPolicy.to_json).

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-27
"""

from __future__ import annotations

from alembic import context, op

revision = "0008"
down_revision = "0007"
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
        CREATE TABLE grading_policies (
          tenant_id     bigint NOT NULL REFERENCES tenants (id),
          id            bigint NOT NULL DEFAULT nextval('ledger_id_seq'),
          scope_unit_id bigint NOT NULL,
          version       integer NOT NULL CHECK (version >= 1),
          policy        jsonb NOT NULL CHECK (jsonb_typeof(policy) = 'object'),
          note          text CHECK (note IS NULL OR length(note) <= 500),
          created_by    text NOT NULL,
          created_at    timestamptz NOT NULL DEFAULT now(),
          CONSTRAINT pk_grading_policies PRIMARY KEY (tenant_id, id),
          CONSTRAINT fk_grading_policies_unit FOREIGN KEY (tenant_id, scope_unit_id)
            REFERENCES org_units (tenant_id, id),
          -- the county unit or a tenant's top unit: the unit whose id is its tenant's
          CONSTRAINT ck_grading_policies_scope CHECK (scope_unit_id = tenant_id),
          CONSTRAINT uq_grading_policies_version UNIQUE (tenant_id, scope_unit_id, version)
        );
        CREATE INDEX ix_grading_policies_id ON grading_policies (id);

        ALTER TABLE grading_policies ENABLE ROW LEVEL SECURITY;
        ALTER TABLE grading_policies FORCE ROW LEVEL SECURITY;
        CREATE POLICY tenant_isolation ON grading_policies
          USING (tenant_id = ANY (pingyi_tenant_scope()))
          WITH CHECK (tenant_id = ANY (pingyi_tenant_scope()));

        GRANT SELECT, INSERT ON grading_policies TO {app};
        """
    )


def downgrade() -> None:
    op.execute("DROP TABLE grading_policies;")
