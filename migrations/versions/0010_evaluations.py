"""Democratic evaluation (民主评议党员): rounds, their rosters, secret ballots, ballot
tokens of mass representatives (群众代表), assemblies, objections and members' grades.

Every table holds one tenant's rows (a round lives in its branch's tenant): `tenant_id`
leads each key, row-level security is enabled and forced.

Secrecy of the ballot (无记名投票) is built into the tables:
- `evaluation_participation` says THAT a member voted (its primary key refuses a second
  ballot, also when two arrive at once); `evaluation_votes` holds WHAT was voted, one
  row per graded candidate of a ballot: a random `vote_key`, the round, the candidate's
  roster position (`evaluation_entries.position`) and the grade, nothing else: no
  ballot grouping, no voter, no time, no serial. Blanks are not stored: a ballot stored
  as a whole would always hold the blank at its voter's own position (nobody grades
  themselves) and so name its voter; single votes cannot be put back together.
- The application role may INSERT votes but never read them; counts come only from
  `evaluation_tally(round_ids)`, a SECURITY DEFINER function that refuses while any of
  the rounds is still before its close.
- `evaluation_seal(round_ids)` runs in the closing transaction and rewrites the rounds'
  vote rows (in `vote_key` order), participation rows and token rows, so all of them
  carry the closing transaction's id (xmin) and a physical order unrelated to the order
  of voting: nothing in a row's system columns groups votes into a ballot or maps them
  to the voter's transaction (whose audit event "a ballot was cast" does carry it).
- Both functions run with their owner's rights (RLS may not bind the owner), so they
  check the caller's tenant scope (`pingyi_tenant_scope()`) explicitly.

Vote grade codes: 1 excellent 优秀, 2 qualified 合格, 3 basic 基本合格, 4 unqualified
不合格 (a blank is the absence of a vote).

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-27
"""

from __future__ import annotations

from alembic import context, op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

TABLES = (
    "evaluation_rounds",
    "evaluation_entries",
    "evaluation_participation",
    "evaluation_ballot_tokens",
    "evaluation_votes",
    "evaluation_assemblies",
    "evaluation_assembly_exclusions",
    "evaluation_objections",
    "member_grades",
)

STAGES = (
    "'draft', 'self_evaluation', 'balloting', 'tallied', 'proposed', 'assembly',"
    " 'superior_review', 'public_notice', 'final'"
)
GRADES = "'excellent', 'qualified', 'basic', 'unqualified', 'not_graded', 'needs_decision'"
# Stages in which ballots may still arrive: counts are refused, nothing is sealed.
OPEN_STAGES = "'draft', 'self_evaluation', 'balloting'"


def _app_role() -> str:
    role = context.config.attributes.get("app_role", "pingyi_app")
    if not role.replace("_", "").isalnum():
        raise ValueError(f"bad application role name: {role!r}")
    return role


def upgrade() -> None:
    app = _app_role()
    op.execute(
        f"""
        CREATE TABLE evaluation_rounds (
          tenant_id   bigint NOT NULL REFERENCES tenants (id),
          id          bigint NOT NULL DEFAULT nextval('ledger_id_seq'),
          -- rounds opened together (a county-wide half-year) share a batch
          batch       uuid NOT NULL,
          branch_id   bigint NOT NULL,
          branch_path text COLLATE "C" NOT NULL,
          year        smallint NOT NULL CHECK (year BETWEEN 2000 AND 2100),
          half        smallint NOT NULL CHECK (half IN (1, 2)),
          title       text NOT NULL CHECK (length(btrim(title)) BETWEEN 1 AND 100),
          stage       text NOT NULL DEFAULT 'draft' CHECK (stage IN ({STAGES})),
          -- the policy used, as a snapshot: a finished round never changes with the policy
          policy_id   bigint,
          policy_version integer NOT NULL,
          policy      jsonb NOT NULL,
          opened_by   text NOT NULL,
          created_at  timestamptz NOT NULL DEFAULT now(),
          stage_changed_at timestamptz NOT NULL DEFAULT now(),
          stage_changed_by text,
          sent_back_reason text,
          closed_at   timestamptz,
          notice_starts_on date,
          notice_ends_on date,
          approval_request_id bigint,
          -- filled when balloting closes (before that nobody sees a count)
          ballots_cast integer,
          roster_voters integer,
          mass_tokens_issued integer NOT NULL DEFAULT 0,
          version     integer NOT NULL DEFAULT 1,
          CONSTRAINT pk_evaluation_rounds PRIMARY KEY (tenant_id, id),
          CONSTRAINT fk_evaluation_rounds_branch FOREIGN KEY (tenant_id, branch_id)
            REFERENCES org_units (tenant_id, id),
          CONSTRAINT uq_evaluation_rounds_period UNIQUE (tenant_id, branch_id, year, half)
        );
        CREATE INDEX ix_evaluation_rounds_id ON evaluation_rounds (id);
        CREATE INDEX ix_evaluation_rounds_path ON evaluation_rounds (branch_path, id);
        CREATE INDEX ix_evaluation_rounds_batch ON evaluation_rounds (batch);

        -- The roster (参评党员): one entry per member in the round, drafted when
        -- self-evaluation opens and fixed when balloting opens, which gives `position`:
        -- the member's place (1-based) on the ballot, named by every vote. `member_id` has no
        -- foreign key: the round stays with its branch's tenant when the member later
        -- transfers to another (组织关系转接 moves the member's key), and ledger ids are
        -- unique across tenants; the entry keeps the name it was graded under.
        CREATE TABLE evaluation_entries (
          tenant_id   bigint NOT NULL REFERENCES tenants (id),
          id          bigint NOT NULL DEFAULT nextval('ledger_id_seq'),
          round_id    bigint NOT NULL,
          member_id   bigint NOT NULL,
          position    integer CHECK (position >= 1),
          name        text NOT NULL,
          category    text NOT NULL CHECK (category IN ('full', 'probationary')),
          may_vote    boolean NOT NULL,
          excused     boolean NOT NULL DEFAULT false,
          excused_reason text,
          excused_opinion text,
          excused_by  text,
          override    text NOT NULL DEFAULT 'none',
          last_year_grade text CHECK (last_year_grade IN ({GRADES})),
          self_evaluation text,
          self_evaluated_at timestamptz,
          -- the tally, after close
          excellent   integer,
          qualified   integer,
          basic       integer,
          unqualified integer,
          blank       integer,
          shares      jsonb,
          computed_grade text CHECK (computed_grade IN ({GRADES})),
          computed_rule text,
          organizational_finding boolean NOT NULL DEFAULT false,
          organizational_finding_note text,
          committee_grade text CHECK (committee_grade IN ({GRADES})),
          committee_reason text,
          committee_by text,
          votes_for   integer,
          votes_against integer,
          votes_abstain integer,
          assembly_passed boolean,
          told_at     timestamptz,
          told_by     text,
          final_grade text CHECK (final_grade IN ({GRADES})),
          version     integer NOT NULL DEFAULT 1,
          CONSTRAINT pk_evaluation_entries PRIMARY KEY (tenant_id, id),
          CONSTRAINT fk_evaluation_entries_round FOREIGN KEY (tenant_id, round_id)
            REFERENCES evaluation_rounds (tenant_id, id),
          CONSTRAINT uq_evaluation_entries_member UNIQUE (tenant_id, round_id, member_id),
          -- deferred: fixing the roster again (after a send-back and a changed
          -- membership) shifts positions in one UPDATE, passing through duplicates
          CONSTRAINT uq_evaluation_entries_position UNIQUE (tenant_id, round_id, position)
            DEFERRABLE INITIALLY DEFERRED,
          CONSTRAINT ck_evaluation_entries_excused
            CHECK (NOT excused OR length(btrim(coalesce(excused_reason, ''))) > 0)
        );
        CREATE INDEX ix_evaluation_entries_id ON evaluation_entries (id);
        CREATE INDEX ix_evaluation_entries_member ON evaluation_entries (tenant_id, member_id);
        -- closing many rounds at once reads their entries by round id alone
        CREATE INDEX ix_evaluation_entries_round ON evaluation_entries (round_id, position);

        -- THAT a member voted (never what): one row per voter and round.
        CREATE TABLE evaluation_participation (
          tenant_id   bigint NOT NULL REFERENCES tenants (id),
          round_id    bigint NOT NULL,
          voter_member_id bigint NOT NULL,
          CONSTRAINT pk_evaluation_participation
            PRIMARY KEY (tenant_id, round_id, voter_member_id),
          CONSTRAINT fk_evaluation_participation_round FOREIGN KEY (tenant_id, round_id)
            REFERENCES evaluation_rounds (tenant_id, id)
        );

        -- One-time ballot tokens of mass representatives: only a SHA-256 of each.
        CREATE TABLE evaluation_ballot_tokens (
          tenant_id   bigint NOT NULL REFERENCES tenants (id),
          round_id    bigint NOT NULL,
          token_hash  bytea NOT NULL CHECK (length(token_hash) = 32),
          used        boolean NOT NULL DEFAULT false,
          expires_at  timestamptz NOT NULL,
          CONSTRAINT pk_evaluation_ballot_tokens PRIMARY KEY (tenant_id, token_hash),
          CONSTRAINT fk_evaluation_ballot_tokens_round FOREIGN KEY (tenant_id, round_id)
            REFERENCES evaluation_rounds (tenant_id, id)
        );
        CREATE INDEX ix_evaluation_ballot_tokens_round
          ON evaluation_ballot_tokens (tenant_id, round_id);

        -- WHAT was voted (never who, never when, never which ballot): one row per
        -- graded candidate of a ballot; see the module docstring.
        -- No foreign keys, on purpose: a county's close seals about 1.5 million votes
        -- at once, and a key check (with its row lock on the round) per rewritten vote
        -- cost more than the rewrite itself. Votes are written only by cast_ballot and
        -- cast_token_ballot, holding the round share-locked in balloting, and only
        -- evaluation_seal deletes them (to write them back); nothing deletes a round.
        CREATE TABLE evaluation_votes (
          tenant_id   bigint NOT NULL,
          round_id    bigint NOT NULL,
          vote_key    uuid NOT NULL DEFAULT gen_random_uuid(),
          position    integer NOT NULL CHECK (position >= 1),
          grade       smallint NOT NULL CHECK (grade BETWEEN 1 AND 4),
          CONSTRAINT pk_evaluation_votes PRIMARY KEY (tenant_id, round_id, vote_key)
        );

        -- The member assembly (支部党员大会) of a round.
        CREATE TABLE evaluation_assemblies (
          tenant_id   bigint NOT NULL REFERENCES tenants (id),
          id          bigint NOT NULL DEFAULT nextval('ledger_id_seq'),
          round_id    bigint NOT NULL,
          held_on     date,
          -- 应到会有表决权的党员: voters minus the recorded exclusions
          expected_voters integer,
          present_member_ids bigint[] NOT NULL DEFAULT '{{}}',
          superior_consent_by text,
          superior_consent_on date,
          superior_consent_note text,
          assembly_agreed boolean NOT NULL DEFAULT false,
          note        text,
          recorded_by text NOT NULL,
          created_at  timestamptz NOT NULL DEFAULT now(),
          updated_at  timestamptz NOT NULL DEFAULT now(),
          version     integer NOT NULL DEFAULT 1,
          CONSTRAINT pk_evaluation_assemblies PRIMARY KEY (tenant_id, id),
          CONSTRAINT fk_evaluation_assemblies_round FOREIGN KEY (tenant_id, round_id)
            REFERENCES evaluation_rounds (tenant_id, id),
          CONSTRAINT uq_evaluation_assemblies_round UNIQUE (tenant_id, round_id)
        );
        CREATE INDEX ix_evaluation_assemblies_id ON evaluation_assemblies (id);

        -- A member left out of the expected voters, only for a listed reason.
        CREATE TABLE evaluation_assembly_exclusions (
          tenant_id   bigint NOT NULL REFERENCES tenants (id),
          assembly_id bigint NOT NULL,
          member_id   bigint NOT NULL,
          reason      text NOT NULL CHECK (reason IN ('illness_unable', 'abroad_six_months',
                        'serving_sentence', 'bedridden', 'away_not_moved')),
          note        text,
          superior_consent boolean NOT NULL DEFAULT false,
          assembly_agreed boolean NOT NULL DEFAULT false,
          recorded_by text NOT NULL,
          created_at  timestamptz NOT NULL DEFAULT now(),
          CONSTRAINT pk_evaluation_assembly_exclusions
            PRIMARY KEY (tenant_id, assembly_id, member_id),
          CONSTRAINT fk_evaluation_assembly_exclusions_assembly
            FOREIGN KEY (tenant_id, assembly_id) REFERENCES evaluation_assemblies (tenant_id, id)
        );

        -- Objections during public notice (公示) and the branch's answers.
        CREATE TABLE evaluation_objections (
          tenant_id   bigint NOT NULL REFERENCES tenants (id),
          id          bigint NOT NULL DEFAULT nextval('ledger_id_seq'),
          round_id    bigint NOT NULL,
          member_id   bigint NOT NULL,
          text        text NOT NULL CHECK (length(btrim(text)) BETWEEN 1 AND 2000),
          raised_by   text NOT NULL,
          raised_at   timestamptz NOT NULL DEFAULT now(),
          answer      text,
          answered_by text,
          answered_at timestamptz,
          version     integer NOT NULL DEFAULT 1,
          CONSTRAINT pk_evaluation_objections PRIMARY KEY (tenant_id, id),
          CONSTRAINT fk_evaluation_objections_round FOREIGN KEY (tenant_id, round_id)
            REFERENCES evaluation_rounds (tenant_id, id)
        );
        CREATE INDEX ix_evaluation_objections_id ON evaluation_objections (id);
        CREATE INDEX ix_evaluation_objections_round
          ON evaluation_objections (tenant_id, round_id, id);

        -- A member's grade history: a year's grade is its last final round.
        CREATE TABLE member_grades (
          tenant_id   bigint NOT NULL REFERENCES tenants (id),
          member_id   bigint NOT NULL,
          year        smallint NOT NULL,
          grade       text NOT NULL CHECK (grade IN ({GRADES})),
          round_id    bigint,
          recorded_at timestamptz NOT NULL DEFAULT now(),
          CONSTRAINT pk_member_grades PRIMARY KEY (tenant_id, member_id, year),
          CONSTRAINT fk_member_grades_member FOREIGN KEY (tenant_id, member_id)
            REFERENCES members (tenant_id, id) ON UPDATE CASCADE
        );
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

    op.execute(vote_functions_sql(app))
    op.execute(
        f"""
        GRANT SELECT, INSERT, UPDATE ON evaluation_rounds, evaluation_ballot_tokens,
          evaluation_assemblies, evaluation_objections, member_grades TO {app};
        -- entries: the drafted roster loses members who left the branch before balloting
        GRANT SELECT, INSERT, UPDATE, DELETE ON evaluation_entries TO {app};
        GRANT SELECT, INSERT ON evaluation_participation TO {app};
        GRANT SELECT, INSERT, UPDATE, DELETE ON evaluation_assembly_exclusions TO {app};
        -- votes: written by voters, read only through evaluation_tally
        GRANT INSERT ON evaluation_votes TO {app};
        """
    )


def vote_functions_sql(app: str) -> str:
    """The vote functions as this revision defines them (0015 replaces them and puts
    them back on downgrade)."""
    # Counts of each grade per roster position, only for rounds whose balloting has
    # closed and that lie in the caller's scope. One statement for any number of rounds
    # (a county-wide close tallies 2,000 branches at once). Blanks are not stored, so
    # not counted here: the service derives them from the ballots cast.
    return f"""
        CREATE FUNCTION evaluation_tally(round_ids bigint[])
        RETURNS TABLE (tenant_id bigint, round_id bigint, roster_position integer,
                       excellent integer, qualified integer, basic integer,
                       unqualified integer)
        LANGUAGE plpgsql STABLE SECURITY DEFINER
        SET search_path = public, pg_temp
        AS $$
        #variable_conflict use_column
        DECLARE
          scope bigint[] := pingyi_tenant_scope();
          wanted integer := cardinality(ARRAY(SELECT DISTINCT unnest(round_ids)));
          closed integer;
        BEGIN
          SELECT count(*) INTO closed FROM evaluation_rounds r
            WHERE r.id = ANY (round_ids) AND r.tenant_id = ANY (scope)
              AND r.stage NOT IN ({OPEN_STAGES});
          IF closed <> wanted THEN
            RAISE EXCEPTION 'evaluation_tally: balloting not closed or round not in scope'
              USING ERRCODE = 'insufficient_privilege';
          END IF;
          RETURN QUERY
            SELECT v.tenant_id, v.round_id, v.position,
                   (count(*) FILTER (WHERE v.grade = 1))::integer,
                   (count(*) FILTER (WHERE v.grade = 2))::integer,
                   (count(*) FILTER (WHERE v.grade = 3))::integer,
                   (count(*) FILTER (WHERE v.grade = 4))::integer
            FROM evaluation_rounds r
            JOIN evaluation_votes v ON v.tenant_id = r.tenant_id AND v.round_id = r.id
            WHERE r.id = ANY (round_ids) AND r.tenant_id = ANY (scope)
            GROUP BY v.tenant_id, v.round_id, v.position;
        END
        $$;

        -- Run in the transaction that closes the rounds (their stage already moved past
        -- balloting): rewrite votes, participation and tokens so they share that
        -- transaction's xmin, votes in vote_key order; tokens expire now. Returns the
        -- number of votes sealed.
        CREATE FUNCTION evaluation_seal(round_ids bigint[]) RETURNS integer
        LANGUAGE plpgsql VOLATILE SECURITY DEFINER
        SET search_path = public, pg_temp
        AS $$
        DECLARE
          scope bigint[] := pingyi_tenant_scope();
          wanted integer := cardinality(ARRAY(SELECT DISTINCT unnest(round_ids)));
          ids bigint[];
          sealed integer;
        BEGIN
          -- ids come from ledger_id_seq: unique across tenants
          SELECT coalesce(array_agg(x.id), '{{}}') INTO ids FROM (
            SELECT r.id FROM evaluation_rounds r
            WHERE r.id = ANY (round_ids) AND r.tenant_id = ANY (scope)
              AND r.stage NOT IN ({OPEN_STAGES})
            FOR UPDATE) x;
          IF cardinality(ids) <> wanted THEN
            RAISE EXCEPTION 'evaluation_seal: balloting not closed or round not in scope'
              USING ERRCODE = 'insufficient_privilege';
          END IF;

          WITH gone AS (
            DELETE FROM evaluation_votes v
            WHERE v.round_id = ANY (ids) AND v.tenant_id = ANY (scope)
            RETURNING v.tenant_id, v.round_id, v.vote_key, v.position, v.grade
          )
          INSERT INTO evaluation_votes (tenant_id, round_id, vote_key, position, grade)
            SELECT * FROM gone ORDER BY tenant_id, round_id, vote_key;
          GET DIAGNOSTICS sealed = ROW_COUNT;

          WITH gone AS (
            DELETE FROM evaluation_participation p
            WHERE p.round_id = ANY (ids) AND p.tenant_id = ANY (scope)
            RETURNING p.tenant_id, p.round_id, p.voter_member_id
          )
          INSERT INTO evaluation_participation (tenant_id, round_id, voter_member_id)
            SELECT * FROM gone ORDER BY tenant_id, round_id, voter_member_id;

          WITH gone AS (
            DELETE FROM evaluation_ballot_tokens t
            WHERE t.round_id = ANY (ids) AND t.tenant_id = ANY (scope)
            RETURNING t.tenant_id, t.round_id, t.token_hash, t.used, t.expires_at
          )
          INSERT INTO evaluation_ballot_tokens
              (tenant_id, round_id, token_hash, used, expires_at)
            SELECT tenant_id, round_id, token_hash, used, least(expires_at, now())
            FROM gone ORDER BY tenant_id, round_id, token_hash;

          RETURN sealed;
        END
        $$;

        REVOKE ALL ON FUNCTION evaluation_tally(bigint[]), evaluation_seal(bigint[])
          FROM PUBLIC;
        GRANT EXECUTE ON FUNCTION evaluation_tally(bigint[]), evaluation_seal(bigint[])
          TO {app};
        """


def downgrade() -> None:
    op.execute(
        """
        DROP FUNCTION evaluation_seal(bigint[]), evaluation_tally(bigint[]);
        DROP TABLE member_grades, evaluation_objections, evaluation_assembly_exclusions,
          evaluation_assemblies, evaluation_votes, evaluation_ballot_tokens,
          evaluation_participation, evaluation_entries, evaluation_rounds;
        """
    )
