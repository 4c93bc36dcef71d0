"""Demo disposal cases (处置不合格党员): the demo county has cases in several stages, so
a newcomer sees the whole procedure at once, all in 城关镇机关第一支部 (the demo
accounts' branch: `cg1.secretary` runs them, `cg.secretary` approves, `county.org`
pre-reviews and exports):

- one in education (教育转化) with a missed week: educators assigned three weeks ago,
  sessions in the first and the third week, none in the second (flagged on the case
  and in the county's overview);
- one awaiting the county's pre-review (县委组织部预审): a removal for serious problems,
  proposed and pre-reviewed by the township's committee;
- one closed by removal (除名), approved by the committee, with its archive bundle
  generated (the `archive` record and the decision in the member's personal file;
  the bundle itself is exported again on demand: `exportCaseArchive`).

Every step goes through cases-core's services (service.cases.service) as a user would
take it, acting as the demo accounts where they exist and as the loader otherwise;
approval steps are decided through service.approvals; the educators' sessions, which
only an educator's own login may log, through the statement the service runs (the
demo educators have no logins). Dates are relative to today
(Asia/Shanghai), so the missed week and the pending steps stay current.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, timedelta
from typing import Any

from service.approvals import Decision, decide
from service.approvals import repository as approval_rows
from service.audit.service import record
from service.auth.principal import Principal
from service.cases import archive
from service.cases import repository as case_rows
from service.cases import service as cases
from service.cases.rules import CaseOrigin, Disposal
from service.clock import today as business_today
from service.db import Transaction
from service.demo_evaluations import _acting_as, _branch

BRANCH = "chengguan-01"


async def _members(tx: Transaction, branch_id: int, count: int) -> list[Any]:
    """Full, active members of the branch without a login (the demo member's record
    stays out of the cases) and without a sanction (no double handling), in id order."""
    return await tx.rows(
        "SELECT tenant_id, id, name FROM members m WHERE branch_id = %(b)s"
        " AND status = 'active' AND category = 'full' AND account_id IS NULL"
        " AND NOT EXISTS (SELECT 1 FROM sanctions s"
        "   WHERE s.tenant_id = m.tenant_id AND s.member_id = m.id)"
        " ORDER BY id LIMIT %(n)s",
        {"b": branch_id, "n": count},
    )


async def _approve(tx: Transaction, decider: Principal, request_id: int) -> None:
    request = await approval_rows.get_request(tx, request_id)
    steps = (await approval_rows.steps_of_requests(tx, [request.id]))[request.id]
    for step in [s for s in steps if s.state == "pending"]:
        await decide(
            tx,
            decider,
            step_id=step.id,
            decision=Decision.APPROVE,
            reason=None,
            digest=request.digest,
        )


async def _opened_and_filed(
    tx: Transaction,
    runner: Principal,
    committee: Principal,
    member: Any,
    origin: CaseOrigin,
    facts: str,
    opened_on: date,
) -> Any:
    row = await cases.open_case(
        tx,
        runner,
        member_id=member.id,
        origin=origin,
        facts=facts,
        not_sanctioned_statement="经核查，本案不涉及已受党纪处分的问题",
        opened_on=opened_on,
    )
    await _approve(tx, committee, row.filing_request_id)
    return row


async def _through_education(
    tx: Transaction,
    runner: Principal,
    row: Any,
    educators: list[Any],
    start: date,
    *,
    wants_to_stay: bool,
    sessions: list[date],
) -> None:
    await cases.record_investigation(
        tx,
        runner,
        case_id=row.id,
        occurred_on=start - timedelta(days=6),
        investigators=["王建国", "李红梅"],
        findings="经走访党员群众、查阅组织生活记录，情况属实",
    )
    await cases.record_talk(
        tx,
        runner,
        case_id=row.id,
        occurred_on=start - timedelta(days=3),
        talkers=["王建国", "李红梅"],
        summary="告知调查结论和拟处置意见，听取本人陈述",
        response="heard",
        member_statement="本人表示知晓",
        wants_to_stay=wants_to_stay,
    )
    await cases.assign_educators(
        tx,
        runner,
        case_id=row.id,
        educator_member_ids=[e.id for e in educators],
        assigned_on=start,
    )
    # Demo educators have no logins (only an educator's own account may log a session
    # through the service): their sessions go in through the statement the service
    # runs, with the same audit event, the two educators taking turns.
    for i, held_on in enumerate(sessions):
        educator = educators[i % len(educators)]
        saved = await case_rows.add_session(
            tx,
            row,
            educator_member_id=educator.id,
            held_on=held_on,
            summary=("谈心谈话，学习党章党规" if i % 2 == 0 else "讲解党员义务，督促参加组织生活"),
            actor=runner.actor,
        )
        await record(
            tx,
            runner,
            tenant_id=row.tenant_id,
            action="case.education_session",
            object_type=cases.SUBJECT_TYPE,
            object_id=row.id,
            details={"session_id": saved.id, "held_on": held_on.isoformat()},
        )


async def _removal_pre_reviewed(
    tx: Transaction,
    runner: Principal,
    committee: Principal,
    row: Any,
    *,
    summary: str,
    reasons: str,
    opinion: str,
    days: tuple[date, date, date],
) -> None:
    """Re-evaluated, removal proposed and pre-reviewed by the committee, on `days`."""
    re_evaluated, proposed, pre_reviewed = days
    await cases.record_re_evaluation(
        tx,
        runner,
        case_id=row.id,
        occurred_on=re_evaluated,
        participants=["全体党员"],
        summary=summary,
        mass_representatives=3,
    )
    await cases.propose_disposal(
        tx,
        runner,
        case_id=row.id,
        disposal=Disposal.REMOVAL,
        reasons=reasons,
        occurred_on=proposed,
    )
    await cases.record_pre_review(
        tx, committee, case_id=row.id, agreed=True, opinion=opinion, occurred_on=pre_reviewed
    )


async def load_demo_cases(
    tx: Transaction,
    principal: Principal,
    *,
    today: date | None = None,
    progress: Callable[[str], None] = print,
    branch_code: str = BRANCH,
    usernames: tuple[str, str, str] = ("cg1.secretary", "cg.secretary", "county.org"),
) -> int:
    """Create the demo cases (see the module); return how many. Skips when the branch
    or enough members are not there."""
    today = today or business_today(tx)
    branch = await _branch(tx, branch_code)
    if branch is None:
        return 0
    people = await _members(tx, branch.id, 7)
    if len(people) < 7:
        return 0
    subjects, educators = people[:3], people[3:5]
    # the branch secretary, the township's committee secretary, the county organizer
    runner, committee, county = [await _acting_as(tx, u, principal) for u in usernames]
    day = lambda n: today - timedelta(days=n)  # noqa: E731

    progress("  处置案件：教育转化中（有一周未开展谈心谈话）")
    educating = await _opened_and_filed(
        tx,
        runner,
        committee,
        subjects[0],
        CaseOrigin.LAPSE_FLAG,
        "连续 6 个月无正当理由不参加党的组织生活、不交纳党费、不做党员工作",
        day(35),
    )
    await _through_education(
        tx,
        runner,
        educating,
        educators,
        day(21),
        wants_to_stay=True,
        sessions=[day(20), day(6)],
    )

    progress("  处置案件：待县委组织部预审（除名）")
    pending = await _opened_and_filed(
        tx,
        runner,
        committee,
        subjects[1],
        CaseOrigin.SERIOUS_PROBLEMS,
        "长期信仰宗教、经教育不改，在群众中造成不良影响",
        day(80),
    )
    await _through_education(
        tx,
        runner,
        pending,
        educators,
        day(60),
        wants_to_stay=False,
        sessions=[day(60 - 7 * w) for w in range(6)],
    )
    await _removal_pre_reviewed(
        tx,
        runner,
        committee,
        pending,
        summary="教育转化期满后再次评议，多数认为仍不合格",
        reasons="问题严重、经教育不改，支委会研究提出除名意见",
        opinion="同意支部意见，报县委组织部预审",
        days=(day(15), day(12), day(10)),
    )

    progress("  处置案件：已除名结案（已立卷归档）")
    closed = await _opened_and_filed(
        tx,
        runner,
        committee,
        subjects[2],
        CaseOrigin.LAPSE_FLAG,
        "连续 6 个月不参加组织生活、不交纳党费，经多次联系拒不改正",
        day(150),
    )
    await _through_education(
        tx,
        runner,
        closed,
        educators,
        day(130),
        wants_to_stay=False,
        sessions=[day(130 - 7 * w) for w in range(7)],
    )
    await _removal_pre_reviewed(
        tx,
        runner,
        committee,
        closed,
        summary="再次评议仍为不合格",
        reasons="属自行脱党，支委会研究提出除名意见",
        opinion="同意",
        days=(day(80), day(75), day(70)),
    )
    await cases.record_pre_review(
        tx,
        county,
        case_id=closed.id,
        agreed=True,
        opinion="经审核，同意除名",
        county=True,
        occurred_on=day(65),
    )
    # Everyone the branch counts as a voter, one absent, one against.
    expected = len(await cases.assembly_voters(tx, closed))
    await cases.record_case_assembly(
        tx,
        runner,
        case_id=closed.id,
        held_on=day(60),
        expected_voters=expected,
        present=expected - 1,
        votes_for=expected - 2,
        votes_against=1,
        votes_abstain=0,
        defence="本人未到会，书面申辩称工作繁忙",
        minutes="支部党员大会无记名投票表决，同意除名",
    )
    submitted = await cases.submit_disposal(tx, runner, case_id=closed.id)
    await _approve(tx, committee, submitted.approval_request_id)
    await archive.export_case_archive(tx, county, case_id=closed.id)
    return 3
