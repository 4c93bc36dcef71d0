"""Disposal cases (处置不合格党员): the case, every procedure step as a record, the two
educators of a case and their weekly sessions; `members.left_on` / `left_by`.

A case lives in its branch's tenant: `tenant_id` leads each key, row-level security is
enabled and forced with the same policy as every tenant table (0010).

- `disposal_cases.member_id` has no foreign key, as evaluation entries have none: a
  member who later transfers to another tenant moves their record's key (组织关系转接),
  while the case stays with the branch that handled it; ledger ids are unique across
  tenants, so the id still names the person. The case keeps the member's name.
- At most one open case per member (a partial unique index): a second opening while
  one is under way is refused by the database too, also when two arrive at once.
- Records are never updated or deleted (the app role may only insert and read them):
  the case's history is what happened, in order. Cases are never deleted.
- `members.left_by` says how a member left through a case ('removal', 'persuasion',
  'withdrawal'): the 5-year bar on re-joining (0013) reads it with `left_on`.

Revision ID: 0012
Revises: 0011
Create Date: 2026-11-28
"""

from __future__ import annotations

from alembic import context, op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None

TABLES = ("disposal_cases", "case_records", "case_educators", "education_sessions")

ORIGINS = (
    "'unqualified_grade', 'lapse_flag', 'not_registering', 'withdrawal_application',"
    " 'out_of_contact', 'serious_problems'"
)
DISPOSALS = "'correction', 'persuasion', 'removal', 'withdrawal'"
STAGES = (
    "'opened', 'filed', 'investigating', 'talked', 'educating', 're_evaluated', 'proposed',"
    " 'pre_reviewed', 'assembly_voted', 'in_approval', 'correcting', 'persuading', 'closed'"
)
OUTCOMES = "'corrected', 'removed', 'withdrew', 'dropped'"
KINDS = (
    "'opening', 'filing', 'investigation', 'talk', 'education_assigned', 're_evaluation',"
    " 'proposal', 'pre_review', 'assembly', 'approval', 'decision_told',"
    " 'correction_review', 'persuasion_answer', 'statement', 'appeal', 'archive',"
    " 'follow_up', 'dropped'"
)


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
          ADD COLUMN left_on date,
          ADD COLUMN left_by text
            CONSTRAINT ck_members_left_by
            CHECK (left_by IN ('removal', 'persuasion', 'withdrawal'));

        CREATE TABLE disposal_cases (
          tenant_id   bigint NOT NULL REFERENCES tenants (id),
          id          bigint NOT NULL DEFAULT nextval('ledger_id_seq'),
          branch_id   bigint NOT NULL,
          branch_path text COLLATE "C" NOT NULL,
          member_id   bigint NOT NULL,
          member_name text NOT NULL,
          member_account_id bigint,
          origin      text NOT NULL CHECK (origin IN ({ORIGINS})),
          stage       text NOT NULL DEFAULT 'opened' CHECK (stage IN ({STAGES})),
          disposal    text CHECK (disposal IN ({DISPOSALS})),
          facts       text NOT NULL CHECK (length(btrim(facts)) BETWEEN 1 AND 4000),
          -- the secretary's statement that the case is not about a sanctioned matter
          not_sanctioned_statement text NOT NULL
            CHECK (length(btrim(not_sanctioned_statement)) BETWEEN 1 AND 1000),
          evaluation_round_id bigint,
          wants_to_stay boolean,
          correction_failed boolean NOT NULL DEFAULT false,
          persuasion_refused boolean NOT NULL DEFAULT false,
          opened_on   date NOT NULL,
          closed_on   date,
          outcome     text CHECK (outcome IN ({OUTCOMES})),
          education_started_on date,
          education_ended_on date,
          correction_months smallint CHECK (correction_months BETWEEN 1 AND 12),
          correction_started_on date,
          correction_deadline date,
          committee_pre_reviewed boolean NOT NULL DEFAULT false,
          county_pre_reviewed boolean NOT NULL DEFAULT false,
          filing_request_id bigint,
          approval_request_id bigint,
          opened_by   text NOT NULL,
          created_at  timestamptz NOT NULL DEFAULT now(),
          stage_changed_at timestamptz NOT NULL DEFAULT now(),
          version     integer NOT NULL DEFAULT 1,
          CONSTRAINT pk_disposal_cases PRIMARY KEY (tenant_id, id),
          CONSTRAINT fk_disposal_cases_branch FOREIGN KEY (tenant_id, branch_id)
            REFERENCES org_units (tenant_id, id),
          -- closed, and only closed, carries an outcome and a closing day
          CONSTRAINT ck_disposal_cases_closed CHECK (
            (stage = 'closed') = (outcome IS NOT NULL)
            AND (stage = 'closed') = (closed_on IS NOT NULL))
        );
        CREATE INDEX ix_disposal_cases_id ON disposal_cases (id);
        CREATE INDEX ix_disposal_cases_path ON disposal_cases (branch_path, id);
        CREATE INDEX ix_disposal_cases_member ON disposal_cases (tenant_id, member_id, id);
        CREATE INDEX ix_disposal_cases_account ON disposal_cases (member_account_id)
          WHERE member_account_id IS NOT NULL;
        CREATE UNIQUE INDEX uq_disposal_cases_open ON disposal_cases (tenant_id, member_id)
          WHERE stage <> 'closed';

        CREATE TABLE case_records (
          tenant_id   bigint NOT NULL REFERENCES tenants (id),
          id          bigint NOT NULL DEFAULT nextval('ledger_id_seq'),
          case_id     bigint NOT NULL,
          kind        text NOT NULL CHECK (kind IN ({KINDS})),
          occurred_on date NOT NULL,
          people      jsonb NOT NULL DEFAULT '[]' CHECK (jsonb_typeof(people) = 'array'),
          body        text NOT NULL DEFAULT '' CHECK (length(body) <= 8000),
          data        jsonb NOT NULL DEFAULT '{{}}' CHECK (jsonb_typeof(data) = 'object'),
          recorded_by bigint,
          recorded_by_name text NOT NULL,
          recorded_at timestamptz NOT NULL DEFAULT now(),
          CONSTRAINT pk_case_records PRIMARY KEY (tenant_id, id),
          CONSTRAINT fk_case_records_case FOREIGN KEY (tenant_id, case_id)
            REFERENCES disposal_cases (tenant_id, id)
        );
        CREATE INDEX ix_case_records_id ON case_records (id);
        CREATE INDEX ix_case_records_case ON case_records (tenant_id, case_id, id);

        CREATE TABLE case_educators (
          tenant_id   bigint NOT NULL REFERENCES tenants (id),
          case_id     bigint NOT NULL,
          member_id   bigint NOT NULL,
          account_id  bigint,
          name        text NOT NULL,
          assigned_on date NOT NULL,
          CONSTRAINT pk_case_educators PRIMARY KEY (tenant_id, case_id, member_id),
          CONSTRAINT fk_case_educators_case FOREIGN KEY (tenant_id, case_id)
            REFERENCES disposal_cases (tenant_id, id)
        );
        CREATE INDEX ix_case_educators_account ON case_educators (account_id)
          WHERE account_id IS NOT NULL;

        CREATE TABLE education_sessions (
          tenant_id   bigint NOT NULL REFERENCES tenants (id),
          id          bigint NOT NULL DEFAULT nextval('ledger_id_seq'),
          case_id     bigint NOT NULL,
          educator_member_id bigint NOT NULL,
          held_on     date NOT NULL,
          summary     text NOT NULL CHECK (length(btrim(summary)) BETWEEN 1 AND 4000),
          recorded_by text NOT NULL,
          recorded_at timestamptz NOT NULL DEFAULT now(),
          CONSTRAINT pk_education_sessions PRIMARY KEY (tenant_id, id),
          CONSTRAINT fk_education_sessions_educator
            FOREIGN KEY (tenant_id, case_id, educator_member_id)
            REFERENCES case_educators (tenant_id, case_id, member_id)
        );
        CREATE INDEX ix_education_sessions_case
          ON education_sessions (tenant_id, case_id, held_on);
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
        GRANT SELECT, INSERT, UPDATE ON disposal_cases TO {app};
        -- the history of a case is appended, never changed
        GRANT SELECT, INSERT ON case_records, case_educators, education_sessions TO {app};
        """
    )


def downgrade() -> None:
    op.execute(
        """
        DROP TABLE education_sessions, case_educators, case_records, disposal_cases;
        ALTER TABLE members DROP COLUMN left_by, DROP COLUMN left_on;
        """
    )
