"""Pure rules of the member ledger (党员信息电子台账): categories, statuses and their
moves, ID-card numbers (GB 11643), phone numbers, masking. No I/O.

Statuses are never deleted, only moved: a member who leaves the party or the county
stays in the ledger with the status that says why.
"""

from __future__ import annotations

import re
from datetime import date
from enum import StrEnum


class Gender(StrEnum):
    MALE = "male"  # 男
    FEMALE = "female"  # 女


class MemberCategory(StrEnum):
    FULL = "full"  # 正式党员
    PROBATIONARY = "probationary"  # 预备党员


class MemberStatus(StrEnum):
    ACTIVE = "active"  # 正常
    CORRECTING = "correcting"  # 限期改正中
    SUSPENDED = "suspended"  # 停止党籍
    REMOVED = "removed"  # 除名
    WITHDREW = "withdrew"  # 退党
    EXPELLED = "expelled"  # 开除党籍
    DECEASED = "deceased"  # 去世
    TRANSFERRED_OUT = "transferred_out"  # 转出本县


GENDER_LABELS = {Gender.MALE: "男", Gender.FEMALE: "女"}
CATEGORY_LABELS = {MemberCategory.FULL: "正式党员", MemberCategory.PROBATIONARY: "预备党员"}
STATUS_LABELS = {
    MemberStatus.ACTIVE: "正常",
    MemberStatus.CORRECTING: "限期改正中",
    MemberStatus.SUSPENDED: "停止党籍",
    MemberStatus.REMOVED: "除名",
    MemberStatus.WITHDREW: "退党",
    MemberStatus.EXPELLED: "开除党籍",
    MemberStatus.DECEASED: "去世",
    MemberStatus.TRANSFERRED_OUT: "转出本县",
}

# Statuses a member is still on the branch's rolls with (dues, meetings, votes).
ON_ROLLS = frozenset({MemberStatus.ACTIVE, MemberStatus.CORRECTING})
# Where a status may move. The ends (removed, withdrew, expelled, deceased,
# transferred out) are final in this ledger: a person who re-joins, or comes back to
# the county, is a new record linked by the ID number.
STATUS_MOVES: dict[MemberStatus, frozenset[MemberStatus]] = {
    MemberStatus.ACTIVE: frozenset(
        {
            MemberStatus.CORRECTING,
            MemberStatus.SUSPENDED,
            MemberStatus.REMOVED,
            MemberStatus.WITHDREW,
            MemberStatus.EXPELLED,
            MemberStatus.DECEASED,
            MemberStatus.TRANSFERRED_OUT,
        }
    ),
    MemberStatus.CORRECTING: frozenset(
        {
            MemberStatus.ACTIVE,
            MemberStatus.SUSPENDED,
            MemberStatus.REMOVED,
            MemberStatus.WITHDREW,
            MemberStatus.EXPELLED,
            MemberStatus.DECEASED,
            MemberStatus.TRANSFERRED_OUT,
        }
    ),
    MemberStatus.SUSPENDED: frozenset(
        {MemberStatus.ACTIVE, MemberStatus.REMOVED, MemberStatus.DECEASED}
    ),
    MemberStatus.REMOVED: frozenset(),
    MemberStatus.WITHDREW: frozenset(),
    MemberStatus.EXPELLED: frozenset(),
    MemberStatus.DECEASED: frozenset(),
    MemberStatus.TRANSFERRED_OUT: frozenset(),
}


def may_move(current: MemberStatus, target: MemberStatus) -> bool:
    return target in STATUS_MOVES[current]


# --- names --------------------------------------------------------------------------

MAX_NAME_LENGTH = 50


_CJK_GAP = re.compile(r"(?<=[\u3400-\u9fff])\s+(?=[\u3400-\u9fff])")


def clean_name(name: str | None) -> str | None:
    """A person's name with outer whitespace removed; None if empty or too long.
    Spaces between Chinese characters go (张  三 is 张三, as a ledger typed with a space
    to align two-character names means it); other names keep one space per gap."""
    if name is None:
        return None
    cleaned = _CJK_GAP.sub("", " ".join(str(name).split()))
    if not cleaned or len(cleaned) > MAX_NAME_LENGTH:
        return None
    return cleaned


# --- ID-card numbers (居民身份证号码, GB 11643-1999) ---------------------------------

_ID_PATTERN = re.compile(r"[1-9]\d{16}[\dX]")
_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_ID_CHECK = "10X98765432"


def normalize_id_number(raw: str | None) -> str:
    """The number as people type it, cleaned: spaces and a trailing lower-case x fixed,
    full-width digits made ASCII."""
    if raw is None:
        return ""
    text = str(raw).translate(_FULL_WIDTH).strip().replace(" ", "").upper()
    return text


_FULL_WIDTH = str.maketrans("０１２３４５６７８９Ｘｘ", "0123456789XX")


def id_check_digit(first17: str) -> str:
    total = sum(int(d) * w for d, w in zip(first17, _ID_WEIGHTS, strict=True))
    return _ID_CHECK[total % 11]


def birth_date_from_id(number: str) -> date | None:
    try:
        return date(int(number[6:10]), int(number[10:12]), int(number[12:14]))
    except ValueError:
        return None


def gender_from_id(number: str) -> Gender:
    """GB 11643: the 17th digit is odd for men."""
    return Gender.MALE if int(number[16]) % 2 else Gender.FEMALE


def valid_id_number(number: str) -> bool:
    """18 characters, a real birth date and the GB 11643 check digit (normalized input)."""
    if not _ID_PATTERN.fullmatch(number):
        return False
    if birth_date_from_id(number) is None:
        return False
    return id_check_digit(number[:17]) == number[17]


def mask_id_number(number: str | None) -> str | None:
    """`5113**********123X`: the region's first four and the last four stay."""
    if not number:
        return number
    if len(number) <= 8:
        return "*" * len(number)
    return number[:4] + "*" * (len(number) - 8) + number[-4:]


# --- phone numbers ------------------------------------------------------------------

_MOBILE = re.compile(r"1[3-9]\d{9}")
_LANDLINE = re.compile(r"0\d{2,3}-?\d{7,8}")


def normalize_phone(raw: str | None) -> str:
    if raw is None:
        return ""
    text = str(raw).translate(_FULL_WIDTH).strip()
    for ch in " ()（）":
        text = text.replace(ch, "")
    if text.startswith("+86"):
        text = text[3:]
    return text


def valid_phone(number: str) -> bool:
    return bool(_MOBILE.fullmatch(number) or _LANDLINE.fullmatch(number))


def mask_phone(number: str | None) -> str | None:
    """`138****5678`: the first three and the last four stay."""
    if not number:
        return number
    if len(number) <= 7:
        return "*" * len(number)
    return number[:3] + "*" * (len(number) - 7) + number[-4:]


# --- dates --------------------------------------------------------------------------


def age_on(birth: date, day: date) -> int:
    return day.year - birth.year - ((day.month, day.day) < (birth.month, birth.day))


def joined_under_18(birth: date, joined: date) -> bool:
    """入党日期 before the 18th birthday."""
    return age_on(birth, joined) < 18
