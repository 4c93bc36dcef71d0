"""Disposal cases over HTTP: the whole procedure end to end (an unqualified member
through talk, education, a correction that fails, persuasion refused, removal approved
by the tenant committee; a voluntary withdrawal filed with the county), role scoping,
double handling, out-of-order moves and a race of 20 deciders on one step."""

from __future__ import annotations

import asyncio
import base64
import io
import zipfile
from datetime import UTC, date, datetime, timedelta
from typing import Any

import httpx
import pytest

from service import approvals
from service.app import AppState
from service.auth.service import operator_principal
from service.authz.roles import Role
from service.cases import service as cases_service
from service.cases.rules import CaseOrigin, correction_deadline
from service.clock import business_today
from service.members.rules import MemberCategory
from service.members.service import link_account
from service.schema.ids import from_global_id, to_global_id
from tests import factories
from tests.support import World, build_world, error_codes, gql, login

OPEN = """mutation($i: OpenDisposalCaseInput!) { openDisposalCase(input: $i) {
  case { id stage origin openedOn filingRequestId } } }"""
CASE = """query($id: ID!) { disposalCase(id: $id) { id stage disposal result correctionFailed
  persuasionRefused correctionDeadline memberName
  records(first: 100) { nodes { kind occurredOn people body data } }
  educators { name } educationSessions { heldOn summary } missedWeeks { startsOn endsOn } } }"""
INBOX = (
    """{ approvalInbox(first: 100) { nodes { id state request { id digest subjectId kind } } } }"""
)
DECIDE = """mutation($i: DecideApprovalStepInput!) { decideApprovalStep(input: $i) {
  step { id state } } }"""
INVESTIGATE = """mutation($i: CaseInvestigationInput!) { recordCaseInvestigation(input: $i) {
  case { stage } } }"""
TALK = (
    """mutation($i: CaseTalkInput!) { recordCaseTalk(input: $i) { case { stage wantsToStay } } }"""
)
EDUCATORS = """mutation($i: AssignCaseEducatorsInput!) { assignCaseEducators(input: $i) {
  case { stage educationStartedOn } } }"""
SESSION = """mutation($i: EducationSessionInput!) { logEducationSession(input: $i) {
  session { heldOn } } }"""
REEVAL = """mutation($i: CaseReEvaluationInput!) { recordCaseReEvaluation(input: $i) {
  case { stage } } }"""
PROPOSE = """mutation($i: ProposeCaseDisposalInput!) { proposeCaseDisposal(input: $i) {
  case { stage disposal correctionMonths } } }"""
PRE_REVIEW = """mutation($i: CasePreReviewInput!) { recordCasePreReview(input: $i) {
  case { stage committeePreReviewed countyPreReviewed } } }"""
ASSEMBLY = """mutation($i: CaseAssemblyInput!) { recordCaseAssembly(input: $i) {
  case { stage } } }"""
SUBMIT = (
    """mutation($c: ID!) { submitCaseDisposal(caseId: $c) { case { stage approvalRequestId } } }"""
)
CORRECTION = """mutation($i: CorrectionReviewInput!) { recordCorrectionReview(input: $i) {
  case { stage correctionFailed disposal } } }"""
PERSUASION = """mutation($i: PersuasionAnswerInput!) { recordPersuasionAnswer(input: $i) {
  case { stage disposal persuasionRefused } } }"""
NOTE = """mutation($i: CaseNoteInput!) { recordCaseNote(input: $i) { record { kind } } }"""
STATEMENT = """mutation($c: ID!, $k: CaseStatementKind!, $t: String!) {
  fileCaseStatement(caseId: $c, kind: $k, text: $t) { record { kind body } } }"""
LIST = """query($b: ID, $s: CaseStage) { disposalCases(branchId: $b, stage: $s, first: 50) {
  nodes { id stage } } }"""
MINE = """{ myCases(first: 10) { nodes { id stage } } educatorCases(first: 10) { nodes { id } } }"""
SET_POLICY = """mutation($i: GradingPolicyInput!) { setGradingPolicy(input: $i) {
  policyVersion { version } } }"""
CANDIDATES = """query($b: ID!) { caseCandidates(branchId: $b) { memberId origin } }"""
DROP = """mutation($c: ID!, $r: String!) { dropDisposalCase(caseId: $c, reason: $r) {
  case { stage result } } }"""


async def ok(client: httpx.AsyncClient, token: str, query: str, **variables: Any) -> Any:
    body = await gql(client, token, query, variables)
    assert "errors" not in body, body
    return body["data"]


async def open_case(
    client: httpx.AsyncClient,
    token: str,
    member_gid: str,
    *,
    origin: str = "LAPSE_FLAG",
    facts: str = "连续六个月不参加组织生活、不交纳党费",
    statement: str = "不涉及",
    **more: Any,
) -> str:
    """Open a disposal case on the member; the case's id. `more` goes into the input
    as is (openedOn, attachmentIds)."""
    opened = await ok(
        client,
        token,
        OPEN,
        i={
            "memberId": member_gid,
            "origin": origin,
            "facts": facts,
            "notSanctionedStatement": statement,
            **more,
        },
    )
    return str(opened["openDisposalCase"]["case"]["id"])


async def refused(
    client: httpx.AsyncClient, token: str, query: str, code: str, **variables: Any
) -> None:
    body = await gql(client, token, query, variables)
    assert code in error_codes(body), body


async def pending_steps(client: httpx.AsyncClient, token: str, case_id: str) -> list[Any]:
    """The steps in the decider's inbox on the case."""
    inbox = await ok(client, token, INBOX)
    return [s for s in inbox["approvalInbox"]["nodes"] if s["request"]["subjectId"] == case_id]


async def decide(
    client: httpx.AsyncClient, token: str, case_id: str, decision: str = "APPROVE"
) -> None:
    """Decide the case's pending step in the decider's inbox."""
    steps = await pending_steps(client, token, case_id)
    assert len(steps) == 1, steps
    step = steps[0]
    reason = None if decision == "APPROVE" else "理由"
    await ok(
        client,
        token,
        DECIDE,
        i={
            "stepId": step["id"],
            "decision": decision,
            "reason": reason,
            "digest": step["request"]["digest"],
        },
    )


VOTERS = "query($id: ID!) { disposalCase(id: $id) { assemblyVoters } }"


async def voters(client: httpx.AsyncClient, token: str, case_id: str) -> int:
    """The branch's voters in its member assembly on the case (full members on the rolls,
    not under probation), as the service counts them."""
    return int((await ok(client, token, VOTERS, id=case_id))["disposalCase"]["assemblyVoters"])


def assembly_vote(expected: int, **more: Any) -> dict[str, Any]:
    """Everyone expected present and voting for: a vote that sits and passes."""
    return {
        "expectedVoters": expected,
        "present": expected,
        "votesFor": expected,
        "votesAgainst": 0,
        "votesAbstain": 0,
        **more,
    }


def move_clock_to(state: AppState, monkeypatch: pytest.MonkeyPatch, day: str) -> None:
    """The service's clock at noon (Beijing) of `day`; tokens issued before expire then,
    so the caller logs in again."""
    noon = datetime.fromisoformat(day).replace(hour=4, tzinfo=UTC)
    monkeypatch.setattr(state, "clock", lambda: noon)


async def stage_of(client: httpx.AsyncClient, token: str, case_id: str) -> dict[str, Any]:
    return dict((await ok(client, token, CASE, id=case_id))["disposalCase"])


async def people(state: AppState, world: World) -> dict[str, Any]:
    """Two educators (full members of a1 with member accounts) and memA1's account."""
    made: dict[str, Any] = {}
    async with state.db.transaction() as tx:
        op = await operator_principal(tx, name="tests")
        for who in ("ed1", "ed2"):
            member = await factories.member(tx, op, branch=world.units["a1"], name=f"{who}同志")
            account = await factories.account(
                tx,
                op,
                home=world.units["a1"],
                username=world.user(who),
                display_name=who,
                role=Role.MEMBER,
            )
            await link_account(tx, op, member_id=member.id, account_id=account.id)
            made[who] = member
    return made


async def tokens(client: httpx.AsyncClient, world: World, *names: str) -> dict[str, str]:
    return {n: await login(client, world.user(n)) for n in names}


def member_status(world: World, owner_conn: Any, who: str) -> tuple[Any, ...]:
    row = owner_conn.execute(
        "SELECT status, left_by, left_on FROM members WHERE id = %s", (world.members[who].id,)
    ).fetchone()
    return tuple(row)


async def test_unqualified_member_correction_fails_persuasion_refused_removal(
    client: httpx.AsyncClient,
    state: AppState,
    world: World,
    owner_conn: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    eds = await people(state, world)
    t = await tokens(client, world, "bsA1", "secA", "county", "memA1", "ed1", "ed2", "secB")
    async with state.db.transaction() as tx:
        op = await operator_principal(tx, name="tests")
        made = await factories.member(
            tx, op, branch=world.units["a1"], category=MemberCategory.PROBATIONARY
        )
    probationary = to_global_id("Member", made.id)
    memb1 = world.member_gid("memB1")
    today = business_today(datetime.now(UTC))
    day = lambda n: (today - timedelta(days=n)).isoformat()  # noqa: E731
    opened = await ok(
        client,
        t["bsA1"],
        OPEN,
        i={
            "memberId": world.member_gid("memA1"),
            "origin": "UNQUALIFIED_GRADE",
            "facts": "2025 年度民主评议被评为不合格",
            "notSanctionedStatement": "本案不涉及已受党纪处分的问题",
            "openedOn": day(30),
        },
    )
    case = opened["openDisposalCase"]["case"]
    cid = case["id"]
    assert case["stage"] == "OPENED" and case["filingRequestId"]
    # nothing can be recorded before the committee takes the advance filing
    await refused(
        client,
        t["bsA1"],
        INVESTIGATE,
        "CASE_STAGE_INVALID",
        i={"caseId": cid, "investigators": ["张三"], "findings": "调查"},
    )
    # the other township sees nothing of it
    await refused(client, t["secB"], CASE, "NOT_FOUND", id=cid)
    assert (await ok(client, t["secB"], LIST))["disposalCases"]["nodes"] == []
    await decide(client, t["secA"], cid)
    assert (await stage_of(client, t["bsA1"], cid))["stage"] == "FILED"

    await ok(
        client,
        t["bsA1"],
        INVESTIGATE,
        i={
            "caseId": cid,
            "occurredOn": day(29),
            "investigators": ["张三", "李四"],
            "findings": "查实长期不参加组织生活",
        },
    )
    await refused(
        client,
        t["bsA1"],
        TALK,
        "TALKERS_INVALID",
        i={"caseId": cid, "talkers": ["张三"], "summary": "谈话", "response": "HEARD"},
    )
    talked = await ok(
        client,
        t["bsA1"],
        TALK,
        i={
            "caseId": cid,
            "occurredOn": day(28),
            "talkers": ["张三", "李四"],
            "summary": "告知调查结论和拟处置意见",
            "response": "HEARD",
            "memberStatement": "愿意改正",
            "wantsToStay": True,
        },
    )
    assert talked["recordCaseTalk"]["case"] == {"stage": "TALKED", "wantsToStay": True}
    await refused(
        client,
        t["bsA1"],
        EDUCATORS,
        "EDUCATORS_INVALID",
        i={
            "caseId": cid,
            "educatorMemberIds": [world.member_gid("memA1"), to_global_id("Member", eds["ed1"].id)],
        },
    )
    await ok(
        client,
        t["bsA1"],
        EDUCATORS,
        i={
            "caseId": cid,
            "educatorMemberIds": [to_global_id("Member", eds[e].id) for e in ("ed1", "ed2")],
            "assignedOn": day(21),
        },
    )
    # the educators see their case and log sessions; week 2 has none
    assert [c["id"] for c in (await ok(client, t["ed1"], MINE))["educatorCases"]["nodes"]] == [cid]
    assert (await ok(client, t["ed1"], LIST))["disposalCases"]["nodes"] == []
    await ok(client, t["ed1"], SESSION, i={"caseId": cid, "heldOn": day(20), "summary": "谈心谈话"})
    await ok(client, t["ed2"], SESSION, i={"caseId": cid, "heldOn": day(6), "summary": "学习党章"})
    await refused(client, t["memA1"], SESSION, "FORBIDDEN", i={"caseId": cid, "summary": "自己写"})
    listed = await ok(
        client,
        t["ed1"],
        "{ educatorCases(first: 5) { nodes { records(first: 50) { nodes { kind } }"
        " educationSessions { heldOn } missedWeeks { startsOn } } } }",
    )
    [mine] = listed["educatorCases"]["nodes"]
    assert len(mine["educationSessions"]) == 2 and len(mine["missedWeeks"]) == 1
    assert "TALK" in [r["kind"] for r in mine["records"]["nodes"]]
    seen = await stage_of(client, t["ed1"], cid)
    assert seen["missedWeeks"] == [{"startsOn": day(14), "endsOn": day(8)}]
    assert len(seen["educationSessions"]) == 2

    # the member sees their own case and files a statement
    assert [c["id"] for c in (await ok(client, t["memA1"], MINE))["myCases"]["nodes"]] == [cid]
    await ok(client, t["memA1"], STATEMENT, c=cid, k="STATEMENT", t="我会认真改正")
    await refused(client, t["ed1"], STATEMENT, "FORBIDDEN", c=cid, k="APPEAL", t="x")

    await ok(
        client,
        t["bsA1"],
        REEVAL,
        i={
            "caseId": cid,
            "participants": ["全体党员"],
            "summary": "再次评议",
            "massRepresentatives": 3,
        },
    )
    await refused(
        client,
        t["bsA1"],
        PROPOSE,
        "DISPOSAL_UNFIT",
        i={"caseId": cid, "disposal": "REMOVAL", "reasons": "除名"},
    )
    proposed = await ok(
        client,
        t["bsA1"],
        PROPOSE,
        i={"caseId": cid, "disposal": "CORRECTION", "reasons": "本人愿意改正"},
    )
    assert proposed["proposeCaseDisposal"]["case"]["correctionMonths"] == 6

    async def through_assembly_and_approval(county: bool) -> None:
        await ok(
            client, t["secA"], PRE_REVIEW, i={"caseId": cid, "agreed": True, "opinion": "同意"}
        )
        if county:
            assert (await stage_of(client, t["bsA1"], cid))["stage"] == "PROPOSED"
            await ok(
                client,
                t["county"],
                PRE_REVIEW,
                i={"caseId": cid, "agreed": True, "opinion": "书面同意"},
            )
        assert (await stage_of(client, t["bsA1"], cid))["stage"] == "PRE_REVIEWED"
        n = await voters(client, t["bsA1"], cid)
        # The expected voters are counted by the service, not taken from the minutes.
        await refused(
            client,
            t["bsA1"],
            ASSEMBLY,
            "ASSEMBLY_EXPECTED_VOTERS_MISMATCH",
            i={"caseId": cid, **assembly_vote(n + 5)},
        )
        # Half of the expected voters present is no quorum ("more than half").
        await refused(
            client,
            t["bsA1"],
            ASSEMBLY,
            "ASSEMBLY_NO_QUORUM",
            i={"caseId": cid, **assembly_vote(n, present=n // 2, votesFor=n // 2)},
        )
        # Only a voter of the branch can be left out of the expected voters: not a
        # probationary member (no vote), and another township's member is not found.
        for who, code in ((probationary, "EXCLUSION_NOT_A_VOTER"), (memb1, "NOT_FOUND")):
            await refused(
                client,
                t["bsA1"],
                ASSEMBLY,
                code,
                i={
                    "caseId": cid,
                    **assembly_vote(n - 1),
                    "exclusions": [{"memberId": who, "reason": "abroad_six_months"}],
                },
            )
        await ok(
            client,
            t["bsA1"],
            ASSEMBLY,
            i={
                "caseId": cid,
                **assembly_vote(n - 1),
                "defence": "本人申辩",
                "exclusions": [
                    {"memberId": world.member_gid("otherA1"), "reason": "abroad_six_months"}
                ],
            },
        )
        await ok(client, t["bsA1"], SUBMIT, c=cid)
        await decide(client, t["secA"], cid)

    await through_assembly_and_approval(county=False)
    seen = await stage_of(client, t["bsA1"], cid)
    assert seen["stage"] == "CORRECTING"
    assert seen["correctionDeadline"] is not None
    assert member_status(world, owner_conn, "memA1")[0] == "correcting"
    # The finding waits for the end of the period; then the clock reaches it.
    await refused(
        client,
        t["bsA1"],
        CORRECTION,
        "CORRECTION_NOT_DUE",
        i={"caseId": cid, "corrected": False, "finding": "未改正"},
    )
    move_clock_to(state, monkeypatch, seen["correctionDeadline"])
    t = await tokens(client, world, "bsA1", "secA", "county", "memA1", "ed1", "ed2", "secB")

    failed = await ok(
        client, t["bsA1"], CORRECTION, i={"caseId": cid, "corrected": False, "finding": "未改正"}
    )
    assert failed["recordCorrectionReview"]["case"] == {
        "stage": "RE_EVALUATED",
        "correctionFailed": True,
        "disposal": None,
    }
    await refused(
        client,
        t["bsA1"],
        PROPOSE,
        "DISPOSAL_UNFIT",
        i={"caseId": cid, "disposal": "CORRECTION", "reasons": "再给一次机会"},
    )
    await ok(
        client, t["bsA1"], PROPOSE, i={"caseId": cid, "disposal": "PERSUASION", "reasons": "劝退"}
    )
    await through_assembly_and_approval(county=True)
    assert (await stage_of(client, t["bsA1"], cid))["stage"] == "PERSUADING"

    refusedp = await ok(
        client, t["bsA1"], PERSUASION, i={"caseId": cid, "accepted": False, "note": "拒不退党"}
    )
    assert refusedp["recordPersuasionAnswer"]["case"] == {
        "stage": "PROPOSED",
        "disposal": "REMOVAL",
        "persuasionRefused": True,
    }
    await through_assembly_and_approval(county=True)
    seen = await stage_of(client, t["bsA1"], cid)
    assert (seen["stage"], seen["result"]) == ("CLOSED", "REMOVED")
    status, left_by, left_on = member_status(world, owner_conn, "memA1")
    # removed on the day of the approval, by the service's clock (moved to the deadline)
    assert (status, left_by) == ("removed", "removal")
    assert left_on == business_today(state.clock())

    await ok(
        client, t["bsA1"], NOTE, i={"caseId": cid, "kind": "DECISION_TOLD", "text": "已告知本人"}
    )
    await ok(client, t["bsA1"], NOTE, i={"caseId": cid, "kind": "FOLLOW_UP", "text": "跟踪帮教"})
    # a closed case stays readable, by the county too; the member (still holding the
    # account) appeals, and the superior sees it beside the case
    await ok(client, t["memA1"], STATEMENT, c=cid, k="APPEAL", t="我不服，提出申诉")
    kinds = [r["kind"] for r in (await stage_of(client, t["county"], cid))["records"]["nodes"]]
    assert kinds[0] == "OPENING" and kinds[-1] == "APPEAL"
    for kind in (
        "FILING",
        "INVESTIGATION",
        "TALK",
        "EDUCATION_ASSIGNED",
        "RE_EVALUATION",
        "PROPOSAL",
        "PRE_REVIEW",
        "ASSEMBLY",
        "APPROVAL",
        "CORRECTION_REVIEW",
        "PERSUASION_ANSWER",
        "STATEMENT",
        "DECISION_TOLD",
        "FOLLOW_UP",
    ):
        assert kind in kinds, kind
    assert kinds.count("APPROVAL") == 3 and kinds.count("ASSEMBLY") == 3

    # --- the archive (cases-periphery's exportCaseArchive): one zip the county keeps ---
    exported = await ok(
        client,
        t["county"],
        """mutation($i: ExportCaseArchiveInput!) { exportCaseArchive(input: $i) {
          sha256 fileCount final archivedNow contentBase64 } }""",
        i={"caseId": cid},
    )
    bundle = exported["exportCaseArchive"]
    assert bundle["final"] and bundle["archivedNow"] and bundle["fileCount"] >= 1
    with zipfile.ZipFile(io.BytesIO(base64.b64decode(bundle["contentBase64"]))) as z:
        names = z.namelist()
        assert "manifest.json" in names
        summary = next(n for n in names if n.startswith("summary"))
        text = z.read(summary).decode("utf-8")
    assert "除名" in text and "劝退" in text and "限期改正" in text
    data = await _archive_data(state, cid)
    assert len(data.approval_requests) == 4  # the filing and three disposals

    # every step audited
    actions = {
        r[0]
        for r in owner_conn.execute(
            "SELECT action FROM audit_events WHERE object_type = 'DisposalCase' AND object_id = %s",
            (str(from_global_id(cid, "DisposalCase")[1]),),
        ).fetchall()
    }
    assert {"case.open", "case.talk", "case.approved", "case.persuasion_refused"} <= actions


async def _archive_data(state: AppState, cid: str) -> Any:
    """The archive read cases-core offers (`case_for_archive`): every record and request."""
    async with state.db.transaction() as tx:
        op = await operator_principal(tx, name="tests")
        return await cases_service.case_for_archive(
            tx, op, case_id=from_global_id(cid, "DisposalCase")[1]
        )


async def test_voluntary_withdrawal_is_filed_with_the_county(
    client: httpx.AsyncClient, world: World, owner_conn: Any
) -> None:
    t = await tokens(client, world, "bsA1", "secA", "county")
    # otherA1 has a sanction: a case about conduct is refused (no double handling)...
    body = {
        "memberId": world.member_gid("otherA1"),
        "origin": "UNQUALIFIED_GRADE",
        "facts": "不合格",
        "notSanctionedStatement": "不涉及",
    }
    await refused(client, t["bsA1"], OPEN, "ALREADY_SANCTIONED", i=body)
    await refused(
        client,
        t["bsA1"],
        OPEN,
        "NOT_SANCTIONED_STATEMENT_MISSING",
        i=body | {"notSanctionedStatement": " "},
    )
    # ...but their own application to withdraw is not a handling of conduct
    opened = await ok(
        client,
        t["bsA1"],
        OPEN,
        i=body | {"origin": "WITHDRAWAL_APPLICATION", "facts": "本人申请退党"},
    )
    cid = opened["openDisposalCase"]["case"]["id"]
    await refused(
        client, t["bsA1"], OPEN, "CASE_ALREADY_OPEN", i=body | {"origin": "WITHDRAWAL_APPLICATION"}
    )
    await decide(client, t["secA"], cid)
    await ok(
        client,
        t["bsA1"],
        PROPOSE,
        i={"caseId": cid, "disposal": "WITHDRAWAL", "reasons": "本人申请"},
    )
    await refused(
        client,
        t["county"],
        PRE_REVIEW,
        "PRE_REVIEW_DONE",
        i={"caseId": cid, "agreed": True, "opinion": "无须"},
    )
    await ok(client, t["secA"], PRE_REVIEW, i={"caseId": cid, "agreed": True, "opinion": "同意"})
    await ok(
        client,
        t["bsA1"],
        ASSEMBLY,
        i={"caseId": cid, **assembly_vote(await voters(client, t["bsA1"], cid))},
    )
    await ok(client, t["bsA1"], SUBMIT, c=cid)
    kinds = {s["request"]["kind"] for s in await pending_steps(client, t["secA"], cid)}
    assert kinds == {"CASE_FILING"}
    await decide(client, t["secA"], cid)
    assert (await stage_of(client, t["bsA1"], cid))["stage"] == "IN_APPROVAL"
    await decide(client, t["county"], cid)
    seen = await stage_of(client, t["bsA1"], cid)
    assert (seen["stage"], seen["result"]) == ("CLOSED", "WITHDREW")
    assert member_status(world, owner_conn, "otherA1")[:2] == ("withdrew", "withdrawal")


async def test_a_failed_assembly_and_a_rejection_return_the_case_to_the_branch(
    client: httpx.AsyncClient, world: World, owner_conn: Any
) -> None:
    t = await tokens(client, world, "bsA1", "secA")
    cid = await open_case(client, t["bsA1"], world.member_gid("memA1"))
    await decide(client, t["secA"], cid)
    await ok(
        client,
        t["bsA1"],
        INVESTIGATE,
        i={"caseId": cid, "investigators": ["甲"], "findings": "属实"},
    )
    await ok(
        client,
        t["bsA1"],
        TALK,
        i={
            "caseId": cid,
            "talkers": ["甲", "乙"],
            "summary": "无法联系",
            "response": "UNREACHABLE",
        },
    )
    # the branch may drop the case before the assembly; here it goes on to a vote
    # that fails (not more than half of the expected voters for)
    with_eds = await ok(client, t["bsA1"], LIST, b=world.gid("a1"), s="TALKED")
    assert [c["id"] for c in with_eds["disposalCases"]["nodes"]] == [cid]
    # candidates: none from grades in this fresh world, but the list answers
    assert (await ok(client, t["bsA1"], CANDIDATES, b=world.gid("a1")))["caseCandidates"] == []
    dropped = await ok(client, t["bsA1"], DROP, c=cid, r="查无实据")
    assert dropped["dropDisposalCase"]["case"] == {"stage": "CLOSED", "result": "DROPPED"}
    assert member_status(world, owner_conn, "memA1")[0] == "active"


async def test_a_case_dropped_before_its_filing_is_decided_leaves_the_inbox(
    client: httpx.AsyncClient, world: World, owner_conn: Any
) -> None:
    """The advance filing goes to the committee when the case opens; dropped before the
    committee decides it, the step leaves the committee's inbox (withdrawn, with the
    branch's reason) and can no longer be decided."""
    t = await tokens(client, world, "bsA1", "secA")
    cid = await open_case(client, t["bsA1"], world.member_gid("memA1"))
    [step] = await pending_steps(client, t["secA"], cid)
    await ok(client, t["bsA1"], DROP, c=cid, r="已补交党费")
    assert await pending_steps(client, t["secA"], cid) == []
    await refused(
        client,
        t["secA"],
        DECIDE,
        "APPROVAL_ALREADY_DECIDED",
        i={"stepId": step["id"], "decision": "APPROVE", "digest": step["request"]["digest"]},
    )
    shown = await ok(
        client,
        t["secA"],
        """query($id: ID!) { approvalRequest(id: $id) { state steps { state reason } } }""",
        id=step["request"]["id"],
    )
    assert shown["approvalRequest"]["state"] == "WITHDRAWN"
    assert shown["approvalRequest"]["steps"] == [
        {"state": "WITHDRAWN", "reason": "案件已撤销：已补交党费"}
    ]
    actions = [
        r[0]
        for r in owner_conn.execute(
            "SELECT action FROM audit_events WHERE object_type = 'ApprovalRequest'"
            " AND object_id = %s ORDER BY occurred_at",
            (str(from_global_id(step["request"]["id"])[1]),),
        )
    ]
    assert actions == ["approval.submit", "approval.withdraw"]


async def test_dropping_a_case_while_its_filing_is_being_decided_is_one_or_the_other(
    client: httpx.AsyncClient, world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The branch drops the case (locking it, then withdrawing its filing) while the
    committee approves the filing (a decision locks the case first too): one waits for
    the other and loses with a coded error, never a deadlock. The drop is held between
    its two locks until the decision is on its way, the order that deadlocked."""
    t = await tokens(client, world, "bsA1", "secA")
    cid = await open_case(client, t["bsA1"], world.member_gid("memA1"))
    [step] = await pending_steps(client, t["secA"], cid)
    go = asyncio.Event()
    withdraw = approvals.withdraw_open

    async def held(*args: Any, **kwargs: Any) -> Any:
        await go.wait()  # the case is locked by now
        return await withdraw(*args, **kwargs)

    monkeypatch.setattr(approvals, "withdraw_open", held)
    drop = asyncio.create_task(gql(client, t["bsA1"], DROP, {"c": cid, "r": "已补交党费"}))
    await asyncio.sleep(0.3)
    decide_ = asyncio.create_task(
        gql(
            client,
            t["secA"],
            DECIDE,
            {
                "i": {
                    "stepId": step["id"],
                    "decision": "APPROVE",
                    "digest": step["request"]["digest"],
                }
            },
        )
    )
    await asyncio.sleep(0.3)  # the decision now waits for the case
    go.set()
    dropped, decided = await asyncio.wait_for(asyncio.gather(drop, decide_), 30)
    assert "errors" not in dropped, dropped
    assert dropped["data"]["dropDisposalCase"]["case"]["stage"] == "CLOSED"
    assert error_codes(decided) == ["APPROVAL_ALREADY_DECIDED"], decided


async def test_a_member_given_an_account_after_the_opening_reads_their_case(
    client: httpx.AsyncClient, state: AppState, world: World
) -> None:
    """The case keeps the member's login account for the member to read it; an account
    linked to the member later reads it (and files a statement), one unlinked no longer
    does."""
    async with state.db.transaction() as tx:
        op = await operator_principal(tx, name="tests")
        member = await factories.member(tx, op, branch=world.units["a1"], name="后来者")
        await factories.account(
            tx, op, home=world.units["a1"], username=world.user("late"), display_name="后来者",
            role=Role.MEMBER,
        )  # fmt: skip
    t = await tokens(client, world, "bsA1", "late")
    cid = await open_case(client, t["bsA1"], to_global_id("Member", member.id))
    assert (await ok(client, t["late"], MINE))["myCases"]["nodes"] == []
    me = await ok(client, t["late"], "{ me { id } }")
    link = """mutation($i: LinkMemberAccountInput!) { linkMemberAccount(input: $i) {
      member { id } } }"""
    await ok(
        client,
        t["bsA1"],
        link,
        i={"memberId": to_global_id("Member", member.id), "accountId": me["me"]["id"]},
    )
    mine = await ok(client, t["late"], MINE)
    assert [c["id"] for c in mine["myCases"]["nodes"]] == [cid]
    filed = await ok(client, t["late"], STATEMENT, c=cid, k="STATEMENT", t="情况属实，愿意改正")
    assert filed["fileCaseStatement"]["record"]["kind"] == "STATEMENT"
    await ok(
        client,
        t["bsA1"],
        link,
        i={"memberId": to_global_id("Member", member.id), "accountId": None},
    )
    assert (await ok(client, t["late"], MINE))["myCases"]["nodes"] == []
    await refused(client, t["late"], CASE, "NOT_FOUND", id=cid)


async def test_twenty_deciders_of_one_step_decide_once(
    client: httpx.AsyncClient, world: World, owner_conn: Any
) -> None:
    t = await tokens(client, world, "bsA1", "secA")
    cid = await open_case(
        client, t["bsA1"], world.member_gid("memA1"), origin="SERIOUS_PROBLEMS", facts="严重问题"
    )
    [step] = await pending_steps(client, t["secA"], cid)
    variables = {
        "i": {
            "stepId": step["id"],
            "decision": "APPROVE",
            "digest": step["request"]["digest"],
        }
    }
    bodies = await asyncio.gather(
        *(gql(client, t["secA"], DECIDE, variables, status=None) for _ in range(20))
    )
    winners = [b for b in bodies if not b.get("errors")]
    assert len(winners) == 1, bodies
    assert all("APPROVAL_ALREADY_DECIDED" in error_codes(b) for b in bodies if b.get("errors"))
    case_id = from_global_id(cid, "DisposalCase")[1]
    filings = owner_conn.execute(
        "SELECT count(*) FROM case_records WHERE case_id = %s AND kind = 'filing'", (case_id,)
    ).fetchone()
    assert filings == (1,)
    assert (await stage_of(client, t["bsA1"], cid))["stage"] == "FILED"


async def test_business_dates_follow_the_request_clock(state: AppState) -> None:
    """A service reads "today" from the transaction's clock (set by the view from
    AppState.clock), as an Asia/Shanghai date: 16:30 UTC is the next day there."""
    world = await build_world(state)
    fixed = datetime.combine(date.today() - timedelta(days=1), datetime.min.time(), UTC)
    fixed = fixed.replace(hour=16, minute=30)
    async with state.db.transaction() as tx:
        tx.now = fixed
        op = await operator_principal(tx, name="tests")
        row = await cases_service.open_case(
            tx,
            op,
            member_id=world.members["memA1"].id,
            origin=CaseOrigin.LAPSE_FLAG,
            facts="事实",
            not_sanctioned_statement="不涉及",
        )
    assert row.opened_on == fixed.date() + timedelta(days=1)


@pytest.mark.parametrize("who", ["nobody", "orgB", "secB", "auditor"])
async def test_outsiders_see_nothing(client: httpx.AsyncClient, world: World, who: str) -> None:
    t = await tokens(client, world, "bsA1", who)
    cid = await open_case(client, t["bsA1"], world.member_gid("memA1"), facts="事实")
    await refused(client, t[who], CASE, "NOT_FOUND", id=cid)
    assert (await ok(client, t[who], LIST))["disposalCases"]["nodes"] == []
    await refused(client, t[who], STATEMENT, "NOT_FOUND", c=cid, k="APPEAL", t="x")


async def test_candidates_offer_unqualified_members_with_their_open_case(
    client: httpx.AsyncClient, state: AppState
) -> None:
    """A final unqualified grade offers the member (with the case already open for
    them); readers of the unit's cases see the list, others learn nothing of the unit."""
    world = await build_world(state, cases=True)
    county = await login(client, world.user("county"))
    found = await ok(
        client,
        county,
        """query($b: ID!) { caseCandidates(branchId: $b) { memberId name origin openCaseId } }""",
        b=world.gid("B"),
    )
    assert found["caseCandidates"] == [
        {
            "memberId": world.member_gid("memB1"),
            "name": "memB1同志",
            "origin": "UNQUALIFIED_GRADE",
            "openCaseId": world.record_gid("caseB1"),
        }
    ]
    secretary = await login(client, world.user("bsA1"))
    await refused(client, secretary, CANDIDATES, "NOT_FOUND", b=world.gid("b1"))
    await refused(client, secretary, LIST, "NOT_FOUND", b=world.gid("a2"))


async def test_a_rejected_correction_is_proposed_again_and_then_achieved(
    client: httpx.AsyncClient,
    state: AppState,
    world: World,
    owner_conn: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A rejection returns the case to the branch with the reason; approved, the member
    is `correcting` with the deadline of the township's grading policy (3 months here,
    set by the county); corrected, `active` again."""
    eds = await people(state, world)
    t = await tokens(client, world, "bsA1", "secA", "county")
    await ok(
        client,
        t["county"],
        SET_POLICY,
        i={"orgUnitId": world.gid("A"), "correctionMonths": 3, "note": "限期改正三个月"},
    )
    cid = await open_case(
        client, t["bsA1"], world.member_gid("memA1"), origin="UNQUALIFIED_GRADE", facts="评议不合格"
    )
    await decide(client, t["secA"], cid)
    await ok(
        client,
        t["bsA1"],
        TALK,
        i={
            "caseId": cid,
            "talkers": ["甲", "乙"],
            "summary": "谈话",
            "response": "HEARD",
            "wantsToStay": True,
        },
    )
    ids = [to_global_id("Member", eds[e].id) for e in ("ed1", "ed2")]
    await ok(client, t["bsA1"], EDUCATORS, i={"caseId": cid, "educatorMemberIds": ids})
    await ok(
        client, t["bsA1"], REEVAL, i={"caseId": cid, "participants": ["全体"], "summary": "评议"}
    )
    for decision in ("REJECT", "APPROVE"):
        proposed = await ok(
            client,
            t["bsA1"],
            PROPOSE,
            i={"caseId": cid, "disposal": "CORRECTION", "reasons": "愿意改正"},
        )
        assert proposed["proposeCaseDisposal"]["case"]["correctionMonths"] == 3
        await ok(
            client, t["secA"], PRE_REVIEW, i={"caseId": cid, "agreed": True, "opinion": "同意"}
        )
        vote = assembly_vote(await voters(client, t["bsA1"], cid))
        await ok(client, t["bsA1"], ASSEMBLY, i={"caseId": cid, **vote})
        await ok(client, t["bsA1"], SUBMIT, c=cid)
        await decide(client, t["secA"], cid, decision)
        if decision == "REJECT":
            seen = await stage_of(client, t["bsA1"], cid)
            assert seen["stage"] == "RE_EVALUATED"
            assert seen["records"]["nodes"][-1]["body"] == "理由"
            assert member_status(world, owner_conn, "memA1")[0] == "active"
    seen = await stage_of(client, t["bsA1"], cid)
    today = business_today(datetime.now(UTC))
    assert seen["stage"] == "CORRECTING"
    assert seen["correctionDeadline"] == correction_deadline(today, 3).isoformat()
    assert member_status(world, owner_conn, "memA1")[0] == "correcting"
    move_clock_to(state, monkeypatch, seen["correctionDeadline"])
    t = await tokens(client, world, "bsA1", "secA")
    done = await ok(
        client, t["bsA1"], CORRECTION, i={"caseId": cid, "corrected": True, "finding": "已改正"}
    )
    assert done["recordCorrectionReview"]["case"]["stage"] == "CLOSED"
    assert member_status(world, owner_conn, "memA1") == ("active", None, None)


async def test_a_filing_returned_for_material_is_resubmitted(
    client: httpx.AsyncClient, world: World
) -> None:
    t = await tokens(client, world, "bsA1", "secA")
    cid = await open_case(client, t["bsA1"], world.member_gid("memA1"), facts="三不")
    resubmit = """mutation($c: ID!, $m: String!) { resubmitDisposalCase(caseId: $c,
      material: $m) { case { stage } } }"""
    await refused(client, t["bsA1"], resubmit, "CASE_STAGE_INVALID", c=cid, m="材料")
    await decide(client, t["secA"], cid, "RETURN")
    assert (await stage_of(client, t["bsA1"], cid))["stage"] == "OPENED"
    await ok(client, t["bsA1"], resubmit, c=cid, m="补充考勤记录")
    await decide(client, t["secA"], cid)
    seen = await stage_of(client, t["bsA1"], cid)
    assert seen["stage"] == "FILED"
    assert "补充考勤记录" in [r["body"] for r in seen["records"]["nodes"]]


async def test_the_views_clock_sets_the_business_date(
    client: httpx.AsyncClient, state: AppState, world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Over HTTP the service's clock (AppState.clock) decides "today": with the clock at
    noon Shanghai time yesterday, a case opens yesterday and a step dated today (by the
    wall clock) is in the future."""
    token = await login(client, world.user("bsA1"))
    wall_today = business_today(datetime.now(UTC))
    yesterday_noon = datetime.combine(wall_today - timedelta(days=1), datetime.min.time(), UTC)
    monkeypatch.setattr(state, "clock", lambda: yesterday_noon + timedelta(hours=4))
    body = {
        "memberId": world.member_gid("memA1"),
        "origin": "LAPSE_FLAG",
        "facts": "三不",
        "notSanctionedStatement": "不涉及",
    }
    await refused(client, token, OPEN, "CASE_DATE_INVALID", i=body | {"openedOn": str(wall_today)})
    opened = await ok(client, token, OPEN, i=body)
    assert opened["openDisposalCase"]["case"]["openedOn"] == str(wall_today - timedelta(days=1))


async def test_out_of_contact_is_for_suspended_members_only(
    client: httpx.AsyncClient, world: World
) -> None:
    token = await login(client, world.user("bsA1"))
    body = {
        "memberId": world.member_gid("memA1"),
        "origin": "OUT_OF_CONTACT",
        "facts": "失联",
        "notSanctionedStatement": "不涉及",
    }
    await refused(client, token, OPEN, "CASE_ORIGIN_STATUS_MISMATCH", i=body)


STATUS = """mutation($i: ChangeMemberStatusInput!) { changeMemberStatus(input: $i) {
  member { status } } }"""


async def test_the_case_holds_the_status_and_a_backdated_opening_meets_the_sanction(
    client: httpx.AsyncClient, world: World
) -> None:
    """While a case is open, removal and withdrawal are the case's to record, and 限期改正
    is never set by hand; an opening dated back beyond a recent sanction's lookback is
    still refused (double handling is also measured from today)."""
    t = await tokens(client, world, "bsA1", "secA", "orgA")
    today = business_today(datetime.now(UTC))
    body = {
        "origin": "SERIOUS_PROBLEMS",
        "facts": "长期不参加组织生活",
        "notSanctionedStatement": "本案不涉及已受党纪处分的问题",
    }
    # otherA1 has a sanction of this year: refused today and refused backdated.
    for opened in (today, today - timedelta(days=360)):
        await refused(
            client,
            t["bsA1"],
            OPEN,
            "ALREADY_SANCTIONED",
            i=body | {"memberId": world.member_gid("otherA1"), "openedOn": str(opened)},
        )
    await refused(
        client,
        t["bsA1"],
        OPEN,
        "CASE_DATE_INVALID",
        i=body | {"memberId": world.member_gid("memA1"), "openedOn": "2020-01-01"},
    )
    await ok(client, t["bsA1"], OPEN, i=body | {"memberId": world.member_gid("memA1")})
    for status in ("REMOVED", "WITHDREW", "CORRECTING"):
        await refused(
            client,
            t["orgA"],
            STATUS,
            "STATUS_HELD_BY_CASE",
            i={"memberId": world.member_gid("memA1"), "status": status, "effectiveOn": str(today)},
        )
