"""Pure rules of party dues (党费): the calendar month, who paid, the schedule, and
which months one payment may name. No I/O, no clock: the caller passes the dates.

Month
-----
`Month` is one calendar month, stored as a single int ordinal `year * 12 + month - 1`
(2026-03 is 24314). The ordinal is what the database keeps (an `integer` column; it
fits a `smallint` up to year 2730), what orders and hashes months, and what month
arithmetic works on: `Month(2026, 3) + 10 == Month(2027, 1)`,
`Month(2027, 1) - Month(2026, 3) == 10`. Its text form is `2026-03` (`str`, `parse`),
its Chinese label `2026年3月`.

Who pays and how often
----------------------
A member pays for themselves (本人) or a relative pays for them (亲属代缴, common
for mobile members); both are payments. A member pays monthly (按月) or, where the
branch agreed, quarterly (按季).

Which months a payment may name (`check_payment`)
-------------------------------------------------
Let P be the month of the payment date (`paid_on`). A payment names one or more
calendar months it pays for, and an amount in fen. It is valid when all of these hold;
otherwise `check_payment` returns every code that applies, each once, in this order:

1. `MONTHS_EMPTY`: it names at least one month.
2. `MONTHS_DUPLICATED`: it names no month twice.
3. `MONTH_IN_FUTURE`: no named month is later than the latest payable month: P itself
   for a monthly payer (the current month may be paid, later months not), the last
   month of P's quarter for a quarterly payer (the current quarter may be prepaid,
   later quarters not). `schedule` is the member's schedule in force in month P.
4. `BACK_PAYMENT_TOO_OLD`: every named month before P (a back-payment, 补缴) lies
   within the 6 months before P, i.e. in P-6 .. P-1. Paid in 2026-08, 2026-02 may be
   back-paid, 2026-01 may not.
5. `BACK_PAYMENT_TOO_MANY_MONTHS`: a payment names at most 6 distinct months before P.
   With the default window of 6 months this can only fail together with rule 4; it is
   kept apart because a county may widen the window (`back_window`) but keep the cap
   (`max_back_months`), or the reverse.
6. `AMOUNT_INVALID`: the amount is an int (not a bool) in fen, 1 .. 10,000,000
   (¥100,000, far above any real monthly due; a bound against typos, not a policy).

The months a valid payment names are PAID from then on, whenever it was recorded: a
back-payment clears the months it covers (the lapse rules in
`service/members/lapse.py` read payments by covered month, not by payment date).
"""

from __future__ import annotations

import calendar
import operator
import re
from collections.abc import Iterator, Sequence
from datetime import MAXYEAR, MINYEAR, date
from enum import StrEnum
from typing import Any, NoReturn, overload

# --- Month --------------------------------------------------------------------------

MIN_ORDINAL = MINYEAR * 12  # 0001-01
MAX_ORDINAL = MAXYEAR * 12 + 11  # 9999-12

_MONTH_TEXT = re.compile(r"([0-9]{4})-([0-9]{2})")


_INTERNED: dict[int, Month] = {}


class Month:
    """A calendar month: frozen, ordered, hashable; one int ordinal inside.

    `Month(2026, 3)`, `Month.from_ym(2026, 3)`, `Month.of(date)`, `Month.parse("2026-03")`,
    `Month.from_ordinal(24314)`. Arithmetic: `month + n`, `month - n`, `month - month`.
    Out-of-range years (outside 1..9999) raise ValueError on construction and
    OverflowError in arithmetic, as `datetime.date` does.
    """

    __slots__ = ("_ordinal",)
    _ordinal: int

    def __init__(self, year: int, month: int) -> None:
        year = operator.index(year)
        month = operator.index(month)
        if not 1 <= month <= 12:
            raise ValueError(f"month must be in 1..12, not {month}")
        if not MINYEAR <= year <= MAXYEAR:
            raise ValueError(f"year must be in {MINYEAR}..{MAXYEAR}, not {year}")
        object.__setattr__(self, "_ordinal", year * 12 + month - 1)
        _INTERNED.setdefault(self._ordinal, self)

    # constructors

    @classmethod
    def from_ym(cls, year: int, month: int) -> Month:
        return cls(year, month)

    @classmethod
    def from_ordinal(cls, ordinal: int) -> Month:
        """The month with this ordinal (`year * 12 + month - 1`), as the database stores it."""
        found = _INTERNED.get(ordinal) if type(ordinal) is int else None
        if found is not None:
            return found
        ordinal = operator.index(ordinal)
        if not MIN_ORDINAL <= ordinal <= MAX_ORDINAL:
            raise ValueError(f"month ordinal out of range: {ordinal}")
        return cls._make(ordinal)

    @classmethod
    def of(cls, day: date) -> Month:
        """The month a date (or datetime) falls in."""
        return cls._make(day.year * 12 + day.month - 1)

    @classmethod
    def parse(cls, text: str) -> Month:
        """`"2026-03"` → `Month(2026, 3)`: exactly four digits, a hyphen, two digits.
        Anything else (`"2026-3"`, `"2026-13"`, `" 2026-03"`, `"202603"`) is a ValueError."""
        if not isinstance(text, str):
            raise ValueError(f"not a month: {text!r}")
        found = _MONTH_TEXT.fullmatch(text)
        if found is None:
            raise ValueError(f"not a month (YYYY-MM): {text!r}")
        return cls(int(found[1]), int(found[2]))

    @staticmethod
    def range(first: Month, last: Month) -> Iterator[Month]:
        """Every month from `first` to `last`, both included, oldest first; nothing when
        `first > last`."""
        for ordinal in range(first._ordinal, last._ordinal + 1):
            yield Month._make(ordinal)

    @classmethod
    def _make(cls, ordinal: int) -> Month:
        # Months are interned: a page of members' facts names the same few dozen
        # months thousands of times, and an immutable value may be shared.
        made = _INTERNED.get(ordinal)
        if made is None:
            made = object.__new__(cls)
            object.__setattr__(made, "_ordinal", ordinal)
            _INTERNED[ordinal] = made
        return made

    @classmethod
    def _checked(cls, ordinal: int) -> Month:
        if not MIN_ORDINAL <= ordinal <= MAX_ORDINAL:
            raise OverflowError("month out of range")
        return cls._make(ordinal)

    # parts

    @property
    def ordinal(self) -> int:
        return self._ordinal

    @property
    def year(self) -> int:
        return self._ordinal // 12

    @property
    def month(self) -> int:
        return self._ordinal % 12 + 1

    @property
    def quarter(self) -> int:
        """1..4."""
        return self._ordinal % 12 // 3 + 1

    @property
    def quarter_start(self) -> Month:
        """The first month of this month's quarter (1, 4, 7 or 10)."""
        return Month._make(self._ordinal - self._ordinal % 3)

    @property
    def quarter_end(self) -> Month:
        """The last month of this month's quarter (3, 6, 9 or 12)."""
        return Month._make(self._ordinal - self._ordinal % 3 + 2)

    @property
    def first_day(self) -> date:
        return date(self.year, self.month, 1)

    @property
    def last_day(self) -> date:
        year, month = self.year, self.month
        return date(year, month, calendar.monthrange(year, month)[1])

    @property
    def label(self) -> str:
        """`2026年3月`."""
        return f"{self.year}年{self.month}月"

    # arithmetic

    def __add__(self, months: int) -> Month:
        if isinstance(months, int) and not isinstance(months, bool):
            return Month._checked(self._ordinal + months)
        return NotImplemented

    __radd__ = __add__

    @overload
    def __sub__(self, other: Month) -> int: ...
    @overload
    def __sub__(self, other: int) -> Month: ...
    def __sub__(self, other: Month | int) -> Month | int:
        if isinstance(other, Month):
            return self._ordinal - other._ordinal
        if isinstance(other, int) and not isinstance(other, bool):
            return Month._checked(self._ordinal - other)
        return NotImplemented

    # comparison and hashing

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Month):
            return self._ordinal == other._ordinal
        return NotImplemented

    def __lt__(self, other: Month) -> bool:
        if isinstance(other, Month):
            return self._ordinal < other._ordinal
        return NotImplemented

    def __le__(self, other: Month) -> bool:
        if isinstance(other, Month):
            return self._ordinal <= other._ordinal
        return NotImplemented

    def __gt__(self, other: Month) -> bool:
        if isinstance(other, Month):
            return self._ordinal > other._ordinal
        return NotImplemented

    def __ge__(self, other: Month) -> bool:
        if isinstance(other, Month):
            return self._ordinal >= other._ordinal
        return NotImplemented

    def __hash__(self) -> int:
        return hash(self._ordinal)

    # frozen

    def __setattr__(self, name: str, value: Any) -> NoReturn:
        raise AttributeError("Month is immutable")

    def __delattr__(self, name: str) -> NoReturn:
        raise AttributeError("Month is immutable")

    def __reduce__(self) -> tuple[Any, tuple[int]]:
        return (Month.from_ordinal, (self._ordinal,))

    # text

    def __str__(self) -> str:
        return f"{self.year:04d}-{self.month:02d}"

    def __repr__(self) -> str:
        return f"Month({self.year}, {self.month})"


# --- who pays, how often ------------------------------------------------------------


class PaidBy(StrEnum):
    SELF = "self"  # 本人
    FAMILY = "family"  # 亲属代缴


class DuesSchedule(StrEnum):
    MONTHLY = "monthly"  # 按月
    QUARTERLY = "quarterly"  # 按季 (the branch agreed)


PAID_BY_LABELS = {PaidBy.SELF: "本人", PaidBy.FAMILY: "亲属代缴"}
SCHEDULE_LABELS = {DuesSchedule.MONTHLY: "按月", DuesSchedule.QUARTERLY: "按季"}


# --- which months a payment may name --------------------------------------------------

BACK_PAYMENT_WINDOW_MONTHS = 6  # a back-paid month lies in P-6 .. P-1
MAX_BACK_PAYMENT_MONTHS = 6  # at most this many distinct months before P per payment
MAX_AMOUNT_FEN = 10_000_000  # ¥100,000: a sanity bound, not a policy


class DuesProblem(StrEnum):
    """Why a payment is refused; the values are the codes the service declares."""

    MONTHS_EMPTY = "MONTHS_EMPTY"
    MONTHS_DUPLICATED = "MONTHS_DUPLICATED"
    MONTH_IN_FUTURE = "MONTH_IN_FUTURE"
    BACK_PAYMENT_TOO_OLD = "BACK_PAYMENT_TOO_OLD"
    BACK_PAYMENT_TOO_MANY_MONTHS = "BACK_PAYMENT_TOO_MANY_MONTHS"
    AMOUNT_INVALID = "AMOUNT_INVALID"


def latest_payable_month(paid_on: date, *, schedule: DuesSchedule) -> Month:
    """The latest month a payment made on `paid_on` may name: its own month for a
    monthly payer, the last month of its quarter for a quarterly payer."""
    month = Month.of(paid_on)
    return month.quarter_end if schedule is DuesSchedule.QUARTERLY else month


def earliest_payable_month(
    paid_on: date, *, back_window: int = BACK_PAYMENT_WINDOW_MONTHS
) -> Month:
    """The earliest month a payment made on `paid_on` may back-pay (P - back_window)."""
    return Month.of(paid_on) - back_window


def check_amount(amount_fen: int) -> DuesProblem | None:
    """`AMOUNT_INVALID` unless an int (not bool) in 1 .. MAX_AMOUNT_FEN."""
    if (
        isinstance(amount_fen, int)
        and not isinstance(amount_fen, bool)
        and 1 <= amount_fen <= MAX_AMOUNT_FEN
    ):
        return None
    return DuesProblem.AMOUNT_INVALID


def check_payment(
    paid_on: date,
    months: Sequence[Month],
    *,
    schedule: DuesSchedule,
    amount_fen: int,
    back_window: int = BACK_PAYMENT_WINDOW_MONTHS,
    max_back_months: int = MAX_BACK_PAYMENT_MONTHS,
) -> list[DuesProblem]:
    """Every problem of one payment (see the module docstring), each once, in the order
    of `DuesProblem`; an empty list when the payment is valid."""
    problems: list[DuesProblem] = []
    current = Month.of(paid_on)
    if not months:
        problems.append(DuesProblem.MONTHS_EMPTY)
    else:
        distinct = set(months)
        if len(distinct) != len(months):
            problems.append(DuesProblem.MONTHS_DUPLICATED)
        latest = latest_payable_month(paid_on, schedule=schedule)
        if any(m > latest for m in distinct):
            problems.append(DuesProblem.MONTH_IN_FUTURE)
        back = [m for m in distinct if m < current]
        earliest_ordinal = current.ordinal - back_window
        if any(m.ordinal < earliest_ordinal for m in back):
            problems.append(DuesProblem.BACK_PAYMENT_TOO_OLD)
        if len(back) > max_back_months:
            problems.append(DuesProblem.BACK_PAYMENT_TOO_MANY_MONTHS)
    amount_problem = check_amount(amount_fen)
    if amount_problem is not None:
        problems.append(amount_problem)
    return problems
