"""The member record through the API: add, read masked, reveal with a reason, edit,
status, 转正, move and transfer; personal numbers sealed at rest."""

from __future__ import annotations

from datetime import date
from typing import Any

import httpx
import psycopg
import pytest

from service.app import AppState
from service.auth.service import operator_principal
from service.crypto import SealBroken, field_cipher
from service.members.rules import mask_id_number
from tests import factories
from tests.support import World, error_codes, gql, login

MEMBER_FIELDS = "id name gender idNumber phone category status branch { name } version"


async def create(client: httpx.AsyncClient, token: str, **fields: Any) -> dict[str, Any]:
    return await gql(
        client,
        token,
        "mutation($i: CreateMemberInput!) { createMember(input: $i)"
        f" {{ member {{ {MEMBER_FIELDS} }} }} }}",
        {"i": fields},
    )


async def test_organizer_adds_a_member_and_everyone_sees_only_the_masks(
    client: httpx.AsyncClient, world: World, owner_conn: psycopg.Connection[Any]
) -> None:
    org = await login(client, world.user("orgA"))
    number = factories.id_number(date(1985, 3, 9))
    body = await create(
        client,
        org,
        branchId=world.gid("a1"),
        name="  张  三 ",
        idNumber=number.lower(),
        joinedOn="2010-07-01",
        phone="138 0013 8000",
    )
    assert "errors" not in body, body
    member = body["data"]["createMember"]["member"]
    assert member["name"] == "张三"
    assert member["gender"] == ("MALE" if int(number[16]) % 2 else "FEMALE")
    assert member["idNumber"] == mask_id_number(number) == number[:4] + "*" * 10 + number[-4:]
    assert member["phone"] == "138****8000"
    assert member["branch"]["name"] == "甲镇第一支部"

    # The branch secretary lists the branch and never gets the full number.
    bs = await login(client, world.user("bsA1"))
    listed = await gql(
        client,
        bs,
        "query($u: ID!) { members(orgUnitId: $u) { nodes { name idNumber phone } } }",
        {"u": world.gid("a1")},
    )
    names = {m["name"]: m for m in listed["data"]["members"]["nodes"]}
    assert names["张三"]["idNumber"] == mask_id_number(number)
    assert number not in str(listed)
    # ... and may not reveal it (no member:read_pii).
    denied = await gql(
        client,
        bs,
        "mutation($i: RevealMemberPiiInput!) { revealMemberPii(input: $i) { idNumber } }",
        {"i": {"memberId": member["id"], "reason": "核对身份"}},
    )
    assert error_codes(denied) == ["FORBIDDEN"]
    assert number not in str(denied)

    # The organizer may, with a reason; the reason is audited, the number is not.
    no_reason = await gql(
        client,
        org,
        "mutation($i: RevealMemberPiiInput!) { revealMemberPii(input: $i) { idNumber } }",
        {"i": {"memberId": member["id"], "reason": " "}},
    )
    assert error_codes(no_reason) == ["REASON_REQUIRED"]
    shown = await gql(
        client,
        org,
        "mutation($i: RevealMemberPiiInput!) { revealMemberPii(input: $i) { idNumber phone } }",
        {"i": {"memberId": member["id"], "reason": "核对组织关系转接材料"}},
    )
    assert shown["data"]["revealMemberPii"] == {"idNumber": number, "phone": "13800138000"}
    events = owner_conn.execute(
        "SELECT action, details::text FROM audit_events WHERE object_type = 'Member'"
        " AND object_id = %s ORDER BY seq",
        (str(_local(member["id"])),),
    ).fetchall()
    assert [e[0] for e in events] == ["member.create", "member.reveal_pii"]
    assert "核对组织关系转接材料" in events[1][1]
    assert all(number not in e[1] and "13800138000" not in e[1] for e in events)

    # At rest: neither number appears in the row.
    row = owner_conn.execute(
        "SELECT row_to_json(m)::text FROM members m WHERE id = %s", (_local(member["id"]),)
    ).fetchone()
    assert row is not None
    assert number not in row[0] and "13800138000" not in row[0]


def _local(global_id: str) -> int:
    from service.schema.ids import from_global_id

    return from_global_id(global_id)[1]


async def test_ciphertext_swapped_between_rows_does_not_decrypt(
    state: AppState, world: World, owner_conn: psycopg.Connection[Any]
) -> None:
    a, b = world.members["memA1"], world.members["otherA1"]
    rows = {
        r[0]: r[1:]
        for r in owner_conn.execute(
            "SELECT id, tenant_id, id_number_enc FROM members WHERE id = ANY(%s)", ([a.id, b.id],)
        )
    }
    cipher = field_cipher()
    tenant, sealed_a = rows[a.id]
    opened = cipher.open(
        sealed_a, tenant_id=tenant, table="members", column="id_number", row_id=a.id
    )
    assert len(opened) == 18
    for where in (
        {"row_id": b.id, "column": "id_number", "tenant_id": tenant},
        {"row_id": a.id, "column": "phone", "tenant_id": tenant},
        {"row_id": a.id, "column": "id_number", "tenant_id": world.units["B"].tenant_id},
    ):
        with pytest.raises(SealBroken):
            cipher.open(sealed_a, table="members", **where)
    # Swapped in the table itself, the API refuses rather than showing the other number.
    owner_conn.execute("UPDATE members SET id_number_enc = %s WHERE id = %s", (sealed_a, b.id))
    owner_conn.commit()
    async with state.db.transaction(write=True) as tx:
        op = await operator_principal(tx, name="tests")
        from service.members.service import open_pii

        with pytest.raises(Exception) as raised:
            await open_pii(tx, b.id)
        assert getattr(raised.value, "code", None) == "PII_UNREADABLE"
        assert op is not None


async def test_duplicate_id_number_in_tenant_is_refused_but_another_tenant_may_hold_it(
    client: httpx.AsyncClient, world: World
) -> None:
    org = await login(client, world.user("county"))
    number = factories.id_number()
    first = await create(
        client, org, branchId=world.gid("a1"), name="李四", idNumber=number, joinedOn="2012-07-01"
    )
    assert "errors" not in first, first
    again = await create(
        client, org, branchId=world.gid("a2"), name="李四", idNumber=number, joinedOn="2012-07-01"
    )
    assert error_codes(again) == ["MEMBER_ALREADY_EXISTS"]
    elsewhere = await create(
        client, org, branchId=world.gid("b1"), name="李四", idNumber=number, joinedOn="2012-07-01"
    )
    assert "errors" not in elsewhere, elsewhere
    found = await gql(
        client,
        org,
        "query($n: String!) { members(idNumber: $n) { nodes { branch { name } } } }",
        {"n": number},
    )
    assert {m["branch"]["name"] for m in found["data"]["members"]["nodes"]} == {
        "甲镇第一支部",
        "乙镇第一支部",
    }


@pytest.mark.parametrize(
    ("fields", "code"),
    [
        ({"idNumber": "511302198501011234"}, "ID_NUMBER_INVALID"),
        ({"name": "   "}, "NAME_MISSING"),
        ({"joinedOn": "1999-01-01"}, "JOINED_UNDER_18"),
        ({"phone": "12345"}, "PHONE_INVALID"),
    ],
)
async def test_bad_input_has_a_stable_code_and_no_number_in_the_message(
    client: httpx.AsyncClient, world: World, fields: dict[str, Any], code: str
) -> None:
    org = await login(client, world.user("orgA"))
    base = {
        "branchId": world.gid("a1"),
        "name": "王五",
        "idNumber": factories.id_number(date(1985, 1, 1)),
        "joinedOn": "2010-07-01",
    }
    body = await create(client, org, **(base | fields))
    assert error_codes(body) == [code]
    assert base["idNumber"] not in str(body) and "511302198501011234" not in str(body)


async def test_member_is_placed_only_in_a_branch(client: httpx.AsyncClient, world: World) -> None:
    org = await login(client, world.user("orgA"))
    body = await create(
        client,
        org,
        branchId=world.gid("ag"),
        name="赵六",
        idNumber=factories.id_number(),
        joinedOn="2015-07-01",
    )
    assert error_codes(body) == ["NOT_A_BRANCH"]


async def test_status_moves_never_delete_and_follow_the_rules(
    client: httpx.AsyncClient, world: World
) -> None:
    org = await login(client, world.user("orgA"))
    gid = world.member_gid("otherA1")
    doc = (
        "mutation($i: ChangeMemberStatusInput!) { changeMemberStatus(input: $i)"
        " { member { status statusChangedOn } } }"
    )
    died = await gql(
        client,
        org,
        doc,
        {"i": {"memberId": gid, "status": "DECEASED", "effectiveOn": "2026-10-01"}},
    )
    assert died["data"]["changeMemberStatus"]["member"] == {
        "status": "DECEASED",
        "statusChangedOn": "2026-10-01",
    }
    back = await gql(
        client, org, doc, {"i": {"memberId": gid, "status": "ACTIVE", "effectiveOn": "2026-10-02"}}
    )
    assert error_codes(back) == ["STATUS_MOVE_NOT_ALLOWED"]
    history = await gql(
        client,
        org,
        "query($id: ID!) { member(id: $id) { status history { nodes { kind details } } } }",
        {"id": gid},
    )
    kinds = [h["kind"] for h in history["data"]["member"]["history"]["nodes"]]
    assert kinds == ["created", "status_changed"]


async def test_probationary_member_is_confirmed_once(
    client: httpx.AsyncClient, world: World
) -> None:
    org = await login(client, world.user("orgA"))
    body = await create(
        client,
        org,
        branchId=world.gid("a2"),
        name="预备甲",
        idNumber=factories.id_number(date(2000, 5, 5)),
        joinedOn="2025-12-01",
        category="PROBATIONARY",
    )
    gid = body["data"]["createMember"]["member"]["id"]
    doc = (
        "mutation($i: ConfirmMemberInput!) { confirmMember(input: $i)"
        " { member { category confirmedOn } } }"
    )
    early = await gql(client, org, doc, {"i": {"memberId": gid, "confirmedOn": "2025-11-30"}})
    assert error_codes(early) == ["CONFIRMED_BEFORE_JOINED"]
    done = await gql(client, org, doc, {"i": {"memberId": gid, "confirmedOn": "2026-12-01"}})
    assert done["data"]["confirmMember"]["member"] == {
        "category": "FULL",
        "confirmedOn": "2026-12-01",
    }
    twice = await gql(client, org, doc, {"i": {"memberId": gid, "confirmedOn": "2026-12-02"}})
    assert error_codes(twice) == ["NOT_PROBATIONARY"]


async def test_transfer_across_tenants_keeps_history_and_reseals(
    client: httpx.AsyncClient, world: World, owner_conn: psycopg.Connection[Any]
) -> None:
    county = await login(client, world.user("county"))
    orgA = await login(client, world.user("orgA"))
    gid = world.member_gid("otherA1")
    doc = "mutation($i: MoveMemberInput!) { moveMember(input: $i) { member { branch { name } } } }"
    # The tenant's organizer cannot reach another tenant's branch (it does not exist for them).
    refused = await gql(
        client,
        orgA,
        doc,
        {"i": {"memberId": gid, "toBranchId": world.gid("b1"), "effectiveOn": "2026-11-01"}},
    )
    assert error_codes(refused) == ["NOT_FOUND"]
    within = await gql(
        client,
        orgA,
        doc,
        {"i": {"memberId": gid, "toBranchId": world.gid("a2"), "effectiveOn": "2026-11-01"}},
    )
    assert within["data"]["moveMember"]["member"]["branch"]["name"] == "甲镇第二支部"
    moved = await gql(
        client,
        county,
        doc,
        {"i": {"memberId": gid, "toBranchId": world.gid("b1"), "effectiveOn": "2026-11-02"}},
    )
    assert moved["data"]["moveMember"]["member"]["branch"]["name"] == "乙镇第一支部", moved
    # B's organizer now sees the member with the history; A's no longer does.
    orgB = await login(client, world.user("orgB"))
    seen = await gql(
        client,
        orgB,
        "query($id: ID!) { member(id: $id) { idNumber history { nodes { kind } } } }",
        {"id": gid},
    )
    assert [h["kind"] for h in seen["data"]["member"]["history"]["nodes"]] == [
        "created",
        "branch_changed",
        "transferred_in",
    ]
    gone = await gql(client, orgA, "query($id: ID!) { member(id: $id) { name } }", {"id": gid})
    assert error_codes(gone) == ["NOT_FOUND"]
    shown = await gql(
        client,
        orgB,
        "mutation($i: RevealMemberPiiInput!) { revealMemberPii(input: $i) { idNumber } }",
        {"i": {"memberId": gid, "reason": "接收转入党员核对"}},
    )
    assert (
        shown["data"]["revealMemberPii"]["idNumber"][-4:] == seen["data"]["member"]["idNumber"][-4:]
    )


async def test_a_member_sees_their_own_record_and_nobody_elses(
    client: httpx.AsyncClient, world: World
) -> None:
    me = await login(client, world.user("memA1"))
    mine = await gql(client, me, "{ me { member { name branch { name } } } }")
    assert mine["data"]["me"]["member"] == {"name": "memA1同志", "branch": {"name": "甲镇第一支部"}}
    other = await gql(
        client,
        me,
        "query($id: ID!) { member(id: $id) { name } }",
        {"id": world.member_gid("otherA1")},
    )
    assert error_codes(other) == ["NOT_FOUND"]
    listed = await gql(client, me, "{ members { nodes { name } } }")
    assert listed["data"]["members"]["nodes"] == []
    nobody = await login(client, world.user("secA"))
    none = await gql(client, nobody, "{ me { member { name } } }")
    assert none["data"]["me"]["member"] is None
