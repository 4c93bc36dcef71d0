"""Exporting the member list to .xlsx: masked for every reader, full numbers only with
member:read_pii and a reason, audited either way; cells never run a formula; another
tenant's members never in the file; an unmasked export re-imports."""

from __future__ import annotations

import base64
import io
import re
from pathlib import Path
from typing import Any

import httpx
import openpyxl
import psycopg

from service.app import AppState
from service.auth.service import operator_principal
from service.config import Settings
from service.members import excel
from service.members.export import HEADERS
from service.schema.ids import to_global_id
from tests import factories
from tests.conftest import TestDatabase
from tests.members.ledger_rows import month
from tests.support import World, error_codes, gql, login, run_cli

EXPORT = """mutation($i: ExportMembersInput!) {
  exportMembers(input: $i) { filename contentBase64 rowCount masked } }"""
FULL_ID = re.compile(r"\d{17}[\dX]")


def _cells(content: bytes) -> list[list[Any]]:
    book = openpyxl.load_workbook(io.BytesIO(content))
    return [[c.value for c in row] for row in book.active.iter_rows()]


async def _export(client: httpx.AsyncClient, token: str, **fields: Any) -> dict[str, Any]:
    return await gql(client, token, EXPORT, {"i": fields})


async def _numbers(state: AppState, world: World) -> dict[str, str]:
    """A few members of a1 with known numbers (and one flagged), by name."""
    made = {}
    async with state.db.transaction() as tx:
        op = await operator_principal(tx, name="tests")
        for name, back in (("导出甲", 0), ("导出乙", 8)):
            number = factories.id_number()
            await factories.member(
                tx,
                op,
                branch=world.units["a1"],
                name=name,
                id_number=number,
                phone="13912345678",
                tracked_since=month(back).first_day,
            )
            made[name] = number
    return made


async def test_branch_secretary_never_receives_a_full_id_number(
    client: httpx.AsyncClient, state: AppState, world: World, owner_conn: psycopg.Connection[Any]
) -> None:
    numbers = await _numbers(state, world)
    token = await login(client, world.user("bsA1"))

    body = await _export(client, token)
    assert "errors" not in body, body
    made = body["data"]["exportMembers"]
    assert made["masked"] is True and made["rowCount"] == 4
    assert made["filename"].endswith(".xlsx")
    cells = _cells(base64.b64decode(made["contentBase64"]))
    assert cells[1] == list(HEADERS)
    for row in cells:
        for value in row:
            text = str(value)
            assert not FULL_ID.search(text), text
            assert "13912345678" not in text
    by_name = {row[1]: row for row in cells[2:]}
    assert by_name["导出甲"][3] == numbers["导出甲"][:4] + "*" * 10 + numbers["导出甲"][-4:]
    assert by_name["导出甲"][9] == "139****5678"
    assert by_name["导出乙"][13].startswith("不交纳党费（连续")
    assert by_name["导出甲"][13] in ("", None)

    # Asking for full numbers without member:read_pii is refused, whatever the reason.
    denied = await _export(client, token, reason="核对党员身份信息")
    assert error_codes(denied) == ["FORBIDDEN"]

    # Nor does any field of the list carry one.
    listed = await gql(
        client,
        token,
        """query($u: ID!) { members(orgUnitId: $u) { nodes { name idNumber phone
          lapse { flags { months } duesWarning familyPaidMonths }
          excuses { nodes { reason } } } } }""",
        {"u": world.gid("a1")},
    )
    assert "errors" not in listed, listed
    assert not FULL_ID.search(str(listed)) and "13912345678" not in str(listed)

    # The masked export is audited with its count, without a reason.
    [details] = [
        row[0]
        for row in owner_conn.execute(
            "SELECT details FROM audit_events WHERE action = 'member.export' AND actor = %s",
            (world.user("bsA1"),),
        ).fetchall()
    ]
    assert details["masked"] is True and details["count"] == 4 and "reason" not in details


async def test_organizer_exports_full_numbers_with_a_reason_and_it_reimports(
    client: httpx.AsyncClient, state: AppState, world: World, owner_conn: psycopg.Connection[Any]
) -> None:
    numbers = await _numbers(state, world)
    token = await login(client, world.user("orgA"))
    assert error_codes(await _export(client, token, reason=" ")) == ["REASON_REQUIRED"]

    body = await _export(client, token, orgUnitId=world.gid("a1"), reason="换届核对名册")
    assert "errors" not in body, body
    made = body["data"]["exportMembers"]
    assert made["masked"] is False and made["rowCount"] == 4
    content = base64.b64decode(made["contentBase64"])
    by_name = {row[1]: row for row in _cells(content)[2:]}
    assert by_name["导出甲"][3] == numbers["导出甲"]
    assert by_name["导出甲"][9] == "13912345678"
    assert by_name["导出甲"][8] == "甲镇第一支部"

    ledger = excel.read_ledger(content)
    assert ledger.problems == []
    assert {row.id_number for row in ledger.rows} >= set(numbers.values())

    events = owner_conn.execute(
        "SELECT tenant_id, details FROM audit_events WHERE action = 'member.export' AND actor = %s",
        (world.user("orgA"),),
    ).fetchall()
    [(tenant, details)] = events
    assert tenant == world.units["A"].tenant_id
    assert details["reason"] == "换届核对名册" and details["count"] == 4
    assert details["masked"] is False
    assert not any(number in str(details) for number in numbers.values())


async def test_names_that_look_like_formulas_are_written_as_text(
    client: httpx.AsyncClient, state: AppState, world: World
) -> None:
    names = ["=1+2", "+张三", "-李四", "@王五"]
    async with state.db.transaction() as tx:
        op = await operator_principal(tx, name="tests")
        branch = await factories.org_unit(tx, op, parent=world.units["A"])
        for name in names:
            await factories.member(tx, op, branch=branch, name=name)
    token = await login(client, world.user("orgA"))
    body = await _export(client, token, orgUnitId=to_global_id("OrgUnit", branch.id))
    content = base64.b64decode(body["data"]["exportMembers"]["contentBase64"])
    sheet = openpyxl.load_workbook(io.BytesIO(content)).active
    written = {}
    for row in sheet.iter_rows(min_row=3):
        cell = row[1]
        assert cell.data_type == "s", (cell.value, cell.data_type)
        written[cell.value] = cell.quotePrefix
    assert written == dict.fromkeys(names, True)


async def test_a_cannot_export_b(
    client: httpx.AsyncClient, world: World, owner_conn: psycopg.Connection[Any]
) -> None:
    token = await login(client, world.user("secA"))
    assert error_codes(await _export(client, token, orgUnitId=world.gid("b1"))) == ["NOT_FOUND"]
    assert error_codes(await _export(client, token, orgUnitId=world.gid("B"))) == ["NOT_FOUND"]
    body = await _export(client, token)
    made = body["data"]["exportMembers"]
    names = {row[1] for row in _cells(base64.b64decode(made["contentBase64"]))[2:]}
    assert names == {"memA1同志", "otherA1同志"}
    tenants = {
        row[0]
        for row in owner_conn.execute(
            "SELECT tenant_id FROM audit_events WHERE action = 'member.export' AND actor = %s",
            (world.user("secA"),),
        ).fetchall()
    }
    assert tenants == {world.units["A"].tenant_id}
    # A member of the ledger without member:read exports nothing.
    member = await login(client, world.user("memA1"))
    assert error_codes(await _export(client, member)) == ["FORBIDDEN"]


async def test_cli_exports_a_tenant(
    world: World,
    database: TestDatabase,
    settings: Settings,
    tmp_path: Path,
    owner_conn: psycopg.Connection[Any],
) -> None:
    out = tmp_path / "a.xlsx"
    env = {"PINGYI_DATA_DIR": str(settings.data_dir)}  # the same field key as the tests
    done = run_cli(
        database.owner_url,
        "export-members",
        "--tenant",
        f"{world.tag}-A",
        "--org-unit",
        f"{world.tag}-a1",
        "--unmasked",
        "--reason",
        "县委组织部年度核对",
        "--out",
        str(out),
        **env,
    )
    assert done.returncode == 0, done.stderr
    assert "已读取 2 名党员" in done.stderr
    ledger = excel.read_ledger(out.read_bytes())
    assert sorted(row.name for row in ledger.rows) == ["memA1同志", "otherA1同志"]
    [details] = [
        r[0]
        for r in owner_conn.execute(
            "SELECT details FROM audit_events WHERE action = 'member.export' AND tenant_id = %s",
            (world.units["A"].tenant_id,),
        ).fetchall()
    ]
    assert details["reason"] == "县委组织部年度核对" and details["count"] == 2

    refused = run_cli(
        database.owner_url,
        "export-members",
        "--tenant",
        f"{world.tag}-A",
        "--unmasked",
        "--out",
        str(out),
        **env,
    )
    assert refused.returncode == 1 and "--reason" in refused.stderr
