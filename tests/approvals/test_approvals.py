"""Approval chains with a real database and the real app: requests are submitted through
the service (no domain submits yet), decided over HTTP.

Covered: the happy path through two levels (tenant, then county), reject, return and
resubmit, the decider's own matter, skipping a level, deciding outside one's subtree,
a digest that no longer matches, the overdue list, each decider's inbox, the handler
told exactly once per outcome, a double submit, events, the decision made final by the
database, and 20 concurrent decisions of one step deciding it once.
"""

from __future__ import annotations

import asyncio
import itertools
import json
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

import httpx
import psycopg
import pytest

from service.app import AppState
from service.approvals import repository, rules, service
from service.approvals.rules import ApprovalKind
from service.auth.service import operator_principal
from service.authz.roles import Role
from service.errors import DomainError
from service.schema.ids import from_global_id, to_global_id
from tests import factories
from tests.support import World, build_world, error_codes, gql, login, watching


@pytest.fixture
async def world(state: AppState) -> World:
    """The test world with its approval requests, policies and rounds."""
    return await build_world(state, evaluations=True)


KIND = ApprovalKind.CASE_FILING  # no domain registers handlers for it yet
_subjects = itertools.count(1)

STEP_FIELDS = """id position attempt role state decision reason decidedBy decidedRole
  decidedAt digest dueAt overdue orgUnit { name } decidedUnit { name }"""
DECIDE = f"""mutation($i: DecideApprovalStepInput!) {{ decideApprovalStep(input: $i) {{
  step {{ {STEP_FIELDS} }} request {{ id state digest attempt decidedAt }} }} }}"""
INBOX = """{ approvalInbox(first: 100) { nodes { id position role state overdue
  request { id kind subjectType subjectId digest state summary branch { name } } } } }"""
OVERDUE = "{ overdueApprovals(first: 100) { nodes { id position overdue orgUnit { name } } } }"
REQUEST = f"""query($id: ID!) {{ approvalRequest(id: $id) {{ id state digest attempt toCounty
  steps {{ {STEP_FIELDS} }} }} }}"""


def gid(kind: str, local_id: int) -> str:
    return to_global_id(kind, local_id)


def _local(step_gid: str | None) -> int:
    assert step_gid is not None
    return from_global_id(step_gid, "ApprovalStep")[1]


class Told:
    """What the outcome handler of KIND was told: (request id, outcome, reason)."""

    def __init__(self) -> None:
        self.calls: list[tuple[int, str, str | None]] = []

    async def __call__(
        self, tx: Any, principal: Any, request: Any, outcome: str, reason: str | None
    ) -> None:
        # In the deciding transaction: the request row already says the outcome.
        assert request.state == outcome
        self.calls.append((request.id, outcome, reason))

    def of(self, request_id: int) -> list[tuple[str, str | None]]:
        return [(o, r) for i, o, r in self.calls if i == request_id]


@pytest.fixture
def told() -> Iterator[Told]:
    handler = Told()
    service.on_outcome(KIND, handler)
    yield handler
    service.remove_outcome_handler(KIND, handler)


async def submit(
    state: AppState,
    world: World,
    *,
    branch: str = "a1",
    by: str | None = None,
    to_county: bool = True,
    digest: str = "digest-1",
    subject_id: int | None = None,
) -> Any:
    """A request from `branch`, submitted through the service by the operator or by the
    account `by`; the row, with its pending step's global id as `.step`."""
    async with state.db.transaction() as tx:
        op = await operator_principal(tx, name="tests")
        who = op if by is None else await factories.acting_as(tx, world.accounts[by])
        row = await service.submit(
            tx,
            who,
            kind=KIND,
            subject_type="Case",
            subject_id=subject_id if subject_id is not None else next(_subjects),
            branch_unit=world.units[branch].id,
            digest=digest,
            summary={"说明": "处置备案", "branch": branch},
            to_county=to_county,
            step_days=15,
        )
    return row


async def pending_step(state: AppState, request_id: int) -> str | None:
    async with state.db.transaction() as tx:
        await operator_principal(tx, name="tests")
        steps = (await repository.steps_of_requests(tx, [request_id]))[request_id]
    pending = [s for s in steps if s.state == "pending"]
    assert len(pending) <= 1
    return gid("ApprovalStep", pending[0].id) if pending else None


async def decide(
    client: httpx.AsyncClient,
    token: str,
    step: str | None,
    decision: str = "APPROVE",
    *,
    digest: str = "digest-1",
    reason: str | None = None,
) -> dict[str, Any]:
    assert step is not None
    inputs = {"stepId": step, "decision": decision, "digest": digest, "reason": reason}
    return await gql(client, token, DECIDE, {"i": inputs})


def audit_count(
    owner_conn: psycopg.Connection[Any], tenant_id: int, action: str, object_id: int
) -> int:
    row = owner_conn.execute(
        "SELECT count(*) FROM audit_events WHERE tenant_id = %s AND action = %s AND object_id = %s",
        (tenant_id, action, str(object_id)),
    ).fetchone()
    assert row is not None
    return int(row[0])


async def inbox_ids(client: httpx.AsyncClient, token: str) -> list[str]:
    body = await gql(client, token, INBOX)
    assert "errors" not in body, body
    return [n["id"] for n in body["data"]["approvalInbox"]["nodes"]]


# --- the happy path -------------------------------------------------------------------


async def test_two_levels_tenant_then_county(
    client: httpx.AsyncClient,
    state: AppState,
    world: World,
    told: Told,
    owner_conn: psycopg.Connection[Any],
) -> None:
    request = await submit(state, world, to_county=True)
    first = await pending_step(state, request.id)
    sec_a = await login(client, world.user("secA"))
    county = await login(client, world.user("county"))
    assert first in await inbox_ids(client, sec_a)
    assert first not in await inbox_ids(client, county)  # not the county's level yet

    body = await decide(client, sec_a, first)
    assert "errors" not in body, body
    step = body["data"]["decideApprovalStep"]["step"]
    assert step["state"] == "APPROVED" and step["decision"] == "APPROVE"
    assert step["decidedBy"] == world.user("secA")
    assert step["decidedRole"] == "COMMITTEE_SECRETARY" and step["role"] == "COMMITTEE_SECRETARY"
    assert step["orgUnit"] == {"name": "甲镇"} and step["decidedUnit"] == {"name": "甲镇"}
    assert step["digest"] == "digest-1" and step["decidedAt"] and step["position"] == 1
    assert body["data"]["decideApprovalStep"]["request"]["state"] == "PENDING"
    assert told.of(request.id) == []  # still climbing

    second = await pending_step(state, request.id)
    assert second is not None and second != first
    assert second in await inbox_ids(client, county)
    assert second not in await inbox_ids(client, sec_a)
    body = await decide(client, county, second)
    assert "errors" not in body, body
    assert body["data"]["decideApprovalStep"]["request"]["state"] == "APPROVED"
    assert body["data"]["decideApprovalStep"]["request"]["decidedAt"]
    assert body["data"]["decideApprovalStep"]["step"]["decidedRole"] == "COUNTY_ORGANIZER"
    assert told.of(request.id) == [("approved", None)]

    # The branch sees the whole history of its request.
    bs = await login(client, world.user("bsA1"))
    history = await gql(client, bs, REQUEST, {"id": gid("ApprovalRequest", request.id)})
    assert "errors" not in history, history
    steps = history["data"]["approvalRequest"]["steps"]
    assert [(s["position"], s["state"], s["decidedBy"]) for s in steps] == [
        (1, "APPROVED", world.user("secA")),
        (2, "APPROVED", world.user("county")),
    ]
    tenant = world.units["A"].tenant_id
    assert audit_count(owner_conn, tenant, "approval.submit", request.id) == 1
    for step_gid in (first, second):
        assert audit_count(owner_conn, tenant, "approval.decide", _local(step_gid)) == 1


async def test_reject_goes_back_to_the_branch_with_reasons(
    client: httpx.AsyncClient, state: AppState, world: World, told: Told
) -> None:
    request = await submit(state, world, to_county=True)
    step = await pending_step(state, request.id)
    sec_a = await login(client, world.user("secA"))
    for reason in (None, "   "):
        refused = await decide(client, sec_a, step, "REJECT", reason=reason)
        assert error_codes(refused) == ["APPROVAL_REASON_REQUIRED"], refused
    body = await decide(client, sec_a, step, "REJECT", reason="评议程序不完整")
    assert "errors" not in body, body
    assert body["data"]["decideApprovalStep"]["step"]["reason"] == "评议程序不完整"
    assert body["data"]["decideApprovalStep"]["request"]["state"] == "REJECTED"
    assert told.of(request.id) == [("rejected", "评议程序不完整")]
    assert await pending_step(state, request.id) is None  # nothing climbs further
    assert step not in await inbox_ids(client, sec_a)
    again = await decide(client, sec_a, step)
    assert error_codes(again) == ["APPROVAL_ALREADY_DECIDED"]
    # The branch may submit the matter anew: a new request.
    fresh = await submit(state, world, subject_id=request.subject_id)
    assert fresh.id != request.id and fresh.state == "pending"


async def test_return_then_resubmit_decides_the_same_level_again(
    client: httpx.AsyncClient, state: AppState, world: World, told: Told
) -> None:
    request = await submit(state, world, to_county=True)
    sec_a = await login(client, world.user("secA"))
    county = await login(client, world.user("county"))
    assert "errors" not in await decide(client, sec_a, await pending_step(state, request.id))
    at_county = await pending_step(state, request.id)
    body = await decide(client, county, at_county, "RETURN", reason="请补充大会记录")
    assert "errors" not in body, body
    assert body["data"]["decideApprovalStep"]["request"]["state"] == "RETURNED"
    assert told.of(request.id) == [("returned", "请补充大会记录")]
    assert await pending_step(state, request.id) is None

    # Resubmitting needs a returned request; a pending one is refused.
    other = await submit(state, world)
    async with state.db.transaction() as tx:
        op = await operator_principal(tx, name="tests")
        with pytest.raises(DomainError) as refused:
            await service.resubmit(tx, op, request_id=other.id, digest="x", summary={})
    assert refused.value.code == "APPROVAL_NOT_RETURNED"

    async with state.db.transaction() as tx:
        op = await operator_principal(tx, name="tests")
        again = await service.resubmit(
            tx, op, request_id=request.id, digest="digest-2", summary={"补充": "大会记录"}
        )
    assert again.state == "pending" and again.attempt == 2 and again.digest == "digest-2"
    reopened = await pending_step(state, request.id)
    assert reopened not in (None, at_county)
    assert reopened in await inbox_ids(client, county)  # the county's level, not the tenant's
    assert reopened not in await inbox_ids(client, sec_a)
    stale = await decide(client, county, reopened, digest="digest-1")
    assert error_codes(stale) == ["APPROVAL_CONTENT_CHANGED"]
    returned_again = await decide(client, county, at_county, digest="digest-2")
    assert error_codes(returned_again) == ["APPROVAL_ALREADY_DECIDED"]
    body = await decide(client, county, reopened, digest="digest-2")
    assert "errors" not in body, body
    assert body["data"]["decideApprovalStep"]["request"]["state"] == "APPROVED"
    assert told.of(request.id) == [("returned", "请补充大会记录"), ("approved", None)]
    history = await gql(client, county, REQUEST, {"id": gid("ApprovalRequest", request.id)})
    steps = history["data"]["approvalRequest"]["steps"]
    assert [(s["attempt"], s["position"], s["state"], s["digest"]) for s in steps] == [
        (1, 1, "APPROVED", "digest-1"),
        (1, 2, "RETURNED", "digest-1"),
        (2, 2, "APPROVED", "digest-2"),
    ]


# --- who may decide -------------------------------------------------------------------


async def test_withdrawing_a_pending_or_returned_request_and_nothing_else(
    client: httpx.AsyncClient, state: AppState, world: World, told: Told
) -> None:
    """`withdraw_open`: a pending request and its step are withdrawn (the step leaves
    the inbox and cannot be decided); a returned one is withdrawn too; a decided one,
    or a subject with no request, is left as it is (None)."""
    sec_a = await login(client, world.user("secA"))

    async def withdraw(subject_id: int) -> Any:
        async with state.db.transaction() as tx:
            op = await operator_principal(tx, name="tests")
            return await service.withdraw_open(
                tx,
                op,
                tenant_id=world.units["A"].id,
                kind=KIND,
                subject_type="Case",
                subject_id=subject_id,
                reason="  不再需要  ",
            )

    pending = await submit(state, world, subject_id=7001)
    step = await pending_step(state, pending.id)
    assert step in await inbox_ids(client, sec_a)
    withdrawn = await withdraw(7001)
    assert withdrawn.state == "withdrawn" and withdrawn.decided_at is None
    assert step not in await inbox_ids(client, sec_a)
    assert await pending_step(state, pending.id) is None
    refused = await decide(client, sec_a, step)
    assert error_codes(refused) == ["APPROVAL_ALREADY_DECIDED"]
    history = await gql(client, sec_a, REQUEST, {"id": gid("ApprovalRequest", pending.id)})
    assert history["data"]["approvalRequest"]["state"] == "WITHDRAWN"
    assert [s["state"] for s in history["data"]["approvalRequest"]["steps"]] == ["WITHDRAWN"]
    assert told.of(pending.id) == []  # the domain withdrew it: no outcome to be told
    # A new request for the subject may be submitted (no open one holds the slot).
    assert (await submit(state, world, subject_id=7001)).state == "pending"

    returned = await submit(state, world, subject_id=7002)
    returning = await decide(
        client, sec_a, await pending_step(state, returned.id), "RETURN", reason="补材料"
    )
    assert "errors" not in returning
    assert (await withdraw(7002)).state == "withdrawn"

    approved = await submit(state, world, subject_id=7003, to_county=False)
    assert "errors" not in await decide(client, sec_a, await pending_step(state, approved.id))
    assert await withdraw(7003) is None
    assert await withdraw(7999) is None


async def test_a_decider_cannot_decide_their_own_matter(
    client: httpx.AsyncClient, state: AppState, world: World
) -> None:
    request = await submit(state, world, by="secA", to_county=False)
    step = await pending_step(state, request.id)
    sec_a = await login(client, world.user("secA"))
    refused = await decide(client, sec_a, step)
    assert error_codes(refused) == ["APPROVAL_OWN_MATTER"]
    # Another secretary of the same committee may.
    async with state.db.transaction() as tx:
        op = await operator_principal(tx, name="tests")
        await factories.account(
            tx,
            op,
            home=world.units["A"],
            username=world.user("secA2"),
            role=Role.COMMITTEE_SECRETARY,
        )
    deputy = await login(client, world.user("secA2"))
    body = await decide(client, deputy, step)
    assert "errors" not in body, body


async def test_no_skipping_a_level_and_no_deciding_another_level(
    client: httpx.AsyncClient, state: AppState, world: World
) -> None:
    request = await submit(state, world, to_county=True)
    first = await pending_step(state, request.id)
    # The county sees the tenant's step but does not hold its role there.
    for who in ("county", "orgA", "bsA1"):
        token = await login(client, world.user(who))
        body = await decide(client, token, first)
        assert error_codes(body) == ["FORBIDDEN"], (who, body)
    sec_a = await login(client, world.user("secA"))
    assert "errors" not in await decide(client, sec_a, first)
    # The county's step is not the tenant secretary's to decide.
    second = await pending_step(state, request.id)
    assert error_codes(await decide(client, sec_a, second)) == ["FORBIDDEN"]
    # The first step, decided, cannot be decided again by anyone.
    county = await login(client, world.user("county"))
    assert error_codes(await decide(client, county, first)) == ["FORBIDDEN"]
    assert error_codes(await decide(client, sec_a, first)) == ["APPROVAL_ALREADY_DECIDED"]


async def test_outside_the_subtree_a_step_is_not_found(
    client: httpx.AsyncClient, state: AppState, world: World
) -> None:
    request = await submit(state, world, to_county=False)
    step = await pending_step(state, request.id)
    sec_b = await login(client, world.user("secB"))
    theirs = await decide(client, sec_b, step)
    missing = await decide(client, sec_b, gid("ApprovalStep", 2**62))
    assert error_codes(theirs) == ["NOT_FOUND"] and theirs == missing
    node = "query($id: ID!) { node(id: $id) { id } }"
    for target in (step, gid("ApprovalRequest", request.id)):
        assert error_codes(await gql(client, sec_b, node, {"id": target})) == ["NOT_FOUND"]
    body = await gql(client, sec_b, REQUEST, {"id": gid("ApprovalRequest", request.id)})
    assert error_codes(body) == ["NOT_FOUND"]
    assert step not in await inbox_ids(client, sec_b)
    # A member of the branch sees no approvals either.
    member = await login(client, world.user("memA1"))
    assert error_codes(await decide(client, member, step)) == ["NOT_FOUND"]


async def test_a_changed_digest_is_refused(
    client: httpx.AsyncClient, state: AppState, world: World
) -> None:
    request = await submit(state, world, to_county=False, digest="approved-content")
    step = await pending_step(state, request.id)
    sec_a = await login(client, world.user("secA"))
    body = await decide(client, sec_a, step, digest="other-content")
    assert error_codes(body) == ["APPROVAL_CONTENT_CHANGED"]
    assert await pending_step(state, request.id) == step  # still pending, undecided
    body = await decide(client, sec_a, step, digest="approved-content")
    assert body["data"]["decideApprovalStep"]["step"]["digest"] == "approved-content"
    async with state.db.transaction() as tx:
        op = await operator_principal(tx, name="tests")
        latest = await service.latest_request(
            tx, op, tenant_id=request.tenant_id, kind=KIND, subject_type="Case",
            subject_id=request.subject_id,
        )  # fmt: skip
    assert service.is_approved(latest, "approved-content")
    assert not service.is_approved(latest, "content-changed-after-approval")


# --- lists ----------------------------------------------------------------------------


async def test_inbox_holds_each_deciders_pending_steps(
    client: httpx.AsyncClient, state: AppState, world: World
) -> None:
    a = await submit(state, world, branch="a3", to_county=False)  # under a general branch
    b = await submit(state, world, branch="b1", to_county=False)
    step_a, step_b = await pending_step(state, a.id), await pending_step(state, b.id)
    county_a, county_b = (gid("ApprovalStep", world.records[n].id) for n in ("stepA1", "stepB1"))
    expected = {
        "secA": {step_a},
        "secB": {step_b, gid("ApprovalStep", world.records["overdueB1"].id)},
        "county": {county_a, county_b},
        "orgA": set(),
        "bsA1": set(),
        "memA1": set(),
    }
    for who, steps in expected.items():
        token = await login(client, world.user(who))
        assert set(await inbox_ids(client, token)) == steps, who
    token = await login(client, world.user("secA"))
    [node] = (await gql(client, token, INBOX))["data"]["approvalInbox"]["nodes"]
    assert node["role"] == "COMMITTEE_SECRETARY" and node["state"] == "PENDING"
    assert node["request"]["branch"] == {"name": "甲镇企业第一支部"}
    assert node["request"]["kind"] == "CASE_FILING" and node["request"]["digest"] == "digest-1"
    assert json.loads(node["request"]["summary"]) == {"说明": "处置备案", "branch": "a3"}
    assert node["request"]["subjectId"] == gid("Case", a.subject_id)


async def test_overdue_steps_are_listed_for_the_level_above(
    client: httpx.AsyncClient, state: AppState, world: World, owner_conn: psycopg.Connection[Any]
) -> None:
    late = await submit(state, world, to_county=False)
    on_time = await submit(state, world, to_county=False)
    late_step = await pending_step(state, late.id)
    owner_conn.execute(
        "UPDATE approval_steps SET due_at = now() - interval '1 hour' WHERE id = %s",
        (_local(late_step),),
    )
    county = await login(client, world.user("county"))
    body = await gql(client, county, OVERDUE)
    assert "errors" not in body, body
    nodes = body["data"]["overdueApprovals"]["nodes"]
    ids = {n["id"] for n in nodes}
    assert late_step in ids and await pending_step(state, on_time.id) not in ids
    # The world's overdue step in B is the county's to watch too.
    assert gid("ApprovalStep", world.records["overdueB1"].id) in ids
    # Steps at the county itself (its own inbox) are not its overdue list.
    assert gid("ApprovalStep", world.records["stepA1"].id) not in ids
    assert next(n for n in nodes if n["id"] == late_step) == {
        "id": late_step,
        "position": 1,
        "overdue": True,
        "orgUnit": {"name": "甲镇"},
    }
    # The tenant's own level is not below itself; B's secretary does not see A's.
    for who in ("secA", "secB", "bsA1"):
        token = await login(client, world.user(who))
        body = await gql(client, token, OVERDUE)
        assert late_step not in {n["id"] for n in body["data"]["overdueApprovals"]["nodes"]}
    # Decided, it leaves the list.
    sec_a = await login(client, world.user("secA"))
    assert "errors" not in await decide(client, sec_a, late_step)
    body = await gql(client, county, OVERDUE)
    assert late_step not in {n["id"] for n in body["data"]["overdueApprovals"]["nodes"]}


async def test_a_step_falls_overdue_by_the_services_clock_in_beijing_days(
    client: httpx.AsyncClient, state: AppState, world: World, owner_conn: psycopg.Connection[Any]
) -> None:
    """No sleeping and no editing of rows: the service's clock moves, and the step is
    overdue once the Beijing day `step_days` days after its opening has ended."""
    real = state.clock
    request = await submit(state, world, to_county=False)
    step = await pending_step(state, request.id)

    async def listed_at(now: datetime) -> bool:
        # Logged in at that time too: a token of the real time would have expired.
        state.clock = lambda: now
        county = await login(client, world.user("county"))
        body = await gql(client, county, OVERDUE)
        assert "errors" not in body, body
        return step in {n["id"] for n in body["data"]["overdueApprovals"]["nodes"]}

    try:
        # The last second of the due day in Beijing: not yet; the next second: overdue.
        due = owner_conn.execute(
            "SELECT due_at FROM approval_steps WHERE id = %s", (_local(step),)
        ).fetchone()[0]
        # The end of a Beijing day: rules.due_at of the opening's instant.
        assert due == rules.due_at(
            due - timedelta(days=request.step_days, seconds=1), request.step_days
        )
        assert not await listed_at(due - timedelta(seconds=1))
        assert await listed_at(due + timedelta(seconds=1))
    finally:
        state.clock = real


# --- exactly once ---------------------------------------------------------------------


async def test_twenty_concurrent_decisions_decide_a_step_once(
    client: httpx.AsyncClient,
    state: AppState,
    world: World,
    told: Told,
    owner_conn: psycopg.Connection[Any],
) -> None:
    """Two secretaries of A, ten clicks each, all at once: one decision, one audit
    event, one outcome; every other answer says the step was already decided."""
    request = await submit(state, world, to_county=False)
    step = await pending_step(state, request.id)
    async with state.db.transaction() as tx:
        op = await operator_principal(tx, name="tests")
        await factories.account(
            tx, op, home=world.units["A"], username=world.user("secA2"),
            role=Role.COMMITTEE_SECRETARY,
        )  # fmt: skip
    tokens = [await login(client, world.user("secA")), await login(client, world.user("secA2"))]
    answers = await asyncio.gather(
        *(
            decide(client, tokens[i % 2], step, "APPROVE" if i % 3 else "REJECT", reason="并发")
            for i in range(20)
        )
    )
    won = [a for a in answers if "errors" not in a]
    lost = [error_codes(a) for a in answers if "errors" in a]
    assert len(won) == 1, answers
    assert lost == [["APPROVAL_ALREADY_DECIDED"]] * 19, lost
    decided = won[0]["data"]["decideApprovalStep"]
    outcome = {"APPROVE": "approved", "REJECT": "rejected"}[decided["step"]["decision"]]
    assert decided["request"]["state"] == outcome.upper()
    assert audit_count(owner_conn, request.tenant_id, "approval.decide", _local(step)) == 1
    # Every click gave the same reason: whichever decision won, the handler hears it.
    assert told.of(request.id) == [(outcome, "并发")]
    row = owner_conn.execute(
        "SELECT state, version FROM approval_steps WHERE id = %s", (_local(step),)
    ).fetchone()
    assert row == (outcome, 2)


async def test_a_double_submit_opens_one_request(state: AppState, world: World) -> None:
    subject = next(_subjects)
    results = await asyncio.gather(
        *(submit(state, world, subject_id=subject) for _ in range(5)), return_exceptions=True
    )
    opened = [r for r in results if not isinstance(r, BaseException)]
    refused = [r for r in results if isinstance(r, BaseException)]
    assert len(opened) == 1, results
    assert all(isinstance(r, DomainError) for r in refused), refused
    assert {r.code for r in refused if isinstance(r, DomainError)} == {"APPROVAL_ALREADY_SUBMITTED"}
    assert await pending_step(state, opened[0].id) is not None


async def test_a_decision_is_final_and_timed_by_the_database(
    client: httpx.AsyncClient, state: AppState, world: World, app_conn: psycopg.Connection[Any]
) -> None:
    """Even the application role cannot rewrite a decided step, nor date a decision:
    the trigger stamps `decided_at` with the database's `now()`."""
    request = await submit(state, world, to_county=False)
    step_id = _local(await pending_step(state, request.id))
    tenant = world.units["A"].tenant_id
    app_conn.execute(f"SET app.tenant_ids = '{int(tenant)}'")
    with app_conn.transaction():
        app_conn.execute(
            "UPDATE approval_steps SET state = 'approved', decision = 'approve',"
            " decided_by_name = 'x', decided_role = 'committee_secretary',"
            " decided_unit_id = 1, digest = 'digest-1', decided_at = '2000-01-01'"
            " WHERE id = %s",
            (step_id,),
        )
        row = app_conn.execute(
            "SELECT decided_at > now() - interval '1 day', version FROM approval_steps"
            " WHERE id = %s",
            (step_id,),
        ).fetchone()
        assert row == (True, 2)
    with pytest.raises(psycopg.errors.CheckViolation), app_conn.transaction():
        app_conn.execute("UPDATE approval_steps SET reason = '改写' WHERE id = %s", (step_id,))


async def test_pending_and_decided_steps_are_published(
    client: httpx.AsyncClient, state: AppState, world: World, owner_conn: psycopg.Connection[Any]
) -> None:
    owner_conn.execute("LISTEN pingyi_events")
    request = await submit(state, world, to_county=True)
    step = await pending_step(state, request.id)
    sec_a = await login(client, world.user("secA"))
    assert "errors" not in await decide(client, sec_a, step)
    seen = []
    for note in owner_conn.notifies(timeout=10):
        event = json.loads(note.payload)
        if event["topic"] == "approval_step" and event["payload"]["request_id"] == request.id:
            seen.append(event["payload"])
        if len(seen) == 3:
            break
    assert [(p["change"], p["state"], p["role"]) for p in seen] == [
        ("pending", "pending", "committee_secretary"),
        ("decided", "approved", "committee_secretary"),
        ("pending", "pending", "county_organizer"),
    ]
    assert {p["tenant_id"] for p in seen} == {world.units["A"].tenant_id}
    assert seen[2]["org_path"] == world.units["county"].path


async def test_inbox_cost_stays_flat_as_steps_grow(
    client: httpx.AsyncClient, state: AppState, world: World
) -> None:
    """The county's inbox with each step's request and branch: one message for the page,
    one for the requests, one for the branches (DataLoaders), however many steps."""
    query = """{ approvalInbox(first: 50) { nodes { id dueAt orgUnit { name }
      request { id digest branch { name } } } } }"""
    county = await login(client, world.user("county"))
    costs = []
    for _ in range(2):
        for branch in ("a1", "a2", "b1"):
            request = await submit(state, world, branch=branch, to_county=True)
            sec = "secB" if branch == "b1" else "secA"
            token = await login(client, world.user(sec))
            step = await pending_step(state, request.id)
            assert "errors" not in await decide(client, token, step)
        await gql(client, county, query)  # the principal cached
        with watching(state.db) as traffic:
            body = await gql(client, county, query)
        assert "errors" not in body, body
        costs.append((len(body["data"]["approvalInbox"]["nodes"]), traffic.round_trips))
    assert [n for n, _ in costs] == [5, 8]  # the world's two, then three more each time
    assert [trips for _, trips in costs] == [3, 3], costs
