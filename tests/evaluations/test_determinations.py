"""Determinations of a round (三定一公示) through the service, with real principals:
the committee's proposals (a change needs a reason, 待研究 must be settled, unqualified
needs an organizational finding), the member assembly (expected voters, exclusions
only for a listed reason with consent, quorum and passing on the EXPECTED voters,
one member at a time, a member not passed back to the committee), telling, the
superior's approval, the public notice (objections, the notice period), final grades
and the grade history that next year's second-year-basic rule reads. Pure rules have
worked examples and hypothesis properties."""

from __future__ import annotations

import math
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import replace
from datetime import date, timedelta
from fractions import Fraction
from typing import Any

import psycopg
import pytest
from hypothesis import given
from hypothesis import strategies as st

from service.app import AppState
from service.approvals import Decision, decide
from service.approvals import repository as approval_rows
from service.auth.principal import Principal
from service.auth.service import operator_principal
from service.authz.roles import Role
from service.db import Transaction
from service.errors import DomainError
from service.evaluations import determinations as det
from service.evaluations import repository as rounds
from service.evaluations.determinations import (
    AssemblyRecord,
    AssemblyVote,
    CommitteeGrade,
    Exclusion,
    ExclusionReason,
)
from service.evaluations.rules import DEFAULT_POLICY, Grade
from service.evaluations.service import advance_round, send_back_round
from service.evaluations.stages import Stage
from service.members.rules import MemberCategory
from tests import factories
from tests.support import World

# --- pure rules -----------------------------------------------------------------------


class _E:
    def __init__(self, member_id: int, category: str, may_vote: bool) -> None:
        self.member_id, self.category, self.may_vote = member_id, category, may_vote


def test_expected_voters_are_full_members_with_a_vote_less_exclusions() -> None:
    entries = [_E(1, "full", True), _E(2, "probationary", True), _E(3, "full", False)]
    entries += [_E(4, "full", True), _E(5, "full", True)]
    assert det.expected_voters(entries, []) == {1, 4, 5}
    assert det.expected_voters(entries, [4]) == {1, 5}
    # Excluding someone who has no vote changes nothing.
    assert det.expected_voters(entries, [2, 3]) == {1, 4, 5}


@given(
    st.lists(st.tuples(st.sampled_from(["full", "probationary"]), st.booleans()), max_size=30),
    st.sets(st.integers(0, 29)),
)
def test_expected_voters_property(people: list[tuple[str, bool]], excluded: set[int]) -> None:
    entries = [_E(i, c, v) for i, (c, v) in enumerate(people)]
    expected = det.expected_voters(entries, excluded)
    for e in entries:
        assert (e.member_id in expected) == (
            e.category == "full" and e.may_vote and e.member_id not in excluded
        )


def test_worked_examples_in_the_docstrings() -> None:
    import doctest

    assert doctest.testmod(det).failed == 0


def test_committee_grade_checks() -> None:
    check = det.check_committee_grade
    assert (
        check(
            computed_grade="needs_decision",
            computed_rule="quota_tie",
            grade=Grade.EXCELLENT,
            reason=None,
            finding=None,
        )
        == "reason"
    )
    assert (
        check(
            computed_grade="needs_decision",
            computed_rule="quota_tie",
            grade=Grade.NEEDS_DECISION,
            reason="x",
            finding=None,
        )
        == "not_decidable"
    )
    # A sanction's unqualified needs no finding; a changed unqualified needs both.
    assert (
        check(
            computed_grade="unqualified",
            computed_rule="sanction_unqualified",
            grade=Grade.UNQUALIFIED,
            reason=None,
            finding=None,
        )
        is None
    )
    assert (
        check(
            computed_grade="qualified",
            computed_rule="qualified",
            grade=Grade.UNQUALIFIED,
            reason=None,
            finding="认定",
        )
        == "reason"
    )
    assert det.default_grade("basic", "no_finding_basic") is Grade.BASIC
    assert det.default_grade("needs_decision", "no_ballots") is None


@given(
    st.dictionaries(st.integers(1, 10**6), st.sampled_from([g.value for g in Grade]), min_size=1),
    st.data(),
)
def test_digest_changes_with_any_grade(grades: dict[int, str], data: st.DataObject) -> None:
    member = data.draw(st.sampled_from(sorted(grades)))
    other = data.draw(st.sampled_from([g.value for g in Grade if g.value != grades[member]]))
    assert det.results_digest(7, grades) == det.results_digest(7, dict(reversed(grades.items())))
    assert det.results_digest(7, grades) != det.results_digest(7, grades | {member: other})
    assert det.results_digest(7, grades) != det.results_digest(8, grades)


# --- helpers --------------------------------------------------------------------------


# Who runs a branch's round and who decides its approval, per branch of the world
# (b1 has no branch secretary account: the operator runs it).
RUNNER = {"a1": "bsA1", "b1": None}
DECIDER = {"a1": "secA", "b1": "secB"}


@asynccontextmanager
async def acting(
    state: AppState, world: World, who: str | None
) -> AsyncIterator[tuple[Any, Principal]]:
    """One committed transaction as `who` (an account of the world; None: the
    operator), scoped as a login would scope it."""
    async with state.db.transaction() as tx:
        principal = await operator_principal(tx, name="tests")
        if who is not None:
            principal = await factories.acting_as(tx, world.accounts[who])
            tx.rescope(principal.scope)
        yield tx, principal


async def as_operator(
    state: AppState, work: Callable[[Transaction, Principal], Awaitable[Any]]
) -> Any:
    async with state.db.transaction() as tx:
        op = await operator_principal(tx, name="tests")
        return await work(tx, op)


async def expect(code: str, work: Awaitable[Any]) -> None:
    with pytest.raises(DomainError) as caught:
        await work
    assert caught.value.code == code, caught.value.message


async def branch_members(
    state: AppState, world: World, n: int, *, probationary: int = 0
) -> list[Any]:
    """`n` more full members in a1 (and `probationary` probationary ones)."""

    async def make(tx: Transaction, op: Principal) -> list[Any]:
        made = [await factories.member(tx, op, branch=world.units["a1"]) for _ in range(n)]
        for _ in range(probationary):
            made.append(
                await factories.member(
                    tx, op, branch=world.units["a1"], category=MemberCategory.PROBATIONARY
                )
            )
        return made

    return list(await as_operator(state, make))


async def tallied(
    state: AppState,
    world: World,
    grade_of: Callable[..., str | None],
    *,
    year: int | None = None,
    half: int = 1,
    branch: str = "a1",
) -> tuple[Any, list[Any]]:
    """A tallied round of `branch` (a1) where every voter grades every other member
    `grade_of(entry)`, or `grade_of(entry, voter_member_id)` when it takes two
    arguments (None: blank). Returns the round and its roster."""
    import inspect

    two = len(inspect.signature(grade_of).parameters) == 2

    def grade(entry: Any, voter: int) -> str | None:
        return grade_of(entry, voter) if two else grade_of(entry)  # type: ignore[call-arg]

    async def make(tx: Transaction, op: Principal) -> tuple[Any, list[Any]]:
        opened = await factories.evaluation_round(
            tx, op, branch=world.units[branch], year=year, half=half, stage="balloting"
        )
        roster = await rounds.roster(tx, opened)
        voters = [e for e in roster if e.may_vote and not e.excused]
        row = opened
        for voter in voters:
            mine = {
                e.member_id: g
                for e in roster
                if e.member_id != voter.member_id and (g := grade(e, voter.member_id)) is not None
            }
            codes = [0] * len(roster)
            for e in roster:
                if e.member_id in mine:
                    codes[e.position - 1] = rounds.BALLOT_CODES[Grade(mine[e.member_id])]
            assert await rounds.record_participation(tx, row, voter.member_id)
            await rounds.count_ballot(tx, row, codes)
        row = await advance_round(tx, op, round_id=row.id, expected_stage=Stage.BALLOTING)
        return row, await rounds.roster(tx, row)

    result: tuple[Any, list[Any]] = await as_operator(state, make)
    return result


def _branch(world: World, round_row: Any) -> str:
    return next(n for n, u in world.units.items() if u.id == round_row.branch_id)


async def advance(state: AppState, world: World, round_row: Any, stage: Stage) -> Any:
    async with acting(state, world, RUNNER[_branch(world, round_row)]) as (tx, p):
        return await advance_round(tx, p, round_id=round_row.id, expected_stage=stage)


async def through_assembly(state: AppState, world: World, round_row: Any) -> Any:
    """proposed -> assembly, everyone present, every member passed and told, then
    submitted: the round in superior review."""
    row = await advance(state, world, round_row, Stage.PROPOSED)
    async with acting(state, world, RUNNER[_branch(world, row)]) as (tx, p):
        entries = await rounds.roster(tx, row)
        voters = [e.member_id for e in entries if e.category == "full" and e.may_vote]
        await det.record_assembly(
            tx,
            p,
            round_id=row.id,
            assembly=AssemblyRecord(held_on=date.today(), present_member_ids=voters),
        )
        for e in entries:
            await det.record_vote(
                tx,
                p,
                round_id=row.id,
                vote=AssemblyVote(e.member_id, len(voters), 0, 0),
            )
        await det.tell_members(tx, p, round_id=row.id, member_ids=None)
    return await advance(state, world, row, Stage.ASSEMBLY)


async def superior_decides(
    state: AppState, world: World, round_row: Any, decision: Decision, reason: str | None = None
) -> None:
    async with acting(state, world, DECIDER[_branch(world, round_row)]) as (tx, p):
        row = await rounds.get_round(tx, round_row.id)
        request = await approval_rows.get_request(tx, row.approval_request_id)
        [step] = [
            s
            for s in (await approval_rows.steps_of_requests(tx, [request.id]))[request.id]
            if s.state == "pending"
        ]
        await decide(
            tx, p, step_id=step.id, decision=decision, reason=reason, digest=request.digest
        )


async def to_final(state: AppState, world: World, round_row: Any) -> Any:
    """From tallied to final: proposals as computed, the assembly, approval, the notice
    run out (the service's day given as the day after it)."""
    await advance(state, world, round_row, Stage.TALLIED)
    row = await through_assembly(state, world, round_row)
    await superior_decides(state, world, row, Decision.APPROVE)
    async with acting(state, world, RUNNER[_branch(world, row)]) as (tx, p):
        noticed = await rounds.get_round(tx, row.id)
        return await det.finalize(
            tx, p, round_id=row.id, today=noticed.notice_ends_on + timedelta(days=1)
        )


def _by_member(entries: list[Any]) -> dict[int, Any]:
    return {e.member_id: e for e in entries}


# --- the committee ----------------------------------------------------------------------


async def test_proposals_change_needs_reason_and_what_needs_a_person_is_settled(
    state: AppState, world: World
) -> None:
    extra = await branch_members(state, world, 4)
    blank = extra[0].id  # nobody grades them: no ballots, 待研究
    row, roster = await tallied(
        state, world, lambda e: None if e.member_id == blank else "qualified"
    )
    entries = _by_member(roster)
    assert entries[blank].computed_grade == "needs_decision"
    assert entries[blank].computed_rule == "no_ballots"
    other = extra[1].id
    assert entries[other].computed_grade == "qualified"

    # 待研究 blocks the move; so does proposing it, or changing without a reason.
    await expect("GRADE_UNSETTLED", advance(state, world, row, Stage.TALLIED))
    async with acting(state, world, "bsA1") as (tx, p):
        await expect(
            "CHANGE_REASON_REQUIRED",
            det.propose_grades(
                tx, p, round_id=row.id, grades=[CommitteeGrade(other, Grade.EXCELLENT)]
            ),
        )
        await expect(
            "GRADE_NOT_DECIDABLE",
            det.propose_grades(
                tx, p, round_id=row.id, grades=[CommitteeGrade(blank, Grade.NEEDS_DECISION, "x")]
            ),
        )
        await expect(
            "FINDING_REQUIRED",
            det.propose_grades(
                tx,
                p,
                round_id=row.id,
                grades=[CommitteeGrade(other, Grade.UNQUALIFIED, reason="表现差")],
            ),
        )
        await expect(
            "PROPOSAL_DUPLICATE",
            det.propose_grades(
                tx,
                p,
                round_id=row.id,
                grades=[CommitteeGrade(other, Grade.QUALIFIED)] * 2,
            ),
        )
    # The member of the branch may not propose; another township does not see the round.
    async with acting(state, world, "memA1") as (tx, p):
        await expect(
            "NOT_FOUND",
            det.propose_grades(tx, p, round_id=row.id, grades=[]),
        )
    async with acting(state, world, "secB") as (tx, p):
        await expect("NOT_FOUND", det.propose_grades(tx, p, round_id=row.id, grades=[]))
    async with acting(state, world, "secA") as (tx, p):
        await expect("FORBIDDEN", det.propose_grades(tx, p, round_id=row.id, grades=[]))

    async with acting(state, world, "bsA1") as (tx, p):
        changed = await det.propose_grades(
            tx,
            p,
            round_id=row.id,
            grades=[
                CommitteeGrade(blank, Grade.QUALIFIED, reason="长期在外务工，经支委会研究"),
                CommitteeGrade(other, Grade.EXCELLENT, reason="抗洪抢险表现突出"),
            ],
        )
        assert [(c.committee_grade, c.committee_reason is not None) for c in changed] == [
            ("qualified", True),
            ("excellent", True),
        ]
    proposed = await advance(state, world, row, Stage.TALLIED)
    assert proposed.stage == "proposed"
    async with acting(state, world, "bsA1") as (tx, _p):
        after = _by_member(await rounds.roster(tx, proposed))
    # Untouched entries took their computed grade.
    assert {m: e.committee_grade for m, e in after.items() if m not in (blank, other)} == {
        m: "qualified" for m in after if m not in (blank, other)
    }
    assert after[other].committee_grade == "excellent"


async def test_unqualified_candidate_needs_a_finding_else_stays_basic(
    state: AppState, world: World
) -> None:
    extra = await branch_members(state, world, 4)
    weak, weak2 = extra[0].id, extra[1].id
    row, roster = await tallied(
        state, world, lambda e: "unqualified" if e.member_id in (weak, weak2) else "qualified"
    )
    entries = _by_member(roster)
    assert (entries[weak].computed_grade, entries[weak].computed_rule) == (
        "basic",
        "no_finding_basic",
    )
    async with acting(state, world, "bsA1") as (tx, p):
        # Unqualified with the finding is the rule itself: no reason needed.
        [done] = await det.propose_grades(
            tx,
            p,
            round_id=row.id,
            grades=[
                CommitteeGrade(weak, Grade.UNQUALIFIED, finding="经组织考核，长期不参加组织生活")
            ],
        )
        assert done.committee_grade == "unqualified" and done.organizational_finding
    proposed = await advance(state, world, row, Stage.TALLIED)
    async with acting(state, world, "bsA1") as (tx, _p):
        after = _by_member(await rounds.roster(tx, proposed))
    assert after[weak].committee_grade == "unqualified"
    assert after[weak2].committee_grade == "basic"  # no finding: stays basic


# --- the assembly -------------------------------------------------------------------------


async def test_assembly_quorum_exclusions_and_passing_on_expected_voters(
    state: AppState, world: World
) -> None:
    # a1: memA1, otherA1 and 8 more full members, 2 probationary: 10 voters.
    extra = await branch_members(state, world, 8, probationary=2)
    full = [world.members["memA1"].id, world.members["otherA1"].id, *(m.id for m in extra[:8])]
    prob = [m.id for m in extra[8:]]
    row, _ = await tallied(state, world, lambda e: "qualified")
    await advance(state, world, row, Stage.TALLIED)
    await advance(state, world, row, Stage.PROPOSED)

    abroad = Exclusion(full[9], ExclusionReason.ABROAD_SIX_MONTHS, True, True, "在国外务工")

    async def assembly(
        present: list[int], *exclusions: Exclusion, by: str | None = "甲镇党委"
    ) -> Any:
        async with acting(state, world, "bsA1") as (tx, p):
            return await det.record_assembly(
                tx,
                p,
                round_id=row.id,
                assembly=AssemblyRecord(
                    held_on=date.today(),
                    present_member_ids=present,
                    exclusions=exclusions,
                    superior_consent_by=by,
                ),
            )

    # 10 expected: 5 present is not more than half.
    await expect("QUORUM_NOT_MET", assembly(full[:5]))
    # Probationary members are not expected voters: neither present nor excludable.
    await expect("PRESENT_NOT_VOTER", assembly([*full[:6], prob[0]]))
    await expect("PRESENT_NOT_VOTER", assembly([*full[:6], full[0]]))
    await expect(
        "EXCLUSION_NOT_VOTER",
        assembly(full[:6], Exclusion(prob[0], ExclusionReason.BEDRIDDEN, True, True)),
    )
    # An exclusion needs the superior's consent and the assembly's agreement.
    for consent, agreed in ((False, True), (True, False)):
        await expect(
            "EXCLUSION_CONSENT_REQUIRED",
            assembly(
                full[:5], Exclusion(full[9], ExclusionReason.ABROAD_SIX_MONTHS, consent, agreed)
            ),
        )
    await expect("EXCLUSION_CONSENT_REQUIRED", assembly(full[:5], abroad, by=None))
    # An excluded member cannot be counted present.
    await expect("PRESENT_NOT_VOTER", assembly([*full[:5], full[9]], abroad))
    # With one excluded: 9 expected, 5 present is a quorum.
    recorded = await assembly(full[:5], abroad)
    assert recorded.expected_voters == 9 and len(recorded.present_member_ids) == 5

    async def vote(member: int, yes: int, no: int = 0, abstain: int = 0) -> Any:
        async with acting(state, world, "bsA1") as (tx, p):
            return await det.record_vote(
                tx, p, round_id=row.id, vote=AssemblyVote(member, yes, no, abstain)
            )

    # More votes than people present; then 4 of 9 expected (all but one present) fails.
    await expect("VOTES_INVALID", vote(full[0], 5, 1))
    await expect("VOTES_INVALID", vote(full[0], -1, 1))
    failed = await vote(full[0], 4, 1)
    assert failed.assembly_passed is False
    # Not passed: back to the committee, no second vote until it has decided again.
    await expect("VOTE_NOT_OPEN", vote(full[0], 5))
    # Votes have started: the attendance may not be changed any more.
    await expect("ASSEMBLY_VOTING_STARTED", assembly(full[:6], abroad))
    async with acting(state, world, "bsA1") as (tx, p):
        # The committee may reconsider only members the assembly did not pass.
        await expect(
            "PROPOSAL_CLOSED",
            det.propose_grades(
                tx, p, round_id=row.id, grades=[CommitteeGrade(full[1], Grade.QUALIFIED)]
            ),
        )
        [again] = await det.propose_grades(
            tx,
            p,
            round_id=row.id,
            grades=[CommitteeGrade(full[0], Grade.BASIC, reason="党员大会未通过，支委会重新研究")],
        )
        assert again.assembly_passed is None and again.votes_for is None
    # 5 of 9 expected passes (more than half of the EXPECTED voters).
    passed = await vote(full[0], 5)
    assert passed.assembly_passed is True and passed.committee_grade == "basic"
    # Telling before everyone passed only tells the passed; submitting needs all.
    async with acting(state, world, "bsA1") as (tx, p):
        await expect(
            "TELL_UNDECIDED", det.tell_members(tx, p, round_id=row.id, member_ids=[full[1]])
        )
    await expect("ASSEMBLY_UNDECIDED", advance(state, world, row, Stage.ASSEMBLY))
    for member in [*full[1:], *prob]:
        await vote(member, 5)
    await expect("NOT_TOLD", advance(state, world, row, Stage.ASSEMBLY))
    async with acting(state, world, "bsA1") as (tx, p):
        told = await det.tell_members(tx, p, round_id=row.id, member_ids=[full[0]])
        assert [t.member_id for t in told] == [full[0]] and told[0].told_at is not None
    await expect("NOT_TOLD", advance(state, world, row, Stage.ASSEMBLY))
    async with acting(state, world, "bsA1") as (tx, p):
        await det.tell_members(tx, p, round_id=row.id, member_ids=None)
    submitted = await advance(state, world, row, Stage.ASSEMBLY)
    assert submitted.stage == "superior_review" and submitted.approval_request_id is not None


async def test_assembly_with_three_voters_needs_two_present_and_two_for(
    state: AppState, world: World
) -> None:
    """The smallest branch: 3 expected voters (memA1, otherA1 and one more)."""
    [third] = await branch_members(state, world, 1)
    voters = [world.members["memA1"].id, world.members["otherA1"].id, third.id]
    row, _ = await tallied(state, world, lambda e: "qualified")
    await advance(state, world, row, Stage.TALLIED)
    await advance(state, world, row, Stage.PROPOSED)
    async with acting(state, world, "bsA1") as (tx, p):
        await expect(
            "QUORUM_NOT_MET",
            det.record_assembly(
                tx, p, round_id=row.id, assembly=AssemblyRecord(date.today(), voters[:1])
            ),
        )
    async with acting(state, world, "bsA1") as (tx, p):
        await det.record_assembly(
            tx, p, round_id=row.id, assembly=AssemblyRecord(date.today(), voters[:2])
        )
        one = await det.record_vote(tx, p, round_id=row.id, vote=AssemblyVote(voters[0], 1, 0, 1))
        two = await det.record_vote(tx, p, round_id=row.id, vote=AssemblyVote(voters[1], 2, 0, 0))
    assert (one.assembly_passed, two.assembly_passed) == (False, True)


# --- approval, notice, final, history ----------------------------------------------------


async def test_rejection_returns_to_proposed_with_reason_and_a_new_assembly(
    state: AppState, world: World
) -> None:
    row, _ = await tallied(state, world, lambda e: "qualified")
    await advance(state, world, row, Stage.TALLIED)
    submitted = await through_assembly(state, world, row)
    await superior_decides(state, world, submitted, Decision.REJECT, "优秀比例把握不准")
    async with acting(state, world, "bsA1") as (tx, _p):
        back = await rounds.get_round(tx, row.id)
        entries = await rounds.roster(tx, back)
    assert back.stage == "proposed" and back.sent_back_reason == "优秀比例把握不准"
    assert all(e.assembly_passed is None and e.told_at is None for e in entries)
    # Again through the assembly and submitted: a new request, approved this time.
    again = await through_assembly(state, world, back)
    assert again.approval_request_id != submitted.approval_request_id
    await superior_decides(state, world, again, Decision.APPROVE)
    async with acting(state, world, "bsA1") as (tx, _p):
        noticed = await rounds.get_round(tx, row.id)
    assert noticed.stage == "public_notice"
    assert noticed.notice_starts_on == date.today()
    assert noticed.notice_ends_on == date.today() + timedelta(days=4)  # 5 days, default


async def test_returned_results_are_resubmitted_with_material(
    state: AppState, world: World
) -> None:
    row, _ = await tallied(state, world, lambda e: "qualified")
    await advance(state, world, row, Stage.TALLIED)
    submitted = await through_assembly(state, world, row)
    async with acting(state, world, "bsA1") as (tx, p):
        await expect(
            "RESUBMIT_NOT_RETURNED",
            det.resubmit_results(tx, p, round_id=row.id, material="补充会议记录"),
        )
    await superior_decides(state, world, submitted, Decision.RETURN, "请补充党员大会记录")
    async with acting(state, world, "bsA1") as (tx, p):
        still = await rounds.get_round(tx, row.id)
        assert still.stage == "superior_review"
        await expect("MATERIAL_MISSING", det.resubmit_results(tx, p, round_id=row.id, material=" "))
    async with acting(state, world, "bsA1") as (tx, p):
        await det.resubmit_results(tx, p, round_id=row.id, material="已补充党员大会记录")
    await superior_decides(state, world, submitted, Decision.APPROVE)
    async with acting(state, world, "bsA1") as (tx, _p):
        assert (await rounds.get_round(tx, row.id)).stage == "public_notice"


async def test_final_waits_for_the_notice_and_every_answer(
    state: AppState, world: World, owner_conn: psycopg.Connection[Any]
) -> None:
    row, _ = await tallied(state, world, lambda e: "qualified")
    await advance(state, world, row, Stage.TALLIED)
    submitted = await through_assembly(state, world, row)
    me = world.members["memA1"].id
    # No objections before the notice.
    async with acting(state, world, "memA1") as (tx, p):
        await expect(
            "NOTICE_NOT_OPEN",
            det.raise_objection(tx, p, round_id=row.id, member_id=me, text="有异议"),
        )
    await superior_decides(state, world, submitted, Decision.APPROVE)
    async with acting(state, world, "memA1") as (tx, p):
        # The member objects to their own result; not to another's.
        objection = await det.raise_objection(
            tx, p, round_id=row.id, member_id=me, text="本人的工作成绩未被充分考虑"
        )
        await expect(
            "NOT_FOUND",
            det.raise_objection(
                tx, p, round_id=row.id, member_id=world.members["otherA1"].id, text="异议"
            ),
        )
        await expect(
            "FORBIDDEN", det.answer_objection(tx, p, objection_id=objection.id, answer="x")
        )
    async with acting(state, world, "secB") as (tx, p):
        await expect(
            "NOT_FOUND",
            det.raise_objection(tx, p, round_id=row.id, member_id=me, text="异议"),
        )
    async with acting(state, world, "bsA1") as (tx, p):
        ends = (await rounds.get_round(tx, row.id)).notice_ends_on
        await expect("NOTICE_NOT_OVER", det.finalize(tx, p, round_id=row.id, today=ends))
        await expect(
            "OBJECTIONS_OPEN",
            det.finalize(tx, p, round_id=row.id, today=ends + timedelta(days=1)),
        )
        # Through the stage move too (today is inside the notice period).
        await expect(
            "NOTICE_NOT_OVER",
            advance_round(tx, p, round_id=row.id, expected_stage=Stage.PUBLIC_NOTICE),
        )
    async with acting(state, world, "bsA1") as (tx, p):
        await expect(
            "ANSWER_MISSING", det.answer_objection(tx, p, objection_id=objection.id, answer="")
        )
        answered = await det.answer_objection(
            tx, p, objection_id=objection.id, answer="经支委会复核，维持合格等次"
        )
        assert answered.answered_by == p.actor
        await expect(
            "OBJECTION_ANSWERED",
            det.answer_objection(tx, p, objection_id=objection.id, answer="再答"),
        )
    async with acting(state, world, "bsA1") as (tx, p):
        final = await det.finalize(tx, p, round_id=row.id, today=ends + timedelta(days=1))
    assert final.stage == "final"
    grades = owner_conn.execute(
        "SELECT grade, round_id FROM member_grades WHERE member_id = %s AND year = %s",
        (me, row.year),
    ).fetchall()
    assert grades == [("qualified", row.id)]
    events = owner_conn.execute(
        "SELECT count(*) FROM audit_events WHERE object_id = %s AND action LIKE 'evaluation.%%'",
        (str(row.id),),
    ).fetchone()
    assert events is not None and events[0] >= 5


async def test_grade_history_upserts_and_feeds_next_years_second_basic(
    state: AppState, world: World, owner_conn: psycopg.Connection[Any]
) -> None:
    extra = await branch_members(state, world, 4)
    x = extra[0].id
    last_year = date.today().year - 1

    def grades(first: str, second: str) -> Callable[[Any], str]:
        return lambda e: first if e.member_id == x else second

    # Last year's first half: x excellent; the second half (the year's last): basic.
    first, _ = await tallied(state, world, grades("excellent", "qualified"), year=last_year, half=1)
    await to_final(state, world, first)

    def history() -> list[tuple[str, int]]:
        return owner_conn.execute(
            "SELECT grade, round_id FROM member_grades WHERE member_id = %s AND year = %s",
            (x, last_year),
        ).fetchall()

    assert history() == [("excellent", first.id)]
    # All ballots say basic for x: an unqualified candidate, basic without a finding.
    second, _ = await tallied(
        state,
        world,
        lambda e: "basic" if e.member_id == x else "qualified",
        year=last_year,
        half=2,
    )
    async with acting(state, world, "bsA1") as (tx, _p):
        entry = await rounds.entry_of_member(tx, second, x)
    assert entry.computed_grade == "basic", entry.computed_rule
    await to_final(state, world, second)
    assert history() == [("basic", second.id)]  # upserted: the year's last final round

    # This year: 3 of the 5 voters who grade x say qualified, 2 basic: the basic band
    # (excellent + qualified 60% < 70%) and no other candidate rule; a second basic
    # year makes x an unqualified candidate, basic without an organizational finding.
    basic_from = {world.members["memA1"].id, world.members["otherA1"].id}

    def this_years(e: Any, voter: int) -> str:
        return "basic" if e.member_id == x and voter in basic_from else "qualified"

    _round, roster = await tallied(state, world, this_years, year=last_year + 1)
    mine = _by_member(roster)[x]
    assert mine.last_year_grade == "basic"
    assert (mine.computed_grade, mine.computed_rule) == ("basic", "no_finding_basic")
    others = [e for e in roster if e.member_id != x]
    assert {e.computed_grade for e in others} == {"qualified"}


# --- the superior holds the matter: no send-back ---------------------------------------------


async def test_send_back_refused_while_the_superior_holds_the_round(
    state: AppState, world: World
) -> None:
    """A send-back under an open approval request would strand it (no decision could
    move the round, a resubmission would meet the open request): the superior's way
    back is the decision. The request stays decidable afterwards."""
    row, _ = await tallied(state, world, lambda e: "qualified")
    await advance(state, world, row, Stage.TALLIED)
    submitted = await through_assembly(state, world, row)
    assert submitted.stage == "superior_review"
    async with acting(state, world, "secA") as (tx, p):
        await expect(
            "SEND_BACK_REFUSED",
            send_back_round(tx, p, round_id=row.id, reason="请重新研究"),
        )
    # Nothing moved: the superior decides, and the round goes on.
    await superior_decides(state, world, submitted, Decision.APPROVE)
    async with acting(state, world, "secA") as (tx, p):
        assert (await rounds.get_round(tx, row.id)).stage == "public_notice"
        await expect(
            "SEND_BACK_REFUSED",
            send_back_round(tx, p, round_id=row.id, reason="请重新公示"),
        )
    async with acting(state, world, "bsA1") as (tx, _p):
        assert (await rounds.get_round(tx, row.id)).stage == "public_notice"


# --- the committee within the sanctions and the quota ------------------------------------


def test_sanctions_bound_the_committees_grade() -> None:
    def check(rule: str, grade: Grade, override: str, finding: str | None = None) -> str | None:
        computed = {"sanction_not_excellent": "qualified", "sanction_unqualified": "unqualified"}
        return det.check_committee_grade(
            computed_grade=computed.get(rule, "needs_decision"),
            computed_rule=rule,
            grade=grade,
            reason="支委会研究",
            finding=finding,
            override=override,
        )

    # A reason does not lift a warning's "not excellent".
    assert check("sanction_not_excellent", Grade.EXCELLENT, "not_excellent") == "sanction"
    assert check("sanction_not_excellent", Grade.BASIC, "not_excellent") is None
    for grade in (Grade.EXCELLENT, Grade.QUALIFIED, Grade.BASIC, Grade.NOT_GRADED):
        assert check("sanction_unqualified", grade, "unqualified") == "sanction"
    # An excused member with a sanction: unqualified, the sanction standing as finding.
    assert check("excused", Grade.UNQUALIFIED, "unqualified") is None
    assert check("excused", Grade.EXCELLENT, "not_excellent") == "sanction"
    for override in ("comment_only", "not_evaluated"):
        for grade in (Grade.EXCELLENT, Grade.QUALIFIED, Grade.BASIC, Grade.UNQUALIFIED):
            assert check("comment_only", grade, override, finding="认定") == "sanction"
        assert check("comment_only", Grade.NOT_GRADED, override) is None


@given(st.sampled_from(list(det.SANCTION_GRADES)), st.sampled_from(sorted(det.DECIDED_GRADES)))
def test_no_override_allows_a_grade_it_rules_out(override: Any, grade: Grade) -> None:
    allowed = det.sanction_allows(override.value, grade)
    assert allowed <= det.sanction_allows(None, grade)  # an override only narrows
    if override.value == "not_excellent":
        assert allowed == (grade is not Grade.EXCELLENT)
    elif override.value == "unqualified":
        assert allowed == (grade is Grade.UNQUALIFIED)
    elif override.value in ("comment_only", "not_evaluated"):
        assert allowed == (grade is Grade.NOT_GRADED)


@given(
    st.lists(st.sampled_from([g.value for g in Grade] + [None]), max_size=40),
    st.sampled_from([None, Fraction(1, 3), Fraction(1, 5), Fraction(1, 2)]),
)
def test_quota_counts_excellent_against_the_rounded_down_share(
    grades: list[str | None], share: Fraction | None
) -> None:
    policy = replace(DEFAULT_POLICY, excellent_quota=share)
    over = det.excellent_over_quota(grades, len(grades), policy)
    count = grades.count("excellent")
    if share is None:
        assert over is None  # no quota: not by votes alone, and no cap
    else:
        quota = math.floor(len(grades) * share)
        assert over == ((count, quota) if count > quota else None)


async def test_committee_cannot_lift_a_sanction(
    state: AppState, world: World, owner_conn: psycopg.Connection[Any]
) -> None:
    extra = await branch_members(state, world, 4)
    warned, serious, commented = extra[0], extra[1], extra[2]
    this_year = date.today().year

    async def sanction_them(tx: Transaction, op: Principal) -> None:
        await factories.sanction(tx, op, member=warned, kind="warning")
        await factories.sanction(tx, op, member=serious, kind="serious_warning")
        await factories.sanction(
            tx,
            op,
            member=commented,
            kind="probation_two_years",
            decided_on=date(this_year - 1, 11, 20),
        )

    await as_operator(state, sanction_them)
    # Everyone graded excellent by everyone but the warned member: excellent for them
    # only (a quota of 2 of 6: no tie with nobody else excellent).
    row, roster = await tallied(
        state, world, lambda e: "excellent" if e.member_id == warned.id else "qualified"
    )
    entries = _by_member(roster)
    assert (entries[warned.id].override, entries[warned.id].computed_grade) == (
        "not_excellent",
        "qualified",
    )
    assert entries[serious.id].computed_grade == "unqualified"
    assert (entries[commented.id].override, entries[commented.id].computed_grade) == (
        "comment_only",
        "not_graded",
    )
    refused = [
        CommitteeGrade(warned.id, Grade.EXCELLENT, reason="抗洪抢险表现突出"),
        CommitteeGrade(serious.id, Grade.QUALIFIED, reason="已深刻检讨"),
        CommitteeGrade(serious.id, Grade.NOT_GRADED, reason="另作评语"),
        CommitteeGrade(commented.id, Grade.QUALIFIED, reason="表现良好"),
        CommitteeGrade(commented.id, Grade.UNQUALIFIED, reason="x", finding="认定"),
    ]
    for proposal in refused:
        async with acting(state, world, "bsA1") as (tx, p):
            with pytest.raises(DomainError) as caught:
                await det.propose_grades(tx, p, round_id=row.id, grades=[proposal])
            assert caught.value.code == "GRADE_AGAINST_SANCTION"
            assert entries[proposal.member_id].name in caught.value.message
    async with acting(state, world, "bsA1") as (tx, p):
        # Within what the sanction allows, a changed grade with its reason is fine.
        [basic] = await det.propose_grades(
            tx,
            p,
            round_id=row.id,
            grades=[CommitteeGrade(warned.id, Grade.BASIC, reason="经支委会研究")],
        )
        assert basic.committee_grade == "basic"
    # A grade written around the check (an earlier version) is caught on the move.
    owner_conn.execute(
        "UPDATE evaluation_entries SET committee_grade = 'excellent'"
        " WHERE round_id = %s AND member_id = %s",
        (row.id, warned.id),
    )
    await expect("GRADE_AGAINST_SANCTION", advance(state, world, row, Stage.TALLIED))
    owner_conn.execute(
        "UPDATE evaluation_entries SET committee_grade = 'basic'"
        " WHERE round_id = %s AND member_id = %s",
        (row.id, warned.id),
    )
    proposed = await advance(state, world, row, Stage.TALLIED)
    async with acting(state, world, "bsA1") as (tx, _p):
        after = _by_member(await rounds.roster(tx, proposed))
    assert [after[m.id].committee_grade for m in (warned, serious, commented)] == [
        "basic",
        "unqualified",
        "not_graded",
    ]


async def test_a_quota_tie_is_settled_within_the_quota(
    state: AppState, world: World, owner_conn: psycopg.Connection[Any]
) -> None:
    # memA1, otherA1 and 4 more: a roster of 6, a quota of 2 (one third, rounded down).
    await branch_members(state, world, 4)
    row, roster = await tallied(state, world, lambda e: "excellent")
    assert len(roster) == 6
    # otherA1 has a warning of this year (the world's sanction): not excellent. The
    # five others the same: a tie across the line, all of them for the committee.
    warned = world.members["otherA1"].id
    assert {(e.computed_grade, e.computed_rule) for e in roster if e.member_id != warned} == {
        ("needs_decision", "quota_tie")
    }
    ids = [e.member_id for e in roster if e.member_id != warned]
    assert len(ids) == 5

    def batch(excellent: list[int], qualified: list[int]) -> list[CommitteeGrade]:
        return [CommitteeGrade(m, Grade.EXCELLENT, reason="支委会研究") for m in excellent] + [
            CommitteeGrade(m, Grade.QUALIFIED, reason="名额所限") for m in qualified
        ]

    async with acting(state, world, "bsA1") as (tx, p):
        with pytest.raises(DomainError) as caught:
            await det.propose_grades(tx, p, round_id=row.id, grades=batch(ids[:3], ids[3:]))
        assert caught.value.code == "EXCELLENT_OVER_QUOTA"
        assert "2 人" in caught.value.message and "3 人" in caught.value.message
    async with acting(state, world, "bsA1") as (tx, p):
        # Two now, one more in a later batch: the round as it would stand counts.
        await det.propose_grades(tx, p, round_id=row.id, grades=batch(ids[:2], ids[3:]))
        await expect(
            "EXCELLENT_OVER_QUOTA",
            det.propose_grades(tx, p, round_id=row.id, grades=batch([ids[2]], [])),
        )
    async with acting(state, world, "bsA1") as (tx, p):
        await det.propose_grades(tx, p, round_id=row.id, grades=batch([], [ids[2]]))
    # A third excellent written around the check is caught on the move.
    owner_conn.execute(
        "UPDATE evaluation_entries SET committee_grade = 'excellent'"
        " WHERE round_id = %s AND member_id = %s",
        (row.id, ids[2]),
    )
    await expect("EXCELLENT_OVER_QUOTA", advance(state, world, row, Stage.TALLIED))
    owner_conn.execute(
        "UPDATE evaluation_entries SET committee_grade = 'qualified'"
        " WHERE round_id = %s AND member_id = %s",
        (row.id, ids[2]),
    )
    proposed = await advance(state, world, row, Stage.TALLIED)
    async with acting(state, world, "bsA1") as (tx, p):
        # Proposed: one more excellent is refused; a swap within the quota is not.
        await expect(
            "EXCELLENT_OVER_QUOTA",
            det.propose_grades(tx, p, round_id=row.id, grades=batch([ids[4]], [])),
        )
        swapped = await det.propose_grades(tx, p, round_id=row.id, grades=batch([ids[4]], [ids[0]]))
        assert [e.committee_grade for e in swapped] == ["excellent", "qualified"]
        after = await rounds.roster(tx, proposed)
    assert sum(e.committee_grade == "excellent" for e in after) == 2


# --- who raises and answers an objection ----------------------------------------------------


async def test_objections_by_the_member_as_member_and_by_the_branch(
    state: AppState, world: World
) -> None:
    row, _ = await tallied(state, world, lambda e: "qualified")
    await advance(state, world, row, Stage.TALLIED)
    submitted = await through_assembly(state, world, row)
    await superior_decides(state, world, submitted, Decision.APPROVE)
    me, other = world.members["memA1"].id, world.members["otherA1"].id

    async def committee_member(tx: Transaction, op: Principal) -> Any:
        return await factories.account(
            tx, op, home=world.units["a1"], role=Role.BRANCH_COMMITTEE_MEMBER
        )

    world.accounts["bcA1"] = (await as_operator(state, committee_member)).id
    async with acting(state, world, "bcA1") as (tx, p):
        # The branch committee (evaluation:assist) objects about any member ...
        objection = await det.raise_objection(
            tx, p, round_id=row.id, member_id=other, text="群众反映该同志的情况需核实"
        )
        # ... but answering is the secretary's (evaluation:run): FORBIDDEN, not NOT_FOUND.
        await expect(
            "FORBIDDEN", det.answer_objection(tx, p, objection_id=objection.id, answer="x")
        )
    # A superior who reads the round decides through the approval, not by objecting.
    async with acting(state, world, "secA") as (tx, p):
        await expect(
            "FORBIDDEN", det.raise_objection(tx, p, round_id=row.id, member_id=other, text="x")
        )
    # The member's own objection is taken as a member (evaluation:participate there):
    # the member's account without the member role (revoked) may not raise one, and
    # learns nothing more than a stranger (NOT_FOUND: it does not read the round).
    async with acting(state, world, "memA1") as (tx, p):
        stripped = replace(p, grants=())
        await expect(
            "NOT_FOUND",
            det.raise_objection(tx, stripped, round_id=row.id, member_id=me, text="异议"),
        )
        mine = await det.raise_objection(tx, p, round_id=row.id, member_id=me, text="异议")
        assert mine.member_id == me


# --- the demo -------------------------------------------------------------------------------


async def test_demo_has_rounds_in_several_stages_and_an_inbox(
    state: AppState,
    client: Any,
    owner_conn: psycopg.Connection[Any],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from service.demo import DEMO_PASSWORD, load_demo
    from tests.support import gql, login

    monkeypatch.setattr(state, "settings", replace(state.settings, demo_mode=True))
    async with state.db.transaction() as tx:
        await load_demo(tx, progress=lambda _: None)  # idempotent: loaded once per database
    stages = owner_conn.execute(
        "SELECT o.code, r.stage, r.policy_version FROM evaluation_rounds r"
        " JOIN org_units o ON o.tenant_id = r.tenant_id AND o.id = r.branch_id"
        " WHERE o.code LIKE 'chengguan-%%' ORDER BY o.code, r.year, r.half"
    ).fetchall()
    assert [(code, stage) for code, stage, _ in stages] == [
        ("chengguan-01", "final"),
        ("chengguan-01", "tallied"),
        ("chengguan-02", "superior_review"),
        ("chengguan-03", "balloting"),
    ]
    township = await login(client, "cg.secretary", DEMO_PASSWORD)
    inbox = await gql(client, township, "{ approvalInbox { nodes { state } } }")
    assert inbox["data"]["approvalInbox"]["nodes"] == [{"state": "PENDING"}]
    member = await login(client, "cg1.member", DEMO_PASSWORD)
    mine = await gql(client, member, "{ memberGrades { nodes { year grade } } }")
    assert len(mine["data"]["memberGrades"]["nodes"]) == 1, mine
