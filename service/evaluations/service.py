"""Use cases of evaluation rounds (民主评议党员): opening rounds, moving them up to the
tally, the roster, self-evaluation (个人自评), excused members, secret ballots of
members and of mass representatives (群众代表, by one-time tokens), and closing with
the tally and the proposed grades.

Who may do what (Casbin actions at the round's branch):
- open: `evaluation:open` at the branch, or at a county / tenant / general branch to
  open every active branch below at once (one batch, each audited in its tenant);
- move through the stages: `evaluation:run` (the branch secretary); send back one
  stage: `evaluation:send_back` (a superior). Moves after `tallied` belong to the
  determinations (E2): they register a handler with `register_move`;
- excuse a member, issue ballot tokens: `evaluation:assist` (the branch committee);
- self-evaluation and ballot: `evaluation:participate`, the member themselves, on
  the roster (a ballot needs a vote: not under probation, not excused);
- read: `evaluation:read` at the branch, or one's own entry.

Secrecy (see migrations/versions/0015 and 0018): no row stands for a ballot. A ballot
adds one to its grade's counter at each position it grades (blanks are not counted,
since a ballot's blank at its voter's own position would name the voter); participation
says that a member voted; both go in one transaction with the audit event "a ballot was
cast" (no content). The close takes the counters (deletes them, returning their counts)
and stores the counts in the entries, so no counter is left to carry the transaction
id of the last voter who touched it. Counts exist only after close and are shown only
when `rules.counts_visible` holds (small branches: grades only).

The ballot's candidates are the round's entries (`repository.roster`), never the
members joined to them: a member who transfers to another tenant mid-round keeps their
entry and place on the ballot.
"""

from __future__ import annotations

import asyncio
import base64
import functools
import hashlib
import secrets
import uuid
from collections import defaultdict
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from enum import StrEnum
from fractions import Fraction
from typing import Any

from psycopg.types.json import Jsonb

from service.audit.service import Event, record, record_many
from service.auth.principal import Principal
from service.authz import authorizer, readable_paths, require
from service.db import Transaction
from service.errors import forbidden, not_found
from service.evaluations import repository, rules
from service.evaluations.actions import EvaluationAction
from service.evaluations.errors import (
    ALREADY_VOTED,
    BALLOT_CANDIDATE_INVALID,
    BALLOTING_CLOSED,
    ENTRY,
    EXCUSE_AFTER_VOTE,
    EXCUSE_CLOSED,
    NO_VOTE,
    NOT_ON_ROSTER,
    REASON_REQUIRED,
    ROSTER_EMPTY,
    ROUND,
    ROUND_EXISTS,
    ROUND_NO_BRANCHES,
    ROUND_TITLE_MISSING,
    ROUND_UNIT_INVALID,
    SELF_EVALUATION_CLOSED,
    SELF_EVALUATION_MISSING,
    SELF_GRADE,
    SEND_BACK_BALLOTS_CAST,
    SEND_BACK_REFUSED,
    STAGE_CHANGED,
    STAGE_MOVE_ELSEWHERE,
    STAGE_MOVE_INVALID,
    TOKEN_COUNT_INVALID,
    TOKEN_INVALID,
    TURNOUT_TOO_LOW,
)
from service.evaluations.rules import Grade, GradingPolicy, Proposal, Tally
from service.evaluations.stages import (
    EXCUSE_STAGES,
    MOVES,
    SELF_EVALUATION_STAGES,
    STAGE_LABELS,
    Period,
    Stage,
    send_back_target,
)
from service.members.mobile import clean_text
from service.members.service import my_member
from service.pagination import Page, PageRequest, fits_bigint
from service.sanctions.rules import (
    Override,
    grade_override,
    sanctions_from_json,
    under_probation,
)
from service.tenants import repository as units
from service.tenants.rules import TENANT_KINDS, OrgUnitKind
from service.tenants.service import ensure_active

MAX_TITLE = 100
MAX_SELF_EVALUATION = 5000
MAX_REASON = 500
MAX_TOKENS = 500
TOKEN_PREFIX = "pyb"  # noqa: S105 (a label on every ballot token, not a secret)
TOKEN_DAYS = 60  # a token's latest expiry; closing the round expires it at once
HALF_LABELS = {1: "上半年", 2: "下半年"}

# Units that open one round per active branch below them.
_BATCH_KINDS = TENANT_KINDS | {OrgUnitKind.COUNTY, OrgUnitKind.GENERAL_BRANCH}

# Rule names this package adds to rules.RULE_LABELS.
EXCUSED_RULE = "excused"
RULE_LABELS: dict[str, str] = {
    **rules.RULE_LABELS,
    EXCUSED_RULE: "因年老体弱或患病未参加集中评议，由支委会研究确定",
}


class ExcuseReason(StrEnum):
    OLD = "old"  # 年老
    FRAIL = "frail"  # 体弱
    SICK = "sick"  # 患病


EXCUSE_LABELS = {ExcuseReason.OLD: "年老", ExcuseReason.FRAIL: "体弱", ExcuseReason.SICK: "患病"}


class DecisionReason(StrEnum):
    """Why an entry needs a person after the tally (待研究)."""

    UNQUALIFIED_CANDIDATE = "unqualified_candidate"  # no organizational finding yet
    QUOTA_TIE = "quota_tie"
    NO_BALLOTS = "no_ballots"
    NO_RULE = "no_rule"
    EXCUSED = "excused"


DECISION_LABELS = {
    DecisionReason.UNQUALIFIED_CANDIDATE: "不合格候选，须经组织考核认定",
    DecisionReason.QUOTA_TIE: "优秀比例分界处票数相同，须支委会研究",
    DecisionReason.NO_BALLOTS: "没有有效票，须研究确定",
    DecisionReason.NO_RULE: "评议办法未覆盖该票数，须研究确定",
    DecisionReason.EXCUSED: "未参加集中评议，须支委会研究确定",
}


def policy_of(round_row: Any) -> GradingPolicy:
    """The policy snapshot the round uses."""
    return _policy_snapshot(tuple(sorted(round_row.policy.items())))


@functools.lru_cache(maxsize=256)
def _policy_snapshot(items: tuple[tuple[str, Any], ...]) -> GradingPolicy:
    # A county's rounds share a handful of snapshots; parsing one per round was a
    # tenth of closing 2,000 of them. Policies are frozen, so sharing one is safe.
    return GradingPolicy.from_json(dict(items))


# --- who sees a round -----------------------------------------------------------------


def reads_round(principal: Principal, round_row: Any) -> bool:
    return authorizer().allowed(principal, EvaluationAction.READ, round_row.branch_path)


async def _own_entry(tx: Transaction, principal: Principal, round_row: Any) -> Any | None:
    me = await my_member(tx, principal)
    if me is None or me.tenant_id != round_row.tenant_id:
        return None
    return await repository.entry_of_member(tx, round_row, me.id)


async def get_round(tx: Transaction, principal: Principal, round_id: int) -> Any:
    """The round, if the principal reads its branch or is on its roster."""
    if not fits_bigint(round_id):
        raise not_found(ROUND)
    row = await repository.get_round(tx, round_id)
    if row is None:
        raise not_found(ROUND)
    if reads_round(principal, row) or await _own_entry(tx, principal, row) is not None:
        return row
    raise not_found(ROUND)


async def load_rounds(
    tx: Transaction, principal: Principal, ids: Sequence[int]
) -> list[Any | None]:
    by_id = await repository.get_rounds(tx, [i for i in ids if fits_bigint(i)])
    out: list[Any | None] = []
    for i in ids:
        row = by_id.get(i)
        if row is not None and not reads_round(principal, row):
            row = row if await _own_entry(tx, principal, row) is not None else None
        out.append(row)
    return out


@dataclass(frozen=True)
class RoundQuery:
    org_unit_id: int | None = None
    year: int | None = None
    half: int | None = None
    stage: Stage | None = None


async def list_rounds(
    tx: Transaction, principal: Principal, query: RoundQuery, page: PageRequest
) -> Page[Any]:
    """Rounds of the branches the principal reads (under `org_unit_id` when given)."""
    readable = readable_paths(principal, EvaluationAction.READ)
    if not readable:
        return Page.empty()
    within = None
    if query.org_unit_id is not None:
        unit = (
            await units.get_unit(tx, query.org_unit_id) if fits_bigint(query.org_unit_id) else None
        )
        if unit is None:
            raise not_found("组织")
        require(principal, EvaluationAction.READ, unit.path, what="组织")
        within = unit.path
    return await repository.rounds_page(
        tx,
        readable,
        within=within,
        year=query.year,
        half=query.half,
        stage=query.stage.value if query.stage is not None else None,
        page=page,
    )


# --- entries: who sees what -----------------------------------------------------------


def sees_entry(principal: Principal, entry: Any) -> bool:
    """The branch's readers, and the member themselves."""
    own = principal.account_id is not None and entry.member_account_id == principal.account_id
    return own or authorizer().allowed(principal, EvaluationAction.READ, entry.branch_path)


def sees_tally(principal: Principal, entry: Any) -> bool:
    """Proposals after close, to the branch's readers (not to the member: they learn
    their final grade)."""
    return Stage(entry.stage) not in (
        Stage.DRAFT,
        Stage.SELF_EVALUATION,
        Stage.BALLOTING,
    ) and authorizer().allowed(principal, EvaluationAction.READ, entry.branch_path)


def sees_counts(principal: Principal, entry: Any) -> bool:
    """Counts and shares: after close, to readers, only above the secrecy threshold."""
    if not sees_tally(principal, entry) or entry.ballots_cast is None:
        return False
    return rules.counts_visible(entry.ballots_cast, GradingPolicy.from_json(entry.policy))


def entry_shares(entry: Any) -> dict[str, Fraction] | None:
    """Each grade's share of the entry's non-blank ballots, from its stored counts, as
    its proposal was decided on: none before the close, for an excused member (the
    committee decides), or without ballots."""
    if entry.excellent is None or entry.excused:
        return None
    return Tally(entry.excellent, entry.qualified, entry.basic, entry.unqualified).shares()


def needs_decision(entry: Any) -> list[DecisionReason]:
    """What a person must settle for this entry after the tally."""
    reasons: list[DecisionReason] = []
    if entry.excused:
        reasons.append(DecisionReason.EXCUSED)
    if entry.computed_rule == "no_finding_basic":
        reasons.append(DecisionReason.UNQUALIFIED_CANDIDATE)
    elif entry.computed_grade == Grade.NEEDS_DECISION.value and entry.computed_rule in (
        "quota_tie",
        "no_ballots",
        "no_rule",
    ):
        reasons.append(DecisionReason(entry.computed_rule))
    return reasons


async def get_entry(tx: Transaction, principal: Principal, entry_id: int) -> Any:
    entry = await repository.get_entry(tx, entry_id) if fits_bigint(entry_id) else None
    if entry is None or not sees_entry(principal, entry):
        raise not_found(ENTRY)
    return entry


async def load_entries(
    tx: Transaction, principal: Principal, ids: Sequence[int]
) -> list[Any | None]:
    by_id = await repository.get_entries(tx, [i for i in ids if fits_bigint(i)])
    out: list[Any | None] = []
    for i in ids:
        entry = by_id.get(i)
        out.append(entry if entry is not None and sees_entry(principal, entry) else None)
    return out


async def round_entries(
    tx: Transaction, principal: Principal, round_row: Any, page: PageRequest
) -> Page[Any]:
    """The roster of a round: all of it to the branch's readers, one's own entry to a
    member."""
    if reads_round(principal, round_row):
        return await repository.entries_page(tx, round_row, page)
    own = await _own_entry(tx, principal, round_row)
    if own is None or (page.after is not None and page.after >= own.id):
        return Page.empty()
    return Page(items=[own], has_next_page=False, has_previous_page=page.after is not None)


async def my_entries(tx: Transaction, principal: Principal, page: PageRequest) -> Page[Any]:
    """The principal's own entries, every round they were on."""
    me = await my_member(tx, principal)
    if me is None:
        return Page.empty()
    return await repository.member_entries_page(tx, me.id, page)


# --- opening --------------------------------------------------------------------------


async def _policy_for(
    tx: Transaction, principal: Principal, unit: Any
) -> tuple[int | None, int, dict[str, Any]]:
    """(policy id, version, snapshot) the branch's round uses: the policy helper's
    effective policy, or the built-in default before that helper is installed."""
    try:
        from service.evaluations import policies
    except ImportError:  # the policy package is not there: DOMAIN.md's default
        return None, 0, rules.DEFAULT_POLICY.to_json()
    found = await policies.effective_policy(tx, unit, principal=principal)
    return found.id, found.version, found.policy.to_json()


async def open_rounds(
    tx: Transaction,
    principal: Principal,
    *,
    org_unit_id: int,
    year: int,
    half: int,
    title: str,
) -> list[Any]:
    """Open the half-year's round of a branch, or of every active branch below a
    county, tenant or general branch (one batch). A branch that already has its round
    of the period is refused alone (ROUND_EXISTS) and skipped in a batch; a batch where
    every branch has one is refused."""
    unit = await units.get_unit(tx, org_unit_id) if fits_bigint(org_unit_id) else None
    if unit is None:
        raise not_found("组织")
    require(principal, EvaluationAction.OPEN, unit.path, what="组织")
    ensure_active(unit, "发起民主评议")
    Period(year, half).checked()
    name = clean_text(title, MAX_TITLE)
    if name is None:
        raise ROUND_TITLE_MISSING.error()
    kind = OrgUnitKind(unit.kind)
    if kind is OrgUnitKind.BRANCH:
        branches = [unit]
    elif kind in _BATCH_KINDS:
        branches = await repository.active_branches_below(tx, unit.path)
        if not branches:
            raise ROUND_NO_BRANCHES.error()
    else:
        raise ROUND_UNIT_INVALID.error()
    # One policy per tenant: every branch of a tenant shares it.
    policy_by_tenant: dict[int, tuple[int | None, int, dict[str, Any]]] = {}
    for branch in branches:
        if branch.tenant_id not in policy_by_tenant:
            policy_by_tenant[branch.tenant_id] = await _policy_for(tx, principal, branch)
    batch = uuid.uuid4()
    values = []
    for branch in branches:
        policy_id, version, snapshot = policy_by_tenant[branch.tenant_id]
        values.append(
            {
                "tenant_id": branch.tenant_id,
                "batch": batch,
                "branch_id": branch.id,
                "branch_path": branch.path,
                "year": year,
                "half": half,
                "title": name,
                "policy_id": policy_id,
                "policy_version": version,
                "policy": Jsonb(snapshot),
                "opened_by": principal.actor,
            }
        )
    rows = await repository.insert_rounds(tx, values)
    if not rows:
        raise ROUND_EXISTS.error(
            branch=branches[0].name if len(branches) == 1 else "所选组织下各党支部",
            year=year,
            half=HALF_LABELS[half],
        )
    await record_many(
        tx,
        principal,
        [
            Event(
                tenant_id=row.tenant_id,
                action="evaluation.open",
                object_type="EvaluationRound",
                object_id=row.id,
                details={
                    "title": name,
                    "batch": str(batch),
                    "org_unit_id": unit.id,
                    "branch_id": row.branch_id,
                    "year": year,
                    "half": half,
                    "policy_id": row.policy_id,
                    "policy_version": row.policy_version,
                },
            )
            for row in rows
        ],
    )
    return rows


# --- stage moves ----------------------------------------------------------------------

MoveHandler = Callable[[Transaction, Principal, Any], Awaitable[dict[str, Any] | None]]
_LATER_MOVES: dict[Stage, MoveHandler] = {}


def register_move(source: Stage, handler: MoveHandler) -> None:
    """Let another part (determinations) make the move out of `source`: `handler(tx,
    principal, locked_round)` checks and does its work and may return extra round
    columns to set; `advance_round` has authorized, checked the stage and audits."""
    _LATER_MOVES[source] = handler


async def _round_for_update(tx: Transaction, principal: Principal, round_id: int) -> Any:
    row = await repository.get_round(tx, round_id, lock=True) if fits_bigint(round_id) else None
    if row is None or not reads_round(principal, row):
        # Seeing the round is what a superior's or secretary's grants give; anyone else
        # learns nothing about it.
        if row is None or not authorizer().allowed(
            principal, EvaluationAction.RUN, row.branch_path
        ):
            raise not_found(ROUND)
    return row


async def _round_to_assist(tx: Transaction, principal: Principal, round_id: int) -> Any:
    """The round, locked, for the branch committee's help (excused members, tokens)."""
    row = await repository.get_round(tx, round_id, lock=True) if fits_bigint(round_id) else None
    if row is None:
        raise not_found(ROUND)
    require(
        principal,
        EvaluationAction.ASSIST,
        row.branch_path,
        what=ROUND,
        seen_with=EvaluationAction.READ,
    )
    return row


async def change_stage(
    tx: Transaction,
    principal: Principal,
    round_row: Any,
    target: Stage,
    *,
    action: str,
    reason: str | None = None,
    extra: dict[str, Any] | None = None,
) -> Any:
    """Move a locked round to `target` and audit it (for the parts that make moves
    themselves, such as an approval outcome)."""
    updated = await repository.set_stage(
        tx, round_row, target=target.value, actor=principal.actor, reason=reason, extra=extra
    )
    if updated is None:
        raise STAGE_CHANGED.error(stage=STAGE_LABELS[Stage(round_row.stage)])
    await record(
        tx,
        principal,
        tenant_id=round_row.tenant_id,
        action=action,
        object_type="EvaluationRound",
        object_id=round_row.id,
        details={"from": round_row.stage, "to": target.value}
        | ({"reason": reason} if reason else {}),
    )
    return updated


async def advance_round(
    tx: Transaction, principal: Principal, *, round_id: int, expected_stage: Stage
) -> Any:
    """Move the round to the next stage: only from `expected_stage` (what the user saw),
    only by `evaluation:run` at the branch."""
    row = await _round_for_update(tx, principal, round_id)
    stage = Stage(row.stage)
    move = MOVES.get(stage)
    if move is None:
        raise STAGE_MOVE_INVALID.error(source=STAGE_LABELS[stage], target="—")
    require(principal, move.action, row.branch_path, what=ROUND, seen_with=EvaluationAction.READ)
    if stage is not expected_stage:
        raise STAGE_CHANGED.error(stage=STAGE_LABELS[stage])
    if stage is Stage.DRAFT:
        await repository.draft_roster(tx, row)
        return await change_stage(tx, principal, row, move.target, action="evaluation.advance")
    if stage is Stage.SELF_EVALUATION:
        await _fix_roster(tx, row)
        return await change_stage(tx, principal, row, move.target, action="evaluation.advance")
    if stage is Stage.BALLOTING:
        result = await close_rounds(tx, principal, [row.id])
        return result.closed[0]
    handler = _LATER_MOVES.get(stage)
    if handler is None or move.by_approval:
        raise STAGE_MOVE_ELSEWHERE.error(stage=STAGE_LABELS[stage])
    extra = await handler(tx, principal, row)
    return await change_stage(
        tx, principal, row, move.target, action="evaluation.advance", extra=extra
    )


async def send_back_round(
    tx: Transaction, principal: Principal, *, round_id: int, reason: str
) -> Any:
    """A superior sends the round back one stage, with a reason."""
    row = await _round_for_update(tx, principal, round_id)
    require(
        principal,
        EvaluationAction.SEND_BACK,
        row.branch_path,
        what=ROUND,
        seen_with=EvaluationAction.READ,
    )
    text = clean_text(reason, MAX_REASON)
    if text is None:
        raise REASON_REQUIRED.error(limit=MAX_REASON)
    stage = Stage(row.stage)
    target = send_back_target(stage)
    if target is None:
        raise SEND_BACK_REFUSED.error(stage=STAGE_LABELS[stage])
    if stage is Stage.BALLOTING and await repository.any_votes(tx, row):
        raise SEND_BACK_BALLOTS_CAST.error()
    return await change_stage(
        tx, principal, row, target, action="evaluation.send_back", reason=text
    )


async def _fix_roster(tx: Transaction, round_row: Any) -> None:
    """Fix the roster as balloting opens: members still on the branch's rolls, each
    with a position on the ballot, a vote unless under probation (留党察看), the
    discipline override of the round's year and last year's grade."""
    await repository.draft_roster(tx, round_row)  # members who joined since
    await repository.drop_off_roll_entries(tx, round_row)
    facts = await repository.roster_facts(tx, round_row, round_row.year)
    if not facts:
        raise ROSTER_EMPTY.error()
    today = date.today()
    rows = []
    for position, fact in enumerate(facts, start=1):
        sanctions = sanctions_from_json(fact.sanctions)
        rows.append(
            {
                "id": fact.id,
                "position": position,
                "name": fact.name,
                "category": fact.category,
                "may_vote": not under_probation(sanctions, today),
                "override": grade_override(sanctions, round_row.year).value,
                "last_year_grade": fact.last_year_grade,
            }
        )
    await repository.fix_roster(tx, round_row, rows)


# --- self-evaluation and excused members -----------------------------------------------


async def write_self_evaluation(
    tx: Transaction, principal: Principal, *, round_id: int, text: str
) -> Any:
    """The member's own self-evaluation (个人自评), while self-evaluation or balloting."""
    row = await get_round(tx, principal, round_id)
    me = await my_member(tx, principal)
    entry = await repository.entry_of_member(tx, row, me.id, lock=True) if me else None
    if me is None or entry is None:  # a reader of the branch, not on the roster
        raise forbidden()
    require(principal, EvaluationAction.PARTICIPATE, me.branch_path, what=ROUND)
    if Stage(row.stage) not in SELF_EVALUATION_STAGES:
        raise SELF_EVALUATION_CLOSED.error()
    clean = clean_text(text, MAX_SELF_EVALUATION)
    if clean is None:
        raise SELF_EVALUATION_MISSING.error(limit=MAX_SELF_EVALUATION)
    await repository.update_entry(
        tx, entry, self_evaluation=clean, self_evaluated_at=datetime.now().astimezone()
    )
    await record(
        tx,
        principal,
        tenant_id=row.tenant_id,
        action="evaluation.self_evaluation",
        object_type="EvaluationEntry",
        object_id=entry.id,
        details={"round_id": row.id, "length": len(clean)},
    )
    return await repository.get_entry(tx, entry.id)


async def excuse_member(
    tx: Transaction,
    principal: Principal,
    *,
    round_id: int,
    member_id: int,
    reason: ExcuseReason,
    opinion: str | None,
) -> Any:
    """Record that an old, frail or sick member is excused from the collective
    evaluation with the branch's consent, and their opinion. They are not graded by
    ballots and cast none; the branch committee settles their grade."""
    row = await _round_to_assist(tx, principal, round_id)
    if Stage(row.stage) not in EXCUSE_STAGES:
        raise EXCUSE_CLOSED.error()
    entry = (
        await repository.entry_of_member(tx, row, member_id, lock=True)
        if fits_bigint(member_id)
        else None
    )
    if entry is None:
        raise not_found(ENTRY)
    if await repository.has_voted(tx, row, member_id):
        raise EXCUSE_AFTER_VOTE.error()
    said = clean_text(opinion, MAX_SELF_EVALUATION) if opinion else None
    await repository.update_entry(
        tx,
        entry,
        excused=True,
        excused_reason=reason.value,
        excused_opinion=said,
        excused_by=principal.actor,
    )
    await record(
        tx,
        principal,
        tenant_id=row.tenant_id,
        action="evaluation.excuse",
        object_type="EvaluationEntry",
        object_id=entry.id,
        details={"round_id": row.id, "member_id": member_id, "reason": reason.value},
    )
    return await repository.get_entry(tx, entry.id)


# --- ballots --------------------------------------------------------------------------


def _ballot(
    roster: Sequence[Any], grades: Sequence[tuple[int, Grade]], voter_member_id: int | None
) -> dict[int, int]:
    """The ballot's votes: {roster position: grade code} of the graded candidates
    (blanks are left out). A member not on the roster is NOT_FOUND (like a member id
    that does not exist); an excused member (not graded by ballots) or the same member
    twice is refused, and so is a grade for oneself."""
    by_member = {e.member_id: e for e in roster}
    votes: dict[int, int] = {}
    seen: set[int] = set()
    for member_id, grade in grades:
        if voter_member_id is not None and member_id == voter_member_id:
            raise SELF_GRADE.error()
        entry = by_member.get(member_id)
        if entry is None:
            raise not_found(ENTRY)
        if entry.excused or member_id in seen:
            raise BALLOT_CANDIDATE_INVALID.error()
        if grade not in rules.BALLOT_GRADES:
            raise BALLOT_CANDIDATE_INVALID.error()
        seen.add(member_id)
        votes[entry.position] = repository.BALLOT_CODES[grade]
    return votes


async def _nothing() -> None:
    return None


async def cast_ballot(
    tx: Transaction,
    principal: Principal,
    *,
    round_id: int,
    grades: Sequence[tuple[int, Grade]],
) -> Any:
    """A roster member's secret ballot: one per member and round (the participation
    key refuses a second, also one sent at the same moment)."""
    if not fits_bigint(round_id):
        raise not_found(ROUND)
    # Independent reads go out together, one message each pair (a ballot is five round
    # trips: these two, the participation, the votes, the audit event with the COMMIT).
    me, row = await asyncio.gather(
        my_member(tx, principal), repository.lock_round_for_ballot(tx, round_id)
    )
    if row is None:
        raise not_found(ROUND)
    entry, roster = await asyncio.gather(
        repository.entry_of_member(tx, row, me.id) if me is not None else _nothing(),
        repository.roster(tx, row),
    )
    if entry is None and not reads_round(principal, row):
        raise not_found(ROUND)
    # The candidates first: an id that is not on the ballot answers as a missing one.
    votes = _ballot(roster, grades, me.id if me else None)
    if entry is None:  # a reader of the branch, not on the roster: no ballot
        raise forbidden()
    require(principal, EvaluationAction.PARTICIPATE, entry.branch_path, what=ROUND)
    if Stage(row.stage) is not Stage.BALLOTING:
        raise BALLOTING_CLOSED.error()
    if entry.position is None:
        raise NOT_ON_ROSTER.error()
    if not entry.may_vote or entry.excused:
        raise NO_VOTE.error()
    if not await repository.record_participation(tx, row, entry.member_id):
        raise ALREADY_VOTED.error()
    await repository.count_ballot(tx, row, votes)
    await record(
        tx,
        principal,
        tenant_id=row.tenant_id,
        action="evaluation.ballot_cast",
        object_type="EvaluationRound",
        object_id=row.id,
        details={},
    )
    return row


def _token_hash(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


@dataclass(frozen=True)
class IssuedTokens:
    round: Any
    tokens: list[str]
    expires_at: datetime


async def issue_tokens(
    tx: Transaction, principal: Principal, *, round_id: int, count: int
) -> IssuedTokens:
    """One-time ballot tokens for mass representatives, each returned this once (for
    printing as QR codes); only their SHA-256 is stored. A token is bound to the round
    and expires when the round closes (at the latest TOKEN_DAYS on)."""
    row = await _round_to_assist(tx, principal, round_id)
    if Stage(row.stage) not in (Stage.SELF_EVALUATION, Stage.BALLOTING, Stage.DRAFT):
        raise BALLOTING_CLOSED.error()
    if not 1 <= count <= MAX_TOKENS:
        raise TOKEN_COUNT_INVALID.error(maximum=MAX_TOKENS)
    tokens = [
        f"{TOKEN_PREFIX}_{row.tenant_id}_{row.id}_"
        + base64.urlsafe_b64encode(secrets.token_bytes(32)).decode().rstrip("=")
        for _ in range(count)
    ]
    expires = datetime.now().astimezone() + timedelta(days=TOKEN_DAYS)
    row = await repository.insert_tokens(tx, row, [_token_hash(t) for t in tokens], expires)
    await record(
        tx,
        principal,
        tenant_id=row.tenant_id,
        action="evaluation.tokens_issued",
        object_type="EvaluationRound",
        object_id=row.id,
        details={"count": count},
    )
    return IssuedTokens(round=row, tokens=tokens, expires_at=expires)


def token_principal(tenant_id: int) -> Principal:
    """Who a mass representative is: a system principal with no grants, scoped to the
    token's tenant only."""
    return Principal(
        account_id=None, username="ballot-token", grants=(), tenant_ids=frozenset({tenant_id})
    )


def _parse_token(token: str) -> tuple[int, int] | None:
    """(tenant id, round id) a token names, or None for anything else."""
    if not isinstance(token, str) or len(token) > 200:
        return None
    parts = token.split("_", 3)  # the secret itself may hold "_" (urlsafe base64)
    if len(parts) != 4 or parts[0] != TOKEN_PREFIX:
        return None
    tenant, round_id, secret = parts[1], parts[2], parts[3]
    if not (tenant.isdigit() and round_id.isdigit() and 1 <= len(tenant) <= 18):
        return None
    if len(round_id) > 18 or len(secret) < 43:
        return None
    return int(tenant), int(round_id)


@dataclass
class TokenBallot:
    """What a mass representative sees: the round's title and the candidates' names."""

    round: Any
    candidates: list[Any] = field(default_factory=list)


async def _usable_token(
    tx: Transaction, token: str, *, lock: bool = True
) -> tuple[Principal, Any, bytes]:
    """The token's principal, round and hash; TOKEN_INVALID for any token that cannot
    be used now (made up, used, of another round or tenant, expired, closed)."""
    parsed = _parse_token(token)
    if parsed is None:
        raise TOKEN_INVALID.error()
    tenant_id, round_id = parsed
    principal = token_principal(tenant_id)
    tx.rescope(principal.scope)
    digest = _token_hash(token)
    found = await repository.find_token(tx, tenant_id, digest)
    if found is None or found.round_id != round_id:
        raise TOKEN_INVALID.error()
    # Casting share-locks the round (closing waits for it); reading (a query, in a
    # read-only transaction) cannot lock and need not.
    row = await (
        repository.lock_round_for_ballot(tx, round_id)
        if lock
        else repository.get_round(tx, round_id)
    )
    if row is None or row.tenant_id != tenant_id or Stage(row.stage) is not Stage.BALLOTING:
        raise TOKEN_INVALID.error()
    return principal, row, digest


async def token_ballot(tx: Transaction, token: str) -> TokenBallot:
    """The ballot a token opens (no account needed). The request's scope becomes the
    token's tenant only."""
    _, row, _ = await _usable_token(tx, token, lock=False)
    candidates = [e for e in await repository.roster(tx, row) if not e.excused]
    return TokenBallot(round=row, candidates=candidates)


async def cast_token_ballot(
    tx: Transaction, token: str, grades: Sequence[tuple[int, Grade]]
) -> Any:
    """A mass representative's ballot: the token is used in the same transaction as
    the ballot goes in; a token used at the same moment is refused like any other."""
    principal, row, digest = await _usable_token(tx, token)
    votes = _ballot(await repository.roster(tx, row), grades, None)
    if not await repository.use_token(tx, row.tenant_id, digest, row.id):
        raise TOKEN_INVALID.error()
    await repository.count_ballot(tx, row, votes)
    await record(
        tx,
        principal,
        tenant_id=row.tenant_id,
        action="evaluation.ballot_cast",
        object_type="EvaluationRound",
        object_id=row.id,
        details={"mass": True},
    )
    return row


# --- closing: turnout, counts, proposals ----------------------------------------------


@dataclass(frozen=True)
class CloseResult:
    closed: list[Any]  # rounds now tallied
    low_turnout: list[Any]  # rounds left in balloting: (round, voters, voted)


Counts = repository.Counts
NO_COUNTS: Counts = (0, 0, 0, 0)  # a position no ballot graded


def blanks(ballots_cast: int, voted: bool, counts: Counts) -> int:
    """Blanks at one roster position: blanks are not stored (a ballot's blank at its
    voter's own position would name the voter), so they are what the ballots cast in
    the round leave over: every ballot cast (members' and mass representatives'),
    less the member's own ballot if the member at that position voted (nobody grades
    themselves, so it can never grade them), less the votes given at that position."""
    return ballots_cast - (1 if voted else 0) - sum(counts)


@functools.lru_cache(maxsize=65536)
def _proposal(
    counts: Counts,
    last_year_grade: str | None,
    override: str,
    organizational_finding: bool,
    policy: GradingPolicy,
) -> Proposal:
    # An entry's proposal from its stored values. A county's 40,000 entries repeat a
    # few thousand of them: each Tally is built and graded once per distinct one.
    return rules.propose(
        Tally(
            *counts,
            last_year_grade=Grade(last_year_grade) if last_year_grade else None,
            sanction_override=Override(override),
            organizational_finding=organizational_finding,
        ),
        policy,
    )


def propose_round(
    policy: GradingPolicy, entries: Sequence[Any], counts: Mapping[int, Counts]
) -> list[Proposal]:
    """Each entry's proposal (same order), the quota applied across the round; `counts`
    by roster position (none: no ballot graded it). Excused members are left to the
    committee (待研究, rule "excused") and are outside the quota's ranking; the quota's
    roster is the whole roster."""
    proposals: list[Proposal | None] = []
    graded: list[Proposal] = []
    for entry in entries:
        if entry.excused:
            proposals.append(None)
            continue
        p = _proposal(
            counts.get(entry.position, NO_COUNTS),
            entry.last_year_grade,
            entry.override,
            entry.organizational_finding,
            policy,
        )
        proposals.append(p)
        graded.append(p)
    quota = iter(rules.apply_quota(graded, len(entries), policy))
    return [
        Proposal(Grade.NEEDS_DECISION, EXCUSED_RULE, None) if p is None else next(quota)
        for p in proposals
    ]


def grade_closed(
    rounds: Sequence[Any], taken: Sequence[Any], entries: Sequence[Any]
) -> repository.Tallies:
    """What closing `rounds` stores in their entries: each entry's counts (from the
    counters `taken`), blanks and proposal. `entries` are the rounds' roster entries in
    round and position order (`repository.closing_entries`). Pure: no database."""
    counts: dict[int, dict[int, Counts]] = defaultdict(dict)
    for c in taken:
        counts[c.round_id][c.roster_position] = (c.excellent, c.qualified, c.basic, c.unqualified)
    by_round: dict[int, list[Any]] = defaultdict(list)
    for entry in entries:
        by_round[entry.round_id].append(entry)
    tallies = repository.Tallies()
    for row in rounds:
        roster = by_round.get(row.id, [])
        round_counts = counts.get(row.id, {})
        # The counters are deleted as they are taken: a count off the roster (a ballot
        # the service should have refused) stops the close, nothing lost.
        if not round_counts.keys() <= {entry.position for entry in roster}:
            raise RuntimeError(f"round {row.id}: counts at positions off its roster")
        for entry, proposal in zip(
            roster, propose_round(policy_of(row), roster, round_counts), strict=True
        ):
            c = round_counts.get(entry.position, NO_COUNTS)
            tallies.add(
                entry.id,
                c,
                blank=blanks(row.ballots_cast, entry.voted, c),
                grade=proposal.grade.value,
                rule=proposal.rule,
            )
    return tallies


# Rounds whose counters are taken per statement when many close at once: 1,000 rounds
# are about 20,000 counter rows, well inside the statement timeout.
CLOSE_CHUNK = 1000


async def close_rounds(
    tx: Transaction,
    principal: Principal,
    round_ids: Sequence[int],
    *,
    skip_low_turnout: bool = False,
) -> CloseResult:
    """Close balloting of many rounds at once (a county's half-year): check turnout,
    move them to tallied, take the counters (one statement for all rounds: their counts
    move into the entries, the counters go), and store each entry's counts and proposed
    grade. A round below the turnout is refused (TURNOUT_TOO_LOW), or with
    `skip_low_turnout` left in balloting and reported."""
    ids = sorted({i for i in round_ids if fits_bigint(i)})
    # Ballots cast earlier in this transaction are still queued (they go with the
    # COMMIT): they count, so they go out before the rounds close.
    await tx.flush_deferred()
    if len(ids) > 100:
        await repository.without_jit(tx)
    rounds = await repository.get_rounds(tx, ids, lock=True)
    for i in round_ids:
        row = rounds.get(i)
        if row is None:
            raise not_found(ROUND)
        require(
            principal,
            EvaluationAction.RUN,
            row.branch_path,
            what=ROUND,
            seen_with=EvaluationAction.READ,
        )
        if Stage(row.stage) is not Stage.BALLOTING:
            raise STAGE_MOVE_INVALID.error(
                source=STAGE_LABELS[Stage.BALLOTING], target=STAGE_LABELS[Stage.TALLIED]
            )
    closing: list[int] = []
    voters: list[int] = []
    cast: list[int] = []
    low: list[Any] = []
    for t in await repository.turnout(tx, ids):
        row = rounds[t.id]
        if not rules.turnout_ok(t.voted, t.voters, policy_of(row)):
            if not skip_low_turnout:
                raise TURNOUT_TOO_LOW.error(voters=t.voters, voted=t.voted)
            low.append((row, t.voters, t.voted))
            continue
        closing.append(t.id)
        voters.append(t.voters)
        cast.append(t.voted + t.tokens_used)
    if not closing:
        return CloseResult(closed=[], low_turnout=low)
    closed = await repository.mark_closed(tx, closing, voters, cast, principal.actor)
    # The counters are taken (deleted; their counts go into the entries) a chunk of
    # rounds per statement, each well inside the statement timeout however many rounds
    # close at once (a county's 2,000).
    taken: list[Any] = []
    for start in range(0, len(closing), CLOSE_CHUNK):
        taken += await repository.take_counts(tx, closing[start : start + CLOSE_CHUNK])
    entries = await repository.closing_entries(tx, closing)
    await repository.store_tallies(tx, grade_closed(closed, taken, entries))
    await record_many(
        tx,
        principal,
        [
            Event(
                tenant_id=row.tenant_id,
                action="evaluation.close",
                object_type="EvaluationRound",
                object_id=row.id,
                details={"ballots_cast": row.ballots_cast, "roster_voters": row.roster_voters},
            )
            for row in closed
        ],
    )
    order = {i: n for n, i in enumerate(closing)}
    return CloseResult(closed=sorted(closed, key=lambda r: order[r.id]), low_turnout=low)
