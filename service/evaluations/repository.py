"""Statements of evaluation rounds (民主评议): rounds, the roster (entries), participation,
ballots and ballot tokens. No authorization and no audit: the service decides.

A ballot only ever adds to its round's per-position counters, through the database
function `evaluation_count_ballot` (the application role can neither read nor write
them); the close takes the counts with `evaluation_take_counts`, which refuses rounds
whose balloting has not closed and deletes the counters it returns (migrations 0015 and
0018): after the close the entries hold the counts, and no counter is left.

The roster is the entries table alone: an entry keeps the name and category it is
graded under, and its member may have left the tenant since (组织关系转接 rewrites
`members.tenant_id`). Members are joined by id only (ledger ids are unique across
tenants) and only for what really is the member's: the account that reads its own
entry, the sanctions and last year's grade when the roster is fixed.

Statements over many rounds (closing a county's half-year) are set-based: one
statement for all rounds, never one per round.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.dialects.postgresql import insert

from service.authz import ReadablePaths
from service.db import Transaction, int_array
from service.evaluations.models import EvaluationEntry, EvaluationRound
from service.evaluations.rules import Grade
from service.members.rules import ON_ROLLS
from service.pagination import Page, PageRequest, keyset

ROUND_FIELDS = tuple(c.name for c in EvaluationRound.__table__.columns)
ENTRY_FIELDS = tuple(c.name for c in EvaluationEntry.__table__.columns)
_R_COLUMNS = ", ".join(f"r.{name}" for name in ROUND_FIELDS)
_E_COLUMNS = ", ".join(f"e.{name}" for name in ENTRY_FIELDS)
_ROUND = f"SELECT {_R_COLUMNS} FROM evaluation_rounds r"
# An entry with what authorization needs: its round's branch path and stage, and the
# member's account (a member reads their own entry). The member is joined by id alone
# and optionally: one who has transferred to another tenant since keeps their entry (and
# their place on the ballot) here, with no account seen from this tenant.
_ENTRY = (
    f"SELECT {_E_COLUMNS}, r.branch_path, r.stage, r.ballots_cast, r.policy,"
    " m.account_id AS member_account_id"
    " FROM evaluation_entries e"
    " JOIN evaluation_rounds r ON r.tenant_id = e.tenant_id AND r.id = e.round_id"
    " LEFT JOIN members m ON m.id = e.member_id"
)
_ON_ROLLS = sorted(ON_ROLLS)

# The grade code a vote stores (0, a blank, is never stored).
BALLOT_CODES: dict[Grade | None, int] = {
    None: 0,
    Grade.EXCELLENT: 1,
    Grade.QUALIFIED: 2,
    Grade.BASIC: 3,
    Grade.UNQUALIFIED: 4,
}


# --- rounds -------------------------------------------------------------------------


async def active_branches_below(tx: Transaction, path: str) -> list[Any]:
    """The active branches at or under `path`, in id order."""
    return await tx.rows(
        "SELECT tenant_id, id, path, name, kind FROM org_units WHERE kind = 'branch'"
        " AND archived_at IS NULL AND starts_with(path, %(path)s) ORDER BY id",
        {"path": path},
    )


async def insert_rounds(tx: Transaction, rows: list[dict[str, Any]]) -> list[Any]:
    """The rounds inserted; a branch that already has a round of that period is left
    out (the unique period constraint), so the caller sees which were new."""
    statement = (
        insert(EvaluationRound)
        .values(rows)
        .on_conflict_do_nothing(constraint="uq_evaluation_rounds_period")
        .returning(*EvaluationRound.__table__.columns)
    )
    return await tx.rows(statement)


async def get_round(tx: Transaction, round_id: int, *, lock: bool = False) -> Any | None:
    suffix = " FOR UPDATE" if lock else ""
    return await tx.first(f"{_ROUND} WHERE r.id = %(id)s{suffix}", {"id": round_id})


async def get_rounds(tx: Transaction, ids: Sequence[int], *, lock: bool = False) -> dict[int, Any]:
    suffix = " ORDER BY r.id FOR UPDATE" if lock else ""
    rows = await tx.rows(
        f"{_ROUND} WHERE r.id = ANY(%(ids)s::bigint[]){suffix}",
        {"ids": int_array(sorted(set(ids)))},
    )
    return {row.id: row for row in rows}


async def rounds_page(
    tx: Transaction,
    readable: ReadablePaths,
    *,
    within: str | None,
    year: int | None,
    half: int | None,
    stage: str | None,
    page: PageRequest,
) -> Page[Any]:
    """Rounds of branches under the readable paths (and `within`), newest id last."""
    scope, params = readable.sql("r.branch_path")
    conditions = [scope]
    if within is not None:
        conditions.append("starts_with(r.branch_path, %(within)s)")
        params["within"] = within
    if year is not None:
        conditions.append("r.year = %(year)s")
        params["year"] = year
    if half is not None:
        conditions.append("r.half = %(half)s")
        params["half"] = half
    if stage is not None:
        conditions.append("r.stage = %(stage)s")
        params["stage"] = stage
    rows = await tx.rows(
        f"{_ROUND} WHERE {' AND '.join(conditions)} AND {keyset('r.id')}",
        params | page.params,
    )
    return Page.of(rows, page)


async def set_stage(
    tx: Transaction,
    round_row: Any,
    *,
    target: str,
    actor: str,
    reason: str | None = None,
    extra: dict[str, Any] | None = None,
) -> Any | None:
    """The round moved to `target`; None when someone else changed it first (version)."""
    sets = [
        "stage = %(target)s",
        "stage_changed_at = now()",
        "stage_changed_by = %(actor)s",
        "sent_back_reason = %(reason)s",
        "version = version + 1",
    ]
    params: dict[str, Any] = {
        "target": target,
        "actor": actor,
        "reason": reason,
        "tenant": round_row.tenant_id,
        "id": round_row.id,
        "version": round_row.version,
    }
    for i, (column, value) in enumerate((extra or {}).items()):
        if column not in ROUND_FIELDS:
            raise ValueError(f"not a round column: {column}")
        sets.append(f"{column} = %(x{i})s")
        params[f"x{i}"] = value
    return await tx.first(
        f"UPDATE evaluation_rounds SET {', '.join(sets)}"
        " WHERE tenant_id = %(tenant)s AND id = %(id)s AND version = %(version)s"
        f" RETURNING {', '.join(ROUND_FIELDS)}",
        params,
    )


# --- the roster ---------------------------------------------------------------------


async def draft_roster(tx: Transaction, round_row: Any) -> None:
    """An entry for each full and probationary member on the branch's rolls who has
    none yet (self-evaluation opens before the roster is fixed)."""
    await tx.execute(
        """
        INSERT INTO evaluation_entries
          (tenant_id, round_id, member_id, name, category, may_vote)
        SELECT m.tenant_id, %(round)s, m.id, m.name, m.category, true
        FROM members m
        WHERE m.tenant_id = %(tenant)s AND m.branch_id = %(branch)s
          AND m.status = ANY(%(on_rolls)s) AND m.category IN ('full', 'probationary')
        ORDER BY m.id
        ON CONFLICT (tenant_id, round_id, member_id) DO NOTHING
        """,
        {
            "round": round_row.id,
            "tenant": round_row.tenant_id,
            "branch": round_row.branch_id,
            "on_rolls": _ON_ROLLS,
        },
    )


async def drop_off_roll_entries(tx: Transaction, round_row: Any) -> None:
    """Entries of members no longer on the branch's rolls (moved within the tenant or
    to another one, removed ...) since the roster was drafted: they are not evaluated
    in this round."""
    await tx.execute(
        """
        DELETE FROM evaluation_entries e
        WHERE e.tenant_id = %(tenant)s AND e.round_id = %(round)s
          AND NOT EXISTS (
            SELECT 1 FROM members m
            WHERE m.tenant_id = e.tenant_id AND m.id = e.member_id
              AND m.branch_id = %(branch)s AND m.status = ANY(%(on_rolls)s))
        """,
        {
            "round": round_row.id,
            "tenant": round_row.tenant_id,
            "branch": round_row.branch_id,
            "on_rolls": _ON_ROLLS,
        },
    )


async def roster_facts(tx: Transaction, round_row: Any, year: int) -> list[Any]:
    """Every entry of the round (each gets a position) with its member's name,
    category, sanctions and last year's grade (what fixing the roster needs), in member
    id order. The member is joined by id alone: should one not be visible here any more,
    the entry keeps its own name and category rather than losing its place."""
    return await tx.rows(
        """
        SELECT e.id, e.member_id, coalesce(m.name, e.name) AS name,
               coalesce(m.category, e.category) AS category,
               coalesce((SELECT json_agg(json_build_object('kind', s.kind,
                   'decided_on', s.decided_on, 'probation_ends_on', s.probation_ends_on))
                 FROM sanctions s WHERE s.tenant_id = m.tenant_id AND s.member_id = m.id),
                 '[]'::json) AS sanctions,
               (SELECT g.grade FROM member_grades g WHERE g.tenant_id = m.tenant_id
                  AND g.member_id = m.id AND g.year = %(last_year)s) AS last_year_grade
        FROM evaluation_entries e
        LEFT JOIN members m ON m.id = e.member_id
        WHERE e.tenant_id = %(tenant)s AND e.round_id = %(round)s
        ORDER BY e.member_id
        """,
        {"tenant": round_row.tenant_id, "round": round_row.id, "last_year": year - 1},
    )


async def fix_roster(tx: Transaction, round_row: Any, rows: list[dict[str, Any]]) -> None:
    """Positions, names, categories, votes, overrides and last year's grades, all
    entries in one statement. Positions may shift (fixed again after a send-back, with
    members come and gone): the unique position constraint is deferred to commit."""
    if not rows:
        return
    await tx.execute(
        """
        UPDATE evaluation_entries e SET position = v.position, name = v.name,
          category = v.category, may_vote = v.may_vote, override = v.override,
          last_year_grade = v.last_year_grade, version = e.version + 1
        FROM unnest(%(ids)s::bigint[], %(positions)s::int[], %(names)s::text[],
                    %(categories)s::text[], %(votes)s::boolean[], %(overrides)s::text[],
                    %(last)s::text[])
             AS v(id, position, name, category, may_vote, override, last_year_grade)
        WHERE e.tenant_id = %(tenant)s AND e.id = v.id
        """,
        {
            "tenant": round_row.tenant_id,
            "ids": [r["id"] for r in rows],
            "positions": [r["position"] for r in rows],
            "names": [r["name"] for r in rows],
            "categories": [r["category"] for r in rows],
            "votes": [r["may_vote"] for r in rows],
            "overrides": [r["override"] for r in rows],
            "last": [r["last_year_grade"] for r in rows],
        },
    )


async def get_entry(tx: Transaction, entry_id: int) -> Any | None:
    return await tx.first(f"{_ENTRY} WHERE e.id = %(id)s", {"id": entry_id})


async def get_entries(tx: Transaction, ids: Sequence[int]) -> dict[int, Any]:
    rows = await tx.rows(f"{_ENTRY} WHERE e.id = ANY(%(ids)s::bigint[])", {"ids": sorted(set(ids))})
    return {row.id: row for row in rows}


async def entry_of_member(
    tx: Transaction, round_row: Any, member_id: int, *, lock: bool = False
) -> Any | None:
    suffix = " FOR UPDATE OF e" if lock else ""
    return await tx.first(
        f"{_ENTRY} WHERE e.tenant_id = %(tenant)s AND e.round_id = %(round)s"
        f" AND e.member_id = %(member)s{suffix}",
        {"tenant": round_row.tenant_id, "round": round_row.id, "member": member_id},
    )


async def roster(tx: Transaction, round_row: Any) -> list[Any]:
    """The fixed roster in ballot order (position): every entry with a position, also
    one whose member has transferred away since."""
    return await tx.rows(
        f"{_ENTRY} WHERE e.tenant_id = %(tenant)s AND e.round_id = %(round)s"
        " AND e.position IS NOT NULL ORDER BY e.position",
        {"tenant": round_row.tenant_id, "round": round_row.id},
    )


async def entries_page(tx: Transaction, round_row: Any, page: PageRequest) -> Page[Any]:
    rows = await tx.rows(
        f"{_ENTRY} WHERE e.tenant_id = %(tenant)s AND e.round_id = %(round)s AND {keyset('e.id')}",
        {"tenant": round_row.tenant_id, "round": round_row.id} | page.params,
    )
    return Page.of(rows, page)


async def member_entries_page(tx: Transaction, member_id: int, page: PageRequest) -> Page[Any]:
    rows = await tx.rows(
        f"{_ENTRY} WHERE e.member_id = %(member)s AND {keyset('e.id')}",
        {"member": member_id} | page.params,
    )
    return Page.of(rows, page)


async def update_entry(tx: Transaction, entry: Any, **values: Any) -> Any:
    sets = []
    params: dict[str, Any] = {"tenant": entry.tenant_id, "id": entry.id}
    for column, value in values.items():
        if column not in ENTRY_FIELDS:
            raise ValueError(f"not an entry column: {column}")
        sets.append(f"{column} = %({column})s")
        params[column] = value
    return await tx.one(
        f"UPDATE evaluation_entries SET {', '.join(sets)}, version = version + 1"
        " WHERE tenant_id = %(tenant)s AND id = %(id)s"
        f" RETURNING {', '.join(ENTRY_FIELDS)}",
        params,
    )


# --- ballots ------------------------------------------------------------------------


async def has_voted(tx: Transaction, round_row: Any, member_id: int) -> bool:
    found = await tx.first(
        "SELECT 1 AS voted FROM evaluation_participation WHERE tenant_id = %(tenant)s"
        " AND round_id = %(round)s AND voter_member_id = %(member)s",
        {"tenant": round_row.tenant_id, "round": round_row.id, "member": member_id},
    )
    return found is not None


async def any_votes(tx: Transaction, round_row: Any) -> bool:
    found = await tx.first(
        "SELECT 1 AS voted FROM evaluation_participation WHERE tenant_id = %(tenant)s"
        " AND round_id = %(round)s UNION ALL SELECT 1 FROM evaluation_ballot_tokens"
        " WHERE tenant_id = %(tenant)s AND round_id = %(round)s AND used LIMIT 1",
        {"tenant": round_row.tenant_id, "round": round_row.id},
    )
    return found is not None


async def lock_round_for_ballot(tx: Transaction, round_id: int) -> Any | None:
    """The round, share-locked: ballots of one round go in side by side, and closing
    (FOR UPDATE) waits for them, so no ballot lands after the counts are taken."""
    return await tx.first(f"{_ROUND} WHERE r.id = %(id)s FOR SHARE", {"id": round_id})


async def record_participation(tx: Transaction, round_row: Any, member_id: int) -> bool:
    """Whether this is the member's first ballot in the round. The primary key decides:
    of two arriving at once, the second waits for the first and then finds it."""
    row = await tx.first(
        "INSERT INTO evaluation_participation (tenant_id, round_id, voter_member_id)"
        " VALUES (%(tenant)s, %(round)s, %(member)s) ON CONFLICT DO NOTHING"
        " RETURNING voter_member_id",
        {"tenant": round_row.tenant_id, "round": round_row.id, "member": member_id},
    )
    return row is not None


async def count_ballot(
    tx: Transaction, round_row: Any, votes: Mapping[int, int] | Sequence[int]
) -> None:
    """A ballot added to its round's counters (`evaluation_count_ballot`): one more for
    the grade given at each graded position, nothing stored that stands for the ballot.
    Blanks are not passed (the service derives them). `votes`: {roster position: grade
    code}, or the codes in position order with 0 for a blank. Sent with the COMMIT:
    the counter rows' locks are then held for one step on the server, so a round's
    concurrent ballots do not queue behind each other's round trips; nothing later in
    the transaction reads them (the application cannot; `close_rounds` sends what is
    still queued before it closes, for a transaction that closes after its ballots)."""
    pairs = (
        sorted(votes.items())
        if isinstance(votes, Mapping)
        else [(i, code) for i, code in enumerate(votes, start=1)]
    )
    kept = [(position, code) for position, code in pairs if code]
    if not kept:  # an all-blank ballot counts as cast (participation, token), no counts
        return
    statement = (
        "SELECT evaluation_count_ballot(%(round)s, %(positions)s::int[], %(grades)s::smallint[])"
    )
    params = {
        "round": round_row.id,
        "positions": [p for p, _ in kept],
        "grades": [g for _, g in kept],
    }
    await tx.defer(statement, params)


async def insert_tokens(
    tx: Transaction, round_row: Any, hashes: Sequence[bytes], expires_at: Any
) -> Any:
    """The tokens' hashes stored; the round with its count of issued tokens."""
    await tx.execute(
        "INSERT INTO evaluation_ballot_tokens (tenant_id, round_id, token_hash, expires_at)"
        " SELECT %(tenant)s, %(round)s, h, %(expires)s FROM unnest(%(hashes)s::bytea[]) AS h",
        {
            "tenant": round_row.tenant_id,
            "round": round_row.id,
            "hashes": list(hashes),
            "expires": expires_at,
        },
    )
    return await tx.one(
        "UPDATE evaluation_rounds SET mass_tokens_issued = mass_tokens_issued + %(n)s"
        " WHERE tenant_id = %(tenant)s AND id = %(round)s"
        f" RETURNING {', '.join(ROUND_FIELDS)}",
        {"tenant": round_row.tenant_id, "round": round_row.id, "n": len(hashes)},
    )


async def find_token(tx: Transaction, tenant_id: int, token_hash: bytes) -> Any | None:
    """A usable token (unused, unexpired, its round balloting) with its round id."""
    return await tx.first(
        "SELECT t.round_id FROM evaluation_ballot_tokens t"
        " JOIN evaluation_rounds r ON r.tenant_id = t.tenant_id AND r.id = t.round_id"
        " WHERE t.tenant_id = %(tenant)s AND t.token_hash = %(hash)s AND NOT t.used"
        " AND t.expires_at > now() AND r.stage = 'balloting'",
        {"tenant": tenant_id, "hash": token_hash},
    )


async def use_token(tx: Transaction, tenant_id: int, token_hash: bytes, round_id: int) -> bool:
    """Whether the token was still usable and is now used: of two arriving at once the
    second waits on the row and finds it used."""
    row = await tx.first(
        "UPDATE evaluation_ballot_tokens SET used = true"
        " WHERE tenant_id = %(tenant)s AND token_hash = %(hash)s AND round_id = %(round)s"
        " AND NOT used AND expires_at > now() RETURNING round_id",
        {"tenant": tenant_id, "hash": token_hash, "round": round_id},
    )
    return row is not None


# --- closing ------------------------------------------------------------------------


async def without_jit(tx: Transaction) -> None:
    """No JIT compilation for the rest of the transaction. A county's close reads and
    writes tens of thousands of entries in a few statements whose estimated cost passes
    `jit_above_cost` by far, and compiling them took longer (0.5 s each, measured) than
    running them plain."""
    await tx.execute("SELECT set_config('jit', 'off', true)")


async def turnout(tx: Transaction, round_ids: Sequence[int]) -> list[Any]:
    """Per round: voters on the roster (a vote, not excused), members who voted, and
    mass representatives' tokens used."""
    # Three grouped counts joined to the rounds, not three subqueries per round: for a
    # county's 2,000 rounds a scan each instead of 6,000 index probes.
    return await tx.rows(
        """
        WITH e AS (
          SELECT round_id, count(*) AS n FROM evaluation_entries
          WHERE round_id = ANY(%(ids)s::bigint[]) AND may_vote AND NOT excused
            AND position IS NOT NULL GROUP BY round_id
        ), p AS (
          SELECT round_id, count(*) AS n FROM evaluation_participation
          WHERE round_id = ANY(%(ids)s::bigint[]) GROUP BY round_id
        ), t AS (
          SELECT round_id, count(*) AS n FROM evaluation_ballot_tokens
          WHERE round_id = ANY(%(ids)s::bigint[]) AND used GROUP BY round_id
        )
        SELECT r.id, coalesce(e.n, 0)::int AS voters, coalesce(p.n, 0)::int AS voted,
          coalesce(t.n, 0)::int AS tokens_used
        FROM evaluation_rounds r
        LEFT JOIN e ON e.round_id = r.id
        LEFT JOIN p ON p.round_id = r.id
        LEFT JOIN t ON t.round_id = r.id
        WHERE r.id = ANY(%(ids)s::bigint[]) ORDER BY r.id
        """,
        {"ids": int_array(sorted(set(round_ids)))},
    )


async def mark_closed(
    tx: Transaction, ids: Sequence[int], voters: Sequence[int], cast: Sequence[int], actor: str
) -> list[Any]:
    """Rounds moved to tallied with their voters and ballots, one statement."""
    return await tx.rows(
        f"""
        UPDATE evaluation_rounds r SET stage = 'tallied', stage_changed_at = now(),
          stage_changed_by = %(actor)s, sent_back_reason = NULL, closed_at = now(),
          roster_voters = v.voters, ballots_cast = v.n_cast, version = r.version + 1
        FROM unnest(%(ids)s::bigint[], %(voters)s::int[], %(cast)s::int[])
             AS v(id, voters, n_cast)
        WHERE r.id = v.id AND r.stage = 'balloting'
        RETURNING {", ".join(f"r.{c}" for c in ROUND_FIELDS)}
        """,
        {
            "ids": int_array(ids),
            "voters": int_array(voters),
            "cast": int_array(cast),
            "actor": actor,
        },
    )


async def take_counts(tx: Transaction, round_ids: Sequence[int]) -> list[Any]:
    """Counts of the four grades per (round, roster position) that was graded at all,
    one statement for all rounds, whose counters it deletes (the caller stores the
    counts in the entries, in the same transaction); unused tokens expire. Only for
    rounds whose balloting has closed. Blanks are not stored: see `closing_entries`."""
    return await tx.rows(
        "SELECT round_id, roster_position, excellent, qualified, basic, unqualified"
        " FROM evaluation_take_counts(%(ids)s::bigint[])",
        {"ids": int_array(round_ids)},
    )


async def closing_entries(tx: Transaction, round_ids: Sequence[int]) -> list[Any]:
    """What the proposals need of every entry of the rounds, by round and position;
    `voted`: whether the entry's member cast a ballot (their own position is blank on
    it: the service derives the blanks from that)."""
    return await tx.rows(
        "SELECT e.tenant_id, e.id, e.round_id, e.position, e.excused, e.override,"
        " e.last_year_grade, e.organizational_finding,"
        " EXISTS (SELECT 1 FROM evaluation_participation p WHERE p.tenant_id = e.tenant_id"
        "   AND p.round_id = e.round_id AND p.voter_member_id = e.member_id) AS voted"
        " FROM evaluation_entries e WHERE e.round_id = ANY(%(ids)s::bigint[])"
        " AND e.position IS NOT NULL ORDER BY e.round_id, e.position",
        {"ids": int_array(round_ids)},
    )


COUNT_COLUMNS = ("excellent", "qualified", "basic", "unqualified")
Counts = tuple[int, int, int, int]  # an entry's counts, in COUNT_COLUMNS order


@dataclass
class Tallies:
    """What a close stores per entry, column by column (one array each for
    `store_tallies`): the four counts, the blanks, and the computed grade and rule."""

    ids: list[int] = field(default_factory=list)
    counts: list[Counts] = field(default_factory=list)
    blank: list[int] = field(default_factory=list)
    grade: list[str] = field(default_factory=list)
    rule: list[str] = field(default_factory=list)

    def add(
        self,
        entry_id: int,
        counts: Counts,
        *,
        blank: int,
        grade: str,
        rule: str,
    ) -> None:
        self.ids.append(entry_id)
        self.counts.append(counts)
        self.blank.append(blank)
        self.grade.append(grade)
        self.rule.append(rule)


async def store_tallies(tx: Transaction, tallies: Tallies) -> None:
    """Counts, blanks and computed grades of many entries, one statement (the shares
    are not stored: `service.entry_shares` has them from the counts).

    What goes over the wire is integers, grades and rules as indexes into their few
    distinct values: quoting 40,000 entries' text client-side cost more than the update
    costs the server."""
    if not tallies.ids:
        return
    grades = sorted(set(tallies.grade))
    rules = sorted(set(tallies.rule))
    grade_at = {g: n for n, g in enumerate(grades, start=1)}
    rule_at = {r: n for n, r in enumerate(rules, start=1)}
    await tx.execute(
        """
        UPDATE evaluation_entries e SET excellent = v.excellent, qualified = v.qualified,
          basic = v.basic, unqualified = v.unqualified, blank = v.blank,
          computed_grade = (%(grades)s::text[])[v.grade],
          computed_rule = (%(rules)s::text[])[v.rule],
          version = e.version + 1
        FROM unnest(%(ids)s::bigint[], %(excellent)s::int[], %(qualified)s::int[],
                    %(basic)s::int[], %(unqualified)s::int[], %(blank)s::int[],
                    %(grade)s::int[], %(rule)s::int[])
             AS v(id, excellent, qualified, basic, unqualified, blank, grade, rule)
        WHERE e.id = v.id
        """,
        {
            "ids": int_array(tallies.ids),
            **{k: int_array(c[i] for c in tallies.counts) for i, k in enumerate(COUNT_COLUMNS)},
            "blank": int_array(tallies.blank),
            "grade": int_array(grade_at[g] for g in tallies.grade),
            "rule": int_array(rule_at[r] for r in tallies.rule),
            "grades": grades,
            "rules": rules,
        },
    )
