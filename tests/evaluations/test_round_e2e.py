"""A whole round over HTTP and WebSocket: a branch of 30 members (each with a login)
and 5 mass representatives (one-time tokens) goes from an open round to a final one,
with a rejection by the superior committee on the way. The township secretary's
`approvalInbox` subscription receives each step as it arrives; each member's
`myEvaluationResult` subscription receives their own final grade, nobody else's."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import date, timedelta
from typing import Any

import httpx
import psycopg
import pytest

from service.app import AppState
from service.auth.service import operator_principal
from service.authz.roles import Role
from service.members.service import link_account
from service.schema.ids import to_global_id
from tests import factories
from tests.events.conftest import GraphQLWS, Server, serve_app, subscribed
from tests.support import World, error_codes, gql, login

MEMBERS = 30
MASS = 5

OPEN = """mutation($i: OpenEvaluationRoundsInput!) { openEvaluationRounds(input: $i) {
  rounds { id stage } } }"""
ADVANCE = """mutation($r: ID!, $s: EvaluationStage!) {
  advanceEvaluationRound(roundId: $r, expectedStage: $s) {
    round { id stage sentBackReason } } }"""
SELF = """mutation($r: ID!, $t: String!) { writeSelfEvaluation(roundId: $r, text: $t) {
  entry { id selfEvaluation } } }"""
TOKENS = """mutation($r: ID!, $n: Int!) { issueBallotTokens(roundId: $r, count: $n) {
  tokens } }"""
BALLOT = """mutation($r: ID!, $g: [BallotGradeInput!]!) {
  castEvaluationBallot(roundId: $r, grades: $g) { accepted } }"""
TOKEN_BALLOT = """mutation($t: String!, $g: [BallotGradeInput!]!) {
  castTokenBallot(token: $t, grades: $g) { accepted } }"""
DETERMINATIONS = """query($r: ID!) { evaluationDeterminations(roundId: $r, first: 100) {
  nodes { entry { name computedGrade member { id } } committeeGrade assemblyPassed toldAt
          finalGrade } } }"""
PROPOSE = """mutation($i: ProposeEvaluationGradesInput!) { proposeEvaluationGrades(input: $i) {
  determinations { committeeGrade committeeReason } } }"""
ASSEMBLY = """mutation($i: RecordEvaluationAssemblyInput!) { recordEvaluationAssembly(input: $i) {
  assembly { expectedVoters presentCount } } }"""
VOTE = """mutation($i: RecordAssemblyVoteInput!) { recordAssemblyVote(input: $i) {
  determination { assemblyPassed votesFor } } }"""
TELL = """mutation($i: TellEvaluationResultsInput!) { tellEvaluationResults(input: $i) {
  determinations { toldAt } } }"""
DECIDE = """mutation($i: DecideApprovalStepInput!) { decideApprovalStep(input: $i) {
  step { id state decision } } }"""
OBJECT = """mutation($i: RaiseEvaluationObjectionInput!) { raiseEvaluationObjection(input: $i) {
  objection { id text } } }"""
ANSWER = """mutation($i: AnswerEvaluationObjectionInput!) { answerEvaluationObjection(input: $i) {
  objection { id answer } } }"""
INBOX = """subscription { approvalInbox { change step { id state request { id digest } } } }"""
RESULT = """subscription { myEvaluationResult { grade gradeLabel round { id stage }
  entry { name finalGrade } } }"""
MY = """{ myEvaluations(first: 10) { nodes { name finalGrade round { id } } }
  memberGrades(first: 10) { nodes { year grade } } }"""


@pytest.fixture
async def server(state: AppState, settings: Any, database: Any) -> AsyncIterator[Server]:
    async with serve_app(settings, database.owner_url) as running:
        yield running


async def ok(client: httpx.AsyncClient, token: str | None, query: str, **variables: Any) -> Any:
    body = await gql(client, token, query, variables)
    assert "errors" not in body, body
    return body["data"]


async def next_data(ws: GraphQLWS, op_id: str = "1") -> dict[str, Any]:
    message = await ws.recv()
    assert message["type"] == "next" and message["id"] == op_id, message
    assert "errors" not in message["payload"], message
    return message["payload"]["data"]  # type: ignore[no-any-return]


async def branch_of_thirty(state: AppState, world: World) -> list[tuple[str, Any]]:
    """a1's members, each with a login: memA1 and otherA1 of the world (otherA1 gets an
    account) and 28 more from the factories. Returns (username, member row)."""
    people: list[tuple[str, Any]] = [("memA1", world.members["memA1"])]
    async with state.db.transaction() as tx:
        op = await operator_principal(tx, name="tests")
        a1 = world.units["a1"]
        others = [world.members["otherA1"]]
        others += [await factories.member(tx, op, branch=a1) for _ in range(MEMBERS - 2)]
        for n, member in enumerate(others):
            username = world.user(f"m{n}")
            account = await factories.account(tx, op, home=a1, username=username, role=Role.MEMBER)
            await link_account(tx, op, member_id=member.id, account_id=account.id)
            people.append((f"m{n}", member))
    return people


async def test_round_from_opening_to_final_with_a_rejection(
    server: Server,
    client: httpx.AsyncClient,
    state: AppState,
    world: World,
    owner_conn: psycopg.Connection[Any],
) -> None:
    people = await branch_of_thirty(state, world)
    assert len(people) == MEMBERS
    gid = {who: to_global_id("Member", m.id) for who, m in people}
    star, star_gid = people[0][1], gid["memA1"]  # graded excellent by everyone
    # m1: the committee's change, rejected by the superior (not otherA1: the world's
    # warning of this year rules excellent out for them, whatever the reason)
    runner = people[2][1]
    secretary = await login(client, world.user("bsA1"))
    tokens = {who: await login(client, world.user(who)) for who, _ in people}

    # --- open, self-evaluation, balloting -------------------------------------------
    year = date.today().year
    data = await ok(
        client,
        secretary,
        OPEN,
        i={"orgUnitId": world.gid("a1"), "year": year, "half": 1, "title": "上半年民主评议"},
    )
    round_id = data["openEvaluationRounds"]["rounds"][0]["id"]

    async def advance(stage: str) -> dict[str, Any]:
        moved = await ok(client, secretary, ADVANCE, r=round_id, s=stage)
        return moved["advanceEvaluationRound"]["round"]  # type: ignore[no-any-return]

    assert (await advance("DRAFT"))["stage"] == "SELF_EVALUATION"
    await ok(client, tokens["memA1"], SELF, r=round_id, t="认真学习，积极工作")
    assert (await advance("SELF_EVALUATION"))["stage"] == "BALLOTING"
    issued = await ok(client, secretary, TOKENS, r=round_id, n=MASS)
    mass_tokens = issued["issueBallotTokens"]["tokens"]
    assert len(mass_tokens) == MASS

    def ballot(voter: str | None) -> list[dict[str, str]]:
        return [
            {"memberId": gid[who], "grade": "EXCELLENT" if who == "memA1" else "QUALIFIED"}
            for who, _ in people
            if who != voter
        ]

    for who, _ in people:
        await ok(client, tokens[who], BALLOT, r=round_id, g=ballot(who))
    again = await gql(client, tokens["m5"], BALLOT, {"r": round_id, "g": ballot("m5")})
    assert error_codes(again) == ["ALREADY_VOTED"]
    for token in mass_tokens:
        await ok(client, None, TOKEN_BALLOT, t=token, g=ballot(None))
    assert (await advance("BALLOTING"))["stage"] == "TALLIED"

    async def determinations(token: str = secretary) -> dict[str, Any]:
        found = await ok(client, token, DETERMINATIONS, r=round_id)
        return {n["entry"]["member"]["id"]: n for n in found["evaluationDeterminations"]["nodes"]}

    seen = await determinations()
    assert len(seen) == MEMBERS
    assert seen[star_gid]["entry"]["computedGrade"] == "EXCELLENT"
    assert {n["entry"]["computedGrade"] for k, n in seen.items() if k != star_gid} == {"QUALIFIED"}

    # --- the committee, the assembly, telling: the first time ----------------------
    runner_gid = to_global_id("Member", runner.id)
    change = {"memberId": runner_gid, "grade": "EXCELLENT"}
    refused = await gql(
        client, secretary, PROPOSE, {"i": {"roundId": round_id, "grades": [change]}}
    )
    assert error_codes(refused) == ["CHANGE_REASON_REQUIRED"]
    changed = await ok(
        client,
        secretary,
        PROPOSE,
        i={"roundId": round_id, "grades": [change | {"reason": "带领群众抗洪，表现突出"}]},
    )
    assert changed["proposeEvaluationGrades"]["determinations"][0]["committeeGrade"] == "EXCELLENT"
    assert (await advance("TALLIED"))["stage"] == "PROPOSED"

    async def assembly_and_tell() -> None:
        assert (await advance("PROPOSED"))["stage"] == "ASSEMBLY"
        present = [gid[who] for who, _ in people[:-1]]  # one member away
        recorded = await ok(
            client,
            secretary,
            ASSEMBLY,
            i={
                "roundId": round_id,
                "heldOn": date.today().isoformat(),
                "presentMemberIds": present,
            },
        )
        assert recorded["recordEvaluationAssembly"]["assembly"] == {
            "expectedVoters": MEMBERS,
            "presentCount": MEMBERS - 1,
        }
        for who, _ in people:
            voted = await ok(
                client,
                secretary,
                VOTE,
                i={
                    "roundId": round_id,
                    "memberId": gid[who],
                    "votesFor": MEMBERS - 3,
                    "votesAgainst": 1,
                    "votesAbstain": 1,
                },
            )
            assert voted["recordAssemblyVote"]["determination"]["assemblyPassed"] is True
        told = await ok(client, secretary, TELL, i={"roundId": round_id})
        assert len(told["tellEvaluationResults"]["determinations"]) == MEMBERS

    await assembly_and_tell()

    # --- the superior's inbox, live: rejected ---------------------------------------
    township = await login(client, world.user("secA"))
    async with subscribed(server, township, INBOX, topic="approval_step") as inbox:
        assert (await advance("ASSEMBLY"))["stage"] == "SUPERIOR_REVIEW"
        arrived = (await next_data(inbox))["approvalInbox"]
        assert arrived["change"] == "ARRIVED" and arrived["step"]["state"] == "PENDING"
        step, digest = arrived["step"]["id"], arrived["step"]["request"]["digest"]
        rejected = await ok(
            client,
            township,
            DECIDE,
            i={
                "stepId": step,
                "decision": "REJECT",
                "reason": "优秀等次须按计票结果",
                "digest": digest,
            },
        )
        assert rejected["decideApprovalStep"]["step"]["decision"] == "REJECT"
        decided = (await next_data(inbox))["approvalInbox"]
        assert (decided["change"], decided["step"]["id"]) == ("DECIDED", step)

        # Back to the committee with the reason; re-determined and submitted again.
        seen = await determinations()
        assert seen[runner_gid]["assemblyPassed"] is None and seen[runner_gid]["toldAt"] is None
        await ok(
            client,
            secretary,
            PROPOSE,
            i={"roundId": round_id, "grades": [{"memberId": runner_gid, "grade": "QUALIFIED"}]},
        )
        await assembly_and_tell()
        assert (await advance("ASSEMBLY"))["stage"] == "SUPERIOR_REVIEW"
        second = (await next_data(inbox))["approvalInbox"]
        assert second["change"] == "ARRIVED" and second["step"]["id"] != step

        # Members hear their own final grade later: subscribe now, two of them.
        async with (
            subscribed(server, tokens["memA1"], RESULT, topic="evaluation_result") as star_ws,
            subscribed(server, tokens["m1"], RESULT, topic="evaluation_result") as runner_ws,
        ):
            approved = await ok(
                client,
                township,
                DECIDE,
                i={
                    "stepId": second["step"]["id"],
                    "decision": "APPROVE",
                    "digest": second["step"]["request"]["digest"],
                },
            )
            assert approved["decideApprovalStep"]["step"]["state"] == "APPROVED"

            # --- public notice: an objection, answered; then final -------------------
            objection = await ok(
                client,
                tokens["m1"],
                OBJECT,
                i={"roundId": round_id, "memberId": runner_gid, "text": "请复核本人的等次"},
            )
            objection_id = objection["raiseEvaluationObjection"]["objection"]["id"]
            early = await gql(client, secretary, ADVANCE, {"r": round_id, "s": "PUBLIC_NOTICE"})
            assert error_codes(early) == ["NOTICE_NOT_OVER"]
            # The notice period runs out (its days pass).
            owner_conn.execute(
                "UPDATE evaluation_rounds SET notice_ends_on = %s WHERE id = %s",
                (date.today() - timedelta(days=1), _local(round_id)),
            )
            pending = await gql(client, secretary, ADVANCE, {"r": round_id, "s": "PUBLIC_NOTICE"})
            assert error_codes(pending) == ["OBJECTIONS_OPEN"]
            await ok(
                client,
                secretary,
                ANSWER,
                i={"objectionId": objection_id, "answer": "经复核，维持合格等次"},
            )
            assert (await advance("PUBLIC_NOTICE"))["stage"] == "FINAL"

            mine = (await next_data(star_ws))["myEvaluationResult"]
            assert mine["grade"] == "EXCELLENT" and mine["gradeLabel"] == "优秀"
            assert mine["entry"]["name"] == star.name and mine["round"]["stage"] == "FINAL"
            theirs = (await next_data(runner_ws))["myEvaluationResult"]
            assert theirs["grade"] == "QUALIFIED" and theirs["entry"]["name"] == runner.name

    # Each member sees their own final grade and its place in their history.
    own = await ok(client, tokens["memA1"], MY)
    this_round = [n for n in own["myEvaluations"]["nodes"] if n["round"]["id"] == round_id]
    assert [(n["name"], n["finalGrade"]) for n in this_round] == [(star.name, "EXCELLENT")]
    assert {"year": year, "grade": "EXCELLENT"} in own["memberGrades"]["nodes"]
    final = await determinations()
    assert final[runner_gid]["finalGrade"] == "QUALIFIED"
    assert sum(n["finalGrade"] == "EXCELLENT" for n in final.values()) == 1


def _local(global_id: str) -> int:
    from service.schema.ids import from_global_id

    return from_global_id(global_id, "EvaluationRound")[1]


async def test_result_events_stay_with_their_member(
    server: Server, client: httpx.AsyncClient, state: AppState, world: World
) -> None:
    """Isolation of `myEvaluationResult`: township B's member hears B's round only,
    A's member A's only; a secretary who reads the whole round hears nothing."""
    from tests.evaluations.test_determinations import tallied, to_final

    async with state.db.transaction() as tx:
        op = await operator_principal(tx, name="tests")
        account = await factories.account(
            tx, op, home=world.units["b1"], username=world.user("memB1"), role=Role.MEMBER
        )
        await link_account(tx, op, member_id=world.members["memB1"].id, account_id=account.id)
        await factories.member(tx, op, branch=world.units["b1"])  # someone grades memB1
    a_round, _ = await tallied(state, world, lambda e: "qualified")
    b_round, _ = await tallied(state, world, lambda e: "qualified", branch="b1")
    token_a = await login(client, world.user("memA1"))
    token_b = await login(client, world.user("memB1"))
    token_sec = await login(client, world.user("bsA1"))
    topic = "evaluation_result"
    async with (
        subscribed(server, token_a, RESULT, topic=topic) as sub_a,
        subscribed(server, token_b, RESULT, topic=topic) as sub_b,
        subscribed(server, token_sec, RESULT, topic=topic) as sub_sec,
    ):
        await to_final(state, world, a_round)
        mine = (await next_data(sub_a))["myEvaluationResult"]
        assert mine["round"]["id"] == to_global_id("EvaluationRound", a_round.id)
        assert mine["entry"]["name"] == world.members["memA1"].name
        # B's member: the first event is B's own round, A's never came.
        await to_final(state, world, b_round)
        theirs = (await next_data(sub_b))["myEvaluationResult"]
        assert theirs["round"]["id"] == to_global_id("EvaluationRound", b_round.id)
        assert theirs["entry"]["name"] == world.members["memB1"].name
        # The secretary is on no roster: nothing arrived for them; a ping is answered
        # first (messages are in order).
        await sub_sec.send({"type": "ping"})
        assert (await sub_sec.recv())["type"] == "pong"
