"""Re-admission (重新入党) and the member's personal file (党员档案) entries.

- `members.previous_member_id`: a re-admitted person gets a NEW record that names the
  old one; the old record is left exactly as it was (its status, `left_on`, `left_by`,
  history). No foreign key: the old record may live in another tenant (the person
  re-joins where they live now), and ledger ids are unique across tenants.
- `members.generation`: the ID-number key of a tenant is unique per generation (0 for
  a first record, the old record's + 1 for a re-admission), so the new record of the
  same person may sit beside the old one in the same tenant while a second first
  record, or two re-admissions of one old record, are still refused by the database
  (also when two arrive at once).
- `member_file_entries`: what enters a member's personal file beyond the ledger's
  history (`member_history` keeps field changes): the decision of a disposal case at
  its archive (`case_decision`, at most one per case) and a re-admission
  (`readmission`). Appended, never changed. `case_id` has no foreign key: the case
  stays with the branch that handled it while the member's rows move with a transfer
  (ON UPDATE CASCADE, as member_history).

Revision ID: 0013
Revises: 0012
Create Date: 2026-11-28
"""

from __future__ import annotations

from alembic import context, op

revision = "0013"
down_revision = "0012"
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
        ALTER TABLE members
          ADD COLUMN previous_member_id bigint,
          ADD COLUMN generation smallint NOT NULL DEFAULT 0
            CONSTRAINT ck_members_generation CHECK (generation BETWEEN 0 AND 100),
          ADD CONSTRAINT ck_members_previous
            CHECK ((previous_member_id IS NULL) = (generation = 0));
        ALTER TABLE members
          DROP CONSTRAINT uq_members_id_number,
          ADD CONSTRAINT uq_members_id_number UNIQUE (tenant_id, id_number_hmac, generation);
        CREATE UNIQUE INDEX uq_members_previous ON members (tenant_id, previous_member_id)
          WHERE previous_member_id IS NOT NULL;

        CREATE TABLE member_file_entries (
          tenant_id   bigint NOT NULL REFERENCES tenants (id),
          id          bigint NOT NULL DEFAULT nextval('ledger_id_seq'),
          member_id   bigint NOT NULL,
          kind        text NOT NULL CHECK (kind IN ('case_decision', 'readmission')),
          case_id     bigint,
          occurred_on date NOT NULL,
          title       text NOT NULL CHECK (length(btrim(title)) BETWEEN 1 AND 200),
          body        text NOT NULL DEFAULT '' CHECK (length(body) <= 8000),
          data        jsonb NOT NULL DEFAULT '{{}}' CHECK (jsonb_typeof(data) = 'object'),
          recorded_by text NOT NULL,
          recorded_at timestamptz NOT NULL DEFAULT now(),
          CONSTRAINT pk_member_file_entries PRIMARY KEY (tenant_id, id),
          CONSTRAINT fk_member_file_entries_member FOREIGN KEY (tenant_id, member_id)
            REFERENCES members (tenant_id, id) ON UPDATE CASCADE,
          CONSTRAINT ck_member_file_entries_case
            CHECK ((kind = 'case_decision') = (case_id IS NOT NULL))
        );
        CREATE INDEX ix_member_file_entries_id ON member_file_entries (id);
        CREATE INDEX ix_member_file_entries_member
          ON member_file_entries (tenant_id, member_id, id);
        CREATE UNIQUE INDEX uq_member_file_entries_case
          ON member_file_entries (tenant_id, case_id) WHERE case_id IS NOT NULL;

        ALTER TABLE member_file_entries ENABLE ROW LEVEL SECURITY;
        ALTER TABLE member_file_entries FORCE ROW LEVEL SECURITY;
        CREATE POLICY tenant_isolation ON member_file_entries
          USING (tenant_id = ANY (pingyi_tenant_scope()))
          WITH CHECK (tenant_id = ANY (pingyi_tenant_scope()));

        -- the personal file is appended, never changed
        GRANT SELECT, INSERT ON member_file_entries TO {app};
        """
    )


def downgrade() -> None:
    # Fails while a tenant holds a re-admitted record beside its old one: the single
    # ID-number key of 0003 cannot hold both (drop the re-admissions first).
    op.execute(
        """
        DROP TABLE member_file_entries;
        DROP INDEX uq_members_previous;
        ALTER TABLE members
          DROP CONSTRAINT uq_members_id_number,
          ADD CONSTRAINT uq_members_id_number UNIQUE (tenant_id, id_number_hmac);
        ALTER TABLE members DROP CONSTRAINT ck_members_previous,
          DROP COLUMN generation, DROP COLUMN previous_member_id;
        """
    )
