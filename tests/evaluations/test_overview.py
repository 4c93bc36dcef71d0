"""The county's overview of a half-year (评议情况总览) and the result table
(民主评议结果汇总表): stages and grade distributions per tenant and branch, within what
the asker reads, and the .xlsx with its subtotals."""

from __future__ import annotations

import base64
import io
from types import SimpleNamespace
from typing import Any

import httpx
import psycopg
from openpyxl import load_workbook

from service.app import AppState
from service.evaluations.overview import HEADERS, table_rows
from tests.evaluations.test_rounds import YEAR, _branch, _open, _token, _vote
from tests.support import World, error_codes, gql, login

OVERVIEW = """query($u: ID!, $y: Int!, $h: Int!) { evaluationOverview(orgUnitId: $u, year: $y,
  half: $h) {
  tenants(first: 50) { nodes { branches rounds stages { stage rounds }
    tenant { name } distribution { roster excellent qualified basic unqualified notGraded
    pending } } }
  branches(first: 50) { nodes { stage branch { name } round { id }
    distribution { roster excellent qualified basic unqualified pending } } } } }"""
EXPORT = """mutation($u: ID!, $y: Int!, $h: Int!) { exportEvaluationResults(input: {
  orgUnitId: $u, year: $y, half: $h}) { filename contentBase64 branchCount } }"""
ADVANCE = """mutation($r: ID!, $s: EvaluationStage!) {
  advanceEvaluationRound(roundId: $r, expectedStage: $s) { round { stage } } }"""


async def _tallied_branch(client: httpx.AsyncClient, state: AppState, world: World) -> Any:
    """A new branch of A with 4 members whose round is tallied: member 0 gets excellent
    from everyone, the others qualified."""
    branch = await _branch(state, world, 4)
    sec = await _token(client, branch, branch.secretary)
    [row] = await _open(client, sec, branch.gid)
    for stage in ("DRAFT", "SELF_EVALUATION"):
        assert "errors" not in await gql(client, sec, ADVANCE, {"r": row["id"], "s": stage})
    for voter in range(4):
        grades = {i: ("EXCELLENT" if i == 0 else "QUALIFIED") for i in range(4) if i != voter}
        body = await _vote(client, branch, voter, row["id"], grades)
        assert "errors" not in body, body
    closed = await gql(client, sec, ADVANCE, {"r": row["id"], "s": "BALLOTING"})
    assert closed["data"]["advanceEvaluationRound"]["round"]["stage"] == "TALLIED", closed
    return branch


async def test_county_sees_every_branch_with_stage_and_distribution(
    client: httpx.AsyncClient, state: AppState, world: World
) -> None:
    branch = await _tallied_branch(client, state, world)
    county = await login(client, world.user("county"))
    # b1 gets a round too; a2, a3 none: the overview still lists them.
    await _open(client, await login(client, world.user("orgB")), world.gid("b1"))
    body = await gql(client, county, OVERVIEW, {"u": world.gid("county"), "y": YEAR, "h": 1})
    assert "errors" not in body, body
    view = body["data"]["evaluationOverview"]
    branches = {b["branch"]["name"]: b for b in view["branches"]["nodes"]}
    assert set(branches) == {
        "甲镇第一支部",
        "甲镇第二支部",
        "甲镇企业第一支部",
        "乙镇第一支部",
        branch.unit.name,
    }
    assert branches["甲镇第二支部"]["stage"] is None and branches["甲镇第二支部"]["round"] is None
    assert branches["乙镇第一支部"]["stage"] == "DRAFT"
    tallied = branches[branch.unit.name]
    assert tallied["stage"] == "TALLIED"
    assert tallied["distribution"] == {
        "roster": 4,
        "excellent": 1,
        "qualified": 3,
        "basic": 0,
        "unqualified": 0,
        "pending": 0,
    }
    tenants = {t["tenant"]["name"]: t for t in view["tenants"]["nodes"]}
    assert set(tenants) == {"甲镇", "乙镇"}
    a = tenants["甲镇"]
    assert a["branches"] == 4 and a["rounds"] == 1
    assert a["stages"] == [{"stage": "TALLIED", "rounds": 1}]
    assert a["distribution"]["excellent"] == 1 and a["distribution"]["qualified"] == 3
    assert tenants["乙镇"]["stages"] == [{"stage": "DRAFT", "rounds": 1}]
    # b1's round is a draft: its member has no grade yet and is pending
    assert tenants["乙镇"]["distribution"]["excellent"] == 0


async def test_a_township_sees_only_its_own_branches_and_a_member_nothing(
    client: httpx.AsyncClient, world: World
) -> None:
    await _open(client, await login(client, world.user("orgB")), world.gid("b1"))
    sec_a = await login(client, world.user("secA"))
    # Asking about the county is asking about a unit the township does not read.
    outside = await gql(client, sec_a, OVERVIEW, {"u": world.gid("county"), "y": YEAR, "h": 1})
    assert error_codes(outside) == ["NOT_FOUND"]
    own = await gql(client, sec_a, OVERVIEW, {"u": world.gid("A"), "y": YEAR, "h": 1})
    names = {b["branch"]["name"] for b in own["data"]["evaluationOverview"]["branches"]["nodes"]}
    assert names == {"甲镇第一支部", "甲镇第二支部", "甲镇企业第一支部"}
    member = await login(client, world.user("memA1"))
    refused = await gql(client, member, OVERVIEW, {"u": world.gid("a1"), "y": YEAR, "h": 1})
    assert error_codes(refused) in (["FORBIDDEN"], ["NOT_FOUND"])
    bad = await gql(client, sec_a, OVERVIEW, {"u": world.gid("A"), "y": YEAR, "h": 3})
    assert error_codes(bad) == ["ROUND_PERIOD_INVALID"]


async def test_the_result_table_exports_with_subtotals_and_is_audited(
    client: httpx.AsyncClient,
    state: AppState,
    world: World,
    owner_conn: psycopg.Connection[Any],
) -> None:
    branch = await _tallied_branch(client, state, world)
    county = await login(client, world.user("county"))
    body = await gql(client, county, EXPORT, {"u": world.gid("county"), "y": YEAR, "h": 1})
    assert "errors" not in body, body
    made = body["data"]["exportEvaluationResults"]
    assert made["filename"].endswith(".xlsx") and made["branchCount"] == 5
    sheet = load_workbook(io.BytesIO(base64.b64decode(made["contentBase64"]))).active
    rows = [list(r) for r in sheet.iter_rows(values_only=True)]
    assert "民主评议党员结果汇总表" in rows[0][0]
    assert tuple(rows[1]) == HEADERS
    line = next(r for r in rows if r[2] == branch.unit.name)
    assert line[1] == "甲镇" and line[3] == "已计票" and line[4:7] == [4, 1, 3]
    subtotal_a = next(r for r in rows if r[1] == "甲镇" and r[2] == "小计")
    assert subtotal_a[4:7] == [4, 1, 3] and subtotal_a[11] == "25.0%"
    assert rows[-1][1] == "合计"
    events = owner_conn.execute(
        "SELECT details FROM audit_events WHERE action = 'evaluation.export' AND actor = %s",
        (world.user("county"),),
    ).fetchall()
    assert [e[0]["branches"] for e in events] == [5]
    # The branch secretary may read the overview but not export the county's table.
    sec = await _token(client, branch, branch.secretary)
    refused = await gql(client, sec, EXPORT, {"u": branch.gid, "y": YEAR, "h": 1})
    assert error_codes(refused) == ["FORBIDDEN"]


def test_table_rows_adds_up_per_tenant_and_in_total() -> None:
    def row(tenant: str, name: str, stage: str | None, roster: int, exc: int, unq: int) -> Any:
        return SimpleNamespace(
            tenant_name=tenant,
            name=name,
            stage=stage,
            roster=roster,
            excellent=exc,
            qualified=roster - exc - unq,
            basic=0,
            unqualified=unq,
            not_graded=0,
            pending=0,
        )

    lines = table_rows(
        [
            row("甲镇", "一支部", "final", 10, 3, 1),
            row("甲镇", "二支部", None, 0, 0, 0),
            row("乙镇", "一支部", "tallied", 5, 1, 0),
        ]
    )
    assert [line[2] for line in lines] == ["一支部", "二支部", "小计", "一支部", "小计", None]
    assert lines[1][3] == "未启动评议" and lines[1][-2] == "—"
    assert lines[2][4:9] == [10, 3, 6, 0, 1] and lines[2][-1] == "10.0%"
    assert lines[-1][1] == "合计" and lines[-1][4] == 15 and lines[-1][-2] == "26.7%"
