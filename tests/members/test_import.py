"""Importing a township's .xlsx ledger: the report a user reads before anything is
written, the confirmation that writes exactly the good rows once, the CLI, the GraphQL
multipart upload and its limits, and tenant isolation."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import date
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest

from service.app import AppState, create_app
from service.auth.service import operator_principal
from service.config import Settings
from service.members import excel
from service.members.excel import ProblemCode
from service.members.rules import mask_id_number
from service.schema.ids import from_global_id, to_global_id
from tests import factories
from tests.conftest import TestDatabase
from tests.support import World, error_codes, gql, login, run_cli

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
PREVIEW = """mutation($input: PreviewMemberImportInput!) {
  previewMemberImport(input: $input) {
    importId report { rows accepted alreadyPresent rejected { row column code message } }
  }
}"""
CONFIRM = """mutation($input: ConfirmMemberImportInput!) {
  confirmMemberImport(input: $input) { imported alreadyPresent }
}"""
# Shuffled, with a column the ledger does not know (民族), under a merged title row.
HEADERS = (
    "序号",
    "所在支部",
    "姓名",
    "民族",
    "入党日期",
    "身份证号",
    "联系电话",
    "是否流动党员",
    "外出地点",
    "人员类别",
)
GOOD = {"张三": "a1", "李四": "a1", "王五": "a2", "赵六": "a3"}


def _number(day: int) -> str:
    return factories.id_number(date(1975, 3, day))


class Ledger:
    """A township's ledger with four good rows, one of each bad kind and one member
    already in the ledger; `expected` is the report it must produce."""

    def __init__(self, present: str) -> None:
        ids = {name: _number(i + 1) for i, name in enumerate([*GOOD, "错日", "外支", "无名"])}
        late = factories.id_number(date(1990, 5, 5))
        valid = _number(20)
        wrong_check = valid[:17] + ("0" if valid[17] != "0" else "1")
        self.ids = ids
        self.rows = [
            # row 3 (row 1 is the title, row 2 the header)
            [1, "甲镇第一支部", "张三", "汉族", "2010-07-01", ids["张三"], "13800138000", "否",
             None, "正式党员"],
            # row 4: 所在支部 merged with the cell above; joined date as a date cell
            [2, None, "李四", "汉族", date(2012, 7, 1), ids["李四"], None, None, None, None],
            # row 5: stray space in the branch name
            [3, "甲镇 第二支部", "王五", None, "2015年7月1日", ids["王五"], None, None, None,
             "正式党员"],
            # row 6: a mobile member
            [4, "甲镇企业第一支部", "赵六", None, "2011-07-01", ids["赵六"], "13900139000", "是",
             "广东深圳", "正式党员"],
            [5, "甲镇第一支部", "坏号", None, "2010-07-01", wrong_check, None, None, None, None],
            [6, "甲镇第一支部", "错日", None, "2020-02-30", ids["错日"], None, None, None, None],
            # row 9: B's branch is unknown in A
            [7, "乙镇第一支部", "外支", None, "2010-07-01", ids["外支"], None, None, None, None],
            [8, "甲镇第一支部", "重号", None, "2010-07-01", ids["张三"], None, None, None, None],
            [9, "甲镇第一支部", None, None, "2010-07-01", ids["无名"], None, None, None, None],
            [10, "甲镇第一支部", "早入", None, "2000-01-01", late, None, None, None, None],
            [11, "甲镇第一支部", "已有", None, "2010-07-01", present, None, None, None, None],
        ]  # fmt: skip
        self.data = factories.ledger_xlsx(
            self.rows, headers=HEADERS, title="甲镇党员信息台账", merges=["B3:B4"]
        )
        p = excel.problem
        self.problems = [
            p(7, excel.ID_NUMBER, ProblemCode.ID_NUMBER_INVALID),
            p(8, excel.JOINED_DATE, ProblemCode.DATE_INVALID),
            p(9, excel.BRANCH, ProblemCode.BRANCH_UNKNOWN, branch="乙镇第一支部"),
            p(10, excel.ID_NUMBER, ProblemCode.DUPLICATE_IN_FILE, first_row=3),
            p(11, excel.NAME, ProblemCode.NAME_MISSING),
            p(12, excel.JOINED_DATE, ProblemCode.JOINED_UNDER_18),
            p(13, excel.ID_NUMBER, ProblemCode.ALREADY_PRESENT),
        ]

    def report(self, *, accepted: int = 4, already_present: int = 1) -> dict[str, Any]:
        """The report as the CLI writes it (snake_case keys)."""
        problems = self.problems
        if already_present > 1:  # the good rows of a re-import are in the ledger now
            rows = {"张三": 3, "李四": 4, "王五": 5, "赵六": 6}
            extra = [
                excel.problem(r, excel.ID_NUMBER, ProblemCode.ALREADY_PRESENT)
                for r in rows.values()
            ]
            problems = sorted([*problems, *extra], key=lambda q: q.row)
        return {
            "rows": 11,
            "accepted": accepted,
            "already_present": already_present,
            "rejected": [
                {"row": q.row, "column": q.column, "code": q.code, "message": q.message}
                for q in problems
            ],
        }

    def graphql_report(self, **counts: int) -> dict[str, Any]:
        plain = self.report(**counts)
        return {
            "rows": plain["rows"],
            "accepted": plain["accepted"],
            "alreadyPresent": plain["already_present"],
            "rejected": plain["rejected"],
        }


async def ledger_of(state: AppState, world: World) -> Ledger:
    """The ledger, with the member of its last row already added in a1 by hand."""
    present = _number(21)
    async with state.db.transaction() as tx:
        op = await operator_principal(tx, name="tests")
        await factories.member(tx, op, branch=world.units["a1"], id_number=present, name="已在册")
    return Ledger(present)


async def upload(
    client: httpx.AsyncClient,
    token: str | None,
    tenant: str,
    data: bytes,
    *,
    filename: str = "台账.xlsx",
) -> httpx.Response:
    """previewMemberImport as the GraphQL multipart request spec sends it."""
    operations = {"query": PREVIEW, "variables": {"input": {"tenantId": tenant, "file": None}}}
    return await client.post(
        "/graphql",
        data={
            "operations": json.dumps(operations),
            "map": json.dumps({"0": ["variables.input.file"]}),
        },
        files={"0": (filename, data, XLSX)},
        headers={"Authorization": f"Bearer {token}"} if token else {},
    )


async def preview(
    client: httpx.AsyncClient, token: str, tenant: str, data: bytes
) -> dict[str, Any]:
    response = await upload(client, token, tenant, data)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def confirm(client: httpx.AsyncClient, token: str, import_id: str) -> dict[str, Any]:
    return await gql(client, token, CONFIRM, {"input": {"importId": import_id}})


def tenant_rows(
    owner_conn: psycopg.Connection[Any], tenant_id: int, query: str, params: tuple[Any, ...] = ()
) -> list[tuple[Any, ...]]:
    """Rows as the owner sees them within one tenant (the owner is under forced RLS too)."""
    with owner_conn.transaction():
        owner_conn.execute("SELECT set_config('app.tenant_ids', %s, true)", (str(tenant_id),))
        return owner_conn.execute(query, (tenant_id, *params)).fetchall()  # type: ignore[arg-type]


def members_of(owner_conn: psycopg.Connection[Any], world: World) -> dict[str, tuple[Any, ...]]:
    rows = tenant_rows(
        owner_conn,
        world.units["A"].tenant_id,
        "SELECT m.name, o.code, m.id_number_mask, m.phone_mask, m.id_number_enc, m.is_mobile,"
        " m.mobile_location, m.tracked_since, m.category, m.branch_path = o.path"
        " FROM members m JOIN org_units o ON o.id = m.branch_id WHERE m.tenant_id = %s",
    )
    return {row[0]: row[1:] for row in rows}


def audit_actions(owner_conn: psycopg.Connection[Any], world: World) -> list[tuple[Any, ...]]:
    return tenant_rows(
        owner_conn,
        world.units["A"].tenant_id,
        "SELECT action, details FROM audit_events WHERE tenant_id = %s"
        " AND action LIKE 'member.import%%' ORDER BY seq",
    )


# --- preview and confirm ----------------------------------------------------------


async def test_preview_reports_every_bad_row_and_writes_no_member(
    client: httpx.AsyncClient,
    state: AppState,
    world: World,
    owner_conn: psycopg.Connection[Any],
) -> None:
    ledger = await ledger_of(state, world)
    before = members_of(owner_conn, world)
    token = await login(client, world.user("orgA"))
    body = await preview(client, token, world.gid("A"), ledger.data)
    assert "errors" not in body, body
    payload = body["data"]["previewMemberImport"]
    assert payload["report"] == ledger.graphql_report()
    assert payload["importId"]
    assert members_of(owner_conn, world) == before
    # The staged rows are sealed: no ID number in the clear anywhere in the row.
    [(report, sealed)] = tenant_rows(
        owner_conn,
        world.units["A"].tenant_id,
        "SELECT report, sealed_rows FROM member_imports WHERE tenant_id = %s AND id = %s",
        (_local(payload["importId"]),),
    )
    assert report == ledger.report()
    for number in ledger.ids.values():
        assert number.encode() not in bytes(sealed) and number not in json.dumps(report)


def _local(global_id: str) -> int:
    return from_global_id(global_id, "MemberImport")[1]


async def test_confirm_writes_exactly_the_good_rows_once(
    client: httpx.AsyncClient,
    state: AppState,
    world: World,
    owner_conn: psycopg.Connection[Any],
) -> None:
    ledger = await ledger_of(state, world)
    before = members_of(owner_conn, world)
    token = await login(client, world.user("orgA"))
    staged = await preview(client, token, world.gid("A"), ledger.data)
    import_id = staged["data"]["previewMemberImport"]["importId"]

    done = await confirm(client, token, import_id)
    assert done == {"data": {"confirmMemberImport": {"imported": 4, "alreadyPresent": 1}}}
    after = members_of(owner_conn, world)
    added = {name: row for name, row in after.items() if name not in before}
    assert {name: row[0] for name, row in added.items()} == {
        name: f"{world.tag}-{unit}" for name, unit in GOOD.items()
    }
    for name, (_, mask, phone, sealed, mobile, where, since, category, path_ok) in added.items():
        assert mask == mask_id_number(ledger.ids[name])
        assert ledger.ids[name].encode() not in bytes(sealed)  # the ID column is not plain
        assert since == date.today() and category == "full" and path_ok
        assert (mobile, where) == ((True, "广东深圳") if name == "赵六" else (False, None))
        assert phone == {"张三": "138****8000", "赵六": "139****9000"}.get(name)
    history = tenant_rows(
        owner_conn,
        world.units["A"].tenant_id,
        "SELECT count(*) FROM member_history WHERE tenant_id = %s AND kind = 'imported'",
    )
    assert history == [(4,)]
    # One audit event for the batch, with counts and no personal numbers.
    imports = [(a, d) for a, d in audit_actions(owner_conn, world) if a == "member.import"]
    assert len(imports) == 1
    assert imports[0][1] == {
        "rows": 11,
        "accepted": 4,
        "already_present": 1,
        "problems": 7,
        "imported": 4,
    }
    assert not any(n in json.dumps(imports, ensure_ascii=False) for n in ledger.ids.values())

    # A double click: refused, nothing more written.
    again = await confirm(client, token, import_id)
    assert error_codes(again) == ["IMPORT_ALREADY_CONFIRMED"]
    assert members_of(owner_conn, world) == after

    # The same file once more: everybody is there already, nobody is added twice.
    second = await preview(client, token, world.gid("A"), ledger.data)
    assert second["data"]["previewMemberImport"]["report"] == ledger.graphql_report(
        accepted=0, already_present=5
    )
    done = await confirm(client, token, second["data"]["previewMemberImport"]["importId"])
    assert done == {"data": {"confirmMemberImport": {"imported": 0, "alreadyPresent": 5}}}
    assert members_of(owner_conn, world) == after


async def test_rows_added_between_preview_and_confirm_count_as_present(
    client: httpx.AsyncClient,
    state: AppState,
    world: World,
    owner_conn: psycopg.Connection[Any],
) -> None:
    ledger = await ledger_of(state, world)
    token = await login(client, world.user("orgA"))
    staged = await preview(client, token, world.gid("A"), ledger.data)
    async with state.db.transaction() as tx:
        op = await operator_principal(tx, name="tests")
        await factories.member(
            tx, op, branch=world.units["a2"], id_number=ledger.ids["张三"], name="手工录入"
        )
    import_id = staged["data"]["previewMemberImport"]["importId"]
    done = await confirm(client, token, import_id)
    assert done == {"data": {"confirmMemberImport": {"imported": 3, "alreadyPresent": 2}}}
    names = members_of(owner_conn, world)
    assert "手工录入" in names and "张三" not in names


async def test_an_import_expires_after_an_hour(
    client: httpx.AsyncClient, world: World, owner_conn: psycopg.Connection[Any]
) -> None:
    token = await login(client, world.user("orgA"))
    import_id = world.records["importA"].id
    tenant_rows(
        owner_conn,
        world.units["A"].tenant_id,
        "UPDATE member_imports SET expires_at = now() - interval '1 second'"
        " WHERE tenant_id = %s AND id = %s RETURNING id",
        (import_id,),
    )
    body = await confirm(client, token, to_global_id("MemberImport", import_id))
    assert error_codes(body) == ["IMPORT_EXPIRED"]


# --- the upload's transport -------------------------------------------------------


async def test_a_file_that_is_not_a_workbook_is_refused(
    client: httpx.AsyncClient, world: World
) -> None:
    token = await login(client, world.user("orgA"))
    body = await preview(client, token, world.gid("A"), b"name,id\n")
    assert error_codes(body) == ["FILE_NOT_WORKBOOK"]
    assert body["errors"][0]["message"].startswith("无法读取该文件")


@pytest.fixture
async def small_client(state: AppState) -> Any:
    """The app with an upload limit of 150 kB (the JSON limit stays 100 kB)."""
    settings = replace(state.settings, max_upload_bytes=150_000)
    app = create_app(replace(state, settings=settings))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://pingyi.test") as c:
        yield c


async def test_uploads_have_their_own_limit_enforced_while_streaming(
    small_client: httpx.AsyncClient, world: World
) -> None:
    client = small_client
    token = await login(client, world.user("orgA"))
    # Over the JSON limit, under the upload limit: it reaches the reader.
    body = await preview(client, token, world.gid("A"), b"x" * 120_000)
    assert error_codes(body) == ["FILE_NOT_WORKBOOK"]
    # Over the upload limit, declared: refused at the edge.
    response = await upload(client, token, world.gid("A"), b"x" * 160_000)
    assert response.status_code == 413
    assert error_codes(response.json()) == ["REQUEST_TOO_LARGE"]

    # Over the limit without a declared length: stopped while it streams in.
    boundary = "pingyiboundary"
    operations = json.dumps(
        {"query": PREVIEW, "variables": {"input": {"tenantId": world.gid("A"), "file": None}}}
    )

    async def chunks() -> Any:
        yield (
            f'--{boundary}\r\nContent-Disposition: form-data; name="operations"\r\n\r\n'
            f"{operations}\r\n--{boundary}\r\n"
            'Content-Disposition: form-data; name="map"\r\n\r\n{"0": ["variables.input.file"]}'
            f'\r\n--{boundary}\r\nContent-Disposition: form-data; name="0"; filename="a.xlsx"\r\n'
            f"Content-Type: {XLSX}\r\n\r\n"
        ).encode()
        for _ in range(20):
            yield b"x" * 10_000
        yield f"\r\n--{boundary}--\r\n".encode()

    response = await client.post(
        "/graphql",
        content=chunks(),
        headers={
            "Authorization": f"Bearer {token}",
            "Content-Type": f"multipart/form-data; boundary={boundary}",
        },
    )
    assert response.status_code == 413
    assert error_codes(response.json()) == ["REQUEST_TOO_LARGE"]


async def test_an_upload_without_a_bearer_token_is_refused(
    client: httpx.AsyncClient, world: World, owner_conn: psycopg.Connection[Any]
) -> None:
    data = factories.ledger_xlsx([[1, "张三", _number(1), "2010-07-01", "甲镇第一支部", None]])
    response = await upload(client, None, world.gid("A"), data)
    assert response.status_code == 401
    assert error_codes(response.json()) == ["UNAUTHENTICATED"]
    # A cookie is no credential either.
    token = await login(client, world.user("orgA"))
    client.cookies.set("access_token", token)
    response = await upload(client, None, world.gid("A"), data)
    assert response.status_code == 401
    staged = tenant_rows(
        owner_conn,
        world.units["A"].tenant_id,
        "SELECT count(*) FROM member_imports WHERE tenant_id = %s",
    )
    assert staged == [(1,)]  # the world's own pending import only


# --- who may import -----------------------------------------------------------------


async def test_a_cannot_import_into_b_nor_confirm_bs_import(
    client: httpx.AsyncClient, world: World, owner_conn: psycopg.Connection[Any]
) -> None:
    token = await login(client, world.user("orgA"))
    data = factories.ledger_xlsx([[1, "张三", _number(1), "2010-07-01", "乙镇第一支部", None]])
    missing = to_global_id("OrgUnit", 2**62)
    into_b = await preview(client, token, world.gid("B"), data)
    nowhere = await preview(client, token, missing, data)
    assert error_codes(into_b) == ["NOT_FOUND"] and into_b == nowhere

    b_import = to_global_id("MemberImport", world.records["importB"].id)
    theirs = await confirm(client, token, b_import)
    none = await confirm(client, token, to_global_id("MemberImport", 2**62))
    assert error_codes(theirs) == ["NOT_FOUND"] and theirs == none
    confirmed = tenant_rows(
        owner_conn,
        world.units["B"].tenant_id,
        "SELECT confirmed_at FROM member_imports WHERE tenant_id = %s",
    )
    assert confirmed == [(None,)]

    # A branch is no tenant; a secretary without member:import is refused.
    branch = await preview(client, token, world.gid("a1"), data)
    assert error_codes(branch) == ["NOT_FOUND"]
    secretary = await login(client, world.user("secA"))
    assert error_codes(await preview(client, secretary, world.gid("A"), data)) == ["FORBIDDEN"]
    own = to_global_id("MemberImport", world.records["importA"].id)
    assert error_codes(await confirm(client, secretary, own)) == ["FORBIDDEN"]


# --- the command line ---------------------------------------------------------------


async def test_cli_dry_run_writes_the_report_and_nothing_else_then_imports(
    state: AppState,
    world: World,
    database: TestDatabase,
    settings: Settings,
    owner_conn: psycopg.Connection[Any],
    tmp_path: Path,
) -> None:
    ledger = await ledger_of(state, world)
    before = members_of(owner_conn, world)
    audited = audit_actions(owner_conn, world)
    source = tmp_path / "台账.xlsx"
    source.write_bytes(ledger.data)
    report = tmp_path / "report.json"
    env = {"PINGYI_DATA_DIR": str(settings.data_dir)}  # the same field key as the tests
    code = f"{world.tag}-A"

    dry = run_cli(
        database.owner_url,
        "import-members",
        str(source),
        "--tenant",
        code,
        "--dry-run",
        "--report",
        str(report),
        **env,
    )
    assert dry.returncode == 0, dry.stdout + dry.stderr
    assert json.loads(report.read_text(encoding="utf-8")) == ledger.report()
    assert "试运行" in dry.stdout and "第 7 行 身份证号" in dry.stdout
    assert members_of(owner_conn, world) == before
    assert audit_actions(owner_conn, world) == audited

    done = run_cli(database.owner_url, "import-members", str(source), "--tenant", code, **env)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "已导入 4 名党员" in done.stdout
    assert "已写入 4/4 行" in done.stderr  # plain progress lines: stderr is no terminal
    added = set(members_of(owner_conn, world)) - set(before)
    assert added == set(GOOD)
    assert [a for a, _ in audit_actions(owner_conn, world)].count("member.import") == 1

    again = run_cli(database.owner_url, "import-members", str(source), "--tenant", code, **env)
    assert again.returncode == 0 and "已导入 0 名党员" in again.stdout, again.stdout

    junk = tmp_path / "junk.xlsx"
    junk.write_bytes(b"not a workbook")
    failed = run_cli(database.owner_url, "import-members", str(junk), "--tenant", code, **env)
    assert failed.returncode == 1
    assert "导入失败：无法读取该文件" in failed.stderr and "FILE_NOT_WORKBOOK" in failed.stderr
    unknown = run_cli(database.owner_url, "import-members", str(source), "--tenant", "nope", **env)
    assert unknown.returncode == 1 and "不存在" in unknown.stderr
