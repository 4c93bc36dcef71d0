"""Evaluation rounds (民主评议) through the API and the service: opening (a branch, a
county-wide batch, duplicates), stage moves (roles, order, send back), the roster
(probation, probationary members), self-evaluation, excused members, secret ballots of
members and of mass representatives (tokens), closing with turnout, tally and
proposals, and what the database holds after a round (secrecy)."""

from __future__ import annotations

import asyncio
import hashlib
from collections import namedtuple
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import httpx
import psycopg
import pytest
from psycopg import errors

from service.app import AppState
from service.auth.service import operator_principal
from service.authz.roles import Role
from service.evaluations import service as evaluations
from service.evaluations.rules import GradingPolicy
from service.evaluations.stages import Stage
from service.members.rules import MemberCategory
from service.members.service import link_account, move_member
from service.schema.ids import to_global_id
from tests import factories
from tests.support import World, error_codes, gql, login

OPEN = """mutation($i: OpenEvaluationRoundsInput!) { openEvaluationRounds(input: $i) {
  rounds { id title year half stage stageLabel policyVersion branch { name } } } }"""
ADVANCE = """mutation($r: ID!, $s: EvaluationStage!) {
  advanceEvaluationRound(roundId: $r, expectedStage: $s) { round { id stage ballotsCast } } }"""
SEND_BACK = """mutation($r: ID!, $why: String!) {
  sendBackEvaluationRound(roundId: $r, reason: $why) { round { stage sentBackReason } } }"""
SELF = """mutation($r: ID!, $t: String!) { writeSelfEvaluation(roundId: $r, text: $t) {
  entry { name selfEvaluation } } }"""
EXCUSE = """mutation($r: ID!, $m: ID!) { excuseFromEvaluation(roundId: $r, memberId: $m,
  reason: FRAIL, opinion: "同意支部评议意见") {
  entry { name excused excusedReason excusedOpinion } } }"""
CAST = """mutation($r: ID!, $g: [BallotGradeInput!]!) {
  castEvaluationBallot(roundId: $r, grades: $g) { accepted } }"""
TOKENS = """mutation($r: ID!, $n: Int!) { issueBallotTokens(roundId: $r, count: $n) {
  tokens expiresAt round { massTokensIssued } } }"""
TOKEN_BALLOT = (
    """query($t: String!) { tokenBallot(token: $t) { title candidates { memberId name } } }"""
)
TOKEN_CAST = """mutation($t: String!, $g: [BallotGradeInput!]!) {
  castTokenBallot(token: $t, grades: $g) { accepted } }"""
ROUND = """query($r: ID!) { node(id: $r) { ... on EvaluationRound { stage ballotsCast
  countsVisible rosterVoters entries(first: 50) { nodes { name position mayVote category
  excused selfEvaluation computedGrade computedRule counts { excellent qualified basic
  unqualified blank } shares { excellent qualified basic unqualified }
  needsDecision { reason } finalGrade } } } } }"""
ROUNDS = """query($u: ID, $y: Int, $s: EvaluationStage) {
  evaluationRounds(orgUnitId: $u, year: $y, stage: $s, first: 50) {
  nodes { title stage branch { name } } } }"""
MINE = """{ myEvaluations { nodes { name selfEvaluation computedGrade finalGrade
  round { title } } } }"""
YEAR = date.today().year
# Votes a round's counters hold (ballots' graded positions; blanks are not counted).
VOTES_COUNTED = "coalesce(sum(excellent + qualified + basic + unqualified), 0)"


@dataclass
class Branch:
    """A branch of township A with members, each with a login (`logins[i]` is the
    username of `members[i]`), and a branch secretary (`secretary`)."""

    unit: Any
    members: list[Any]
    logins: list[str]
    secretary: str
    tokens: dict[str, str] = field(default_factory=dict)

    @property
    def gid(self) -> str:
        return to_global_id("OrgUnit", self.unit.id)

    def mid(self, i: int) -> str:
        return to_global_id("Member", self.members[i].id)


async def _branch(
    state: AppState,
    world: World,
    count: int,
    *,
    probationary: int = 0,
    on_probation: int = 0,
) -> Branch:
    """A new branch below A with `count` members: the last `probationary` of them
    probationary members, the first `on_probation` under probation (留党察看一年, today)."""
    async with state.db.transaction() as tx:
        op = await operator_principal(tx, name="tests")
        unit = await factories.org_unit(tx, op, parent=world.units["A"])
        members, logins = [], []
        for i in range(count):
            category = MemberCategory.PROBATIONARY if i >= count - probationary else None
            member = await factories.member(
                tx,
                op,
                branch=unit,
                name=f"评议{i}号{factories.unique('')}",
                **({"category": category} if category else {}),
            )
            username = factories.unique("voter").lower()
            account = await factories.account(
                tx, op, home=unit, username=username, role=Role.MEMBER
            )
            await link_account(tx, op, member_id=member.id, account_id=account.id)
            if i < on_probation:
                await factories.sanction(tx, op, member=member, kind="probation_one_year")
            members.append(member)
            logins.append(username)
        secretary = factories.unique("bsec").lower()
        await factories.account(tx, op, home=unit, username=secretary, role=Role.BRANCH_SECRETARY)
    return Branch(unit=unit, members=members, logins=logins, secretary=secretary)


async def _token(client: httpx.AsyncClient, branch: Branch, who: str) -> str:
    if who not in branch.tokens:
        branch.tokens[who] = await login(client, who)
    return branch.tokens[who]


async def _open(client: httpx.AsyncClient, token: str, unit: str, half: int = 1) -> list[Any]:
    body = await gql(
        client,
        token,
        OPEN,
        {"i": {"orgUnitId": unit, "year": YEAR, "half": half, "title": f"{YEAR}年民主评议"}},
    )
    assert "errors" not in body, body
    return list(body["data"]["openEvaluationRounds"]["rounds"])


async def _advance(client: httpx.AsyncClient, token: str, rid: str, stage: str) -> dict[str, Any]:
    return await gql(client, token, ADVANCE, {"r": rid, "s": stage})


async def _to_balloting(client: httpx.AsyncClient, branch: Branch) -> str:
    sec = await _token(client, branch, branch.secretary)
    [row] = await _open(client, sec, branch.gid)
    for stage in ("DRAFT", "SELF_EVALUATION"):
        body = await _advance(client, sec, row["id"], stage)
        assert "errors" not in body, body
    return str(row["id"])


def _grades(branch: Branch, grades: dict[int, str]) -> list[dict[str, str]]:
    return [{"memberId": branch.mid(i), "grade": g} for i, g in grades.items()]


async def _vote(
    client: httpx.AsyncClient, branch: Branch, voter: int, rid: str, grades: dict[int, str]
) -> dict[str, Any]:
    token = await _token(client, branch, branch.logins[voter])
    return await gql(client, token, CAST, {"r": rid, "g": _grades(branch, grades)})


def _local(gid: str) -> int:
    from service.schema.ids import from_global_id

    return from_global_id(gid)[1]


# --- opening ------------------------------------------------------------------------


async def test_branch_secretary_opens_their_round_once(
    client: httpx.AsyncClient, world: World
) -> None:
    token = await login(client, world.user("bsA1"))
    [row] = await _open(client, token, world.gid("a1"))
    assert row["stage"] == "DRAFT" and row["stageLabel"] == "未启动"
    assert row["branch"]["name"] == "甲镇第一支部" and row["policyVersion"] >= 1
    again = await gql(
        client,
        token,
        OPEN,
        {"i": {"orgUnitId": world.gid("a1"), "year": YEAR, "half": 1, "title": "再来一次"}},
    )
    assert error_codes(again) == ["ROUND_EXISTS"]
    # Another half-year is another round; a member may not open one.
    assert len(await _open(client, token, world.gid("a1"), half=2)) == 1
    member = await login(client, world.user("memA1"))
    refused = await gql(
        client,
        member,
        OPEN,
        {"i": {"orgUnitId": world.gid("a1"), "year": YEAR + 1, "half": 1, "title": "x"}},
    )
    assert error_codes(refused) in (["FORBIDDEN"], ["NOT_FOUND"])


async def test_county_opens_one_round_per_active_branch_each_audited_in_its_tenant(
    client: httpx.AsyncClient, world: World, owner_conn: psycopg.Connection[Any]
) -> None:
    token = await login(client, world.user("county"))
    rows = await _open(client, token, world.gid("county"))
    names = sorted(r["branch"]["name"] for r in rows)
    assert names == sorted(["甲镇第一支部", "甲镇第二支部", "甲镇企业第一支部", "乙镇第一支部"])
    audited = owner_conn.execute(
        "SELECT tenant_id, count(*) FROM audit_events WHERE action = 'evaluation.open'"
        " AND object_id = ANY(%s) GROUP BY tenant_id",
        ([str(_local(r["id"])) for r in rows],),
    ).fetchall()
    assert dict(audited) == {world.units["A"].tenant_id: 3, world.units["B"].tenant_id: 1}
    # The committee organizer of A opens A's next half-year: A's branches only.
    org_a = await login(client, world.user("orgA"))
    rows_a = await _open(client, org_a, world.gid("A"), half=2)
    assert len(rows_a) == 3
    # Opening again skips nothing new: refused.
    again = await gql(
        client,
        org_a,
        OPEN,
        {"i": {"orgUnitId": world.gid("A"), "year": YEAR, "half": 2, "title": "再次"}},
    )
    assert error_codes(again) == ["ROUND_EXISTS"]


# --- stages ---------------------------------------------------------------------------


async def test_stage_moves_need_the_role_and_the_stage_before(
    client: httpx.AsyncClient, world: World
) -> None:
    sec = await login(client, world.user("bsA1"))
    [row] = await _open(client, sec, world.gid("a1"))
    rid = row["id"]
    member = await login(client, world.user("memA1"))
    assert error_codes(await _advance(client, member, rid, "DRAFT")) == ["NOT_FOUND"]
    organizer = await login(client, world.user("orgA"))  # reads, does not run
    assert error_codes(await _advance(client, organizer, rid, "DRAFT")) == ["FORBIDDEN"]
    # The stage the user saw must be the stage it is in.
    assert error_codes(await _advance(client, sec, rid, "BALLOTING")) == ["STAGE_CHANGED"]
    moved = await _advance(client, sec, rid, "DRAFT")
    assert moved["data"]["advanceEvaluationRound"]["round"]["stage"] == "SELF_EVALUATION"
    assert error_codes(await _advance(client, sec, rid, "DRAFT")) == ["STAGE_CHANGED"]
    # Sending back is a superior's: not the branch secretary's.
    why = {"r": rid, "why": "自评材料不全"}
    assert error_codes(await gql(client, sec, SEND_BACK, why)) == ["FORBIDDEN"]
    secretary_a = await login(client, world.user("secA"))
    back = await gql(client, secretary_a, SEND_BACK, why)
    assert back["data"]["sendBackEvaluationRound"]["round"] == {
        "stage": "DRAFT",
        "sentBackReason": "自评材料不全",
    }
    empty = await gql(client, secretary_a, SEND_BACK, {"r": rid, "why": "  "})
    assert error_codes(empty) == ["SEND_BACK_REFUSED"] or error_codes(empty) == ["REASON_REQUIRED"]


async def test_roster_fixed_at_balloting_probation_has_no_vote(
    client: httpx.AsyncClient, state: AppState, world: World
) -> None:
    branch = await _branch(state, world, 4, probationary=1, on_probation=1)
    rid = await _to_balloting(client, branch)
    sec = await _token(client, branch, branch.secretary)
    body = await gql(client, sec, ROUND, {"r": rid})
    entries = body["data"]["node"]["entries"]["nodes"]
    assert [e["position"] for e in entries] == [1, 2, 3, 4]
    by_name = {e["name"]: e for e in entries}
    first, last = branch.members[0].name, branch.members[3].name
    assert by_name[first]["mayVote"] is False  # 留党察看
    assert by_name[last]["category"] == "probationary" and by_name[last]["mayVote"] is True
    # The member under probation cannot vote; the probationary member can.
    assert error_codes(await _vote(client, branch, 0, rid, {1: "QUALIFIED"})) == ["NO_VOTE"]
    ok = await _vote(client, branch, 3, rid, {1: "QUALIFIED"})
    assert ok["data"]["castEvaluationBallot"]["accepted"] is True


async def test_self_evaluation_by_the_member_seen_by_the_branch(
    client: httpx.AsyncClient, state: AppState, world: World
) -> None:
    branch = await _branch(state, world, 3)
    sec = await _token(client, branch, branch.secretary)
    [row] = await _open(client, sec, branch.gid)
    rid = row["id"]
    me = await _token(client, branch, branch.logins[0])
    # No roster before self-evaluation opens.
    assert error_codes(await gql(client, me, SELF, {"r": rid, "t": "x"})) == ["NOT_FOUND"]
    await _advance(client, sec, rid, "DRAFT")
    wrote = await gql(client, me, SELF, {"r": rid, "t": "  认真学习，按时交纳党费  "})
    assert (
        wrote["data"]["writeSelfEvaluation"]["entry"]["selfEvaluation"] == "认真学习，按时交纳党费"
    )
    assert error_codes(await gql(client, me, SELF, {"r": rid, "t": "   "})) == [
        "SELF_EVALUATION_MISSING"
    ]
    seen = await gql(client, sec, ROUND, {"r": rid})
    texts = {e["name"]: e["selfEvaluation"] for e in seen["data"]["node"]["entries"]["nodes"]}
    assert texts[branch.members[0].name] == "认真学习，按时交纳党费"
    mine = await gql(client, me, MINE)
    assert [n["selfEvaluation"] for n in mine["data"]["myEvaluations"]["nodes"]] == [
        "认真学习，按时交纳党费"
    ]
    # A member sees their own entry in the round, nobody else's.
    own = await gql(client, me, ROUND, {"r": rid})
    assert [e["name"] for e in own["data"]["node"]["entries"]["nodes"]] == [branch.members[0].name]


async def test_excused_member_recorded_not_graded_and_cannot_vote(
    client: httpx.AsyncClient, state: AppState, world: World
) -> None:
    branch = await _branch(state, world, 4)
    rid = await _to_balloting(client, branch)
    sec = await _token(client, branch, branch.secretary)
    member = await _token(client, branch, branch.logins[1])
    refused = await gql(client, member, EXCUSE, {"r": rid, "m": branch.mid(0)})
    assert error_codes(refused) in (["FORBIDDEN"], ["NOT_FOUND"])
    body = await gql(client, sec, EXCUSE, {"r": rid, "m": branch.mid(0)})
    assert body["data"]["excuseFromEvaluation"]["entry"] == {
        "name": branch.members[0].name,
        "excused": True,
        "excusedReason": "FRAIL",
        "excusedOpinion": "同意支部评议意见",
    }
    assert error_codes(await _vote(client, branch, 0, rid, {1: "QUALIFIED"})) == ["NO_VOTE"]
    assert error_codes(await _vote(client, branch, 1, rid, {0: "QUALIFIED"})) == [
        "BALLOT_CANDIDATE_INVALID"
    ]
    # One who voted cannot be excused afterwards.
    assert "errors" not in await _vote(client, branch, 1, rid, {2: "QUALIFIED"})
    after = await gql(client, sec, EXCUSE, {"r": rid, "m": branch.mid(1)})
    assert error_codes(after) == ["EXCUSE_AFTER_VOTE"]


# --- ballots --------------------------------------------------------------------------


async def test_ballot_rules_and_one_ballot_among_twenty_sent_at_once(
    client: httpx.AsyncClient, state: AppState, world: World, owner_conn: psycopg.Connection[Any]
) -> None:
    branch = await _branch(state, world, 4)
    rid = await _to_balloting(client, branch)
    assert error_codes(await _vote(client, branch, 0, rid, {0: "EXCELLENT"})) == ["SELF_GRADE"]
    twice = {1: "EXCELLENT", 2: "QUALIFIED"} | {}
    dup = [{"memberId": branch.mid(1), "grade": "EXCELLENT"}] * 2
    token = await _token(client, branch, branch.logins[0])
    assert error_codes(await gql(client, token, CAST, {"r": rid, "g": dup})) == [
        "BALLOT_CANDIDATE_INVALID"
    ]
    stranger = await login(client, world.user("memA1"))  # a member of another branch
    assert error_codes(
        await gql(client, stranger, CAST, {"r": rid, "g": _grades(branch, twice)})
    ) == ["NOT_FOUND"]
    answers = await asyncio.gather(*(_vote(client, branch, 0, rid, twice) for _ in range(20)))
    accepted = [a for a in answers if "errors" not in a]
    assert len(accepted) == 1, answers
    assert all(error_codes(a) == ["ALREADY_VOTED"] for a in answers if a not in accepted)
    local = _local(rid)
    # One ballot: its two votes counted (the blanks are not), one participation row.
    assert owner_conn.execute(
        f"SELECT (SELECT {VOTES_COUNTED} FROM evaluation_counts WHERE round_id = %(r)s),"
        " (SELECT count(*) FROM evaluation_participation WHERE round_id = %(r)s),"
        " (SELECT count(*) FROM audit_events WHERE action = 'evaluation.ballot_cast'"
        "  AND object_id = %(s)s AND details = '{}'::jsonb)",
        {"r": local, "s": str(local)},
    ).fetchone() == (2, 1, 1)


async def test_no_counts_before_balloting_closes(
    client: httpx.AsyncClient,
    state: AppState,
    world: World,
    app_conn: psycopg.Connection[Any],
    owner_conn: psycopg.Connection[Any],
) -> None:
    branch = await _branch(state, world, 3)
    rid = await _to_balloting(client, branch)
    for voter in (0, 1):
        assert "errors" not in await _vote(client, branch, voter, rid, {2: "EXCELLENT"})
    for who in (branch.secretary, world.user("county")):
        token = await login(client, who)
        node = (await gql(client, token, ROUND, {"r": rid}))["data"]["node"]
        assert node["ballotsCast"] is None and node["countsVisible"] is False
        assert all(
            e["counts"] is None and e["computedGrade"] is None for e in node["entries"]["nodes"]
        )
    # The application role can neither read nor touch the counters, nor take the counts
    # of an open round; it can only add a ballot to a balloting round through the
    # function.
    tenant = branch.unit.tenant_id
    for statement in (
        "SELECT position, excellent FROM evaluation_counts",
        "UPDATE evaluation_counts SET excellent = 0",
        "DELETE FROM evaluation_counts",
        "INSERT INTO evaluation_counts (tenant_id, round_id, position)"
        f" VALUES ({int(tenant)}, 1, 1)",
    ):
        with pytest.raises(errors.InsufficientPrivilege):
            with app_conn.transaction():
                app_conn.execute(f"SET LOCAL app.tenant_ids = '{int(tenant)}'")
                app_conn.execute(statement)
    with pytest.raises(errors.InsufficientPrivilege, match="not closed"):
        with app_conn.transaction():
            app_conn.execute(f"SET LOCAL app.tenant_ids = '{int(tenant)}'")
            app_conn.execute(
                "SELECT * FROM evaluation_take_counts(%s)", ([_local(rid)],)
            ).fetchall()
    app_conn.rollback()
    # The refusal took nothing: both ballots are still counted.
    assert owner_conn.execute(
        f"SELECT {VOTES_COUNTED} FROM evaluation_counts WHERE round_id = %s", (_local(rid),)
    ).fetchone() == (2,)


# --- tokens ---------------------------------------------------------------------------


async def test_ballot_tokens_once_hashed_single_use_same_refusal(
    client: httpx.AsyncClient, state: AppState, world: World, owner_conn: psycopg.Connection[Any]
) -> None:
    branch = await _branch(state, world, 3)
    rid = await _to_balloting(client, branch)
    other = await _branch(state, world, 3)
    other_rid = await _to_balloting(client, other)
    sec = await _token(client, branch, branch.secretary)
    member = await _token(client, branch, branch.logins[0])
    assert error_codes(await gql(client, member, TOKENS, {"r": rid, "n": 2})) in (
        ["FORBIDDEN"],
        ["NOT_FOUND"],
    )
    issued = (await gql(client, sec, TOKENS, {"r": rid, "n": 4}))["data"]["issueBallotTokens"]
    tokens = issued["tokens"]
    assert issued["round"]["massTokensIssued"] == 4 and len(set(tokens)) == 4
    assert all(t.startswith(f"pyb_{branch.unit.tenant_id}_{_local(rid)}_") for t in tokens)
    assert all(len(t.split("_", 3)[3]) >= 43 for t in tokens)  # 32 random bytes
    stored = owner_conn.execute(
        "SELECT token_hash FROM evaluation_ballot_tokens WHERE round_id = %s", (_local(rid),)
    ).fetchall()
    assert sorted(bytes(r[0]) for r in stored) == sorted(
        hashlib.sha256(t.encode()).digest() for t in tokens
    )
    for t in tokens:  # the token itself is nowhere: not in the table, not in the log
        secret = t.split("_", 3)[3]
        assert owner_conn.execute(
            "SELECT count(*) FROM audit_events WHERE details::text LIKE %s", (f"%{secret}%",)
        ).fetchone() == (0,)

    # Without an account: the ballot shows the title and the names, nothing else.
    seen = await gql(client, None, TOKEN_BALLOT, {"t": tokens[0]})
    assert seen["data"]["tokenBallot"]["title"] == f"{YEAR}年民主评议"
    assert sorted(c["name"] for c in seen["data"]["tokenBallot"]["candidates"]) == sorted(
        m.name for m in branch.members
    )
    grades = _grades(branch, {0: "EXCELLENT", 1: "BASIC"})
    cast = await gql(client, None, TOKEN_CAST, {"t": tokens[0], "g": grades})
    assert cast["data"]["castTokenBallot"]["accepted"] is True

    # Used, made up, bound to another round, expired: one and the same refusal.
    secret = tokens[1].split("_", 3)[3]
    foreign = f"pyb_{branch.unit.tenant_id}_{_local(other_rid)}_{secret}"
    owner_conn.execute(
        "UPDATE evaluation_ballot_tokens SET expires_at = now() - interval '1 second'"
        " WHERE token_hash = %s",
        (hashlib.sha256(tokens[2].encode()).digest(),),
    )
    made_up = f"pyb_{branch.unit.tenant_id}_{_local(rid)}_{'A' * 43}"
    refusals = []
    truncated = tokens[1][:-1]
    for bad in (tokens[0], made_up, foreign, tokens[2], "hello", truncated):
        for query, variables in (
            (TOKEN_CAST, {"t": bad, "g": grades}),
            (TOKEN_BALLOT, {"t": bad}),
        ):
            body = await gql(client, None, query, variables)
            refusals.append((tuple(error_codes(body)), body["errors"][0]["message"]))
    assert set(refusals) == {(("TOKEN_INVALID",), "测评票无效或已使用")}

    # 20 at once with one token: one ballot.
    answers = await asyncio.gather(
        *(gql(client, None, TOKEN_CAST, {"t": tokens[3], "g": grades}) for _ in range(20))
    )
    assert sum("errors" not in a for a in answers) == 1
    # Two ballots of two votes each, two tokens used.
    assert owner_conn.execute(
        f"SELECT (SELECT {VOTES_COUNTED} FROM evaluation_counts WHERE round_id = %(r)s),"
        " (SELECT count(*) FROM evaluation_ballot_tokens WHERE round_id = %(r)s AND used)",
        {"r": _local(rid)},
    ).fetchone() == (4, 2)

    # Nothing else runs without an account, also not beside a token field.
    for query in ("{ me { username } }", '{ tokenBallot(token: "x") { title } me { username } }'):
        assert error_codes(await gql(client, None, query, status=None)) == ["UNAUTHENTICATED"]


# --- closing --------------------------------------------------------------------------


async def test_turnout_too_low_leaves_the_round_in_balloting(
    client: httpx.AsyncClient, state: AppState, world: World
) -> None:
    branch = await _branch(state, world, 4)
    rid = await _to_balloting(client, branch)
    sec = await _token(client, branch, branch.secretary)
    for voter in (0, 1):  # 2 of 4: not more than half
        assert "errors" not in await _vote(client, branch, voter, rid, {3: "QUALIFIED"})
    refused = await _advance(client, sec, rid, "BALLOTING")
    assert error_codes(refused) == ["TURNOUT_TOO_LOW"]
    assert "应投票 4 人，已投票 2 人" in refused["errors"][0]["message"]
    assert (await gql(client, sec, ROUND, {"r": rid}))["data"]["node"]["stage"] == "BALLOTING"
    # With ballots in, balloting is not sent back to self-evaluation either.
    secretary_a = await login(client, world.user("secA"))
    back = await gql(client, secretary_a, SEND_BACK, {"r": rid, "why": "重新测评"})
    assert error_codes(back) == ["SEND_BACK_BALLOTS_CAST"]
    assert "errors" not in await _vote(client, branch, 2, rid, {3: "QUALIFIED"})
    closed = await _advance(client, sec, rid, "BALLOTING")
    assert closed["data"]["advanceEvaluationRound"]["round"] == {
        "id": rid,
        "stage": "TALLIED",
        "ballotsCast": 3,
    }


async def test_tally_and_proposals_worked_example(
    client: httpx.AsyncClient, state: AppState, world: World
) -> None:
    """Six members; M0-M4 vote (nobody grades themselves), one mass representative
    too: 6 ballots. M0, M1 all excellent; M2 4 of 5 excellent (80 %, past the quota of
    floor(6/3) = 2: qualified, rule "quota"); M3 all qualified; M4 2 of 5 unqualified
    (> 1/3: candidate, no finding: basic); M5 graded by nobody: no ballots. Blanks are
    derived: 6 ballots, less one's own if one voted, less the votes given: M2 has none
    (voted, graded on the 5 other ballots), M5 (did not vote) 6."""
    branch = await _branch(state, world, 6)
    m = [x.id for x in branch.members]

    def ballot(voter: int | None) -> dict[int, str]:
        b = {m[0]: "excellent", m[1]: "excellent", m[2]: "excellent", m[3]: "qualified"}
        b[m[4]] = "unqualified" if voter in (0, 1) else "qualified"
        if voter == 3:
            b[m[2]] = "qualified"
        if voter is not None:
            del b[m[voter]]
        return b

    async with state.db.transaction() as tx:
        op = await operator_principal(tx, name="tests")
        row = await factories.evaluation_round(
            tx,
            op,
            branch=branch.unit,
            stage="tallied",
            ballots=[ballot(v) for v in range(5)],
            mass_ballots=[ballot(None)],
        )
    rid = to_global_id("EvaluationRound", row.id)
    secretary_a = await login(client, world.user("secA"))
    node = (await gql(client, secretary_a, ROUND, {"r": rid}))["data"]["node"]
    assert node["ballotsCast"] == 6 and node["countsVisible"] is True and node["rosterVoters"] == 6
    got = {e["name"]: e for e in node["entries"]["nodes"]}
    names = [x.name for x in branch.members]
    assert [(got[n]["computedGrade"], got[n]["computedRule"]) for n in names] == [
        ("EXCELLENT", "excellent"),
        ("EXCELLENT", "excellent"),
        ("QUALIFIED", "quota"),
        ("QUALIFIED", "qualified"),
        ("BASIC", "no_finding_basic"),
        ("NEEDS_DECISION", "no_ballots"),
    ]
    assert got[names[2]]["counts"] == {
        "excellent": 4,
        "qualified": 1,
        "basic": 0,
        "unqualified": 0,
        "blank": 0,
    }
    assert got[names[2]]["shares"] == {
        "excellent": "4/5",
        "qualified": "1/5",
        "basic": "0/1",
        "unqualified": "0/1",
    }
    assert got[names[4]]["needsDecision"] == [{"reason": "UNQUALIFIED_CANDIDATE"}]
    assert got[names[5]]["needsDecision"] == [{"reason": "NO_BALLOTS"}]
    assert got[names[5]]["counts"]["blank"] == 6
    assert got[names[5]]["shares"] is None  # no ballots: no shares (derived from the counts)
    # The member sees their self-evaluation and, before final, no grade.
    own = await _token(client, branch, branch.logins[0])
    mine = (await gql(client, own, MINE))["data"]["myEvaluations"]["nodes"]
    assert [(n["computedGrade"], n["finalGrade"]) for n in mine] == [(None, None)]


async def test_small_branch_shows_grades_never_counts(
    client: httpx.AsyncClient, state: AppState, world: World
) -> None:
    branch = await _branch(state, world, 4)
    m = [x.id for x in branch.members]
    async with state.db.transaction() as tx:
        op = await operator_principal(tx, name="tests")
        row = await factories.evaluation_round(
            tx,
            op,
            branch=branch.unit,
            stage="tallied",
            ballots=[{j: "qualified" for j in m if j != m[i]} for i in range(3)],
        )
    sec = await _token(client, branch, branch.secretary)
    node = (await gql(client, sec, ROUND, {"r": to_global_id("EvaluationRound", row.id)}))["data"][
        "node"
    ]
    assert node["ballotsCast"] == 3 and node["countsVisible"] is False
    assert all(e["counts"] is None and e["shares"] is None for e in node["entries"]["nodes"])
    assert {e["computedGrade"] for e in node["entries"]["nodes"]} == {"QUALIFIED"}


async def test_after_close_no_row_links_a_ballot_to_its_voter(
    client: httpx.AsyncClient,
    state: AppState,
    world: World,
    app_conn: psycopg.Connection[Any],
    owner_conn: psycopg.Connection[Any],
) -> None:
    """Ballots cast over HTTP in separate transactions. No row stands for a ballot: a
    ballot adds one to its grade's counter at each position it grades (the round, the
    position, four counts; no ballot key, no voter, no time, no blank: a ballot's blank
    at its voter's own position would name the voter). The close takes the counters:
    after it no counter of the round is left (with any voter's xmin or place), and the
    counts are in the entries, every one written by the closing transaction; the
    blanks are derived."""
    branch = await _branch(state, world, 5)
    rid = await _to_balloting(client, branch)
    sec = await _token(client, branch, branch.secretary)
    tokens = (await gql(client, sec, TOKENS, {"r": rid, "n": 2}))["data"]["issueBallotTokens"]
    for voter in range(5):
        grades = {j: "QUALIFIED" for j in range(5) if j != voter}
        assert "errors" not in await _vote(client, branch, voter, rid, grades)
    assert "errors" not in await gql(
        client, None, TOKEN_CAST, {"t": tokens["tokens"][0], "g": _grades(branch, {0: "BASIC"})}
    )
    local = _local(rid)
    before = owner_conn.execute(
        f"SELECT count(*), {VOTES_COUNTED}, count(DISTINCT xmin::text)"
        " FROM evaluation_counts WHERE round_id = %s",
        (local,),
    ).fetchone()
    # 5 ballots of 4 votes and one of 1 on 5 counters; each counter last written by a
    # voter's transaction (the last ballot touching it): what the close must not leave.
    assert before is not None and before[:2] == (5, 21) and before[2] > 1
    assert "errors" not in await _advance(client, sec, rid, "BALLOTING")

    columns = owner_conn.execute(
        "SELECT column_name FROM information_schema.columns"
        " WHERE table_name = 'evaluation_counts' ORDER BY ordinal_position"
    ).fetchall()
    assert [c[0] for c in columns] == [
        "tenant_id",
        "round_id",
        "position",
        "excellent",
        "qualified",
        "basic",
        "unqualified",
    ]
    assert not owner_conn.execute(
        "SELECT count(*) FROM information_schema.tables"
        " WHERE table_name IN ('evaluation_ballots', 'evaluation_votes')"
    ).fetchone()[0]
    # No counter of the round is left, under any transaction id.
    assert owner_conn.execute(
        "SELECT count(*) FROM evaluation_counts WHERE round_id = %s", (local,)
    ).fetchone() == (0,)
    # Every entry carries the close's transaction id, none a voter's (each ballot's
    # audit event, like its participation row, carries the voter's).
    xmins = owner_conn.execute(
        "SELECT DISTINCT xmin::text FROM evaluation_entries WHERE round_id = %s", (local,)
    ).fetchall()
    closed = owner_conn.execute(
        "SELECT xmin::text FROM audit_events WHERE action = 'evaluation.close' AND object_id = %s",
        (str(local),),
    ).fetchall()
    assert xmins == closed and len(xmins) == 1
    voted = owner_conn.execute(
        "SELECT DISTINCT xmin::text FROM audit_events WHERE action = 'evaluation.ballot_cast'"
        " AND object_id = %s",
        (str(local),),
    ).fetchall()
    assert len(voted) == 6 and xmins[0] not in voted
    # Taking the counts again: refused outside the round's tenant, nothing left inside.
    take = "SELECT * FROM evaluation_take_counts(%s)"
    for scope in (world.units["B"].tenant_id, branch.unit.tenant_id):
        with app_conn.transaction():
            app_conn.execute(f"SET LOCAL app.tenant_ids = '{int(scope)}'")
            if scope == branch.unit.tenant_id:
                assert app_conn.execute(take, ([local],)).fetchall() == []
            else:
                with pytest.raises(errors.InsufficientPrivilege, match="not in scope"):
                    app_conn.execute(take, ([local],))
    # Blanks: 6 ballots, less the member's own (all five voted), less the votes given.
    # M0: 4 members' votes and the mass representative's; M1-M4: the 4 other members'.
    counts = owner_conn.execute(
        "SELECT position, qualified, basic, blank FROM evaluation_entries"
        " WHERE round_id = %s ORDER BY position",
        (local,),
    ).fetchall()
    assert counts == [(1, 4, 1, 0)] + [(n, 4, 0, 1) for n in range(2, 6)]
    expired = owner_conn.execute(
        "SELECT bool_and(expires_at <= now()) FROM evaluation_ballot_tokens"
        " WHERE round_id = %s AND NOT used",
        (local,),
    ).fetchone()
    assert expired == (True,)
    # The unused token died with the close.
    late = await gql(
        client, None, TOKEN_CAST, {"t": tokens["tokens"][1], "g": _grades(branch, {0: "BASIC"})}
    )
    assert error_codes(late) == ["TOKEN_INVALID"]


async def test_close_rounds_in_one_batch_skipping_low_turnout(
    state: AppState, world: World
) -> None:
    rows = []
    async with state.db.transaction() as tx:
        op = await operator_principal(tx, name="tests")
        for voters in (3, 3, 1):
            unit = await factories.org_unit(tx, op, parent=world.units["A"])
            people = [await factories.member(tx, op, branch=unit) for _ in range(3)]
            ids = [p.id for p in people]
            rows.append(
                await factories.evaluation_round(
                    tx,
                    op,
                    branch=unit,
                    stage="balloting",
                    ballots=[{j: "excellent" for j in ids if j != ids[i]} for i in range(voters)],
                )
            )
    async with state.db.transaction() as tx:
        op = await operator_principal(tx, name="tests")
        with pytest.raises(Exception, match="参加投票的党员未达到规定比例"):
            await evaluations.close_rounds(tx, op, [r.id for r in rows])
    async with state.db.transaction() as tx:
        op = await operator_principal(tx, name="tests")
        result = await evaluations.close_rounds(tx, op, [r.id for r in rows], skip_low_turnout=True)
    assert [r.id for r in result.closed] == [rows[0].id, rows[1].id], result
    assert [(r[0].id, r[1], r[2]) for r in result.low_turnout] == [(rows[2].id, 3, 1)]
    assert all(r.stage == Stage.TALLIED.value and r.ballots_cast == 3 for r in result.closed)


async def test_member_transferring_away_mid_round_keeps_their_place_on_the_ballot(
    client: httpx.AsyncClient, state: AppState, world: World, owner_conn: psycopg.Connection[Any]
) -> None:
    """A member on the roster of a round in balloting transfers to township B (组织关系
    转接 rewrites the member's tenant). Their entry and position stay: the roster still
    has every position, the others vote (grading them too), and the round closes and
    tallies them like everyone else."""
    branch = await _branch(state, world, 4)
    rid = await _to_balloting(client, branch)
    gone = branch.members[1]  # position 2 of 4: every later position would be shifted
    async with state.db.transaction() as tx:
        op = await operator_principal(tx, name="tests")
        moved = await move_member(
            tx, op, member_id=gone.id, to_branch_id=world.units["b1"].id, effective_on=date.today()
        )
    assert moved.tenant_id == world.units["B"].tenant_id != branch.unit.tenant_id
    sec = await _token(client, branch, branch.secretary)
    entries = (await gql(client, sec, ROUND, {"r": rid}))["data"]["node"]["entries"]["nodes"]
    assert [(e["position"], e["name"]) for e in entries] == [
        (n, m.name) for n, m in enumerate(branch.members, start=1)
    ]
    for voter in (0, 2, 3):
        grades = {j: "QUALIFIED" for j in range(4) if j != voter}
        body = await _vote(client, branch, voter, rid, grades)
        assert "errors" not in body, body
    closed = await _advance(client, sec, rid, "BALLOTING")
    assert closed["data"]["advanceEvaluationRound"]["round"]["stage"] == "TALLIED", closed
    tallied = owner_conn.execute(
        "SELECT position, qualified, blank, computed_grade FROM evaluation_entries"
        " WHERE round_id = %s ORDER BY position",
        (_local(rid),),
    ).fetchall()
    # 3 ballots: the voters each graded by the 2 others, the member who left by all 3.
    assert tallied == [
        (1, 2, 0, "qualified"),
        (2, 3, 0, "qualified"),
        (3, 2, 0, "qualified"),
        (4, 2, 0, "qualified"),
    ]


async def test_roster_fixed_again_after_send_back_with_a_new_member(
    client: httpx.AsyncClient, state: AppState, world: World
) -> None:
    """Balloting is sent back to self-evaluation before any vote; meanwhile a member
    with an older ledger id moves in from another branch of the tenant (so every
    position shifts by one), a new member joins and one transfers to township B.
    Fixing the roster again gives positions 1..4 in member id order, without the one
    who left, and balloting works on the new roster."""
    async with state.db.transaction() as tx:
        op = await operator_principal(tx, name="tests")
        elsewhere = await factories.org_unit(tx, op, parent=world.units["A"])
        older = await factories.member(tx, op, branch=elsewhere, name=factories.unique("调入"))
    branch = await _branch(state, world, 3)
    rid = await _to_balloting(client, branch)
    secretary_a = await login(client, world.user("secA"))
    back = await gql(client, secretary_a, SEND_BACK, {"r": rid, "why": "名单有变动"})
    assert back["data"]["sendBackEvaluationRound"]["round"]["stage"] == "SELF_EVALUATION", back
    async with state.db.transaction() as tx:
        op = await operator_principal(tx, name="tests")
        await move_member(
            tx, op, member_id=older.id, to_branch_id=branch.unit.id, effective_on=date.today()
        )
        newcomer = await factories.member(tx, op, branch=branch.unit, name=factories.unique("新"))
        await move_member(
            tx,
            op,
            member_id=branch.members[2].id,
            to_branch_id=world.units["b1"].id,
            effective_on=date.today(),
        )
    sec = await _token(client, branch, branch.secretary)
    again = await _advance(client, sec, rid, "SELF_EVALUATION")
    assert "errors" not in again, again
    assert again["data"]["advanceEvaluationRound"]["round"]["stage"] == "BALLOTING", again
    entries = (await gql(client, sec, ROUND, {"r": rid}))["data"]["node"]["entries"]["nodes"]
    assert sorted((e["position"], e["name"]) for e in entries) == list(
        enumerate([older.name, *(m.name for m in branch.members[:2]), newcomer.name], start=1)
    )
    graded = [
        {"memberId": to_global_id("Member", m.id), "grade": "EXCELLENT"}
        for m in (older, newcomer, branch.members[1])
    ]
    token = await _token(client, branch, branch.logins[0])
    assert "errors" not in await gql(client, token, CAST, {"r": rid, "g": graded})


async def test_rounds_list_filters_and_readable_paths(
    client: httpx.AsyncClient, world: World
) -> None:
    county = await login(client, world.user("county"))
    await _open(client, county, world.gid("county"))
    sec_a = await login(client, world.user("secA"))
    body = await gql(client, sec_a, ROUNDS, {"y": YEAR})
    assert sorted(n["branch"]["name"] for n in body["data"]["evaluationRounds"]["nodes"]) == sorted(
        ["甲镇第一支部", "甲镇第二支部", "甲镇企业第一支部"]
    )
    under = await gql(client, sec_a, ROUNDS, {"u": world.gid("ag"), "s": "DRAFT"})
    assert [n["branch"]["name"] for n in under["data"]["evaluationRounds"]["nodes"]] == [
        "甲镇企业第一支部"
    ]
    assert (await gql(client, sec_a, ROUNDS, {"s": "FINAL"}))["data"]["evaluationRounds"][
        "nodes"
    ] == []
    member = await login(client, world.user("memA1"))
    assert (await gql(client, member, ROUNDS, {}))["data"]["evaluationRounds"]["nodes"] == []


async def test_token_ballot_hides_other_members(
    client: httpx.AsyncClient, state: AppState, world: World
) -> None:
    """With a usable token, a member id of another branch or tenant answers exactly as a
    member id that does not exist (the isolation walker has no usable token)."""
    branch = await _branch(state, world, 3)
    rid = await _to_balloting(client, branch)
    sec = await _token(client, branch, branch.secretary)
    [token] = (await gql(client, sec, TOKENS, {"r": rid, "n": 1}))["data"]["issueBallotTokens"][
        "tokens"
    ]
    answers = []
    for member in (
        world.member_gid("memB1"),
        world.member_gid("otherA1"),
        to_global_id("Member", 2**62),
    ):
        body = await gql(
            client, None, TOKEN_CAST, {"t": token, "g": [{"memberId": member, "grade": "BASIC"}]}
        )
        answers.append((tuple(error_codes(body)), body["errors"][0]["message"]))
    assert set(answers) == {(("NOT_FOUND",), "评议对象不存在或无权访问")}
    # The refused attempts did not use the token.
    ok = await gql(client, None, TOKEN_CAST, {"t": token, "g": _grades(branch, {0: "BASIC"})})
    assert ok["data"]["castTokenBallot"]["accepted"] is True


def test_a_count_off_the_roster_stops_the_close() -> None:
    """The counters are deleted as the close takes them: a count at a position no entry
    holds (a ballot the service should have refused) fails the close, which rolls back
    with the counters, rather than being dropped."""
    Round = namedtuple("Round", "id ballots_cast policy")
    Entry = namedtuple(
        "Entry",
        "id round_id position excused override last_year_grade organizational_finding voted",
    )
    Taken = namedtuple("Taken", "round_id roster_position excellent qualified basic unqualified")
    rounds = [Round(1, 3, GradingPolicy().to_json())]
    entries = [Entry(10 + p, 1, p, False, "none", None, False, True) for p in (1, 2)]
    on_roster = [Taken(1, 1, 1, 1, 0, 0), Taken(1, 2, 0, 2, 0, 0)]
    tallies = evaluations.grade_closed(rounds, on_roster, entries)
    assert (tallies.ids, tallies.counts, tallies.blank) == (
        [11, 12],
        [(1, 1, 0, 0), (0, 2, 0, 0)],
        [0, 0],
    )
    with pytest.raises(RuntimeError, match="off its roster"):
        evaluations.grade_closed(rounds, [*on_roster, Taken(1, 3, 1, 0, 0, 0)], entries)
