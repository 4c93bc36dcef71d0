"""The close takes the counters: their counts move into the entries, the counters go.

Until now a close sealed the rounds' counters (rewrote every one, so none kept the xmin
of the last ballot that touched it), read them back through `evaluation_tally`, and
stored the same counts in the entries: the counts lived twice after the close, and the
close paid for rewriting 40,000 counters of a county and for reading the rewritten
tuples back. Nothing reads the counters of a closed round but that close (balloting
never reopens: see `stages.send_back_target`), so `evaluation_take_counts` deletes
them, returning their counts, in the closing transaction; the service stores the counts
in the entries in the same transaction. Secrecy is stricter than with the seal: after
the close no counter row of the round is left at all, with any xmin or any place; the
entries hold the counts, written by the close. Unused ballot tokens still expire with
the close.

The entries no longer store their shares (each count over their sum): readers have
them from the counts (`service.entry_shares`), and building 40,000 of them as JSON was a
third of the close's UPDATE.

The upgrade deletes the counters of every round already closed, after checking that
its entries hold the same counts (it refuses to run otherwise); the downgrade puts
them back from the entries, restores `evaluation_tally` and `evaluation_seal`, and
fills the shares in again.

Revision ID: 0018
Revises: 0017
Create Date: 2026-11-28
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

from alembic import op

revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None

OPEN_STAGES = "'draft', 'self_evaluation', 'balloting'"
GRADES = ("excellent", "qualified", "basic", "unqualified")
GRADE_COLUMNS = ", ".join(GRADES)


def _counts(alias: str) -> str:
    return ", ".join(f"{alias}.{g}" for g in GRADES)


# Each count of an entry over their sum `t.n` in lowest terms: '4/5', '0/1', '1/1'.
SHARES = ", ".join(
    f"'{g}', (e.{g} / gcd(e.{g}, t.n)) || '/' || (t.n / gcd(e.{g}, t.n))" for g in GRADES
)
# A position nobody graded has no counter: zero counts.
COUNTERS_OR_ZERO = ", ".join(f"coalesce(c.{g}, 0)" for g in GRADES)


def _revision_0015() -> ModuleType:
    """0015's module: its helpers (the application role, RLS unforced for the owner)
    and the functions the downgrade restores (revision files are not a package: load it
    by path)."""
    path = Path(__file__).with_name("0015_tally_counters.py")
    spec = importlib.util.spec_from_file_location("pingyi_revision_0015", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def upgrade() -> None:
    before = _revision_0015()
    app = before._app_role()
    op.execute(
        before._unforced(
            "evaluation_counts, evaluation_entries, evaluation_rounds",
            f"""
            DO $$
            DECLARE differing integer;
            BEGIN
              -- Every closed round's entries hold what its counters hold (a position
              -- nobody graded has no counter and zero counts).
              SELECT count(*) INTO differing
              FROM evaluation_rounds r
              JOIN evaluation_entries e ON e.tenant_id = r.tenant_id AND e.round_id = r.id
              LEFT JOIN evaluation_counts c ON c.tenant_id = e.tenant_id
                AND c.round_id = e.round_id AND c.position = e.position
              WHERE r.stage NOT IN ({OPEN_STAGES}) AND e.position IS NOT NULL
                AND ({COUNTERS_OR_ZERO})
                    IS DISTINCT FROM ({_counts("e")});
              -- ... and no counter of a closed round lies off its roster.
              SELECT differing + count(*) INTO differing
              FROM evaluation_counts c
              JOIN evaluation_rounds r ON r.tenant_id = c.tenant_id AND r.id = c.round_id
              WHERE r.stage NOT IN ({OPEN_STAGES}) AND NOT EXISTS (
                SELECT 1 FROM evaluation_entries e WHERE e.tenant_id = c.tenant_id
                  AND e.round_id = c.round_id AND e.position = c.position);
              IF differing > 0 THEN
                RAISE EXCEPTION '0018: % entries or counters of closed rounds differ from '
                  'their counters or entries; nothing was changed', differing;
              END IF;
            END
            $$;
            DELETE FROM evaluation_counts c USING evaluation_rounds r
            WHERE r.tenant_id = c.tenant_id AND r.id = c.round_id
              AND r.stage NOT IN ({OPEN_STAGES});
            """,
        )
    )
    op.execute(
        f"""
        DROP FUNCTION evaluation_tally(bigint[]), evaluation_seal(bigint[]);

        -- Run in the transaction that closes the rounds (their stage already moved
        -- past balloting), in the caller's scope: delete the rounds' counters,
        -- returning their counts (the caller stores them in the entries), and expire
        -- unused tokens. One statement for any number of rounds. A round with no
        -- counter left (taken already, or nobody graded anyone) returns no rows.
        CREATE FUNCTION evaluation_take_counts(round_ids bigint[])
        RETURNS TABLE (round_id bigint, roster_position integer, excellent integer,
                       qualified integer, basic integer, unqualified integer)
        LANGUAGE plpgsql VOLATILE SECURITY DEFINER
        SET search_path = public, pg_temp
        AS $$
        #variable_conflict use_column
        DECLARE
          scope bigint[] := pingyi_tenant_scope();
          wanted integer := cardinality(ARRAY(SELECT DISTINCT unnest(round_ids)));
          ids bigint[];
        BEGIN
          -- ids come from ledger_id_seq: unique across tenants
          SELECT coalesce(array_agg(x.id), '{{}}') INTO ids FROM (
            SELECT r.id FROM evaluation_rounds r
            WHERE r.id = ANY (round_ids) AND r.tenant_id = ANY (scope)
              AND r.stage NOT IN ({OPEN_STAGES})
            FOR UPDATE) x;
          IF cardinality(ids) <> wanted THEN
            RAISE EXCEPTION
              'evaluation_take_counts: balloting not closed or round not in scope'
              USING ERRCODE = 'insufficient_privilege';
          END IF;

          -- Participation and used tokens stay: they say THAT someone voted, as the
          -- audit event of each ballot does; once the counters are gone no row is
          -- left that says what.
          UPDATE evaluation_ballot_tokens t SET expires_at = now()
          WHERE t.round_id = ANY (ids) AND t.tenant_id = ANY (scope)
            AND NOT t.used AND t.expires_at > now();

          RETURN QUERY
            WITH taken AS (
              DELETE FROM evaluation_counts c
              WHERE c.round_id = ANY (ids) AND c.tenant_id = ANY (scope)
              RETURNING c.round_id, c.position, {_counts("c")}
            )
            SELECT * FROM taken;
        END
        $$;

        REVOKE ALL ON FUNCTION evaluation_take_counts(bigint[]) FROM PUBLIC;
        GRANT EXECUTE ON FUNCTION evaluation_take_counts(bigint[]) TO {app};

        ALTER TABLE evaluation_entries DROP COLUMN shares;
        """
    )


def downgrade() -> None:
    before = _revision_0015()
    app = before._app_role()
    op.execute(
        f"""
        DROP FUNCTION evaluation_take_counts(bigint[]);
        {before.tally_functions_sql()}
        REVOKE ALL ON FUNCTION evaluation_tally(bigint[]), evaluation_seal(bigint[])
          FROM PUBLIC;
        GRANT EXECUTE ON FUNCTION evaluation_tally(bigint[]), evaluation_seal(bigint[])
          TO {app};
        """
    )
    # The closed rounds' counters back from their entries (0015 reads them there).
    op.execute(
        before._unforced(
            "evaluation_counts, evaluation_entries, evaluation_rounds",
            f"""
            INSERT INTO evaluation_counts (tenant_id, round_id, position, {GRADE_COLUMNS})
              SELECT e.tenant_id, e.round_id, e.position, {_counts("e")}
              FROM evaluation_entries e
              JOIN evaluation_rounds r ON r.tenant_id = e.tenant_id AND r.id = e.round_id
              WHERE r.stage NOT IN ({OPEN_STAGES}) AND e.position IS NOT NULL
                AND e.excellent + e.qualified + e.basic + e.unqualified > 0
              ORDER BY 1, 2, 3;

            -- The shares as 0010 stored them: for an entry with ballots, not excused.
            ALTER TABLE evaluation_entries ADD COLUMN shares jsonb;
            UPDATE evaluation_entries e SET shares = jsonb_build_object({SHARES})
            FROM (SELECT tenant_id, id, excellent + qualified + basic + unqualified AS n
                  FROM evaluation_entries) t
            WHERE t.tenant_id = e.tenant_id AND t.id = e.id AND t.n > 0 AND NOT e.excused;
            """,
        )
    )
