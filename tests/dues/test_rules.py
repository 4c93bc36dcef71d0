"""Pure rules of party dues: the month value and which months a payment may name."""

from __future__ import annotations

import copy
import pickle
from datetime import date, timedelta
from itertools import pairwise

import pytest
from hypothesis import given
from hypothesis import strategies as st

from service.dues.rules import (
    MAX_AMOUNT_FEN,
    MAX_ORDINAL,
    MIN_ORDINAL,
    DuesProblem,
    DuesSchedule,
    Month,
    check_amount,
    check_payment,
    earliest_payable_month,
    latest_payable_month,
)

P = DuesProblem
MONTHLY = DuesSchedule.MONTHLY
QUARTERLY = DuesSchedule.QUARTERLY

# --- Month: worked examples ---------------------------------------------------------


def test_month_parts_and_text() -> None:
    m = Month(2026, 3)
    assert (m.year, m.month, m.quarter) == (2026, 3, 1)
    assert m.ordinal == 2026 * 12 + 2 == 24314
    assert str(m) == "2026-03" and repr(m) == "Month(2026, 3)"
    assert m.label == "2026年3月"
    assert Month.parse("2026-03") == m == Month.from_ym(2026, 3) == Month.from_ordinal(24314)
    assert Month.of(date(2026, 3, 31)) == m


def test_month_arithmetic_crosses_years() -> None:
    assert Month(2026, 3) + 10 == Month(2027, 1)
    assert 10 + Month(2026, 3) == Month(2027, 1)
    assert Month(2026, 1) - 1 == Month(2025, 12)
    assert Month(2027, 1) - Month(2026, 3) == 10
    assert Month(2026, 3) - Month(2027, 1) == -10


def test_month_days_and_quarters() -> None:
    assert Month(2024, 2).first_day == date(2024, 2, 1)
    assert Month(2024, 2).last_day == date(2024, 2, 29)
    assert Month(2026, 2).last_day == date(2026, 2, 28)
    assert Month(2026, 12).last_day == date(2026, 12, 31)
    assert Month(2026, 1).quarter_end == Month(2026, 3)
    assert Month(2026, 3).quarter_end == Month(2026, 3)
    assert Month(2026, 11).quarter_end == Month(2026, 12)
    assert Month(2026, 11).quarter_start == Month(2026, 10)


def test_month_range_is_inclusive_and_empty_when_reversed() -> None:
    assert list(Month.range(Month(2025, 11), Month(2026, 2))) == [
        Month(2025, 11),
        Month(2025, 12),
        Month(2026, 1),
        Month(2026, 2),
    ]
    assert list(Month.range(Month(2026, 2), Month(2026, 2))) == [Month(2026, 2)]
    assert list(Month.range(Month(2026, 3), Month(2026, 2))) == []


def test_month_is_frozen_hashable_and_picklable() -> None:
    m = Month(2026, 3)
    with pytest.raises(AttributeError):
        m.year = 2027  # type: ignore[misc]
    with pytest.raises(AttributeError):
        m._ordinal = 1  # type: ignore[misc]
    assert {m: 1}[Month(2026, 3)] == 1
    assert pickle.loads(pickle.dumps(m)) == m  # noqa: S301 (our own bytes)
    assert copy.deepcopy(m) == m and copy.copy(m) == m


def test_month_does_not_equal_or_order_with_other_types() -> None:
    m = Month(2026, 3)
    assert m != 24314 and m != "2026-03"
    with pytest.raises(TypeError):
        _ = m < 24314  # type: ignore[operator]
    with pytest.raises(TypeError):
        _ = m + 1.0  # type: ignore[operator]
    with pytest.raises(TypeError):
        _ = m + True  # type: ignore[operator]


@pytest.mark.parametrize(
    "text",
    [
        "",
        "2026",
        "2026-3",
        "2026-13",
        "2026-00",
        "0000-01",
        "26-03",
        "2026/03",
        "202603",
        " 2026-03",
        "2026-03 ",
        "2026-03-01",
        "２０２６-０３",  # full-width digits
        "2026-٠٣",  # Arabic-Indic digits
        "-2026-03",
        "+2026-03",
    ],
)
def test_bad_month_text_is_a_value_error(text: str) -> None:
    with pytest.raises(ValueError):
        Month.parse(text)


def test_bad_months_are_value_errors_and_overflow_is_an_overflow_error() -> None:
    for year, month in [(2026, 0), (2026, 13), (0, 1), (10000, 1)]:
        with pytest.raises(ValueError):
            Month(year, month)
    with pytest.raises(TypeError):
        Month(2026.0, 3)  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        Month.from_ordinal(MAX_ORDINAL + 1)
    with pytest.raises(ValueError):
        Month.parse(None)  # type: ignore[arg-type]
    with pytest.raises(OverflowError):
        Month(9999, 12) + 1
    with pytest.raises(OverflowError):
        Month(1, 1) - 1


# --- Month: properties --------------------------------------------------------------

months = st.integers(min_value=MIN_ORDINAL, max_value=MAX_ORDINAL).map(Month.from_ordinal)
near_months = st.integers(min_value=1900 * 12, max_value=2200 * 12).map(Month.from_ordinal)
steps = st.integers(min_value=-1200, max_value=1200)


@given(months)
def test_month_round_trips(m: Month) -> None:
    assert Month.from_ordinal(m.ordinal) == m
    assert Month(m.year, m.month) == m
    assert Month.parse(str(m)) == m
    assert Month.of(m.first_day) == m == Month.of(m.last_day)
    assert hash(Month.from_ordinal(m.ordinal)) == hash(m)


@given(near_months, steps)
def test_month_arithmetic_round_trips(m: Month, k: int) -> None:
    assert (m + k) - k == m
    assert (m + k) - m == k
    assert m - (m - k) == k
    assert (m + k).ordinal == m.ordinal + k


@given(months, months)
def test_month_order_is_calendar_order(a: Month, b: Month) -> None:
    assert (a < b) == ((a.year, a.month) < (b.year, b.month)) == (a.first_day < b.first_day)
    assert (a == b) == (a.ordinal == b.ordinal)
    assert (a <= b) == (not a > b) and (a >= b) == (not a < b)


@given(near_months)
def test_month_days_and_quarter_are_consistent(m: Month) -> None:
    assert m.last_day + timedelta(days=1) == (m + 1).first_day
    assert m.quarter_end.month in (3, 6, 9, 12)
    assert m.quarter_start.month in (1, 4, 7, 10)
    assert m.quarter_start <= m <= m.quarter_end
    assert m.quarter_end - m.quarter_start == 2
    assert m.quarter_end.quarter == m.quarter == m.quarter_start.quarter
    assert m.year == m.quarter_end.year


@given(near_months, st.integers(min_value=-3, max_value=40))
def test_month_range_length_and_order(first: Month, span: int) -> None:
    got = list(Month.range(first, first + span))
    assert len(got) == max(span + 1, 0)
    assert all(b - a == 1 for a, b in pairwise(got))


@given(st.text(max_size=12))
def test_parse_accepts_only_yyyy_mm(text: str) -> None:
    ok = (
        len(text) == 7
        and text[4] == "-"
        and all(c in "0123456789" for c in text[:4] + text[5:])
        and 1 <= int(text[5:]) <= 12
        and int(text[:4]) >= 1
    )
    if ok:
        assert str(Month.parse(text)) == text
    else:
        with pytest.raises(ValueError):
            Month.parse(text)


# --- payments: worked examples ------------------------------------------------------

PAID_ON = date(2026, 8, 15)  # P = 2026-08


def check(months: list[Month], schedule: DuesSchedule = MONTHLY, amount: int = 5000) -> list[P]:
    return check_payment(PAID_ON, months, schedule=schedule, amount_fen=amount)


def test_current_month_is_payable() -> None:
    assert check([Month(2026, 8)]) == []


def test_monthly_payer_may_not_prepay_next_month() -> None:
    assert check([Month(2026, 8), Month(2026, 9)]) == [P.MONTH_IN_FUTURE]


def test_quarterly_payer_may_prepay_the_current_quarter_only() -> None:
    q3 = [Month(2026, 7), Month(2026, 8), Month(2026, 9)]
    assert check(q3, QUARTERLY) == []
    assert check([Month(2026, 10)], QUARTERLY) == [P.MONTH_IN_FUTURE]
    assert latest_payable_month(PAID_ON, schedule=QUARTERLY) == Month(2026, 9)
    assert latest_payable_month(PAID_ON, schedule=MONTHLY) == Month(2026, 8)
    # on the last day of a quarter, the quarter is the current one
    assert (
        check_payment(date(2026, 9, 30), [Month(2026, 9)], schedule=QUARTERLY, amount_fen=1) == []
    )


def test_back_payment_covers_the_six_months_before() -> None:
    six_back = list(Month.range(Month(2026, 2), Month(2026, 7)))
    assert check(six_back) == []
    assert check([*six_back, Month(2026, 8)]) == []  # plus the current month
    assert earliest_payable_month(PAID_ON) == Month(2026, 2)


def test_back_payment_seven_months_back_is_too_old() -> None:
    assert check([Month(2026, 1)]) == [P.BACK_PAYMENT_TOO_OLD]
    seven_back = list(Month.range(Month(2026, 1), Month(2026, 7)))
    assert check(seven_back) == [P.BACK_PAYMENT_TOO_OLD, P.BACK_PAYMENT_TOO_MANY_MONTHS]


def test_a_wider_window_keeps_the_cap_of_six_months() -> None:
    seven_back = list(Month.range(Month(2026, 1), Month(2026, 7)))
    got = check_payment(PAID_ON, seven_back, schedule=MONTHLY, amount_fen=1, back_window=12)
    assert got == [P.BACK_PAYMENT_TOO_MANY_MONTHS]


def test_empty_and_duplicated_months() -> None:
    assert check([]) == [P.MONTHS_EMPTY]
    assert check([], amount=0) == [P.MONTHS_EMPTY, P.AMOUNT_INVALID]
    assert check([Month(2026, 7), Month(2026, 7)]) == [P.MONTHS_DUPLICATED]


def test_every_problem_is_reported_once_in_order() -> None:
    bad = [
        Month(2025, 1),
        Month(2025, 1),
        Month(2027, 1),
        *Month.range(Month(2026, 1), Month(2026, 7)),
    ]
    assert check(bad, amount=-1) == [
        P.MONTHS_DUPLICATED,
        P.MONTH_IN_FUTURE,
        P.BACK_PAYMENT_TOO_OLD,
        P.BACK_PAYMENT_TOO_MANY_MONTHS,
        P.AMOUNT_INVALID,
    ]


def test_amount_in_fen() -> None:
    assert check_amount(1) is None and check_amount(MAX_AMOUNT_FEN) is None
    for bad in (0, -100, MAX_AMOUNT_FEN + 1, True, 12.5, "100", None):
        assert check_amount(bad) is P.AMOUNT_INVALID  # type: ignore[arg-type]


def test_problem_codes_are_plain_strings() -> None:
    assert P.BACK_PAYMENT_TOO_OLD == "BACK_PAYMENT_TOO_OLD"
    assert {p.value for p in P} == {
        "MONTHS_EMPTY",
        "MONTHS_DUPLICATED",
        "MONTH_IN_FUTURE",
        "BACK_PAYMENT_TOO_OLD",
        "BACK_PAYMENT_TOO_MANY_MONTHS",
        "AMOUNT_INVALID",
    }


# --- payments: properties -----------------------------------------------------------

days = st.dates(min_value=date(2000, 1, 1), max_value=date(2100, 12, 31))
schedules = st.sampled_from(list(DuesSchedule))
offsets = st.lists(st.integers(min_value=-15, max_value=8), max_size=10)


def _oracle(paid_on: date, offsets: list[int], schedule: DuesSchedule) -> set[P]:
    """The rule restated on (year, month) pairs and month counts, without Month."""
    q_end_offset = (3 - paid_on.month % 3) % 3 if schedule is QUARTERLY else 0
    found: set[P] = set()
    if not offsets:
        return {P.MONTHS_EMPTY}
    if len(set(offsets)) != len(offsets):
        found.add(P.MONTHS_DUPLICATED)
    if any(o > q_end_offset for o in offsets):
        found.add(P.MONTH_IN_FUTURE)
    back = {o for o in offsets if o < 0}
    if any(o < -6 for o in back):
        found.add(P.BACK_PAYMENT_TOO_OLD)
    if len(back) > 6:
        found.add(P.BACK_PAYMENT_TOO_MANY_MONTHS)
    return found


@given(days, offsets, schedules)
def test_check_payment_matches_the_rule(
    paid_on: date, offs: list[int], sched: DuesSchedule
) -> None:
    current = Month.of(paid_on)
    got = check_payment(paid_on, [current + o for o in offs], schedule=sched, amount_fen=100)
    assert set(got) == _oracle(paid_on, offs, sched)
    assert len(got) == len(set(got))
    assert got == sorted(got, key=list(P).index)


@given(days, schedules, st.integers(min_value=1, max_value=6))
def test_any_run_of_back_months_up_to_six_is_valid(
    paid_on: date, sched: DuesSchedule, count: int
) -> None:
    current = Month.of(paid_on)
    months = list(Month.range(current - count, current))
    assert check_payment(paid_on, months, schedule=sched, amount_fen=100) == []


@given(days, offsets, schedules)
def test_quarterly_never_refuses_what_monthly_accepts(
    paid_on: date, offs: list[int], sched: DuesSchedule
) -> None:
    current = Month.of(paid_on)
    months = [current + o for o in offs]
    if not check_payment(paid_on, months, schedule=MONTHLY, amount_fen=1):
        assert check_payment(paid_on, months, schedule=QUARTERLY, amount_fen=1) == []
