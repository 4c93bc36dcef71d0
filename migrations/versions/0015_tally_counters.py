"""Ballots counted as they arrive: per-position counters instead of one row per vote.

0010 stored one row per graded candidate of each ballot (about 1.5 million rows for a
county's half-year) and counted them when balloting closed; sealing had to rewrite all
of them. Now a ballot adds one to its grade's counter at each position it grades
(`evaluation_counts`: one row per round and roster position, about 40,000 for a
county), so the close reads and seals counters, not votes: its cost follows the roster,
not the roster squared.

Secrecy (无记名投票) holds more strictly than with vote rows: no row of any kind stands
for a ballot. `evaluation_count_ballot` (SECURITY DEFINER) is the only way to add to a
counter: the application role can neither read nor write `evaluation_counts`, so no
count is visible before balloting closes (`evaluation_tally` still refuses open
rounds). A ballot's counter rows are updated in position order in one statement, so
concurrent ballots of a round take the row locks in the same order (no deadlock); the
service sends the statement with its COMMIT (`Transaction.defer`), so those locks are
held for one step on the server. `evaluation_seal` rewrites the counters in the closing
transaction, so their xmin is the close's, not the last voter's. It no longer rewrites
participation and used tokens (0010 did, so that no vote row's xmin matched them): no
row holds a vote now, and those rows say only THAT someone voted, as each ballot's
audit event does, with the voter's transaction id; their rewrite (with a key check per
row) was most of a county's close. Unused tokens still expire at the close.

Entries leave room on their pages for updates in place (fillfactor 40): the close
updates every entry of the rounds it closes.

The upgrade turns existing votes into counters (same counts; the votes' keys had no
meaning), the downgrade turns counters back into votes with fresh random keys.

Revision ID: 0015
Revises: 0014
Create Date: 2026-11-28
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

from alembic import context, op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None

OPEN_STAGES = "'draft', 'self_evaluation', 'balloting'"


def _app_role() -> str:
    role = context.config.attributes.get("app_role", "pingyi_app")
    if not role.replace("_", "").isalnum():
        raise ValueError(f"bad application role name: {role!r}")
    return role


def _revision_0010() -> ModuleType:
    """0010's module, whose vote functions the downgrade restores (revision files are
    not a package: load it by path)."""
    path = Path(__file__).with_name("0010_evaluations.py")
    spec = importlib.util.spec_from_file_location("pingyi_revision_0010", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _unforced(tables: str, sql: str) -> str:
    """`sql` run with row-level security not forced on `tables` (the owner moves every
    tenant's rows at once), forced again after; all in the migration's transaction."""
    names = [t.strip() for t in tables.split(",")]
    off = "".join(f"ALTER TABLE {t} NO FORCE ROW LEVEL SECURITY;\n" for t in names)
    on = "".join(f"ALTER TABLE {t} FORCE ROW LEVEL SECURITY;\n" for t in names)
    return off + sql + "\n" + on


def tally_functions_sql() -> str:
    """`evaluation_tally` and `evaluation_seal` as this revision defines them (0018
    replaces both with `evaluation_take_counts` and puts them back on downgrade)."""
    return f"""
        -- Counts of each grade per roster position, only for rounds whose balloting
        -- has closed and that lie in the caller's scope; one statement for any number
        -- of rounds. Blanks are not counted: the service derives them.
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
            SELECT c.tenant_id, c.round_id, c.position,
                   c.excellent, c.qualified, c.basic, c.unqualified
            FROM evaluation_rounds r
            JOIN evaluation_counts c ON c.tenant_id = r.tenant_id AND c.round_id = r.id
            WHERE r.id = ANY (round_ids) AND r.tenant_id = ANY (scope);
        END
        $$;

        -- Run in the transaction that closes the rounds (their stage already moved
        -- past balloting): rewrite the counters so they carry that transaction's xmin
        -- (not the last voter's) and a physical order by position; unused tokens
        -- expire now. Returns the number of counter rows sealed.
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
            DELETE FROM evaluation_counts c
            WHERE c.round_id = ANY (ids) AND c.tenant_id = ANY (scope)
            RETURNING c.*
          )
          INSERT INTO evaluation_counts
            SELECT * FROM gone ORDER BY tenant_id, round_id, position;
          GET DIAGNOSTICS sealed = ROW_COUNT;

          -- Tokens not used die with the close. Participation and used tokens stay as
          -- they are: they say THAT someone voted, which the audit event of each ballot
          -- says too (with the voter's transaction id); no row is left that says what.
          UPDATE evaluation_ballot_tokens t SET expires_at = now()
          WHERE t.round_id = ANY (ids) AND t.tenant_id = ANY (scope)
            AND NOT t.used AND t.expires_at > now();

          RETURN sealed;
        END
        $$;

        """


def upgrade() -> None:
    app = _app_role()
    op.execute(
        """
        -- One row per round and roster position: how many ballots gave each grade.
        -- No voter, no ballot, no time. No foreign keys, as the votes before them: a
        -- key check per ballot would lock the round row the ballot already holds.
        CREATE TABLE evaluation_counts (
          tenant_id    bigint NOT NULL,
          round_id     bigint NOT NULL,
          position     integer NOT NULL CHECK (position >= 1),
          excellent    integer NOT NULL DEFAULT 0 CHECK (excellent >= 0),
          qualified    integer NOT NULL DEFAULT 0 CHECK (qualified >= 0),
          basic        integer NOT NULL DEFAULT 0 CHECK (basic >= 0),
          unqualified  integer NOT NULL DEFAULT 0 CHECK (unqualified >= 0),
          CONSTRAINT pk_evaluation_counts PRIMARY KEY (tenant_id, round_id, position)
        );
        ALTER TABLE evaluation_counts ENABLE ROW LEVEL SECURITY;
        ALTER TABLE evaluation_counts FORCE ROW LEVEL SECURITY;
        CREATE POLICY tenant_isolation ON evaluation_counts
          USING (tenant_id = ANY (pingyi_tenant_scope()))
          WITH CHECK (tenant_id = ANY (pingyi_tenant_scope()));
        """
    )
    op.execute(
        _unforced(
            "evaluation_votes, evaluation_counts",
            """
            INSERT INTO evaluation_counts
                (tenant_id, round_id, position, excellent, qualified, basic, unqualified)
              SELECT tenant_id, round_id, position,
                     count(*) FILTER (WHERE grade = 1), count(*) FILTER (WHERE grade = 2),
                     count(*) FILTER (WHERE grade = 3), count(*) FILTER (WHERE grade = 4)
              FROM evaluation_votes
              GROUP BY tenant_id, round_id, position
              ORDER BY tenant_id, round_id, position;
            """,
        )
    )
    op.execute(
        f"""
        DROP FUNCTION evaluation_seal(bigint[]), evaluation_tally(bigint[]);
        DROP TABLE evaluation_votes;

        -- An entry is written when the round opens and updated in place later (the
        -- tally's counts and proposal, the committee's grade, the final grade), never
        -- in an indexed column: with room left on its page the update is HOT, with no
        -- new entry in any of the table's six indexes (nor a recheck of the deferred
        -- position key). A county's close updates 40,000 entries at once, each growing
        -- from about 220 to 320 bytes: at 70 % fill 44 % of them were HOT, at 40 % all
        -- (one WAL record per entry instead of five; the update took half the time).
        ALTER TABLE evaluation_entries SET (fillfactor = 40);

        -- A ballot's votes added to the round's counters: `positions` and `grades`
        -- (1 excellent, 2 qualified, 3 basic, 4 unqualified) pair up; blanks are not
        -- passed. Only while the round, in the caller's scope, is balloting. One
        -- statement, rows taken in position order (see the module docstring).
        CREATE FUNCTION evaluation_count_ballot(
          ballot_round bigint, positions integer[], grades smallint[]
        ) RETURNS void
        LANGUAGE plpgsql VOLATILE SECURITY DEFINER
        SET search_path = public, pg_temp
        AS $$
        DECLARE
          scope bigint[] := pingyi_tenant_scope();
          round_tenant bigint;
        BEGIN
          SELECT r.tenant_id INTO round_tenant FROM evaluation_rounds r
            WHERE r.id = ballot_round AND r.tenant_id = ANY (scope)
              AND r.stage = 'balloting';
          IF round_tenant IS NULL THEN
            RAISE EXCEPTION 'evaluation_count_ballot: round not balloting or not in scope'
              USING ERRCODE = 'insufficient_privilege';
          END IF;
          IF cardinality(positions) IS DISTINCT FROM cardinality(grades)
             OR EXISTS (SELECT 1 FROM unnest(positions, grades) AS v(position, grade)
                        WHERE v.position IS NULL OR v.position < 1
                           OR v.grade IS NULL OR v.grade NOT BETWEEN 1 AND 4) THEN
            RAISE EXCEPTION 'evaluation_count_ballot: malformed ballot'
              USING ERRCODE = 'data_exception';
          END IF;
          -- A position twice in one ballot fails here ("cannot affect row a second
          -- time"): a ballot grades each candidate once.
          INSERT INTO evaluation_counts AS c
              (tenant_id, round_id, position, excellent, qualified, basic, unqualified)
            SELECT round_tenant, ballot_round, v.position,
                   (v.grade = 1)::int, (v.grade = 2)::int,
                   (v.grade = 3)::int, (v.grade = 4)::int
            FROM unnest(positions, grades) AS v(position, grade)
            ORDER BY v.position
          ON CONFLICT (tenant_id, round_id, position) DO UPDATE SET
            excellent = c.excellent + excluded.excellent,
            qualified = c.qualified + excluded.qualified,
            basic = c.basic + excluded.basic,
            unqualified = c.unqualified + excluded.unqualified;
        END
        $$;

        {tally_functions_sql()}
        REVOKE ALL ON FUNCTION evaluation_count_ballot(bigint, integer[], smallint[]),
          evaluation_tally(bigint[]), evaluation_seal(bigint[]) FROM PUBLIC;
        GRANT EXECUTE ON FUNCTION evaluation_count_ballot(bigint, integer[], smallint[]),
          evaluation_tally(bigint[]), evaluation_seal(bigint[]) TO {app};
        """
    )


def downgrade() -> None:
    app = _app_role()
    op.execute(
        """
        DROP FUNCTION evaluation_count_ballot(bigint, integer[], smallint[]),
          evaluation_seal(bigint[]), evaluation_tally(bigint[]);
        CREATE TABLE evaluation_votes (
          tenant_id   bigint NOT NULL,
          round_id    bigint NOT NULL,
          vote_key    uuid NOT NULL DEFAULT gen_random_uuid(),
          position    integer NOT NULL CHECK (position >= 1),
          grade       smallint NOT NULL CHECK (grade BETWEEN 1 AND 4),
          CONSTRAINT pk_evaluation_votes PRIMARY KEY (tenant_id, round_id, vote_key)
        );
        ALTER TABLE evaluation_votes ENABLE ROW LEVEL SECURITY;
        ALTER TABLE evaluation_votes FORCE ROW LEVEL SECURITY;
        CREATE POLICY tenant_isolation ON evaluation_votes
          USING (tenant_id = ANY (pingyi_tenant_scope()))
          WITH CHECK (tenant_id = ANY (pingyi_tenant_scope()));
        """
    )
    op.execute(
        _unforced(
            "evaluation_votes, evaluation_counts",
            """
            INSERT INTO evaluation_votes (tenant_id, round_id, position, grade)
              SELECT c.tenant_id, c.round_id, c.position, g.grade
              FROM evaluation_counts c
              CROSS JOIN LATERAL (VALUES (1, c.excellent), (2, c.qualified),
                                         (3, c.basic), (4, c.unqualified)) AS g(grade, n)
              CROSS JOIN LATERAL generate_series(1, g.n)
              ORDER BY 1, 2, gen_random_uuid();
            """,
        )
    )
    op.execute("DROP TABLE evaluation_counts")
    op.execute("ALTER TABLE evaluation_entries RESET (fillfactor)")
    op.execute(_revision_0010().vote_functions_sql(app))
    op.execute(f"GRANT INSERT ON evaluation_votes TO {app}")
