"""Grading policies (评议办法) through the API: versions of the county's and a tenant's
policy, the tenant's overriding the county's, refusal of an invalid policy (with its
code and problems), who may set and read, `gradingPreview` on worked examples, the
default saved on first use, and isolation between tenants."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import psycopg
import pytest

from service.app import AppState
from service.auth.service import operator_principal
from service.evaluations import policies, rules
from service.schema.ids import to_global_id
from service.tenants.rules import OrgUnitKind
from tests import factories
from tests.support import World, build_world, error_codes, gql, login


@pytest.fixture
async def world(state: AppState) -> World:
    """The test world with its approval requests, policies and rounds."""
    return await build_world(state, evaluations=True)


VERSION = "id version note createdBy policy { excellentMin excellentQuota basicMaxUnqualified }"
CURRENT = f"query($u: ID) {{ gradingPolicy(orgUnitId: $u) {{ {VERSION} orgUnit {{ name }} }} }}"
VERSIONS = f"""query($u: ID!) {{ gradingPolicies(orgUnitId: $u, first: 10) {{
  nodes {{ {VERSION} }} pageInfo {{ hasNextPage }} }} }}"""
SET = f"""mutation($i: GradingPolicyInput!) {{ setGradingPolicy(input: $i) {{
  policyVersion {{ {VERSION} orgUnit {{ name }} }} }} }}"""
NODE = "query($id: ID!) { node(id: $id) { id ... on GradingPolicyVersion { version note } } }"
PREVIEW = """query($p: ID, $r: Int, $t: [TallyInput!]!) {
  gradingPreview(policyId: $p, roster: $r, tallies: $t) {
    grade gradeLabel rule ruleLabel candidate shares { excellent unqualified } } }"""


def tally(e: int, q: int, b: int, u: int, **more: Any) -> dict[str, Any]:
    return {"excellent": e, "qualified": q, "basic": b, "unqualified": u, **more}


def policy_gid(world: World, name: str) -> str:
    return to_global_id("GradingPolicyVersion", world.records[name].id)


async def test_county_sets_versions_and_a_tenant_policy_overrides_the_county(
    client: httpx.AsyncClient, state: AppState, world: World, owner_conn: psycopg.Connection[Any]
) -> None:
    county = await login(client, world.user("county"))
    # The world saved the county's default as version 1 when A's and B's were set.
    body = await gql(
        client,
        county,
        SET,
        {"i": {"orgUnitId": world.gid("county"), "excellentMin": "0.65", "note": "县级修订"}},
    )
    assert "errors" not in body, body
    saved = body["data"]["setGradingPolicy"]["policyVersion"]
    assert saved["version"] == 2 and saved["note"] == "县级修订"
    assert saved["policy"]["excellentMin"] == "13/20"  # "0.65", kept exact
    assert saved["policy"]["excellentQuota"] == "1/3"  # unchanged values carried over
    assert saved["createdBy"] == world.user("county")
    assert saved["orgUnit"]["name"].startswith("测试县")

    listed = await gql(client, county, VERSIONS, {"u": world.gid("county")})
    nodes = listed["data"]["gradingPolicies"]["nodes"]
    assert [(n["version"], n["policy"]["excellentMin"]) for n in nodes] == [
        (1, "3/5"),
        (2, "13/20"),
    ]

    # A's own version governs A's branches; the county's governs a tenant without one.
    secretary = await login(client, world.user("bsA1"))
    own = await gql(client, secretary, CURRENT, {"u": world.gid("a1")})
    assert own["data"]["gradingPolicy"]["note"] == "甲镇评议办法", own
    assert own["data"]["gradingPolicy"]["policy"]["excellentMin"] == "3/5"
    async with state.db.transaction() as tx:
        op = await operator_principal(tx, name="tests")
        c = await factories.org_unit(
            tx, op, parent=world.units["county"], kind=OrgUnitKind.TOWNSHIP, name="丙镇"
        )
        c1 = await factories.org_unit(tx, op, parent=c, name="丙镇第一支部")
    inherited = await gql(client, county, CURRENT, {"u": to_global_id("OrgUnit", c1.id)})
    assert inherited["data"]["gradingPolicy"]["version"] == 2, inherited
    assert inherited["data"]["gradingPolicy"]["orgUnit"]["name"].startswith("测试县")
    # Without a unit: the caller's county's current policy.
    mine = await gql(client, secretary, CURRENT, {})
    assert mine["data"]["gradingPolicy"]["version"] == 2, mine

    # A later county version does not change A's, which stays A's latest.
    again = await gql(client, secretary, CURRENT, {"u": world.gid("a1")})
    assert again["data"]["gradingPolicy"]["id"] == policy_gid(world, "policyA1")

    events = owner_conn.execute(
        "SELECT action, details->>'version', details->'policy'->>'excellent_min'"
        " FROM audit_events WHERE tenant_id = %s AND object_type = 'GradingPolicyVersion'"
        " ORDER BY seq",
        (world.units["county"].id,),
    ).fetchall()
    assert events == [
        ("evaluation.policy_default", "1", "3/5"),
        ("evaluation.set_policy", "2", "13/20"),
    ]


async def test_an_invalid_policy_is_refused_with_its_problems_and_nothing_is_saved(
    client: httpx.AsyncClient, world: World
) -> None:
    county = await login(client, world.user("county"))
    cases = [
        ({"basicMaxUnqualified": "1/4"}, "POLICY_INVALID", "空档"),
        ({"excellentMin": "六成"}, "POLICY_INVALID", "优秀票最低比例"),
        ({"excellentMin": "3/2"}, "POLICY_INVALID", "0 到 1"),
        ({"noticeDays": 0}, "POLICY_INVALID", "公示天数"),
        ({"periodMonths": 3}, "POLICY_INVALID", "评议周期"),
        ({"excellentQuota": "0"}, "POLICY_INVALID", "优秀名额"),
        ({"note": "长" * 501}, "POLICY_NOTE_TOO_LONG", "500"),
    ]
    for change, code, word in cases:
        body = await gql(client, county, SET, {"i": {"orgUnitId": world.gid("A"), **change}})
        assert error_codes(body) == [code], (change, body)
        assert word in body["errors"][0]["message"], (change, body)
    branch = await gql(client, county, SET, {"i": {"orgUnitId": world.gid("a1")}})
    assert error_codes(branch) == ["POLICY_UNIT_INVALID"]
    listed = await gql(client, county, VERSIONS, {"u": world.gid("A")})
    assert [n["version"] for n in listed["data"]["gradingPolicies"]["nodes"]] == [1]

    # "no quota" is a valid choice
    body = await gql(
        client, county, SET, {"i": {"orgUnitId": world.gid("A"), "noExcellentQuota": True}}
    )
    saved = body["data"]["setGradingPolicy"]["policyVersion"]
    assert (saved["version"], saved["policy"]["excellentQuota"]) == (2, None), body


async def test_only_the_county_organizer_sets_a_policy(
    client: httpx.AsyncClient, world: World
) -> None:
    change = {"excellentMin": "0.7"}
    for who, unit, code in (
        ("bsA1", "a1", "FORBIDDEN"),  # sees its branch, may not set
        ("bsA1", "A", "NOT_FOUND"),  # does not see the township
        ("secA", "A", "FORBIDDEN"),
        ("orgA", "A", "FORBIDDEN"),
        ("secA", "B", "NOT_FOUND"),
        ("memA1", "a1", "FORBIDDEN"),
    ):
        token = await login(client, world.user(who))
        body = await gql(client, token, SET, {"i": {"orgUnitId": world.gid(unit), **change}})
        assert error_codes(body) == [code], (who, unit, body)
    county = await login(client, world.user("county"))
    body = await gql(client, county, SET, {"i": {"orgUnitId": world.gid("B"), **change}})
    assert body["data"]["setGradingPolicy"]["policyVersion"]["version"] == 2, body


async def test_concurrent_sets_get_distinct_versions(
    client: httpx.AsyncClient, world: World, owner_conn: psycopg.Connection[Any]
) -> None:
    county = await login(client, world.user("county"))
    answers = await asyncio.gather(
        *(
            gql(client, county, SET, {"i": {"orgUnitId": world.gid("A"), "noticeDays": 5 + i}})
            for i in range(8)
        )
    )
    ok = [a for a in answers if "errors" not in a]
    assert ok
    for answer in answers:
        assert "errors" not in answer or error_codes(answer) == ["VERSION_CONFLICT"], answer
    tenant = world.units["A"].id
    with owner_conn.transaction():
        owner_conn.execute("SELECT set_config('app.tenant_ids', %s, true)", (str(tenant),))
        versions = [
            r[0]
            for r in owner_conn.execute(
                "SELECT version FROM grading_policies WHERE tenant_id = %s ORDER BY version",
                (tenant,),
            ).fetchall()
        ]
    assert versions == list(range(1, len(ok) + 2))  # A's first, then one per success


async def test_preview_worked_examples_on_the_default(
    client: httpx.AsyncClient, world: World
) -> None:
    county = await login(client, world.user("county"))
    examples: list[tuple[dict[str, Any], str, str]] = [
        (tally(6, 4, 0, 0), "EXCELLENT", "excellent"),
        (tally(59, 41, 0, 0), "QUALIFIED", "qualified"),
        (tally(2, 2, 2, 0), "BASIC", "basic"),
        (tally(0, 66, 0, 34), "BASIC", "no_finding_basic"),
        (tally(0, 66, 0, 34, organizationalFinding=True), "UNQUALIFIED", "unqualified_share"),
        (tally(0, 2, 0, 1, organizationalFinding=True), "BASIC", "basic"),
        (
            tally(4, 0, 4, 2, organizationalFinding=True),
            "UNQUALIFIED",
            "unqualified_basic_share",
        ),
        (
            tally(2, 2, 2, 0, lastYearGrade="BASIC", organizationalFinding=True),
            "UNQUALIFIED",
            "second_year_basic",
        ),
        (tally(10, 0, 0, 0, sanctionThisYear="WARNING"), "QUALIFIED", "sanction_not_excellent"),
        (
            tally(10, 0, 0, 0, sanctionThisYear="SERIOUS_WARNING"),
            "UNQUALIFIED",
            "sanction_unqualified",
        ),
        (
            tally(10, 0, 0, 0, sanctionThisYear="PROBATION_TWO_YEARS"),
            "UNQUALIFIED",
            "sanction_unqualified",
        ),
        (tally(10, 0, 0, 0, twoYearProbationLastYear=True), "NOT_GRADED", "comment_only"),
        (tally(0, 0, 0, 0), "NEEDS_DECISION", "no_ballots"),
    ]
    body = await gql(client, county, PREVIEW, {"t": [t for t, _, _ in examples]})
    assert "errors" not in body, body
    got = [(p["grade"], p["rule"]) for p in body["data"]["gradingPreview"]]
    assert got == [(g, r) for _, g, r in examples]
    first = body["data"]["gradingPreview"][0]
    assert first["shares"] == {"excellent": "3/5", "unqualified": "0/1"}
    assert first["gradeLabel"] == "优秀" and first["ruleLabel"]
    assert body["data"]["gradingPreview"][3]["candidate"] == "unqualified_share"
    assert body["data"]["gradingPreview"][-1]["shares"] is None

    # The quota across the tallies: a roster of 10 allows 3; places 3 and 4 tie.
    quota = [tally(9, 1, 0, 0), tally(8, 2, 0, 0), tally(7, 3, 0, 0), tally(7, 3, 0, 0)]
    body = await gql(client, county, PREVIEW, {"t": [*quota, tally(6, 4, 0, 0)], "r": 10})
    assert [(p["grade"], p["rule"]) for p in body["data"]["gradingPreview"]] == [
        ("EXCELLENT", "excellent"),
        ("EXCELLENT", "excellent"),
        ("NEEDS_DECISION", "quota_tie"),
        ("NEEDS_DECISION", "quota_tie"),
        ("QUALIFIED", "quota"),
    ]

    # Every composition of up to 8 ballots gets one of the four grades, never "no_rule".
    grid = [
        tally(e, q, b, n - e - q - b)
        for n in range(1, 9)
        for e in range(n + 1)
        for q in range(n + 1 - e)
        for b in range(n + 1 - e - q)
    ]
    body = await gql(client, county, PREVIEW, {"t": grid[:500]})
    found = body["data"]["gradingPreview"]
    assert len(found) == min(len(grid), 500)
    assert all(p["grade"] in {"EXCELLENT", "QUALIFIED", "BASIC"} for p in found), found
    assert all(p["rule"] != "no_rule" for p in found)


async def test_preview_with_a_policy_version_and_its_limits(
    client: httpx.AsyncClient, world: World
) -> None:
    county = await login(client, world.user("county"))
    body = await gql(
        client, county, SET, {"i": {"orgUnitId": world.gid("A"), "excellentMin": "0.7"}}
    )
    strict = body["data"]["setGradingPolicy"]["policyVersion"]["id"]
    example = [tally(13, 7, 0, 0)]  # 65 % excellent
    default = await gql(client, county, PREVIEW, {"t": example})
    stricter = await gql(client, county, PREVIEW, {"t": example, "p": strict})
    assert default["data"]["gradingPreview"][0]["grade"] == "EXCELLENT"
    assert stricter["data"]["gradingPreview"][0]["grade"] == "QUALIFIED"
    # A's branch secretary may try out A's policy (the one governing the branch).
    secretary = await login(client, world.user("bsA1"))
    mine = await gql(client, secretary, PREVIEW, {"t": example, "p": strict})
    assert mine["data"]["gradingPreview"][0]["grade"] == "QUALIFIED", mine

    too_many = await gql(client, county, PREVIEW, {"t": [tally(1, 0, 0, 0)] * 501})
    assert error_codes(too_many) == ["PREVIEW_TOO_MANY"]
    negative = await gql(client, county, PREVIEW, {"t": [tally(-1, 0, 0, 0)]})
    assert error_codes(negative) == ["TALLY_INVALID"]
    roster = await gql(client, county, PREVIEW, {"t": example, "r": -1})
    assert error_codes(roster) == ["PREVIEW_ROSTER_INVALID"]
    member = await login(client, world.user("memA1"))
    assert error_codes(await gql(client, member, PREVIEW, {"t": example})) == ["FORBIDDEN"]


async def test_policies_of_another_tenant_are_not_found(
    client: httpx.AsyncClient, world: World
) -> None:
    b_policy = policy_gid(world, "policyB1")
    missing = to_global_id("GradingPolicyVersion", 2**62)
    for who in ("secA", "orgA", "bsA1"):
        token = await login(client, world.user(who))
        for query, variables, other in (
            (NODE, {"id": b_policy}, {"id": missing}),
            (
                PREVIEW,
                {"t": [tally(1, 0, 0, 0)], "p": b_policy},
                {"t": [tally(1, 0, 0, 0)], "p": missing},
            ),
            (VERSIONS, {"u": world.gid("B")}, {"u": to_global_id("OrgUnit", 2**62)}),
            (CURRENT, {"u": world.gid("b1")}, {"u": to_global_id("OrgUnit", 2**62)}),
        ):
            body = await gql(client, token, query, variables)
            assert error_codes(body) == ["NOT_FOUND"], (who, query, body)
            assert body == await gql(client, token, query, other), (who, query)
            assert "乙镇" not in str(body)
    # Within A: the branch secretary reads A's version and the county's by id, but may
    # not name the township (a unit above its branch) to list its versions.
    secretary = await login(client, world.user("bsA1"))
    own = await gql(client, secretary, NODE, {"id": policy_gid(world, "policyA1")})
    assert own["data"]["node"]["note"] == "甲镇评议办法", own
    county_current = await gql(client, secretary, CURRENT, {})
    county_id = county_current["data"]["gradingPolicy"]["id"]
    assert (await gql(client, secretary, NODE, {"id": county_id}))["data"]["node"]["version"] == 1
    listed = await gql(client, secretary, VERSIONS, {"u": world.gid("A")})
    assert error_codes(listed) == ["NOT_FOUND"]
    # Positive control: the county organizer reads B's.
    county = await login(client, world.user("county"))
    theirs = await gql(client, county, NODE, {"id": b_policy})
    assert theirs["data"]["node"]["note"] == "乙镇评议办法", theirs


async def test_the_default_is_returned_unsaved_in_a_query_and_saved_once_in_a_write(
    state: AppState, world: World
) -> None:
    async with state.db.transaction() as tx:
        op = await operator_principal(tx, name="tests")
        root = world.units["county"].path.split("/")[1]
        county = await factories.org_unit(
            tx, op, parent=int(root), kind=OrgUnitKind.COUNTY, name="新县"
        )
        town = await factories.org_unit(tx, op, parent=county, kind=OrgUnitKind.TOWNSHIP)
        branch = await factories.org_unit(tx, op, parent=town)
    async with state.db.transaction(write=False) as tx:
        op = await operator_principal(tx, name="tests")
        unsaved = await policies.effective_policy(tx, branch)
    assert (unsaved.id, unsaved.version, unsaved.saved) == (0, 0, False)
    assert unsaved.policy == rules.DEFAULT_POLICY and unsaved.scope_unit_id == county.id
    async with state.db.transaction() as tx:
        op = await operator_principal(tx, name="tests")
        first = await policies.effective_policy(tx, branch, principal=op)
        second = await policies.effective_policy(tx, town)
    assert first.saved and first.version == 1 and first.scope_unit_id == county.id
    assert second.id == first.id
