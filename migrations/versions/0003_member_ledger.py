"""Member ledger (党员信息电子台账): members and their history, dues, organizational
life, tasks, recorded reasons, sanctions, registration drives, mobile-member contacts,
pending imports.

Every table holds one tenant's rows: `tenant_id` leads each key, row-level security
(forced) confines every statement to the transaction's tenants. A member's own rows
follow the member when a transfer (组织关系转接) moves them to another tenant
(ON UPDATE CASCADE); a branch's meetings stay with the branch that held them.

ID-card and phone numbers are stored only as SM4-GCM ciphertexts (service/crypto.py)
with a keyed SM3-HMAC of the ID number for exact search; no column holds them plain.

Months are stored as int ordinals (year * 12 + month - 1, service/dues/rules.Month).

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-27
"""

from __future__ import annotations

from alembic import context, op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

TABLES = (
    "members",
    "member_history",
    "dues_payments",
    "dues_months",
    "dues_arrangements",
    "ledger_excuses",
    "meetings",
    "meeting_attendance",
    "member_tasks",
    "sanctions",
    "registration_drives",
    "registration_applications",
    "mobile_contacts",
    "member_imports",
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
        CREATE SEQUENCE ledger_id_seq;

        CREATE TABLE members (
          tenant_id       bigint NOT NULL REFERENCES tenants (id),
          id              bigint NOT NULL DEFAULT nextval('ledger_id_seq'),
          branch_id       bigint NOT NULL,
          branch_path     text COLLATE "C" NOT NULL,
          name            text NOT NULL CHECK (length(btrim(name)) BETWEEN 1 AND 50),
          gender          text NOT NULL CHECK (gender IN ('male', 'female')),
          birth_date      date NOT NULL,
          id_number_enc   bytea NOT NULL,
          id_number_hmac  bytea NOT NULL,
          -- what every reader may see (5113**********123X, 138****5678)
          id_number_mask  text NOT NULL,
          phone_enc       bytea,
          phone_mask      text,
          joined_on       date NOT NULL,
          confirmed_on    date,
          category        text NOT NULL CHECK (category IN ('full', 'probationary')),
          status          text NOT NULL DEFAULT 'active' CHECK (status IN ('active',
                            'correcting', 'suspended', 'removed', 'withdrew', 'expelled',
                            'deceased', 'transferred_out')),
          status_changed_on date,
          is_mobile       boolean NOT NULL DEFAULT false,
          mobile_location text,
          mobile_contact_plan text,
          dues_by_family  boolean NOT NULL DEFAULT false,
          tracked_since   date NOT NULL DEFAULT current_date,
          account_id      bigint REFERENCES accounts (id),
          created_at      timestamptz NOT NULL DEFAULT now(),
          updated_at      timestamptz NOT NULL DEFAULT now(),
          version         integer NOT NULL DEFAULT 1,
          CONSTRAINT pk_members PRIMARY KEY (tenant_id, id),
          CONSTRAINT fk_members_branch FOREIGN KEY (tenant_id, branch_id)
            REFERENCES org_units (tenant_id, id),
          CONSTRAINT uq_members_id_number UNIQUE (tenant_id, id_number_hmac),
          CONSTRAINT ck_members_confirmed CHECK (confirmed_on IS NULL OR confirmed_on >= joined_on)
        );
        CREATE INDEX ix_members_id ON members (id);
        CREATE INDEX ix_members_branch ON members (tenant_id, branch_id, id);
        CREATE INDEX ix_members_branch_path ON members (branch_path, id);
        CREATE UNIQUE INDEX uq_members_account ON members (account_id)
          WHERE account_id IS NOT NULL;

        CREATE TABLE member_history (
          tenant_id   bigint NOT NULL REFERENCES tenants (id),
          id          bigint NOT NULL DEFAULT nextval('ledger_id_seq'),
          member_id   bigint NOT NULL,
          kind        text NOT NULL CHECK (kind IN ('created', 'imported', 'updated',
                        'branch_changed', 'transferred_in', 'transferred_out',
                        'status_changed', 'category_changed')),
          effective_on date NOT NULL,
          details     jsonb NOT NULL DEFAULT '{}'::jsonb,
          actor       text NOT NULL,
          created_at  timestamptz NOT NULL DEFAULT now(),
          CONSTRAINT pk_member_history PRIMARY KEY (tenant_id, id),
          CONSTRAINT fk_member_history_member FOREIGN KEY (tenant_id, member_id)
            REFERENCES members (tenant_id, id) ON UPDATE CASCADE
        );
        CREATE INDEX ix_member_history_member ON member_history (tenant_id, member_id, id);

        CREATE TABLE dues_payments (
          tenant_id   bigint NOT NULL REFERENCES tenants (id),
          id          bigint NOT NULL DEFAULT nextval('ledger_id_seq'),
          member_id   bigint NOT NULL,
          paid_on     date NOT NULL,
          amount_fen  integer NOT NULL CHECK (amount_fen > 0),
          paid_by     text NOT NULL CHECK (paid_by IN ('self', 'family')),
          is_back_payment boolean NOT NULL DEFAULT false,
          note        text,
          recorded_by text NOT NULL,
          created_at  timestamptz NOT NULL DEFAULT now(),
          CONSTRAINT pk_dues_payments PRIMARY KEY (tenant_id, id),
          CONSTRAINT fk_dues_payments_member FOREIGN KEY (tenant_id, member_id)
            REFERENCES members (tenant_id, id) ON UPDATE CASCADE
        );
        CREATE INDEX ix_dues_payments_id ON dues_payments (id);
        CREATE INDEX ix_dues_payments_member ON dues_payments (tenant_id, member_id, paid_on);

        -- The months a payment covers: a month is paid once.
        CREATE TABLE dues_months (
          tenant_id   bigint NOT NULL REFERENCES tenants (id),
          member_id   bigint NOT NULL,
          month       integer NOT NULL,
          payment_id  bigint NOT NULL,
          paid_by     text NOT NULL CHECK (paid_by IN ('self', 'family')),
          CONSTRAINT pk_dues_months PRIMARY KEY (tenant_id, member_id, month),
          CONSTRAINT fk_dues_months_member FOREIGN KEY (tenant_id, member_id)
            REFERENCES members (tenant_id, id) ON UPDATE CASCADE,
          CONSTRAINT fk_dues_months_payment FOREIGN KEY (tenant_id, payment_id)
            REFERENCES dues_payments (tenant_id, id) ON UPDATE CASCADE
        );

        -- A branch's agreement that a member pays quarterly (按季交纳).
        CREATE TABLE dues_arrangements (
          tenant_id   bigint NOT NULL REFERENCES tenants (id),
          id          bigint NOT NULL DEFAULT nextval('ledger_id_seq'),
          member_id   bigint NOT NULL,
          schedule    text NOT NULL CHECK (schedule IN ('monthly', 'quarterly')),
          from_month  integer NOT NULL,
          to_month    integer,
          agreed_on   date NOT NULL,
          note        text,
          recorded_by text NOT NULL,
          created_at  timestamptz NOT NULL DEFAULT now(),
          CONSTRAINT pk_dues_arrangements PRIMARY KEY (tenant_id, id),
          CONSTRAINT fk_dues_arrangements_member FOREIGN KEY (tenant_id, member_id)
            REFERENCES members (tenant_id, id) ON UPDATE CASCADE,
          CONSTRAINT ck_dues_arrangements_months CHECK (to_month IS NULL OR to_month >= from_month)
        );
        CREATE INDEX ix_dues_arrangements_member ON dues_arrangements (tenant_id, member_id);

        -- A recorded valid reason (正当理由): breaks a 三不 run for the months it covers.
        CREATE TABLE ledger_excuses (
          tenant_id   bigint NOT NULL REFERENCES tenants (id),
          id          bigint NOT NULL DEFAULT nextval('ledger_id_seq'),
          member_id   bigint NOT NULL,
          kind        text NOT NULL CHECK (kind IN ('dues', 'life', 'tasks', 'all')),
          from_month  integer NOT NULL,
          to_month    integer,
          reason      text NOT NULL CHECK (length(btrim(reason)) BETWEEN 1 AND 500),
          recorded_by text NOT NULL,
          created_at  timestamptz NOT NULL DEFAULT now(),
          CONSTRAINT pk_ledger_excuses PRIMARY KEY (tenant_id, id),
          CONSTRAINT fk_ledger_excuses_member FOREIGN KEY (tenant_id, member_id)
            REFERENCES members (tenant_id, id) ON UPDATE CASCADE,
          CONSTRAINT ck_ledger_excuses_months CHECK (to_month IS NULL OR to_month >= from_month)
        );
        CREATE INDEX ix_ledger_excuses_id ON ledger_excuses (id);
        CREATE INDEX ix_ledger_excuses_member ON ledger_excuses (tenant_id, member_id);

        -- Organizational life (组织生活): a branch's meeting.
        CREATE TABLE meetings (
          tenant_id   bigint NOT NULL REFERENCES tenants (id),
          id          bigint NOT NULL DEFAULT nextval('ledger_id_seq'),
          branch_id   bigint NOT NULL,
          branch_path text COLLATE "C" NOT NULL,
          kind        text NOT NULL,
          held_on     date NOT NULL,
          month       integer NOT NULL,
          topic       text NOT NULL CHECK (length(btrim(topic)) BETWEEN 1 AND 200),
          recorded_by text NOT NULL,
          created_at  timestamptz NOT NULL DEFAULT now(),
          CONSTRAINT pk_meetings PRIMARY KEY (tenant_id, id),
          CONSTRAINT fk_meetings_branch FOREIGN KEY (tenant_id, branch_id)
            REFERENCES org_units (tenant_id, id)
        );
        CREATE INDEX ix_meetings_id ON meetings (id);
        CREATE INDEX ix_meetings_branch ON meetings (tenant_id, branch_id, held_on);

        -- Who attended, was excused (with reason) or absent. No foreign key to members:
        -- the row belongs to the meeting's branch, also after the member moved away.
        CREATE TABLE meeting_attendance (
          tenant_id   bigint NOT NULL REFERENCES tenants (id),
          meeting_id  bigint NOT NULL,
          member_id   bigint NOT NULL,
          month       integer NOT NULL,
          presence    text NOT NULL CHECK (presence IN ('attended', 'excused', 'absent')),
          reason      text,
          CONSTRAINT pk_meeting_attendance PRIMARY KEY (tenant_id, meeting_id, member_id),
          CONSTRAINT fk_meeting_attendance_meeting FOREIGN KEY (tenant_id, meeting_id)
            REFERENCES meetings (tenant_id, id),
          CONSTRAINT ck_meeting_attendance_reason
            CHECK (presence <> 'excused' OR length(btrim(coalesce(reason, ''))) > 0)
        );
        CREATE INDEX ix_meeting_attendance_member
          ON meeting_attendance (tenant_id, member_id, month);

        -- Tasks assigned by the organization (组织分配的任务) and their outcome.
        CREATE TABLE member_tasks (
          tenant_id   bigint NOT NULL REFERENCES tenants (id),
          id          bigint NOT NULL DEFAULT nextval('ledger_id_seq'),
          member_id   bigint NOT NULL,
          title       text NOT NULL CHECK (length(btrim(title)) BETWEEN 1 AND 200),
          assigned_on date NOT NULL,
          due_on      date NOT NULL,
          due_month   integer NOT NULL,
          outcome     text NOT NULL DEFAULT 'pending'
                        CHECK (outcome IN ('pending', 'done', 'not_done', 'excused')),
          outcome_note text,
          recorded_by text NOT NULL,
          created_at  timestamptz NOT NULL DEFAULT now(),
          updated_at  timestamptz NOT NULL DEFAULT now(),
          CONSTRAINT pk_member_tasks PRIMARY KEY (tenant_id, id),
          CONSTRAINT fk_member_tasks_member FOREIGN KEY (tenant_id, member_id)
            REFERENCES members (tenant_id, id) ON UPDATE CASCADE,
          CONSTRAINT ck_member_tasks_due CHECK (due_on >= assigned_on)
        );
        CREATE INDEX ix_member_tasks_id ON member_tasks (id);
        CREATE INDEX ix_member_tasks_member ON member_tasks (tenant_id, member_id, due_month);

        -- Discipline sanctions (党纪处分).
        CREATE TABLE sanctions (
          tenant_id   bigint NOT NULL REFERENCES tenants (id),
          id          bigint NOT NULL DEFAULT nextval('ledger_id_seq'),
          member_id   bigint NOT NULL,
          kind        text NOT NULL CHECK (kind IN ('warning', 'serious_warning',
                        'removal_from_post', 'probation_one_year', 'probation_two_years',
                        'expulsion')),
          decided_on  date NOT NULL,
          probation_ends_on date,
          decided_by  text NOT NULL CHECK (length(btrim(decided_by)) BETWEEN 1 AND 100),
          matter      text NOT NULL CHECK (length(btrim(matter)) BETWEEN 1 AND 1000),
          recorded_by text NOT NULL,
          created_at  timestamptz NOT NULL DEFAULT now(),
          CONSTRAINT pk_sanctions PRIMARY KEY (tenant_id, id),
          CONSTRAINT fk_sanctions_member FOREIGN KEY (tenant_id, member_id)
            REFERENCES members (tenant_id, id) ON UPDATE CASCADE
        );
        CREATE INDEX ix_sanctions_id ON sanctions (id);
        CREATE INDEX ix_sanctions_member ON sanctions (tenant_id, member_id, decided_on);

        -- Registration drive (党员登记): one row per tenant it covers (a county-wide
        -- drive is one row in every tenant, sharing `batch`), so each tenant's members
        -- see theirs under their own scope.
        CREATE TABLE registration_drives (
          tenant_id   bigint NOT NULL REFERENCES tenants (id),
          id          bigint NOT NULL DEFAULT nextval('ledger_id_seq'),
          batch       uuid NOT NULL,
          title       text NOT NULL CHECK (length(btrim(title)) BETWEEN 1 AND 100),
          opens_on    date NOT NULL,
          closes_on   date NOT NULL,
          opened_by   text NOT NULL,
          created_at  timestamptz NOT NULL DEFAULT now(),
          CONSTRAINT pk_registration_drives PRIMARY KEY (tenant_id, id),
          CONSTRAINT ck_registration_drives_window CHECK (closes_on >= opens_on)
        );
        CREATE INDEX ix_registration_drives_id ON registration_drives (id);

        CREATE TABLE registration_applications (
          tenant_id   bigint NOT NULL REFERENCES tenants (id),
          id          bigint NOT NULL DEFAULT nextval('ledger_id_seq'),
          drive_id    bigint NOT NULL,
          member_id   bigint NOT NULL,
          thought     text NOT NULL,
          work        text NOT NULL,
          conduct     text NOT NULL,
          life        text NOT NULL,
          wishes_to_stay boolean NOT NULL,
          channel     text NOT NULL CHECK (channel IN ('web', 'mini_program')),
          submitted_at timestamptz NOT NULL DEFAULT now(),
          is_late     boolean NOT NULL DEFAULT false,
          review      text NOT NULL DEFAULT 'pending'
                        CHECK (review IN ('pending', 'accepted', 'returned')),
          review_note text,
          reviewed_by text,
          reviewed_at timestamptz,
          CONSTRAINT pk_registration_applications PRIMARY KEY (tenant_id, id),
          CONSTRAINT fk_registration_applications_drive FOREIGN KEY (tenant_id, drive_id)
            REFERENCES registration_drives (tenant_id, id),
          CONSTRAINT fk_registration_applications_member FOREIGN KEY (tenant_id, member_id)
            REFERENCES members (tenant_id, id) ON UPDATE CASCADE,
          CONSTRAINT uq_registration_applications UNIQUE (tenant_id, drive_id, member_id)
        );
        CREATE INDEX ix_registration_applications_id ON registration_applications (id);

        -- Contact log of mobile members (流动党员联系记录).
        CREATE TABLE mobile_contacts (
          tenant_id   bigint NOT NULL REFERENCES tenants (id),
          id          bigint NOT NULL DEFAULT nextval('ledger_id_seq'),
          member_id   bigint NOT NULL,
          contacted_on date NOT NULL,
          channel     text NOT NULL CHECK (channel IN ('phone', 'sms', 'wechat', 'visit')),
          contacted_by text NOT NULL CHECK (length(btrim(contacted_by)) BETWEEN 1 AND 50),
          reached     boolean NOT NULL,
          outcome     text NOT NULL CHECK (length(btrim(outcome)) BETWEEN 1 AND 1000),
          recorded_by text NOT NULL,
          created_at  timestamptz NOT NULL DEFAULT now(),
          CONSTRAINT pk_mobile_contacts PRIMARY KEY (tenant_id, id),
          CONSTRAINT fk_mobile_contacts_member FOREIGN KEY (tenant_id, member_id)
            REFERENCES members (tenant_id, id) ON UPDATE CASCADE
        );
        CREATE INDEX ix_mobile_contacts_id ON mobile_contacts (id);
        CREATE INDEX ix_mobile_contacts_member
          ON mobile_contacts (tenant_id, member_id, contacted_on);

        -- An uploaded ledger waiting for the user's confirmation: the report, and the
        -- good rows sealed (SM4-GCM) since they hold ID and phone numbers.
        CREATE TABLE member_imports (
          tenant_id   bigint NOT NULL REFERENCES tenants (id),
          id          bigint NOT NULL DEFAULT nextval('ledger_id_seq'),
          file_sha256 text NOT NULL,
          report      jsonb NOT NULL,
          sealed_rows bytea NOT NULL,
          created_by  text NOT NULL,
          created_at  timestamptz NOT NULL DEFAULT now(),
          expires_at  timestamptz NOT NULL,
          confirmed_at timestamptz,
          CONSTRAINT pk_member_imports PRIMARY KEY (tenant_id, id)
        );
        CREATE INDEX ix_member_imports_id ON member_imports (id);
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
    op.execute(
        f"""
        GRANT SELECT, INSERT, UPDATE ON {", ".join(TABLES)} TO {app};
        GRANT USAGE, SELECT ON SEQUENCE ledger_id_seq TO {app};
        """
    )


def downgrade() -> None:
    op.execute(f"DROP TABLE {', '.join(reversed(TABLES))}; DROP SEQUENCE ledger_id_seq;")
