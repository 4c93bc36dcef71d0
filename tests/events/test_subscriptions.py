"""GraphQL subscriptions over `graphql-transport-ws` on /graphql, end to end.

Real servers (tests/events/conftest.py), real WebSockets, real PostgreSQL NOTIFY.
Each test waits for what it expects (a message, a close, a subscriber in the hub);
an event that must NOT arrive is shown absent by a later event arriving first.
"""

from __future__ import annotations

import asyncio
import dataclasses
from typing import Any

import httpx

from service import approvals
from service.auth.service import operator_principal
from service.config import Settings
from service.schema.ids import to_global_id
from tests import factories
from tests.events.conftest import GraphQLWS, Server, serve_app, serve_process, subscribed
from tests.support import World, error_codes, gql, login

TOPIC = "approval_step"
INBOX = """
subscription {
  approvalInbox {
    change
    step { id state role orgUnit { name } request { id } }
  }
}
"""
DECIDE = """
mutation($i: DecideApprovalStepInput!) {
  decideApprovalStep(input: $i) { step { id state } }
}
"""


async def _request(state: Any, world: World, branch: str, **kw: Any) -> Any:
    """A request from `branch`, committed, its first step pending (and approved by the
    accounts of `approved_by`)."""
    async with state.db.transaction() as tx:
        op = await operator_principal(tx, name="tests")
        return await factories.approval_request(
            tx, op, branch=world.units[branch], **(_GENERIC | kw)
        )


# A kind no domain acts on yet: the approval itself is what these tests watch.
_GENERIC: dict[str, Any] = {"kind": "case_disposal", "subject_type": "Case"}


def _step_gid(step: Any) -> str:
    return to_global_id("ApprovalStep", step.id)


async def _next_event(client: GraphQLWS, op_id: str = "1") -> dict[str, Any]:
    message = await client.recv()
    assert message["type"] == "next" and message["id"] == op_id, message
    assert "errors" not in message["payload"], message
    return message["payload"]["data"]["approvalInbox"]  # type: ignore[no-any-return]


# --- the protocol ----------------------------------------------------------------------


async def test_handshake_ping_pong_and_complete(
    server: Server, client: httpx.AsyncClient, world: World
) -> None:
    token = await login(client, world.user("county"))
    async with GraphQLWS.connect(server.ws) as ws:
        assert ws.ws.subprotocol == "graphql-transport-ws"
        assert await ws.init(token) == {"type": "connection_ack"}
        await ws.send({"type": "ping"})
        assert await ws.recv() == {"type": "pong"}
        assert server.state is not None
        await ws.subscribe("a", INBOX)
        await server.state.events.wait_for_subscribers(TOPIC, 1)
        await ws.send({"id": "a", "type": "complete"})
        await ws.send({"type": "ping"})
        assert await ws.recv() == {"type": "pong"}
    # The completed subscription left the hub with its connection.
    assert server.state.events.subscribers(TOPIC) == 0


async def test_refused_without_token_bad_token_or_before_init(
    server: Server, client: httpx.AsyncClient, world: World
) -> None:
    async with GraphQLWS.connect(server.ws) as ws:
        await ws.send({"type": "connection_init", "payload": {}})
        assert (await ws.closed())[0] == 4403
    async with GraphQLWS.connect(server.ws) as ws:
        await ws.send({"type": "connection_init", "payload": {"authorization": "Bearer nope"}})
        assert (await ws.closed())[0] == 4403
    async with GraphQLWS.connect(server.ws) as ws:
        await ws.subscribe("1", INBOX)  # no connection_init
        assert (await ws.closed())[0] == 4401
    # A token of a session that has ended (logged out) is refused too.
    token = await login(client, world.user("county"))
    assert (
        await client.post("/auth/logout", headers={"Authorization": f"Bearer {token}"})
    ).is_success
    async with GraphQLWS.connect(server.ws) as ws:
        await ws.send({"type": "connection_init", "payload": {"authorization": f"Bearer {token}"}})
        assert (await ws.closed())[0] == 4403


async def test_only_subscriptions_and_limits_over_the_socket(
    server: Server, client: httpx.AsyncClient, world: World
) -> None:
    token = await login(client, world.user("county"))
    async with GraphQLWS.connect(server.ws) as ws:
        await ws.init(token)
        await ws.subscribe("q", "{ me { username } }")
        answer = await ws.recv()
        assert answer["type"] == "error" and answer["id"] == "q"
        assert [e["extensions"]["code"] for e in answer["payload"]] == ["SUBSCRIPTIONS_ONLY"]
        deep = "subscription { approvalInbox { step { request { steps { request { steps {"
        deep += " request { steps { request { steps { request { id } } } } } } } } } } } }"
        await ws.subscribe("d", deep)
        answer = await ws.recv()
        assert answer["type"] == "error"
        assert [e["extensions"]["code"] for e in answer["payload"]] == ["QUERY_TOO_DEEP"]
        await ws.subscribe("u", "subscription { nothingHere }")
        answer = await ws.recv()
        assert answer["type"] == "error"
        assert answer["payload"][0]["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED"
        assert "Did you mean" not in answer["payload"][0]["message"]
        # The connection is still usable after refused operations.
        await ws.send({"type": "ping"})
        assert await ws.recv() == {"type": "pong"}
    # Over HTTP a subscription document is refused with a code, nothing executed.
    body = await gql(client, token, INBOX, status=400)
    assert error_codes(body) == ["INVALID_REQUEST"]


# --- delivery --------------------------------------------------------------------------


async def test_event_delivered_after_commit_never_after_rollback(
    server: Server, client: httpx.AsyncClient, world: World, state: Any
) -> None:
    token = await login(client, world.user("county"))
    async with subscribed(server, token, INBOX, topic=TOPIC) as ws:
        # Rolled back: the county step it opened never existed, nothing is announced.
        class Abandon(Exception):
            pass

        try:
            async with state.db.transaction() as tx:
                op = await operator_principal(tx, name="tests")
                await factories.approval_request(
                    tx,
                    op,
                    **_GENERIC,
                    branch=world.units["a1"],
                    to_county=True,
                    approved_by=[world.accounts["secA"]],
                )
                raise Abandon
        except Abandon:
            pass
        # Committed: step 1 approved by the township, step 2 pending at the county.
        request = await _request(
            state, world, "a1", to_county=True, approved_by=[world.accounts["secA"]]
        )
        event = await _next_event(ws)
        assert event["change"] == "ARRIVED"
        assert event["step"]["id"] == _step_gid(request.pending_step)
        assert event["step"]["state"] == "PENDING"
        assert event["step"]["role"] == "COUNTY_ORGANIZER"
        assert event["step"]["orgUnit"]["name"] == world.units["county"].name
        assert event["step"]["request"]["id"] == to_global_id("ApprovalRequest", request.id)


async def test_a_withdrawn_step_leaves_the_inbox_live(
    server: Server, client: httpx.AsyncClient, world: World, state: Any
) -> None:
    """A matter withdrawn before the decider decided it (a dropped case) is announced
    as WITHDRAWN to the inbox that held it."""
    token = await login(client, world.user("secA"))
    async with subscribed(server, token, INBOX, topic=TOPIC) as ws:
        request = await _request(state, world, "a1", subject_id=4242)
        arrived = await _next_event(ws)
        assert (arrived["change"], arrived["step"]["id"]) == (
            "ARRIVED",
            _step_gid(request.pending_step),
        )
        async with state.db.transaction() as tx:
            op = await operator_principal(tx, name="tests")
            tx.widen([request.tenant_id])
            withdrawn = await approvals.withdraw_open(
                tx,
                op,
                tenant_id=request.tenant_id,
                kind=approvals.ApprovalKind(_GENERIC["kind"]),
                subject_type=_GENERIC["subject_type"],
                subject_id=4242,
                reason="案件已撤销",
            )
        assert withdrawn is not None and withdrawn.state == "withdrawn"
        event = await _next_event(ws)
        assert event["change"] == "WITHDRAWN"
        assert (event["step"]["id"], event["step"]["state"]) == (
            _step_gid(request.pending_step),
            "WITHDRAWN",
        )


async def test_inbox_events_stay_in_their_tenant(
    server: Server, client: httpx.AsyncClient, world: World, state: Any
) -> None:
    """Isolation of `approvalInbox`: township B's secretary hears B's steps only,
    township A's secretary A's only, though both hold the same role."""
    token_b = await login(client, world.user("secB"))
    token_a = await login(client, world.user("secA"))
    async with (
        subscribed(server, token_b, INBOX, topic=TOPIC) as sub_b,
        subscribed(server, token_a, INBOX, topic=TOPIC) as sub_a,
    ):
        from_a = await _request(state, world, "a1")
        from_b = await _request(state, world, "b1")
        event_b = await _next_event(sub_b)
        assert event_b["step"]["id"] == _step_gid(from_b.pending_step)
        event_a = await _next_event(sub_a)
        assert event_a["step"]["id"] == _step_gid(from_a.pending_step)
        # A's decision reaches A's inbox as DECIDED, and B's subscriber still only
        # hears B: its next event is B's own decision.
        for who, request in (("secA", from_a), ("secB", from_b)):
            token = token_a if who == "secA" else token_b
            body = await gql(
                client,
                token,
                DECIDE,
                {
                    "i": {
                        "stepId": _step_gid(request.pending_step),
                        "decision": "APPROVE",
                        "digest": request.digest,
                    }
                },
            )
            assert "errors" not in body, body
        decided_a = await _next_event(sub_a)
        assert (decided_a["change"], decided_a["step"]["id"]) == (
            "DECIDED",
            _step_gid(from_a.pending_step),
        )
        decided_b = await _next_event(sub_b)
        assert (decided_b["change"], decided_b["step"]["id"]) == (
            "DECIDED",
            _step_gid(from_b.pending_step),
        )


async def test_two_processes_one_database(
    settings: Settings, database: Any, client: httpx.AsyncClient, world: World, state: Any
) -> None:
    """A decision made through one process reaches a subscriber of another: process 1
    runs in a subprocess (what `pingyi serve` runs per worker), process 2 here."""
    request = await _request(state, world, "a1", to_county=True)
    token_sec = await login(client, world.user("secA"))
    token_county = await login(client, world.user("county"))
    with serve_process(settings, database.owner_url) as process_1:
        async with (
            serve_app(settings, database.owner_url) as process_2,
            process_1.client() as http_1,
            subscribed(process_2, token_county, INBOX, topic=TOPIC) as ws,
        ):
            body = await gql(
                http_1,
                token_sec,
                DECIDE,
                {
                    "i": {
                        "stepId": _step_gid(request.pending_step),
                        "decision": "APPROVE",
                        "digest": request.digest,
                    }
                },
            )
            assert "errors" not in body, body
            arrived = await _next_event(ws)
            assert arrived["change"] == "ARRIVED"
            assert arrived["step"]["role"] == "COUNTY_ORGANIZER"
            # The county decides through process 1; process 2's subscriber hears it.
            body = await gql(
                http_1,
                token_county,
                DECIDE,
                {
                    "i": {
                        "stepId": arrived["step"]["id"],
                        "decision": "APPROVE",
                        "digest": request.digest,
                    }
                },
            )
            assert "errors" not in body, body
            decided = await _next_event(ws)
            assert decided["change"] == "DECIDED"
            assert decided["step"]["id"] == arrived["step"]["id"]
            assert decided["step"]["state"] == "APPROVED"
            # Logging out through process 1 ends the subscription on process 2.
            out = await http_1.post(
                "/auth/logout", headers={"Authorization": f"Bearer {token_county}"}
            )
            assert out.is_success, out.text
            assert (await ws.closed())[0] == 4403


async def test_revocation_ends_the_subscription(
    server: Server, client: httpx.AsyncClient, world: World, state: Any
) -> None:
    token = await login(client, world.user("secA"))
    async with subscribed(server, token, INBOX, topic=TOPIC) as ws:
        assert (
            await client.post("/auth/logout", headers={"Authorization": f"Bearer {token}"})
        ).is_success
        code, _ = await ws.closed()
        assert code == 4403
    assert server.state is not None
    await asyncio.wait_for(server.state.events.wait_for_subscribers(TOPIC, 0), 30)


async def test_disabled_account_ends_the_subscription(
    server: Server, client: httpx.AsyncClient, world: World
) -> None:
    token = await login(client, world.user("secA"))
    sysadmin = await login(client, world.user("sysadmin"))
    async with subscribed(server, token, INBOX, topic=TOPIC) as ws:
        body = await gql(
            client,
            sysadmin,
            "mutation($i: AccountIdInput!) { disableAccount(input: $i) { account { id } } }",
            {"i": {"accountId": world.account_gid("secA")}},
        )
        assert "errors" not in body, body
        assert (await ws.closed())[0] == 4403


async def test_connection_ends_with_its_access_token(
    settings: Settings, database: Any, world: World
) -> None:
    """The socket lives as long as the token it was opened with (4403 then, which
    graphql-ws clients retry with a fresh token)."""
    short = dataclasses.replace(settings, access_token_ttl=2)
    async with serve_app(short, database.owner_url) as server, server.client() as http:
        token = await login(http, world.user("secA"))
        async with subscribed(server, token, INBOX, topic=TOPIC) as ws:
            assert await ws.closed() == (4403, "访问令牌已过期")
