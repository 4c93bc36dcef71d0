"""Attachments (附件): documents and photos of signed minutes that a disposal case's
steps carry (investigation materials, talk records, minutes, approvals).

Why it is shaped this way:
- The bytes live in the tenant's own row (`content bytea`), under the same forced row
  level security as every tenant table: an attachment is isolated exactly as the case
  it belongs to, and a backup of the database is a backup of the files. Limits (size,
  allowed types) keep the table small; the service checks magic bytes, not only the
  declared type.
- An attachment is uploaded first (under a branch, `owner_kind`/`owner_id` NULL) and
  then linked by the step that uses it (`service.attachments.link`); who may read it
  follows its owner. `owner_id` has no foreign key: owners are of several kinds
  (a case, one record of a case) in tables of other migrations.
- `sha256` is kept so that an archive's manifest can name every file's digest without
  reading it again, and so a changed row is detectable.

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-28
"""

from __future__ import annotations

from alembic import context, op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

OWNER_KINDS = "'case', 'case_record'"


def _app_role() -> str:
    role = context.config.attributes.get("app_role", "pingyi_app")
    if not role.replace("_", "").isalnum():
        raise ValueError(f"bad application role name: {role!r}")
    return role


def upgrade() -> None:
    app = _app_role()
    op.execute(
        f"""
        CREATE TABLE attachments (
          tenant_id    bigint NOT NULL REFERENCES tenants (id),
          id           bigint NOT NULL DEFAULT nextval('ledger_id_seq'),
          branch_id    bigint NOT NULL,
          branch_path  text COLLATE "C" NOT NULL,
          owner_kind   text CHECK (owner_kind IN ({OWNER_KINDS})),
          owner_id     bigint,
          filename     text NOT NULL CHECK (length(btrim(filename)) BETWEEN 1 AND 200),
          content_type text NOT NULL,
          size_bytes   integer NOT NULL CHECK (size_bytes > 0),
          sha256       text NOT NULL CHECK (sha256 ~ '^[0-9a-f]{{64}}$'),
          content      bytea NOT NULL,
          uploaded_by  bigint NOT NULL REFERENCES accounts (id),
          uploaded_at  timestamptz NOT NULL DEFAULT now(),
          linked_by    bigint REFERENCES accounts (id),
          linked_at    timestamptz,
          CONSTRAINT pk_attachments PRIMARY KEY (tenant_id, id),
          CONSTRAINT fk_attachments_branch FOREIGN KEY (tenant_id, branch_id)
            REFERENCES org_units (tenant_id, id),
          -- linked means both owner columns, unlinked neither
          CONSTRAINT ck_attachments_owner CHECK ((owner_kind IS NULL) = (owner_id IS NULL)),
          CONSTRAINT ck_attachments_size CHECK (octet_length(content) = size_bytes)
        );
        CREATE INDEX ix_attachments_id ON attachments (id);
        CREATE INDEX ix_attachments_owner ON attachments (tenant_id, owner_kind, owner_id, id);
        CREATE INDEX ix_attachments_path ON attachments (branch_path, id);

        ALTER TABLE attachments ENABLE ROW LEVEL SECURITY;
        ALTER TABLE attachments FORCE ROW LEVEL SECURITY;
        CREATE POLICY tenant_isolation ON attachments
          USING (tenant_id = ANY (pingyi_tenant_scope()))
          WITH CHECK (tenant_id = ANY (pingyi_tenant_scope()));

        -- never deleted: a case's materials stay with it
        GRANT SELECT, INSERT, UPDATE ON attachments TO {app};
        """
    )


def downgrade() -> None:
    op.execute("DROP TABLE attachments")
