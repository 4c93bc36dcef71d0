"""The member ledger as Excel: a county's .xlsx ledger in, per-row problems out, and
lists written back as .xlsx. Pure: bytes in, rows (or bytes) out; no database.

Why it looks the way it does:

- The import file comes from a user and may be hostile, so everything that costs memory
  or time is bounded *before* openpyxl sees it: the byte size, the zip's declared
  uncompressed sizes and ratios (zipfile never inflates a member past its declared
  size: it stops there and the CRC check fails), the number of members, and any XML
  DOCTYPE/ENTITY (billion laughs, external entities) is refused by our own scan, so the
  protection does not hang on defusedxml being importable. While streaming, data rows
  are counted (a sheet's `dimension` can lie; openpyxl's own sizing, which parses a
  sheet without one in full while loading, is skipped) and a long run of empty rows
  ends the sheet (openpyxl fills a row-number gap one empty row at a time), so data
  after 10,000 blank rows is not read.
- Real ledgers are typed by hand: title rows above the header, headers in any order
  with stray spaces, merged 所在支部 cells, dates and ID numbers in every form people
  type. Each cell reader accepts those forms and nothing looser; a row with any problem
  is reported (row number, column, code, Chinese message) and left out of `rows`, and
  the service decides whether to import the good rows.
- read_only + values_only keeps a 40,000-row import within 2× of openpyxl's own
  reading: per-row work is a few precompiled regexes and one slotted dataclass.
- Messages never carry an ID-card or phone number, not even a wrong one.
- Exported cells never start a formula: every string is written as a text cell.
"""

from __future__ import annotations

import io
import re
import zipfile
import zlib
from bisect import bisect_right
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from enum import StrEnum
from typing import Any, Final

from openpyxl import Workbook
from openpyxl.cell import WriteOnlyCell
from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE
from openpyxl.reader.excel import ExcelReader
from openpyxl.styles import Font
from openpyxl.utils.cell import get_column_letter, range_boundaries
from openpyxl.utils.datetime import WINDOWS_EPOCH, from_excel
from openpyxl.worksheet._read_only import ReadOnlyWorksheet

from service.errors import DomainError, ErrorCode
from service.members.rules import (
    Gender,
    MemberCategory,
    birth_date_from_id,
    clean_name,
    gender_from_id,
    joined_under_18,
    normalize_id_number,
    normalize_phone,
    valid_id_number,
    valid_phone,
)

# --- file-level errors ----------------------------------------------------------------

FILE_NOT_WORKBOOK = ErrorCode(
    "FILE_NOT_WORKBOOK", "无法读取该文件：请上传 Excel 工作簿（.xlsx），旧版 .xls 请先另存为 .xlsx"
)
FILE_TOO_LARGE = ErrorCode("FILE_TOO_LARGE", "文件超过 {limit} 的大小上限", 413)
FILE_UNSAFE = ErrorCode("FILE_UNSAFE", "文件结构异常（{reason}），已拒绝读取")
FILE_TOO_MANY_ROWS = ErrorCode(
    "FILE_TOO_MANY_ROWS", "数据超过 {limit} 行的上限，请拆分为多个文件分别导入"
)
HEADER_NOT_FOUND = ErrorCode(
    "HEADER_NOT_FOUND", "未找到表头：工作表前 {rows} 行中没有“姓名”“身份证号”等列名"
)
COLUMNS_MISSING = ErrorCode("COLUMNS_MISSING", "表头缺少必填列：{columns}")
COLUMN_DUPLICATED = ErrorCode("COLUMN_DUPLICATED", "表头中“{column}”列出现了不止一次")

# --- limits ---------------------------------------------------------------------------

MAX_UNCOMPRESSED_BYTES: Final = 200 * 2**20
# XML compresses 5–30×; a sheet of formatted empty rows reaches ~100×. Past the ratio a
# member this large is a bomb, not a ledger. Small members may compress better.
MAX_MEMBER_RATIO: Final = 200
RATIO_CHECKED_FROM_BYTES: Final = 2**20
MAX_ZIP_MEMBERS: Final = 10_000
MAX_MERGED_RANGES: Final = 20_000
# Empty rows in a row end the sheet: WPS writes formatted blank rows down to row
# 1,048,576, and a hostile row number leaves a gap openpyxl fills row by row.
MAX_EMPTY_RUN: Final = 10_000
HEADER_SCAN_ROWS: Final = 20
HEADER_SCAN_COLUMNS: Final = 100
_SCAN_CHUNK = 2**20
_SCAN_TAIL = 256

# --- columns --------------------------------------------------------------------------

NAME = "姓名"
GENDER = "性别"
ID_NUMBER = "身份证号"
BIRTH_DATE = "出生日期"
JOINED_DATE = "入党日期"
CONFIRMED_DATE = "转正日期"
CATEGORY = "人员类别"
BRANCH = "所在支部"
PHONE = "联系电话"
MOBILE = "是否流动党员"
MOBILE_LOCATION = "外出地点"

COLUMNS: Final = (
    NAME,
    GENDER,
    ID_NUMBER,
    BIRTH_DATE,
    JOINED_DATE,
    CONFIRMED_DATE,
    CATEGORY,
    BRANCH,
    PHONE,
    MOBILE,
    MOBILE_LOCATION,
)
REQUIRED_COLUMNS: Final = (NAME, ID_NUMBER, JOINED_DATE, BRANCH)

# Header text (normalized by `_header_key`) → column. 序号 and anything else unknown is
# ignored. Aliases are the usual variants of each name; no fuzzy matching, so a title
# row never passes for a header.
_HEADER_ALIASES: Final[Mapping[str, str]] = {
    **{key: NAME for key in ("姓名", "党员姓名")},
    **{key: GENDER for key in ("性别",)},
    **{
        key: ID_NUMBER
        for key in ("身份证号", "身份证号码", "身份证", "公民身份号码", "公民身份证号码")
    },
    **{key: BIRTH_DATE for key in ("出生日期", "出生年月日")},
    **{key: JOINED_DATE for key in ("入党日期", "入党时间")},
    **{key: CONFIRMED_DATE for key in ("转正日期", "转正时间")},
    **{key: CATEGORY for key in ("人员类别", "党员类别", "类别", "党员类型")},
    **{
        key: BRANCH
        for key in ("所在支部", "所在党支部", "所属支部", "所属党支部", "党支部", "支部")
    },
    **{key: PHONE for key in ("联系电话", "联系方式", "手机号码", "手机号", "电话")},
    **{key: MOBILE for key in ("是否流动党员", "流动党员")},
    **{key: MOBILE_LOCATION for key in ("外出地点", "外出务工地点", "流动地点")},
}

MAX_BRANCH_LENGTH: Final = 100
MAX_LOCATION_LENGTH: Final = 200
_NAME_LIMIT: Final = 50  # rules.MAX_NAME_LENGTH; clean_name enforces it


# --- rows and problems ----------------------------------------------------------------


class ProblemCode(StrEnum):
    NAME_MISSING = "NAME_MISSING"
    TEXT_TOO_LONG = "TEXT_TOO_LONG"
    ID_NUMBER_MISSING = "ID_NUMBER_MISSING"
    ID_NUMBER_INVALID = "ID_NUMBER_INVALID"
    DUPLICATE_IN_FILE = "DUPLICATE_IN_FILE"
    GENDER_INVALID = "GENDER_INVALID"
    GENDER_MISMATCH = "GENDER_MISMATCH"
    DATE_MISSING = "DATE_MISSING"
    DATE_INVALID = "DATE_INVALID"
    BIRTH_DATE_MISMATCH = "BIRTH_DATE_MISMATCH"
    JOINED_UNDER_18 = "JOINED_UNDER_18"
    CONFIRMED_BEFORE_JOINED = "CONFIRMED_BEFORE_JOINED"
    CATEGORY_INVALID = "CATEGORY_INVALID"
    BRANCH_MISSING = "BRANCH_MISSING"
    PHONE_INVALID = "PHONE_INVALID"
    MOBILE_FLAG_INVALID = "MOBILE_FLAG_INVALID"
    # Checked by the service against the database; declared here so every row problem
    # has its message in one table.
    BRANCH_UNKNOWN = "BRANCH_UNKNOWN"
    ALREADY_PRESENT = "ALREADY_PRESENT"


# `str.format` templates; `column` is always offered, some codes take more (named in
# the template). Never a placeholder for an ID or phone number.
PROBLEM_MESSAGES: Final[Mapping[ProblemCode, str]] = {
    ProblemCode.NAME_MISSING: "姓名未填写",
    ProblemCode.TEXT_TOO_LONG: "{column}超过 {limit} 个字",
    ProblemCode.ID_NUMBER_MISSING: "身份证号未填写",
    ProblemCode.ID_NUMBER_INVALID: (
        "身份证号不正确：应为 18 位且校验位正确；按数字保存的身份证号会丢失末几位，"
        "请将该列设为文本后重新填写"
    ),
    ProblemCode.DUPLICATE_IN_FILE: "身份证号与第 {first_row} 行重复",
    ProblemCode.GENDER_INVALID: "性别应填“男”或“女”",
    ProblemCode.GENDER_MISMATCH: "性别与身份证号不一致",
    ProblemCode.DATE_MISSING: "{column}未填写",
    ProblemCode.DATE_INVALID: (
        "{column}无法识别：应为具体到日、在 1900 年以后且不晚于今天的日期，如 2020-01-05"
    ),
    ProblemCode.BIRTH_DATE_MISMATCH: "出生日期与身份证号不一致",
    ProblemCode.JOINED_UNDER_18: "入党日期早于年满 18 周岁之日",
    ProblemCode.CONFIRMED_BEFORE_JOINED: "转正日期早于入党日期",
    ProblemCode.CATEGORY_INVALID: "人员类别应填“正式党员”或“预备党员”",
    ProblemCode.BRANCH_MISSING: "所在支部未填写",
    ProblemCode.PHONE_INVALID: "联系电话不正确：应为 11 位手机号或带区号的固定电话",
    ProblemCode.MOBILE_FLAG_INVALID: "是否流动党员应填“是”或“否”",
    ProblemCode.BRANCH_UNKNOWN: "所在支部“{branch}”不存在或不在管理范围内",
    ProblemCode.ALREADY_PRESENT: "该身份证号的党员已在台账中",
}


@dataclass(frozen=True, slots=True)
class LedgerRow:
    row: int  # as Excel shows it, 1-based
    name: str
    gender: Gender | None
    id_number: str
    birth_date: date
    joined_date: date
    confirmed_date: date | None
    category: MemberCategory
    branch_name: str
    phone: str | None
    is_mobile: bool
    mobile_location: str | None


@dataclass(frozen=True, slots=True)
class RowProblem:
    row: int
    column: str
    code: str
    message: str


@dataclass(frozen=True, slots=True)
class LedgerFile:
    rows: list[LedgerRow]
    problems: list[RowProblem]
    total_rows: int  # data rows read (not blank, not footer): len(rows) + rows with problems


def problem(row: int, column: str, code: ProblemCode, **values: object) -> RowProblem:
    """A row problem with its declared message (also for the service's BRANCH_UNKNOWN and
    ALREADY_PRESENT)."""
    return RowProblem(row, column, code, PROBLEM_MESSAGES[code].format(column=column, **values))


# --- cell readers ---------------------------------------------------------------------
# Each takes a raw openpyxl value (str, int, float, bool, datetime, date, time,
# timedelta or None); None means empty; ValueError means present but unreadable.

# Full-width ASCII forms (０-９, Ｘ, －, ／, ．, （）, ：, ＋) and the ideographic space, as
# typed with a Chinese input method.
_FULL_WIDTH = str.maketrans({chr(0xFF01 + i): chr(0x21 + i) for i in range(94)} | {"\u3000": " "})
_WHITESPACE = re.compile(r"\s+")
_DATE_SEPARATED = re.compile(
    r"(\d{4})\s*([-/.])\s*(\d{1,2})\s*\2\s*(\d{1,2})"
    r"(?:[ T]+\d{1,2}:\d{1,2}(?::\d{1,2}(?:\.\d+)?)?)?"  # a midnight time from a date cell
)
_DATE_CHINESE = re.compile(r"(\d{4})\s*年\s*(\d{1,2})\s*月\s*(\d{1,2})\s*[日号]")
_DATE_COMPACT = re.compile(r"(\d{4})(\d{2})(\d{2})")
_EARLIEST = date(1900, 1, 1)
_MAX_SERIAL = 2_958_465  # 9999-12-31


def _text(value: object) -> str:
    """The cell as trimmed text ('' when empty)."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value.strip()
    return str(value).strip()


def parse_date_cell(value: object, *, today: date, epoch: datetime = WINDOWS_EPOCH) -> date | None:
    """A day from a date cell, an Excel serial number (in the workbook's `epoch`) or the
    text forms people type: 2020-01-05, 2020/1/5, 2020.1.5, 2020年1月5日, 20200105,
    2020-1-5 00:00:00, with full-width digits. A month alone is not a day: ValueError,
    as for dates before 1900 or after `today`."""
    if value is None:
        return None
    if isinstance(value, datetime):
        day = value.date()
    elif isinstance(value, date):
        day = value
    elif isinstance(value, bool) or isinstance(value, (time, timedelta)):
        raise ValueError("not a date")
    elif isinstance(value, (int, float, Decimal)):
        try:
            day = _date_from_number(value, epoch)
        except OverflowError:  # inf
            raise ValueError("not a date") from None
    else:
        text = str(value).translate(_FULL_WIDTH).strip()
        if not text:
            return None
        match = (
            _DATE_SEPARATED.fullmatch(text)
            or _DATE_CHINESE.fullmatch(text)
            or _DATE_COMPACT.fullmatch(text)
        )
        if match is None:
            raise ValueError("not a date")
        groups = match.groups()
        year, month, day_of_month = groups[0], groups[-2], groups[-1]
        day = date(int(year), int(month), int(day_of_month))  # ValueError for 2020-02-30
    if not _EARLIEST <= day <= today:
        raise ValueError("date out of range")
    return day


def _date_from_number(value: int | float | Decimal, epoch: datetime) -> date:
    whole = int(value)
    if whole == value and 10_000_000 <= whole <= 99_999_999:
        # 20200105 typed into a General cell.
        return date(whole // 10_000, whole // 100 % 100, whole % 100)
    if 1900 <= whole <= 2100:
        # A year (or 2020.1, a month) typed into a General cell; as a serial it would be
        # a day in 1905, which no party date is.
        raise ValueError("a year, not a day")
    if not 1 <= whole <= _MAX_SERIAL:
        raise ValueError("not a serial date")
    return from_excel(whole, epoch).date()


def parse_id_cell(value: object) -> str | None:
    """The normalized ID-card number, None when empty, ValueError when invalid. An ID in
    a number cell survives only as an int: Excel keeps 15 significant digits, so a float
    (5.11302199001011e+17) has lost the last ones."""
    if value is None:
        return None
    if isinstance(value, bool) or isinstance(value, (float, Decimal)):
        raise ValueError("ID number stored as a number")
    if isinstance(value, int):
        number = str(value)
    else:
        text = _WHITESPACE.sub("", str(value).translate(_FULL_WIDTH)).lstrip("'‘’`")
        if not text:
            return None
        number = normalize_id_number(text)
    if not valid_id_number(number):
        raise ValueError("invalid ID number")
    return number


def parse_phone_cell(value: object) -> str | None:
    """A mobile (11 digits) or landline number, None when empty, ValueError when
    invalid. Typed as an int, with spaces, dashes (138-0013-8000) or +86."""
    if value is None:
        return None
    if isinstance(value, bool):
        raise ValueError("not a phone number")
    if isinstance(value, float):
        if not value.is_integer():
            raise ValueError("not a phone number")
        value = int(value)
    text = _WHITESPACE.sub("", str(value).translate(_FULL_WIDTH)).lstrip("'")
    if not text:
        return None
    number = normalize_phone(text)
    if valid_phone(number):
        return number
    bare = number.replace("-", "")
    if len(bare) == 13 and bare.startswith("86"):
        bare = bare[2:]
    if valid_phone(bare):
        return bare
    raise ValueError("invalid phone number")


_FLAGS: Final[Mapping[str, bool]] = {
    **dict.fromkeys(("是", "y", "yes", "true", "1", "√", "✓", "✔"), True),
    **dict.fromkeys(("否", "n", "no", "false", "0", "×", "✗", "✘"), False),
}


def parse_flag_cell(value: object) -> bool:
    """是/否 as typed: 是/否, Y/N, √/×, 1/0, true/false, a boolean cell; empty is 否."""
    if value is None:
        return False
    if isinstance(value, bool):
        return value
    if isinstance(value, (int, float)) and value in (0, 1):
        return bool(value)
    text = _text(value).translate(_FULL_WIDTH).lower()
    if not text:
        return False
    try:
        return _FLAGS[text]
    except KeyError:
        raise ValueError("not a yes/no value") from None


_GENDERS: Final[Mapping[str, Gender]] = {
    **dict.fromkeys(("男", "男性", "m", "male"), Gender.MALE),
    **dict.fromkeys(("女", "女性", "f", "female"), Gender.FEMALE),
}
_CATEGORIES: Final[Mapping[str, MemberCategory]] = {
    **dict.fromkeys(("正式党员", "正式"), MemberCategory.FULL),
    **dict.fromkeys(("预备党员", "预备"), MemberCategory.PROBATIONARY),
}


def clean_branch_name(value: object) -> str:
    """A branch name without whitespace and with ASCII digits/letters: the same cleaning
    must be applied to the database's names before matching."""
    return _WHITESPACE.sub("", _text(value).translate(_FULL_WIDTH))


# A footer row ("合计：56人", "填表人：张三") has no ID; its text may sit in the name column.
_FOOTER = re.compile(r"(合计|总计|小计|共计|填表|制表|审核|负责人|备注|说明|注[:：])")


# --- reading --------------------------------------------------------------------------


def read_ledger(
    data: bytes,
    *,
    max_bytes: int = 20 * 2**20,
    max_rows: int = 100_000,
    today: date | None = None,
) -> LedgerFile:
    """The ledger rows of an .xlsx file and the problems of every bad row. File-level
    failures raise DomainError (FILE_NOT_WORKBOOK, FILE_TOO_LARGE, FILE_UNSAFE,
    FILE_TOO_MANY_ROWS, HEADER_NOT_FOUND, COLUMNS_MISSING, COLUMN_DUPLICATED). `today`
    bounds dates (default: the current day)."""
    if len(data) > max_bytes:
        raise FILE_TOO_LARGE.error(limit=_size_label(max_bytes))
    merges_by_part = _inspect_archive(data)
    try:
        reader = _LedgerReader(io.BytesIO(data), read_only=True, data_only=True)
        reader.read()
        workbook = reader.wb
    except Exception as exc:  # openpyxl raises anything from KeyError to ParseError
        raise FILE_NOT_WORKBOOK.error() from exc
    try:
        return _read_workbook(
            workbook, merges_by_part, max_rows=max_rows, today=today or date.today()
        )
    finally:
        workbook.close()


class _UnsizedSheet(ReadOnlyWorksheet):
    """openpyxl sizes a read-only sheet while loading by parsing it up to <dimension>;
    when there is none (openpyxl's own write-only files, hostile ones) that is the whole
    sheet, before our row count could stop it. The size is not needed: a dimension can
    lie, so the rows are read to their end anyway."""

    def _get_size(self) -> None:
        return None


class _LedgerReader(ExcelReader):
    """`load_workbook(read_only=True)` with `_UnsizedSheet`s (openpyxl 3.1's
    `read_worksheets` in read-only mode, chartsheets kept so sheet indexes still match
    the defined names)."""

    def read_worksheets(self) -> None:
        for sheet, rel in self.parser.find_sheets():
            if rel.target not in self.valid_files:
                continue
            if "chartsheet" in rel.Type:
                self.read_chartsheet(sheet, rel)
                continue
            worksheet = _UnsizedSheet(self.wb, sheet.name, rel.target, self.shared_strings)
            worksheet.sheet_state = sheet.state
            self.wb._sheets.append(worksheet)


def _size_label(size: int) -> str:
    return f"{size / 2**20:g} MB" if size >= 2**20 else f"{size} 字节"


_MERGE_REF = re.compile(
    rb"<(?:[A-Za-z_][\w.-]*:)?mergeCell\s[^>]*?\bref\s*=\s*[\"']"
    rb"([A-Za-z]{1,3}[0-9]{1,7}(?::[A-Za-z]{1,3}[0-9]{1,7})?)[\"']"
)
_UTF16_STARTS = (b"\xff\xfe", b"\xfe\xff", b"<\x00", b"\x00<")


def _inspect_archive(data: bytes) -> dict[str, list[str]]:
    """Refuse what is not a safe zip before openpyxl opens it; return the merged-cell
    ranges of every part (openpyxl's read-only mode does not offer them, and they come
    after the rows in the sheet XML)."""
    if not data.startswith(b"PK\x03\x04"):
        raise FILE_NOT_WORKBOOK.error()
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except (zipfile.BadZipFile, ValueError, EOFError, OSError) as exc:
        raise FILE_NOT_WORKBOOK.error() from exc
    with archive:
        members = archive.infolist()
        if len(members) > MAX_ZIP_MEMBERS:
            raise FILE_UNSAFE.error(reason="压缩包内文件过多")
        total = sum(member.file_size for member in members)
        if total > MAX_UNCOMPRESSED_BYTES:
            raise FILE_TOO_LARGE.error(
                f"文件解压后超过 {_size_label(MAX_UNCOMPRESSED_BYTES)} 的大小上限"
            )
        for member in members:
            if (
                member.file_size > RATIO_CHECKED_FROM_BYTES
                and member.file_size > MAX_MEMBER_RATIO * max(member.compress_size, 1)
            ):
                raise FILE_UNSAFE.error(reason="压缩比异常")
            if member.flag_bits & 0x1:
                raise FILE_NOT_WORKBOOK.error("该文件已加密，请取消密码保护后再上传")
        merges: dict[str, list[str]] = {}
        budget = MAX_MERGED_RANGES
        try:
            for member in members:
                refs = _scan_member(archive, member, budget)
                if refs:
                    budget -= len(refs)
                    merges[member.filename] = sorted(refs)
        except (zipfile.BadZipFile, zlib.error, EOFError, OSError, NotImplementedError) as exc:
            # Includes a member longer than declared: zipfile stops at the declared size
            # and the CRC check fails.
            raise FILE_NOT_WORKBOOK.error() from exc
    return merges


def _scan_member(archive: zipfile.ZipFile, member: zipfile.ZipInfo, budget: int) -> set[str]:
    """The member's merged ranges (at most `budget`); FILE_UNSAFE for an XML DTD."""
    refs: set[str] = set()
    tail = b""
    first = True
    with archive.open(member) as stream:
        while chunk := stream.read(_SCAN_CHUNK):
            if first:
                first = False
                # expat reads UTF-16 too, where the byte scan below would see nothing.
                if chunk.lstrip(b" \t\r\n").startswith(_UTF16_STARTS):
                    raise FILE_UNSAFE.error(reason="不支持 UTF-16 编码的 XML")
            window = tail + chunk
            if b"<!DOCTYPE" in window or b"<!ENTITY" in window:
                raise FILE_UNSAFE.error(reason="含有 XML 实体声明")
            if b"mergeCell" in window:
                refs.update(m.decode("ascii") for m in _MERGE_REF.findall(window))
                if len(refs) > budget:
                    raise FILE_UNSAFE.error(reason="合并单元格过多")
            tail = window[-_SCAN_TAIL:]
    return refs


@dataclass(frozen=True, slots=True)
class _Header:
    row: int
    columns: dict[str, int]  # column → 0-based index


def _find_header(sheet: ReadOnlyWorksheet) -> tuple[_Header | None, dict[str, int]]:
    """The first row among the first HEADER_SCAN_ROWS that names the most known columns.
    Returns it when it has every required column, else (None, best partial match)."""
    best: dict[str, int] = {}
    best_row = 0
    best_twice: str | None = None
    rows = _guarded(
        sheet.iter_rows(
            min_row=1, max_row=HEADER_SCAN_ROWS, max_col=HEADER_SCAN_COLUMNS, values_only=True
        )
    )
    for row_number, values in enumerate(rows, start=1):
        found: dict[str, int] = {}
        twice: str | None = None
        for index, value in enumerate(values):
            column = _HEADER_ALIASES.get(_header_key(value)) if isinstance(value, str) else None
            if column is None:
                continue
            if column in found:
                twice = twice or column
                continue
            found[column] = index
        if len(found) > len(best):
            best, best_row, best_twice = found, row_number, twice
    if best_twice is not None:
        # Two 身份证号 columns: which one is the ledger's? Guessing would import the wrong.
        raise COLUMN_DUPLICATED.error(column=best_twice)
    if best and all(column in best for column in REQUIRED_COLUMNS):
        return _Header(best_row, best), best
    return None, best


_PARENTHESIZED = re.compile(r"\([^)]*\)|\[[^\]]*\]|【[^】]*】")
_HEADER_NOISE = re.compile(r"[\s*:]+")


def _header_key(text: str) -> str:
    """姓 名 / 身份证号\n（18位） / *入党日期： → 姓名 / 身份证号 / 入党日期."""
    return _HEADER_NOISE.sub("", _PARENTHESIZED.sub("", text.translate(_FULL_WIDTH)))


def _read_workbook(
    workbook: Workbook, merges_by_part: Mapping[str, list[str]], *, max_rows: int, today: date
) -> LedgerFile:
    best_partial: dict[str, int] = {}
    for sheet in workbook.worksheets:
        if not isinstance(sheet, _UnsizedSheet) or sheet.sheet_state != "visible":
            continue
        header, partial = _find_header(sheet)
        if header is not None:
            merges = merges_by_part.get(sheet._worksheet_path, [])
            return _read_sheet(
                sheet,
                header,
                merges,
                epoch=workbook.epoch,
                max_rows=max_rows,
                today=today,
            )
        if len(partial) > len(best_partial):
            best_partial = partial
    if not best_partial:
        raise HEADER_NOT_FOUND.error(rows=HEADER_SCAN_ROWS)
    missing = [column for column in REQUIRED_COLUMNS if column not in best_partial]
    raise COLUMNS_MISSING.error(columns="、".join(missing))


class _MergeFill:
    """The value of a vertically merged range (所在支部 over a branch's members) for the
    empty cells it covers below the header. Ranges are kept as intervals per read
    column, never expanded cell by cell, so a hostile A1:XFD1048576 costs one entry per
    column."""

    __slots__ = ("_anchor_columns", "_anchors", "_ends", "_keys", "_starts", "columns")

    def __init__(self, refs: Sequence[str], *, header_row: int, columns: Iterable[int]) -> None:
        wanted = sorted(set(columns))
        spans: dict[int, list[tuple[int, int, tuple[int, int]]]] = {}
        self._anchor_columns: dict[int, list[int]] = {}
        for ref in refs:
            try:
                min_col, min_row, max_col, max_row = range_boundaries(ref)
            except (ValueError, TypeError):
                continue
            if min_col is None or min_row is None or max_col is None or max_row is None:
                continue
            # Ranges anchored in the title or the header carry no data value.
            if min_row <= header_row:
                continue
            covered = [c for c in wanted if min_col - 1 <= c < max_col]
            if not covered:
                continue
            anchor = (min_row, min_col - 1)
            self._anchor_columns.setdefault(min_row, []).append(min_col - 1)
            for column in covered:
                spans.setdefault(column, []).append((min_row, max_row, anchor))
        self._starts: dict[int, list[int]] = {}
        self._ends: dict[int, list[int]] = {}
        self._keys: dict[int, list[tuple[int, int]]] = {}
        for column, intervals in spans.items():
            intervals.sort()
            self._starts[column] = [start for start, _, _ in intervals]
            self._ends[column] = [end for _, end, _ in intervals]
            self._keys[column] = [key for _, _, key in intervals]
        self.columns = tuple(sorted(spans))
        self._anchors: dict[tuple[int, int], object] = {}

    def fill(self, row_number: int, values: Sequence[object]) -> Sequence[object]:
        anchor_columns = self._anchor_columns.get(row_number)
        if anchor_columns:
            for column in anchor_columns:
                # An anchor left of the read columns (a merge starting at 序号) reads None.
                if column < len(values):
                    self._anchors[(row_number, column)] = values[column]
        filled: list[object] | None = None
        for column in self.columns:
            if _value(values, column) is not None:
                continue
            index = bisect_right(self._starts[column], row_number) - 1
            if index >= 0 and row_number <= self._ends[column][index]:
                if filled is None:
                    filled = list(values)
                filled[column] = self._anchors.get(self._keys[column][index])
        return values if filled is None else filled


def _read_sheet(
    sheet: ReadOnlyWorksheet,
    header: _Header,
    merge_refs: Sequence[str],
    *,
    epoch: datetime,
    max_rows: int,
    today: date,
) -> LedgerFile:
    columns = header.columns
    width = max(columns.values()) + 1
    merges = _MergeFill(merge_refs, header_row=header.row, columns=columns.values())
    # -1: the column is absent and reads as empty.
    i_name, i_gender, i_id, i_birth, i_joined, i_confirmed = (
        columns.get(c, -1)
        for c in (NAME, GENDER, ID_NUMBER, BIRTH_DATE, JOINED_DATE, CONFIRMED_DATE)
    )
    i_category, i_branch, i_phone, i_mobile, i_location = (
        columns.get(c, -1) for c in (CATEGORY, BRANCH, PHONE, MOBILE, MOBILE_LOCATION)
    )
    probation_start = _one_year_before(today)

    rows: list[LedgerRow] = []
    problems: list[RowProblem] = []
    first_row_of: dict[str, int] = {}
    total = 0
    empty_run = 0

    source = _guarded(sheet.iter_rows(min_row=header.row + 1, max_col=width, values_only=True))
    for row_number, raw_values in enumerate(source, start=header.row + 1):
        values = merges.fill(row_number, raw_values) if merges.columns else raw_values
        raw_id = _value(values, i_id)
        raw_name = _value(values, i_name)
        if raw_id is None and (raw_name is None or _FOOTER.match(_text(raw_name))):
            # Blank, or a footer: neither is data, but a long run of them ends the sheet.
            empty_run += 1
            if empty_run > MAX_EMPTY_RUN:
                break
            continue
        empty_run = 0
        total += 1
        if total > max_rows:
            raise FILE_TOO_MANY_ROWS.error(limit=max_rows)

        found: list[RowProblem] = []

        name = clean_name(_text(raw_name)) if raw_name is not None else None
        if raw_name is None:
            found.append(problem(row_number, NAME, ProblemCode.NAME_MISSING))
        elif name is None:
            found.append(problem(row_number, NAME, ProblemCode.TEXT_TOO_LONG, limit=_NAME_LIMIT))

        id_number: str | None = None
        id_birth: date | None = None
        if raw_id is None:
            found.append(problem(row_number, ID_NUMBER, ProblemCode.ID_NUMBER_MISSING))
        else:
            try:
                number = parse_id_cell(raw_id)
            except ValueError:
                number = None
            id_birth = birth_date_from_id(number) if number else None
            if number is None or id_birth is None or not _EARLIEST <= id_birth <= today:
                found.append(problem(row_number, ID_NUMBER, ProblemCode.ID_NUMBER_INVALID))
            else:
                id_number = number
                first_row = first_row_of.setdefault(number, row_number)
                if first_row != row_number:
                    found.append(
                        problem(
                            row_number,
                            ID_NUMBER,
                            ProblemCode.DUPLICATE_IN_FILE,
                            first_row=first_row,
                        )
                    )

        raw_gender = _value(values, i_gender)
        gender: Gender | None = None
        if raw_gender is not None:
            gender = _GENDERS.get(_text(raw_gender).lower())
            if gender is None:
                found.append(problem(row_number, GENDER, ProblemCode.GENDER_INVALID))
            elif id_number is not None and gender is not gender_from_id(id_number):
                found.append(problem(row_number, GENDER, ProblemCode.GENDER_MISMATCH))
        elif id_number is not None:
            gender = gender_from_id(id_number)

        birth_date = _date_field(
            _value(values, i_birth), row_number, BIRTH_DATE, found, epoch=epoch, today=today
        )
        if id_birth is not None and id_number is not None:
            if birth_date is not None and birth_date != id_birth:
                found.append(problem(row_number, BIRTH_DATE, ProblemCode.BIRTH_DATE_MISMATCH))
            birth_date = id_birth

        raw_joined = _value(values, i_joined)
        joined_date = _date_field(
            raw_joined, row_number, JOINED_DATE, found, epoch=epoch, today=today
        )
        if raw_joined is None:
            found.append(problem(row_number, JOINED_DATE, ProblemCode.DATE_MISSING))
        elif (
            joined_date is not None
            and birth_date is not None
            and joined_under_18(birth_date, joined_date)
        ):
            found.append(problem(row_number, JOINED_DATE, ProblemCode.JOINED_UNDER_18))

        confirmed_date = _date_field(
            _value(values, i_confirmed), row_number, CONFIRMED_DATE, found, epoch=epoch, today=today
        )
        if confirmed_date is not None and joined_date is not None and confirmed_date < joined_date:
            found.append(problem(row_number, CONFIRMED_DATE, ProblemCode.CONFIRMED_BEFORE_JOINED))

        raw_category = _value(values, i_category)
        category: MemberCategory | None
        if raw_category is not None:
            category = _CATEGORIES.get(_WHITESPACE.sub("", _text(raw_category)))
            if category is None:
                found.append(problem(row_number, CATEGORY, ProblemCode.CATEGORY_INVALID))
        elif confirmed_date is None and joined_date is not None and joined_date > probation_start:
            # Probation lasts a year: someone who joined less than a year ago and has no
            # 转正日期 cannot be a full member yet.
            category = MemberCategory.PROBATIONARY
        else:
            category = MemberCategory.FULL

        raw_branch = _value(values, i_branch)
        branch_name = clean_branch_name(raw_branch)
        if not branch_name:
            found.append(problem(row_number, BRANCH, ProblemCode.BRANCH_MISSING))
        elif len(branch_name) > MAX_BRANCH_LENGTH:
            found.append(
                problem(row_number, BRANCH, ProblemCode.TEXT_TOO_LONG, limit=MAX_BRANCH_LENGTH)
            )

        phone: str | None = None
        raw_phone = _value(values, i_phone)
        if raw_phone is not None:
            try:
                phone = parse_phone_cell(raw_phone)
            except ValueError:
                found.append(problem(row_number, PHONE, ProblemCode.PHONE_INVALID))

        is_mobile = False
        raw_mobile = _value(values, i_mobile)
        if raw_mobile is not None:
            try:
                is_mobile = parse_flag_cell(raw_mobile)
            except ValueError:
                found.append(problem(row_number, MOBILE, ProblemCode.MOBILE_FLAG_INVALID))

        location = " ".join(_text(_value(values, i_location)).split()) or None
        if location is not None and len(location) > MAX_LOCATION_LENGTH:
            found.append(
                problem(
                    row_number,
                    MOBILE_LOCATION,
                    ProblemCode.TEXT_TOO_LONG,
                    limit=MAX_LOCATION_LENGTH,
                )
            )

        if found:
            problems.extend(found)
            continue
        # No problem means every required value was read.
        assert name is not None and id_number is not None and birth_date is not None
        assert joined_date is not None and category is not None
        rows.append(
            LedgerRow(
                row=row_number,
                name=name,
                gender=gender,
                id_number=id_number,
                birth_date=birth_date,
                joined_date=joined_date,
                confirmed_date=confirmed_date,
                category=category,
                branch_name=branch_name,
                phone=phone,
                is_mobile=is_mobile,
                mobile_location=location,
            )
        )
    return LedgerFile(rows=rows, problems=problems, total_rows=total)


def _value(values: Sequence[object], index: int) -> object:
    """The cell at `index`, None when absent, empty or blank."""
    if index < 0:
        return None
    value = values[index]
    if isinstance(value, str) and (not value or value.isspace()):
        return None
    return value


def _guarded(rows: Iterator[tuple[object, ...]]) -> Iterator[tuple[object, ...]]:
    """openpyxl's rows, with whatever a broken sheet raises mid-stream (bad XML, a bad
    CRC, defusedxml's refusals) turned into FILE_NOT_WORKBOOK; our own bugs stay bugs."""
    while True:
        try:
            row = next(rows)
        except StopIteration:
            return
        except DomainError:
            raise
        except Exception as exc:
            raise FILE_NOT_WORKBOOK.error() from exc
        yield row


def _date_field(
    value: object,
    row_number: int,
    column: str,
    found: list[RowProblem],
    *,
    epoch: datetime,
    today: date,
) -> date | None:
    if value is None:
        return None
    try:
        return parse_date_cell(value, today=today, epoch=epoch)
    except ValueError:
        found.append(problem(row_number, column, ProblemCode.DATE_INVALID))
        return None


def _one_year_before(day: date) -> date:
    try:
        return day.replace(year=day.year - 1)
    except ValueError:  # 29 February
        return day.replace(year=day.year - 1, day=28)


# --- writing --------------------------------------------------------------------------

DATE_FORMAT: Final = "yyyy-mm-dd"
DATETIME_FORMAT: Final = "yyyy-mm-dd hh:mm:ss"
_FORMULA_STARTS: Final = ("=", "+", "-", "@", "\t", "\r")
_BOLD = Font(bold=True)
_TITLE_FONT = Font(bold=True, size=14)
_COLUMN_WIDTH = 16


def write_members_xlsx(
    headers: Sequence[str], rows: Iterable[Sequence[object]], *, title: str | None = None
) -> bytes:
    """An .xlsx of `rows` under `headers` (and an optional title row), streamed through a
    write-only workbook so memory stays flat however many rows. No cell can start a
    formula: strings are always text cells, and the ones a spreadsheet would run if
    re-typed (=, +, -, @, tab, CR) also get Excel's quote prefix."""
    workbook = Workbook(write_only=True)
    sheet = workbook.create_sheet()
    for index in range(len(headers)):
        sheet.column_dimensions[get_column_letter(index + 1)].width = _COLUMN_WIDTH
    if title is not None:
        sheet.append([_cell(sheet, title, font=_TITLE_FONT)])
    sheet.append([_cell(sheet, header, font=_BOLD) for header in headers])
    for row in rows:
        sheet.append([_cell(sheet, value) for value in row])
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()


def _cell(sheet: Any, value: object, *, font: Font | None = None) -> WriteOnlyCell:
    if isinstance(value, str):
        text = ILLEGAL_CHARACTERS_RE.sub("", value)
        cell = WriteOnlyCell(sheet, value=text)
        # openpyxl stores "=…" as a formula and "#N/A" as an error: force text.
        cell.data_type = "s"
        if text.startswith(_FORMULA_STARTS) or text.lstrip().startswith(_FORMULA_STARTS):
            cell.quotePrefix = True
    elif value is None or isinstance(value, (bool, int, float, Decimal)):
        cell = WriteOnlyCell(sheet, value=value)
    elif isinstance(value, datetime):
        cell = WriteOnlyCell(sheet, value=value)
        cell.number_format = DATETIME_FORMAT
    elif isinstance(value, date):
        cell = WriteOnlyCell(sheet, value=value)
        cell.number_format = DATE_FORMAT
    else:
        return _cell(sheet, str(value), font=font)
    if font is not None:
        cell.font = font
    return cell
