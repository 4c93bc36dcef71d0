"""The ledger's Excel layer: a hand-typed county ledger read row by row with exact
problems, hostile files refused cheaply, exports that never run a formula. Pure: no
database; workbooks are built here with openpyxl (or as raw zip parts when openpyxl
would be too slow to build them)."""

from __future__ import annotations

import io
import random
import re
import struct
import zipfile
from collections.abc import Sequence
from datetime import date, datetime, timedelta

import openpyxl
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from openpyxl.utils.datetime import to_excel

from service.errors import DomainError
from service.members import excel
from service.members.excel import (
    COLUMNS,
    PROBLEM_MESSAGES,
    LedgerFile,
    LedgerRow,
    ProblemCode,
    parse_date_cell,
    parse_flag_cell,
    parse_id_cell,
    parse_phone_cell,
    problem,
    read_ledger,
    write_members_xlsx,
)
from service.members.rules import CATEGORY_LABELS, Gender, MemberCategory, id_check_digit

TODAY = date(2025, 6, 30)
REGION = "371326"  # 平邑县
FULL_WIDTH = str.maketrans("0123456789Xx-/.", "０１２３４５６７８９Ｘｘ－／．")


def make_id(birth: date, seq: int, *, region: str = REGION) -> str:
    first17 = f"{region}{birth:%Y%m%d}{seq:03d}"
    return first17 + id_check_digit(first17)


def make_id_ending_x(birth: date) -> str:
    return next(n for seq in range(1000) if (n := make_id(birth, seq)).endswith("X"))


def make_numeric_id(birth: date, seq: int) -> str:
    return next(n for s in range(seq, seq + 20) if not (n := make_id(birth, s)).endswith("X"))


def xlsx(rows: Sequence[Sequence[object]], *, merges: Sequence[str] = ()) -> bytes:
    workbook = openpyxl.Workbook()
    sheet = workbook.active
    for row in rows:
        sheet.append(list(row))
    for ref in merges:
        sheet.merge_cells(ref)
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()


def rezip(data: bytes, replace: dict[str, bytes], *, stored: bool = False) -> bytes:
    """`data` with some parts replaced (or added)."""
    out = io.BytesIO()
    method = zipfile.ZIP_STORED if stored else zipfile.ZIP_DEFLATED
    with zipfile.ZipFile(io.BytesIO(data)) as source, zipfile.ZipFile(out, "w", method) as zf:
        for info in source.infolist():
            if info.filename not in replace:
                zf.writestr(info.filename, source.read(info))
        for name, content in replace.items():
            zf.writestr(name, content)
    return out.getvalue()


def read(data: bytes, **kwargs: object) -> LedgerFile:
    return read_ledger(data, today=TODAY, **kwargs)  # type: ignore[arg-type]


def code_of(data: bytes, **kwargs: object) -> str:
    with pytest.raises(DomainError) as caught:
        read(data, **kwargs)
    return caught.value.code


INT_PLACEHOLDER = 987_654_321


def exact_int(data: bytes, placeholder: int, digits: str) -> bytes:
    """`data` with the number cell `placeholder` holding all of `digits`: openpyxl writes
    an int past 2**53 as a float, other tools write the 18 digits."""
    part = "xl/worksheets/sheet1.xml"
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        sheet = zf.read(part)
    old = f"<v>{placeholder}</v>".encode()
    assert sheet.count(old) == 1
    return rezip(data, {part: sheet.replace(old, f"<v>{digits}</v>".encode())})


MINIMAL_HEADER = ["姓名", "身份证号", "入党日期", "所在支部"]
GOOD_ID = make_id(date(1980, 3, 15), 123)


# --- the realistic ledger -------------------------------------------------------------

HEADER = [
    "序号",
    "所在 支部",
    " 姓 名 ",
    "身份证号\n（18位）",
    "性别",
    "入党时间",
    "出生日期",
    "转正日期",
    "人员类别",
    "联系电话",
    "是否流动党员",
    "外出地点",
    "备注",
]
KEYS = [
    "seq",
    "branch",
    "name",
    "id",
    "gender",
    "joined",
    "birth",
    "confirmed",
    "category",
    "phone",
    "mobile",
    "location",
    "note",
]
BRANCH_1 = "城关镇第一党支部"
BRANCH_2 = "城关镇第二党支部"


def row(**values: object) -> list[object]:
    assert set(values) <= set(KEYS)
    return [values.get(key) for key in KEYS]


def ok(name: str, seq: int, **values: object) -> list[object]:
    """A row with nothing wrong but what `values` overrides."""
    defaults: dict[str, object] = {
        "branch": BRANCH_2,
        "name": name,
        "id": make_id(date(1980, 3, 15), seq),
        "joined": "2005-07-01",
    }
    return row(**(defaults | values))


ID_1 = GOOD_ID  # male (17th digit 3)
ID_2 = make_numeric_id(date(1990, 1, 1), 124)  # even: female
ID_3 = make_id_ending_x(date(1995, 5, 5))
ID_4 = make_id(date(1988, 8, 8), 201)
ID_5 = make_id(date(1990, 1, 2), 202)
ID_6 = make_numeric_id(date(1985, 6, 7), 301)
ID_UNDER_18 = make_id(date(2000, 1, 1), 401)


def ledger_rows() -> list[list[object]]:
    bad_check_digit = ID_4[:17] + ("0" if ID_4[17] != "0" else "1")
    return [
        ["平邑县某镇党委党员信息台账"],  # 1: title, merged across
        HEADER,  # 2
        row(  # 3: every column filled, as cells of their own type
            seq=1,
            branch=BRANCH_1,  # merged down to row 5
            name="张三",
            id=ID_1,
            gender="男",
            joined=datetime(2005, 7, 1),
            birth=date(1980, 3, 15),
            confirmed=datetime(2006, 7, 1),
            category="正式党员",
            phone=13800138000,
            mobile="是",
            location=" 上海市  浦东新区 ",
            note="x",
        ),
        row(  # 4: ID as an int, gender from the ID, dates with slashes and dots
            seq=2,
            name="李  四",  # padded to line up with three-character names
            id=INT_PLACEHOLDER,  # becomes int(ID_2)
            joined="2015/7/1",
            confirmed="2016.7.1",
            category="正式",
            phone=" 138-0013-8001 ",
            mobile="否",
        ),
        row(  # 5: lower-case x with spaces, full-width date, +86 phone
            seq=3,
            name="王五",
            id=f" {ID_3[:6]} {ID_3[6:14]} {ID_3[14:].lower()} ",
            joined="２０１９年３月１日",
            category="预备",
            phone="+86 13800138002",
            mobile="Y",
            location="深圳",
        ),
        row(  # 6: full-width ID, a serial number as the date; 转正日期 makes it FULL
            seq=4,
            branch=BRANCH_2,
            name="赵六",
            id=ID_4.translate(FULL_WIDTH),
            birth=datetime(1988, 8, 8),
            joined=43831,
            confirmed="20210101",
        ),
        row(  # 7: apostrophe-led ID, joined under a year ago without 转正日期: PROBATIONARY
            seq=5,
            branch="  城关镇 第二党支部 ",
            name=" 钱七 ",
            id="'" + ID_5,
            gender="女",
            birth="1990年1月2日",
            joined="2024-12-1 00:00:00",
            phone="0539-1234567",
            mobile="×",
        ),
        row(),  # 8: empty
        row(  # 9: yyyymmdd typed as a number, a 1/0 flag
            seq=6,
            branch=BRANCH_2,
            name="孙八",
            id=ID_6,
            birth=" 1985.6.7 ",
            joined=20200105,
            confirmed="2021-01-05",
            category="正式党员",
            mobile=1,
            location="北京",
        ),
        ok("重复", 0, id=ID_1),  # 10: DUPLICATE_IN_FILE (row 3)
        ok("错号", 0, id=bad_check_digit, phone="12345"),  # 11: ID + phone
        ok("浮点", 0, id=float(ID_6)),  # 12: the digits are lost
        ok(None, 12),  # type: ignore[arg-type]  # 13: NAME_MISSING
        ok("少年", 0, id=ID_UNDER_18, joined="2017-12-31"),  # 14
        ok("月份", 14, joined="2020-01"),  # 15: month only
        ok("未来", 15, joined="2999-01-01"),  # 16
        ok("古人", 16, birth="1899-12-31"),  # 17
        ok("性别", 17, gender="未知", category="积极分子"),  # 18
        ok("无支部", 18, branch=None),  # 19: not merged, so missing
        ok("生日", 19, birth="1981-01-01"),  # 20: the ID says 1980-03-15
        ok("转正", 20, confirmed="2004-01-01"),  # 21: before 2005-07-01
        ok("流动", 21, mobile="可能"),  # 22
        ok("女性", 23, gender="女"),  # 23: seq 023 makes a man's ID
        ok("无号", 0, id=None),  # 24
        ok("无日期", 24, joined=None),  # 25
        ok("年份", 25, joined=2020),  # 26: a year alone
        row(seq="合计", note="共 6 人"),  # 27: footer
        row(name="填表人：周九"),  # 28: footer in the name column
    ]


def test_reads_a_hand_typed_ledger() -> None:
    data = exact_int(xlsx(ledger_rows(), merges=["A1:M1", "B3:B5"]), INT_PLACEHOLDER, ID_2)

    result = read(data)

    c = ProblemCode
    assert [(p.row, p.column, p.code) for p in result.problems] == [
        (10, "身份证号", c.DUPLICATE_IN_FILE),
        (11, "身份证号", c.ID_NUMBER_INVALID),
        (11, "联系电话", c.PHONE_INVALID),
        (12, "身份证号", c.ID_NUMBER_INVALID),
        (13, "姓名", c.NAME_MISSING),
        (14, "入党日期", c.JOINED_UNDER_18),
        (15, "入党日期", c.DATE_INVALID),
        (16, "入党日期", c.DATE_INVALID),
        (17, "出生日期", c.DATE_INVALID),
        (18, "性别", c.GENDER_INVALID),
        (18, "人员类别", c.CATEGORY_INVALID),
        (19, "所在支部", c.BRANCH_MISSING),
        (20, "出生日期", c.BIRTH_DATE_MISMATCH),
        (21, "转正日期", c.CONFIRMED_BEFORE_JOINED),
        (22, "是否流动党员", c.MOBILE_FLAG_INVALID),
        (23, "性别", c.GENDER_MISMATCH),
        (24, "身份证号", c.ID_NUMBER_MISSING),
        (25, "入党日期", c.DATE_MISSING),
        (26, "入党日期", c.DATE_INVALID),
    ]
    assert result.problems[0].message == "身份证号与第 3 行重复"
    assert result.problems[5].message == "入党日期早于年满 18 周岁之日"
    assert result.problems[6].message.startswith("入党日期无法识别")
    assert result.rows == [
        LedgerRow(
            row=3,
            name="张三",
            gender=Gender.MALE,
            id_number=ID_1,
            birth_date=date(1980, 3, 15),
            joined_date=date(2005, 7, 1),
            confirmed_date=date(2006, 7, 1),
            category=MemberCategory.FULL,
            branch_name=BRANCH_1,
            phone="13800138000",
            is_mobile=True,
            mobile_location="上海市 浦东新区",
        ),
        LedgerRow(
            row=4,
            name="李四",
            gender=Gender.FEMALE,
            id_number=ID_2,
            birth_date=date(1990, 1, 1),
            joined_date=date(2015, 7, 1),
            confirmed_date=date(2016, 7, 1),
            category=MemberCategory.FULL,
            branch_name=BRANCH_1,
            phone="13800138001",
            is_mobile=False,
            mobile_location=None,
        ),
        LedgerRow(
            row=5,
            name="王五",
            gender=excel.gender_from_id(ID_3),
            id_number=ID_3,
            birth_date=date(1995, 5, 5),
            joined_date=date(2019, 3, 1),
            confirmed_date=None,
            category=MemberCategory.PROBATIONARY,
            branch_name=BRANCH_1,
            phone="13800138002",
            is_mobile=True,
            mobile_location="深圳",
        ),
        LedgerRow(
            row=6,
            name="赵六",
            gender=Gender.MALE,
            id_number=ID_4,
            birth_date=date(1988, 8, 8),
            joined_date=date(2020, 1, 1),
            confirmed_date=date(2021, 1, 1),
            category=MemberCategory.FULL,
            branch_name=BRANCH_2,
            phone=None,
            is_mobile=False,
            mobile_location=None,
        ),
        LedgerRow(
            row=7,
            name="钱七",
            gender=Gender.FEMALE,
            id_number=ID_5,
            birth_date=date(1990, 1, 2),
            joined_date=date(2024, 12, 1),
            confirmed_date=None,
            category=MemberCategory.PROBATIONARY,
            branch_name=BRANCH_2,
            phone="0539-1234567",
            is_mobile=False,
            mobile_location=None,
        ),
        LedgerRow(
            row=9,
            name="孙八",
            gender=Gender.MALE,
            id_number=ID_6,
            birth_date=date(1985, 6, 7),
            joined_date=date(2020, 1, 5),
            confirmed_date=date(2021, 1, 5),
            category=MemberCategory.FULL,
            branch_name=BRANCH_2,
            phone=None,
            is_mobile=True,
            mobile_location="北京",
        ),
    ]
    assert result.total_rows == 6 + 17  # rows 3–7, 9 and 10–26


def test_messages_never_carry_id_or_phone_numbers() -> None:
    result = read(xlsx(ledger_rows(), merges=["B3:B5"]))
    digits = re.compile(r"\d{7,}")
    assert result.problems
    assert not [p.message for p in result.problems if digits.search(p.message)]


def test_problem_table_covers_every_code_and_the_services_ones() -> None:
    assert set(PROBLEM_MESSAGES) == set(ProblemCode)
    assert problem(7, "所在支部", ProblemCode.BRANCH_UNKNOWN, branch="东关村党支部").message == (
        "所在支部“东关村党支部”不存在或不在管理范围内"
    )
    assert problem(7, "身份证号", ProblemCode.ALREADY_PRESENT).code == "ALREADY_PRESENT"


def test_optional_columns_may_be_absent_and_header_may_sit_anywhere() -> None:
    data = xlsx(
        [
            ["党员名册"],
            [],
            ["制表单位：某村党支部"],
            ["所在党支部", "入党日期", "公民身份号码", "*姓名"],
            [" 东关村党支部", "2001-07-01", GOOD_ID, "张三"],
        ]
    )
    (only,) = read(data).rows
    assert only.row == 5
    assert (only.gender, only.birth_date, only.category) == (
        Gender.MALE,
        date(1980, 3, 15),
        MemberCategory.FULL,
    )
    assert (only.phone, only.is_mobile, only.mobile_location) == (None, False, None)


def test_header_is_searched_on_the_first_visible_sheet_that_has_one() -> None:
    workbook = openpyxl.Workbook()
    workbook.active.append(["填表说明：身份证号请设为文本格式"])
    hidden = workbook.create_sheet("旧表")
    hidden.append(MINIMAL_HEADER)
    hidden.sheet_state = "hidden"
    ledger = workbook.create_sheet("台账")
    ledger.append(MINIMAL_HEADER)
    ledger.append(["张三", GOOD_ID, "2001-07-01", "东关村党支部"])
    buffer = io.BytesIO()
    workbook.save(buffer)
    assert [r.row for r in read(buffer.getvalue()).rows] == [2]


def test_merged_cells_fill_only_what_they_cover() -> None:
    ids = [make_id(date(1980, 1, 1), seq) for seq in range(1, 6)]
    data = xlsx(
        [
            MINIMAL_HEADER,
            ["甲", ids[0], "2001-07-01", "一支部"],
            ["乙", ids[1], "2001-07-01", None],  # merged with the row above
            ["丙", ids[2], "2001-07-01", "二支部"],
            ["丁", ids[3], "2001-07-01", None],  # merged with the row above
            ["戊", ids[4], "2001-07-01", None],  # not merged: missing
        ],
        merges=["D2:D3", "D4:D5"],
    )
    result = read(data)
    assert [(r.row, r.branch_name) for r in result.rows] == [
        (2, "一支部"),
        (3, "一支部"),
        (4, "二支部"),
        (5, "二支部"),
    ]
    assert [(p.row, p.code) for p in result.problems] == [(6, "BRANCH_MISSING")]


def test_missing_required_columns_are_named() -> None:
    with pytest.raises(DomainError) as caught:
        read(xlsx([["序号", "姓名", "性别", "所在支部"], [1, "张三", "男", "一支部"]]))
    assert caught.value.code == "COLUMNS_MISSING"
    assert caught.value.message == "表头缺少必填列：身份证号、入党日期"


def test_a_column_twice_is_refused() -> None:
    header = [*MINIMAL_HEADER, "身份证号码"]
    assert code_of(xlsx([header])) == "COLUMN_DUPLICATED"


@pytest.mark.parametrize(
    "rows",
    [[], [["平邑县党员信息台账"], ["单位：", "日期："]]],
    ids=["empty sheet", "no header"],
)
def test_no_header(rows: list[list[object]]) -> None:
    assert code_of(xlsx(rows)) == "HEADER_NOT_FOUND"


def test_a_workbook_without_sheets_has_no_header() -> None:
    base = xlsx([MINIMAL_HEADER])
    with zipfile.ZipFile(io.BytesIO(base)) as zf:
        workbook_xml = zf.read("xl/workbook.xml").decode()
    without = re.sub(r"<sheets>.*</sheets>", "<sheets/>", workbook_xml)
    assert code_of(rezip(base, {"xl/workbook.xml": without.encode()})) == "HEADER_NOT_FOUND"


def test_row_limit_counts_data_rows_only() -> None:
    rows = [MINIMAL_HEADER] + [
        ["张三", make_id(date(1980, 1, 1), seq), "2001-07-01", "一支部"] for seq in range(3)
    ]
    rows += [[], [None, None, None, "一支部"], ["合计"]]
    data = xlsx(rows)
    assert len(read(data, max_rows=3).rows) == 3
    assert code_of(data, max_rows=2) == "FILE_TOO_MANY_ROWS"


# --- hostile files ---------------------------------------------------------------------


def test_openpyxl_parses_through_defusedxml() -> None:
    # The dependency; our own DOCTYPE scan is the second line, not the only one.
    assert openpyxl.DEFUSEDXML is True


@pytest.mark.parametrize(
    "data",
    [
        b"",
        random.Random(0).randbytes(5000),
        b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(4000),  # .xls (OLE2)
        "姓名,身份证号,入党日期,所在支部\n张三,1,2001-07-01,一支部\n".encode(),
        b"PK\x05\x06" + bytes(18),  # an empty zip
    ],
    ids=["empty", "random", "xls", "csv", "empty zip"],
)
def test_not_a_workbook(data: bytes) -> None:
    assert code_of(data) == "FILE_NOT_WORKBOOK"


def test_zips_that_are_not_sound_workbooks() -> None:
    good = xlsx([MINIMAL_HEADER, ["张三", GOOD_ID, "2001-07-01", "一支部"]])
    other_zip = io.BytesIO()
    with zipfile.ZipFile(other_zip, "w") as zf:
        zf.writestr("readme.txt", "hello")
    broken_sheet = rezip(good, {"xl/worksheets/sheet1.xml": b"<worksheet><sheetData><row>"})
    assert code_of(other_zip.getvalue()) == "FILE_NOT_WORKBOOK"
    assert code_of(good[: len(good) // 2]) == "FILE_NOT_WORKBOOK"
    assert code_of(broken_sheet) == "FILE_NOT_WORKBOOK"


def test_too_large_before_parsing() -> None:
    assert code_of(b"\x00" * 2000, max_bytes=1000) == "FILE_TOO_LARGE"


def test_uncompressed_total_is_capped(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(excel, "MAX_UNCOMPRESSED_BYTES", 10_000)
    noise = random.Random(1).randbytes(20_000)  # incompressible: the ratio is fine
    data = rezip(xlsx([MINIMAL_HEADER]), {"xl/media/image1.png": noise})
    assert code_of(data) == "FILE_TOO_LARGE"


def test_compression_bomb_is_refused_by_its_ratio() -> None:
    bomb = rezip(xlsx([MINIMAL_HEADER]), {"xl/sharedStrings.xml": b" " * (8 * 2**20)})
    with pytest.raises(DomainError) as caught:
        read(bomb)
    assert (caught.value.code, caught.value.message) == (
        "FILE_UNSAFE",
        "文件结构异常（压缩比异常），已拒绝读取",
    )


def test_a_member_longer_than_declared_is_cut_off() -> None:
    # A forged central directory claims a small size: zipfile stops there and the CRC
    # fails, so the declared sizes we checked really bound the inflation.
    data = bytearray(xlsx([MINIMAL_HEADER, ["张三", GOOD_ID, "2001-07-01", "一支部"]]))
    name = b"xl/worksheets/sheet1.xml"
    entry = data.find(b"PK\x01\x02")
    while data[entry + 46 : entry + 46 + len(name)] != name:
        entry = data.find(b"PK\x01\x02", entry + 4)
    struct.pack_into("<I", data, entry + 24, 100)
    assert code_of(bytes(data)) == "FILE_NOT_WORKBOOK"


LAUGHS = (
    '<!DOCTYPE lolz [<!ENTITY lol "lol">'
    '<!ENTITY lol1 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">'
    '<!ENTITY lol2 "&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;">]>'
)
# Incompressible, so the ratio check does not catch it first.
LONG_COMMENT = "<!-- " + random.Random(2).randbytes(3 * 2**19).hex() + " -->"


@pytest.mark.parametrize(
    ("part", "prolog"),
    [
        ("xl/worksheets/sheet1.xml", LAUGHS),
        ("xl/styles.xml", '<!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]>'),
        ("xl/workbook.xml", LONG_COMMENT + LAUGHS),
    ],
    ids=["billion laughs", "external entity", "entity past the first chunk"],
)
def test_xml_entities_are_refused(part: str, prolog: str) -> None:
    base = xlsx([MINIMAL_HEADER, ["张三", GOOD_ID, "2001-07-01", "一支部"]])
    with zipfile.ZipFile(io.BytesIO(base)) as zf:
        original = zf.read(part).decode()
    body = re.sub(r"^<\?xml[^>]*\?>", "", original)
    part_xml = '<?xml version="1.0" encoding="UTF-8"?>' + prolog + body
    with pytest.raises(DomainError) as caught:
        read(rezip(base, {part: part_xml.encode()}))
    assert (caught.value.code, caught.value.message) == (
        "FILE_UNSAFE",
        "文件结构异常（含有 XML 实体声明），已拒绝读取",
    )


def test_without_our_scan_defusedxml_still_refuses_entities(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(excel, "_scan_member", lambda archive, member, budget: set())
    base = xlsx([MINIMAL_HEADER, ["张三", GOOD_ID, "2001-07-01", "一支部"]])
    part = "xl/worksheets/sheet1.xml"
    with zipfile.ZipFile(io.BytesIO(base)) as zf:
        body = re.sub(r"^<\?xml[^>]*\?>", "", zf.read(part).decode())
    laughing = body.replace("<sheetData>", "<sheetData>&lol2;", 1)
    data = rezip(base, {part: ('<?xml version="1.0"?>' + LAUGHS + laughing).encode()})
    with pytest.raises(DomainError) as caught:
        read(data)
    assert caught.value.code == "FILE_NOT_WORKBOOK"
    chain: list[BaseException] = []
    error: BaseException | None = caught.value
    while error is not None:
        chain.append(error)
        error = error.__cause__ or error.__context__
    assert any(type(e).__module__.startswith("defusedxml") for e in chain), chain


def test_utf16_parts_are_refused() -> None:
    base = xlsx([MINIMAL_HEADER])
    with zipfile.ZipFile(io.BytesIO(base)) as zf:
        sheet = zf.read("xl/worksheets/sheet1.xml").decode()
    sheet = sheet.replace('encoding="UTF-8"', 'encoding="UTF-16"')
    data = rezip(base, {"xl/worksheets/sheet1.xml": sheet.encode("utf-16")})
    assert code_of(data) == "FILE_UNSAFE"


def sheet_start(*, dimension: bool = True) -> bytes:
    return (
        b'<?xml version="1.0" encoding="UTF-8"?>'
        b'<worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main">'
        + (b'<dimension ref="A1:D3"/>' if dimension else b"")  # a lie
        + b'<sheetData><row r="1">'
        + b"".join(
            b'<c t="inlineStr"><is><t>' + header.encode() + b"</t></is></c>"
            for header in MINIMAL_HEADER
        )
        + b"</row>"
    )


@pytest.mark.parametrize("dimension", [True, False], ids=["lying dimension", "no dimension"])
def test_a_million_rows_stop_at_the_limit(dimension: bool) -> None:
    # Stored, not deflated: building and scanning 60 MB stays fast, and the ratio is 1.
    # The sheet ends in broken XML: reaching it would be FILE_NOT_WORKBOOK, so the code
    # proves the reader stopped early (openpyxl alone, sizing a sheet without a
    # dimension, would parse all of it while loading).
    data_row = b'<row><c t="inlineStr"><is><t>\xe5\xbc\xa0</t></is></c></row>'
    sheet = sheet_start(dimension=dimension) + data_row * 1_000_000 + b"<row><c><broken"
    data = rezip(xlsx([MINIMAL_HEADER]), {"xl/worksheets/sheet1.xml": sheet}, stored=True)
    assert code_of(data, max_bytes=len(data), max_rows=1_000) == "FILE_TOO_MANY_ROWS"


def test_a_gap_in_row_numbers_ends_the_sheet() -> None:
    # openpyxl fills a gap one empty row at a time; a billion would never end.
    good = (
        b'<row r="2"><c r="A2" t="inlineStr"><is><t>\xe5\xbc\xa0</t></is></c>'
        b'<c r="B2" t="inlineStr"><is><t>' + GOOD_ID.encode() + b"</t></is></c>"
        b'<c r="C2" t="inlineStr"><is><t>2001-07-01</t></is></c>'
        b'<c r="D2" t="inlineStr"><is><t>x</t></is></c></row>'
    )
    far = b'<row r="1000000000"><c r="A1000000000" t="inlineStr"><is><t>x</t></is></c></row>'
    sheet = sheet_start() + good + far + b"</sheetData></worksheet>"
    data = rezip(xlsx([MINIMAL_HEADER]), {"xl/worksheets/sheet1.xml": sheet})
    assert [r.row for r in read(data).rows] == [2]


# --- cell readers ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("是", True),
        (" Y ", True),
        ("√", True),
        (1, True),
        (True, True),
        ("true", True),
        ("否", False),
        ("n", False),
        ("×", False),
        (0, False),
        (False, False),
        ("FALSE", False),
        (None, False),
        ("", False),
    ],
)
def test_flags(value: object, expected: bool) -> None:
    assert parse_flag_cell(value) is expected


@pytest.mark.parametrize("value", ["可能", 2, "是的"])
def test_bad_flags(value: object) -> None:
    with pytest.raises(ValueError):
        parse_flag_cell(value)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (13800138000, "13800138000"),
        (13800138000.0, "13800138000"),
        ("138 0013 8000", "13800138000"),
        ("138-0013-8000", "13800138000"),
        ("+86 138-0013-8000", "13800138000"),
        ("８６１３８００１３８０００", "13800138000"),
        ("0539-1234567", "0539-1234567"),
        (None, None),
    ],
)
def test_phones(value: object, expected: str | None) -> None:
    assert parse_phone_cell(value) == expected


@pytest.mark.parametrize("value", ["12345", "1380013800", "138001380001", 1.5, "13800138000/1"])
def test_bad_phones(value: object) -> None:
    with pytest.raises(ValueError):
        parse_phone_cell(value)


@pytest.mark.parametrize(
    "value",
    ["2020-01", "2020年1月", "2020.1", 2020.1, 2020, "2020-02-30", "1/5/2020", "", True, 0],
)
def test_not_a_day(value: object) -> None:
    if value == "":
        assert parse_date_cell(value, today=TODAY) is None
        return
    with pytest.raises(ValueError):
        parse_date_cell(value, today=TODAY)


def test_serial_dates_follow_the_workbooks_epoch() -> None:
    mac = datetime(1904, 1, 1)
    assert parse_date_cell(43831, today=TODAY) == date(2020, 1, 1)
    assert parse_date_cell(43831 - 1462, today=TODAY, epoch=mac) == date(2020, 1, 1)


# --- properties -----------------------------------------------------------------------

births = st.dates(min_value=date(1900, 1, 1), max_value=TODAY)
ids = st.builds(
    lambda region, birth, seq: make_id(birth, seq, region=region),
    st.from_regex(r"[1-9][0-9]{5}", fullmatch=True),
    births,
    st.integers(0, 999),
)


@given(number=ids, spaces=st.lists(st.integers(0, 18), max_size=4), form=st.integers(0, 4))
def test_any_valid_id_survives_the_forms_people_type(
    number: str, spaces: list[int], form: int
) -> None:
    typed: object
    if form == 0:
        typed = number.lower()
    elif form == 1:
        typed = number.translate(FULL_WIDTH)
    elif form == 2:
        text = number
        for at in sorted(spaces, reverse=True):
            text = text[:at] + " " + text[at:]
        typed = f" {text}\t"
    elif form == 3:
        typed = "'" + number
    else:
        assume(not number.endswith("X"))
        typed = int(number)
    assert parse_id_cell(typed) == number


@given(number=ids, position=st.integers(0, 17), digit=st.sampled_from("0123456789X"))
def test_one_wrong_character_is_caught(number: str, position: int, digit: str) -> None:
    changed = number[:position] + digit + number[position + 1 :]
    assume(changed != number)
    with pytest.raises(ValueError):
        parse_id_cell(changed)


DATE_FORMS = [
    lambda d: d,
    lambda d: datetime(d.year, d.month, d.day),
    lambda d: f"{d:%Y-%m-%d}",
    lambda d: f"{d.year}/{d.month}/{d.day}",
    lambda d: f"{d.year}.{d.month}.{d.day}",
    lambda d: f"{d.year}年{d.month}月{d.day}日",
    lambda d: f"{d:%Y%m%d}",
    lambda d: int(f"{d:%Y%m%d}"),
    lambda d: f"{d.year}-{d.month}-{d.day} 00:00:00",
    lambda d: f"  {d:%Y-%m-%d}".translate(FULL_WIDTH) + "\u3000",
    lambda d: int(to_excel(d)),
]


@given(day=births, form=st.sampled_from(range(len(DATE_FORMS))))
def test_any_date_in_any_accepted_form_reads_back(day: date, form: int) -> None:
    typed = DATE_FORMS[form](day)
    # A bare 1900–2100 is a year typed alone, never a serial for 1905.
    assume(not (isinstance(typed, int) and 1900 <= typed <= 2100))
    assert parse_date_cell(typed, today=TODAY) == day


def person(region: str, birth: date, seq: int, offset: int) -> tuple[str, date]:
    # 1 January of the 19th year is always past the 18th birthday.
    return make_id(birth, seq, region=region), date(birth.year + 19, 1, 1) + timedelta(offset)


people = st.builds(
    person,
    st.from_regex(r"[1-9][0-9]{5}", fullmatch=True),
    st.dates(min_value=date(1900, 1, 1), max_value=date(2000, 12, 31)),
    st.integers(0, 999),
    st.integers(0, 1500),
)


@settings(max_examples=25, deadline=None)
@given(
    members=st.lists(
        st.tuples(people, st.sampled_from(list(MemberCategory))),
        min_size=1,
        max_size=5,
        unique_by=lambda member: member[0][0],
    )
)
def test_an_export_reads_back_as_the_same_rows(
    members: list[tuple[tuple[str, date], MemberCategory]],
) -> None:
    rows = [
        ["张三", number, joined, "东关村党支部", CATEGORY_LABELS[category]]
        for (number, joined), category in members
    ]
    data = write_members_xlsx([*MINIMAL_HEADER, "人员类别"], rows, title="党员名册")
    result = read(data)
    assert result.problems == []
    assert [(r.row, r.id_number, r.joined_date, r.category) for r in result.rows] == [
        (index + 3, number, joined, category)
        for index, ((number, joined), category) in enumerate(members)
    ]


# --- writing --------------------------------------------------------------------------

DANGEROUS = ["=1+1", "+1", "-1", "@SUM(A1)", " =cmd|' /C calc'!A0", "\t=1", "\r=1", "#N/A"]


def test_exported_cells_never_run_a_formula() -> None:
    rows = [[value, date(2020, 1, 5), 3] for value in DANGEROUS]
    data = write_members_xlsx(["姓名", "入党日期", "数量"], rows, title="=TITLE()")

    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        sheet_xml = zf.read("xl/worksheets/sheet1.xml")
    assert not re.search(rb"<(\w+:)?f[ >/]", sheet_xml)

    sheet = openpyxl.load_workbook(io.BytesIO(data)).active
    assert sheet["A1"].value == "=TITLE()" and sheet["A1"].data_type == "s"
    assert [c.value for c in sheet[2]] == ["姓名", "入党日期", "数量"]
    for index, value in enumerate(DANGEROUS, start=3):
        cell = sheet.cell(index, 1)
        # XML reads a raw CR as LF (end-of-line normalization); the cell stays text.
        assert (cell.value, cell.data_type) == (value.replace("\r", "\n"), "s"), index
        assert cell.quotePrefix is (value != "#N/A")
        day = sheet.cell(index, 2)
        assert day.value == datetime(2020, 1, 5) and day.number_format == "yyyy-mm-dd"
        assert sheet.cell(index, 3).value == 3


def test_export_without_title_starts_with_the_header() -> None:
    data = write_members_xlsx(list(COLUMNS), [["张三", "男"]])
    sheet = openpyxl.load_workbook(io.BytesIO(data)).active
    assert [c.value for c in sheet[1]] == list(COLUMNS)
    assert [c.value for c in sheet[2]][:2] == ["张三", "男"]
