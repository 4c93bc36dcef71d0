"""Demo evaluation rounds (民主评议): the demo county runs DOMAIN.md's default policy and
has rounds in several stages, so a newcomer sees each part working at once:

- 城关镇机关第一支部 (the demo accounts' branch): last period's round is final (each
  member has a grade, `cg1.member` sees theirs), this period's is tallied with the
  proposals waiting for the committee;
- 城关镇机关第二支部: this period's round waits in superior review, a step in
  `cg.secretary`'s approval inbox;
- 城关镇东街社区支部: this period's round is in balloting.

Every round goes through the services as a user would move it (opening, stages, mass
representatives' tokens and ballots, closing and tally, proposals, the assembly and its
votes, telling, submitting, the superior's approval, the public notice), acting as the
demo accounts where they exist (`cg1.secretary` runs its branch, `cg.secretary`
decides) and as the loader otherwise. Members' own ballots go in through the
evaluation repository's ballot statements (the ones `cast_ballot` runs), since demo
members have no logins; the grades are drawn from a fixed seed, so every demo is the
same.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from datetime import date, timedelta
from typing import Any

from service.approvals import Decision, decide
from service.approvals import repository as approval_rows
from service.auth.principal import Grant, Principal
from service.db import Transaction
from service.evaluations import determinations as det
from service.evaluations import repository as rounds
from service.evaluations import service as evaluations
from service.evaluations.rules import Grade
from service.evaluations.stages import Stage

# Branch codes of the demo (service/demo.py): 城关镇's first three branches.
FINAL_AND_TALLIED = "chengguan-01"
IN_REVIEW = "chengguan-02"
IN_BALLOTING = "chengguan-03"
MASS_REPRESENTATIVES = 3


def _periods(today: date) -> tuple[tuple[int, int], tuple[int, int]]:
    """(this period, the one before) as (year, half)."""
    half = 1 if today.month <= 6 else 2
    current = (today.year, half)
    previous = (today.year, 1) if half == 2 else (today.year - 1, 2)
    return current, previous


async def _acting_as(tx: Transaction, username: str, fallback: Principal) -> Principal:
    """The principal of a demo account (its grants and the tenants they reach), or the
    loader's when the account does not exist."""
    account = await tx.first(
        "SELECT id, username FROM accounts WHERE username = %(u)s", {"u": username}
    )
    if account is None:
        return fallback
    grants = await tx.rows(
        "SELECT role, org_path, org_unit_id, tenant_id FROM role_assignments"
        " WHERE account_id = %(id)s",
        {"id": account.id},
    )
    return Principal(
        account_id=account.id,
        username=account.username,
        grants=tuple(sorted(Grant(g.role, g.org_path, g.org_unit_id, g.tenant_id) for g in grants)),
        tenant_ids=fallback.tenant_ids | {g.tenant_id for g in grants},
    )


async def _branch(tx: Transaction, code: str) -> Any | None:
    return await tx.first(
        "SELECT tenant_id, id, path, name FROM org_units WHERE code = %(code)s", {"code": code}
    )


async def _ballots(tx: Transaction, runner: Principal, row: Any, rng: random.Random) -> None:
    """Every voter's ballot and the mass representatives': most members qualified, one
    excellent, one basic, as a branch's tally tends to look."""
    roster = await rounds.roster(tx, row)
    graded = [e for e in roster if not e.excused]
    leaning = {e.member_id: Grade.QUALIFIED for e in graded}
    if len(graded) >= 3:
        leaning[graded[0].member_id] = Grade.EXCELLENT
        leaning[graded[-1].member_id] = Grade.BASIC

    def ballot(voter: int | None) -> list[tuple[int, Grade]]:
        out = []
        for e in graded:
            if e.member_id == voter:
                continue
            grade = leaning[e.member_id]
            if rng.random() < 0.1:  # a few ballots differ
                grade = Grade.QUALIFIED if grade is not Grade.QUALIFIED else Grade.EXCELLENT
            out.append((e.member_id, grade))
        return out

    by_member = {e.member_id: e.position for e in roster}
    for voter in (e for e in roster if e.may_vote and not e.excused):
        votes = {
            by_member[member_id]: rounds.BALLOT_CODES[grade]
            for member_id, grade in ballot(voter.member_id)
        }
        if await rounds.record_participation(tx, row, voter.member_id):
            await rounds.count_ballot(tx, row, votes)
    issued = await evaluations.issue_tokens(tx, runner, round_id=row.id, count=MASS_REPRESENTATIVES)
    scope = tx.scope
    for token in issued.tokens:
        await evaluations.cast_token_ballot(tx, token, ballot(None))
        tx.rescope(scope)  # a token ballot narrows the scope to its tenant


async def _round_to(
    tx: Transaction,
    runner: Principal,
    branch: Any,
    period: tuple[int, int],
    target: Stage,
    rng: random.Random,
) -> Any:
    """A round of `branch` opened and moved through the services up to `target` (at
    most tallied here)."""
    year, half = period
    label = "上半年" if half == 1 else "下半年"
    [row] = await evaluations.open_rounds(
        tx,
        runner,
        org_unit_id=branch.id,
        year=year,
        half=half,
        title=f"{year}年{label}民主评议党员",
    )
    for stage in (Stage.DRAFT, Stage.SELF_EVALUATION, Stage.BALLOTING):
        if stage is target:
            return row
        if stage is Stage.BALLOTING:
            await _ballots(tx, runner, row, rng)
        row = await evaluations.advance_round(tx, runner, round_id=row.id, expected_stage=stage)
    return row


async def _settle(tx: Transaction, runner: Principal, row: Any) -> None:
    """The committee settles what needs a person (a quota tie, ...) as qualified."""
    unsettled = [
        e
        for e in await rounds.roster(tx, row)
        if det.default_grade(e.computed_grade, e.computed_rule) is None
    ]
    if unsettled:
        await det.propose_grades(
            tx,
            runner,
            round_id=row.id,
            grades=[
                det.CommitteeGrade(e.member_id, Grade.QUALIFIED, reason="支委会研究，评为合格")
                for e in unsettled
            ],
        )


async def _submit(tx: Transaction, runner: Principal, row: Any, held_on: date) -> Any:
    """From tallied through the committee, the assembly (everyone with a vote present,
    each member passed), telling, to the superior's inbox."""
    await _settle(tx, runner, row)
    row = await evaluations.advance_round(tx, runner, round_id=row.id, expected_stage=Stage.TALLIED)
    row = await evaluations.advance_round(
        tx, runner, round_id=row.id, expected_stage=Stage.PROPOSED
    )
    roster = await rounds.roster(tx, row)
    voters = [e.member_id for e in roster if det.is_voter(e.category, e.may_vote)]
    await det.record_assembly(
        tx,
        runner,
        round_id=row.id,
        assembly=det.AssemblyRecord(held_on=held_on, present_member_ids=voters),
    )
    for e in roster:
        await det.record_vote(
            tx,
            runner,
            round_id=row.id,
            vote=det.AssemblyVote(e.member_id, len(voters), 0, 0),
        )
    await det.tell_members(tx, runner, round_id=row.id, member_ids=None)
    return await evaluations.advance_round(
        tx, runner, round_id=row.id, expected_stage=Stage.ASSEMBLY
    )


async def _approve(tx: Transaction, decider: Principal, row: Any) -> None:
    request = await approval_rows.get_request(tx, row.approval_request_id)
    steps = (await approval_rows.steps_of_requests(tx, [request.id]))[request.id]
    pending = [s for s in steps if s.state == "pending"]
    for step in pending:
        await decide(
            tx,
            decider,
            step_id=step.id,
            decision=Decision.APPROVE,
            reason=None,
            digest=request.digest,
        )


async def load_demo_evaluations(
    tx: Transaction,
    principal: Principal,
    *,
    today: date | None = None,
    progress: Callable[[str], None] = print,
) -> int:
    """Create the demo rounds (see the module); return how many. Skips a branch code
    that is not there."""
    rng = random.Random(20261128)  # noqa: S311 (demo data, not secrets)
    today = today or date.today()
    current, previous = _periods(today)
    secretary = await _acting_as(tx, "cg1.secretary", principal)
    township = await _acting_as(tx, "cg.secretary", principal)
    made = 0

    first = await _branch(tx, FINAL_AND_TALLIED)
    if first is not None:
        progress("  民主评议：机关第一支部（已结束、已计票）")
        # Last period's round, final: the notice ran in the days after its assembly.
        held = today - timedelta(days=150)
        old = await _round_to(tx, secretary, first, previous, Stage.TALLIED, rng)
        old = await _submit(tx, secretary, old, held)
        await _approve(tx, township, old)
        noticed = await rounds.get_round(tx, old.id)
        await det.finalize(
            tx, secretary, round_id=old.id, today=noticed.notice_ends_on + timedelta(days=1)
        )
        # This period's: tallied, the proposals waiting for the committee.
        await _round_to(tx, secretary, first, current, Stage.TALLIED, rng)
        made += 2
    second = await _branch(tx, IN_REVIEW)
    if second is not None:
        progress("  民主评议：机关第二支部（待上级审批）")
        row = await _round_to(tx, principal, second, current, Stage.TALLIED, rng)
        await _submit(tx, principal, row, today)
        made += 1
    third = await _branch(tx, IN_BALLOTING)
    if third is not None:
        progress("  民主评议：东街社区支部（民主测评中）")
        await _round_to(tx, principal, third, current, Stage.BALLOTING, rng)
        made += 1
    return made
