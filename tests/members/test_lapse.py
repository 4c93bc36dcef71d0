"""Detection of "三不": worked examples from the issue, and properties of the walk."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from datetime import date
from itertools import pairwise

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from service.dues.rules import DuesSchedule, Month, PaidBy, check_payment
from service.members.lapse import (
    DUES_WARNING_MONTHS,
    FLAG_MONTHS,
    DuesMonthStatus,
    Excuse,
    ExcuseKind,
    LapseAssessment,
    LapseKind,
    LifeMonth,
    MemberMonthFacts,
    SchedulePeriod,
    TaskMonth,
    assess_lapse,
    dues_status,
    last_closed_month,
)

AS_OF = date(2026, 8, 10)  # the last closed month is 2026-07
JULY = Month(2026, 7)
SINCE = Month(2020, 1)


def months(first: str, last: str) -> list[Month]:
    return list(Month.range(Month.parse(first), Month.parse(last)))


def paid_through(
    last: str, by: PaidBy = PaidBy.SELF, first: str = "2020-01"
) -> dict[Month, PaidBy]:
    return dict.fromkeys(months(first, last), by)


def assess(facts: MemberMonthFacts, as_of: date = AS_OF, **kw: int) -> LapseAssessment:
    return assess_lapse(facts, as_of=as_of, **kw)


# --- dues ---------------------------------------------------------------------------


def test_last_closed_month_is_the_month_before() -> None:
    assert last_closed_month(date(2026, 8, 1)) == JULY
    assert last_closed_month(date(2026, 8, 31)) == JULY
    assert last_closed_month(date(2026, 1, 15)) == Month(2025, 12)


def test_five_months_without_dues_is_not_flagged_six_is() -> None:
    five = assess(MemberMonthFacts(SINCE, paid=paid_through("2026-02")))
    assert five.unpaid_run == 5 and not five.flagged and five.flag(LapseKind.DUES) is None
    assert five.dues_warning == tuple(months("2026-03", "2026-07"))

    six = assess(MemberMonthFacts(SINCE, paid=paid_through("2026-01")))
    assert six.unpaid_run == 6 and six.flagged
    flag = six.flag(LapseKind.DUES)
    assert flag is not None
    assert flag.months == tuple(months("2026-02", "2026-07"))
    assert not flag.reached_window
    assert flag.label == "不交纳党费"
    assert six.dues_warning == flag.months  # the flagged member has the warning too


def test_three_unpaid_months_give_the_warning_two_do_not() -> None:
    three = assess(MemberMonthFacts(SINCE, paid=paid_through("2026-04")))
    assert three.unpaid_run == 3 == DUES_WARNING_MONTHS
    assert three.dues_warning == tuple(months("2026-05", "2026-07"))
    assert not three.flagged
    two = assess(MemberMonthFacts(SINCE, paid=paid_through("2026-05")))
    assert two.unpaid_run == 2 and two.dues_warning is None


def test_a_month_with_a_recorded_reason_breaks_the_run() -> None:
    base = MemberMonthFacts(SINCE, paid=paid_through("2025-12"))  # 2026-01..07 unpaid
    assert assess(base).unpaid_run == 7
    april = Month(2026, 4)
    for kind in (ExcuseKind.DUES, ExcuseKind.ALL):
        excused = replace(base, excuses=[Excuse(april, april, kind)])
        got = assess(excused)
        assert got.unpaid_run == 3 and not got.flagged  # 2026-05..07
        assert dues_status(excused, april, last_closed=JULY) is DuesMonthStatus.EXCUSED
    # a reason for another kind does not excuse dues
    life_only = replace(base, excuses=[Excuse(april, april, ExcuseKind.LIFE)])
    assert assess(life_only).unpaid_run == 7
    # an open-ended reason covers everything from its first month
    open_ended = replace(base, excuses=[Excuse(Month(2026, 6), None, ExcuseKind.DUES)])
    assert assess(open_ended).unpaid_run == 0


def test_a_back_payment_within_six_months_clears_the_months_it_covers() -> None:
    facts = MemberMonthFacts(SINCE, paid=paid_through("2025-12"))
    assert assess(facts).flagged
    # paid on 2026-08-10 for 2026-02..07: a valid back-payment of six months
    back = months("2026-02", "2026-07")
    assert check_payment(AS_OF, back, schedule=DuesSchedule.MONTHLY, amount_fen=3000) == []
    cleared = replace(facts, paid={**facts.paid, **dict.fromkeys(back, PaidBy.SELF)})
    got = assess(cleared)
    assert got.unpaid_run == 0 and not got.flagged and got.dues_warning is None
    # 2026-01 stays unpaid but is behind the paid months: the run is the current one
    assert dues_status(cleared, Month(2026, 1), last_closed=JULY) is DuesMonthStatus.UNPAID
    # back-paying only the older months leaves the recent ones unpaid
    older = months("2026-02", "2026-04")
    partly = replace(facts, paid={**facts.paid, **dict.fromkeys(older, PaidBy.SELF)})
    assert assess(partly).dues_warning == tuple(months("2026-05", "2026-07"))


def test_family_payment_counts_as_paid_and_is_shown() -> None:
    paid = paid_through("2026-04")
    paid.update(dict.fromkeys(months("2026-05", "2026-07"), PaidBy.FAMILY))
    got = assess(MemberMonthFacts(SINCE, paid=paid))
    assert got.unpaid_run == 0 and got.dues_warning is None
    assert got.family_paid_months == tuple(months("2026-05", "2026-07"))
    facts = MemberMonthFacts(SINCE, paid=paid)
    assert dues_status(facts, JULY, last_closed=JULY) is DuesMonthStatus.PAID
    # family months outside the window are not listed
    old = assess(MemberMonthFacts(SINCE, paid={Month(2023, 1): PaidBy.FAMILY}))
    assert old.family_paid_months == ()


def test_quarterly_payer_mid_quarter_is_not_counted() -> None:
    quarterly = [SchedulePeriod(Month(2025, 1), None, DuesSchedule.QUARTERLY)]
    facts = MemberMonthFacts(SINCE, paid=paid_through("2026-03"), schedule_periods=quarterly)
    # as of 2026-08-10: Q3 (07..09) is not over, so July is pending; Q2 is over and unpaid
    got = assess(facts)
    assert dues_status(facts, JULY, last_closed=JULY) is DuesMonthStatus.PENDING
    assert got.unpaid_run == 3 and got.dues_warning == tuple(months("2026-04", "2026-06"))
    # the same member as a monthly payer has July counted
    monthly = assess(replace(facts, schedule_periods=[]))
    assert monthly.unpaid_run == 4
    # once Q3 is over, its months count: six months, flagged
    after = assess(facts, as_of=date(2026, 10, 5))
    flag = after.flag(LapseKind.DUES)
    assert flag is not None and flag.months == tuple(months("2026-04", "2026-09"))
    # on the last day of the quarter it is still not over
    assert assess(facts, as_of=date(2026, 9, 30)).unpaid_run == 3


def test_the_schedule_in_force_for_the_month_decides() -> None:
    # monthly until June, quarterly from July: only July is pending
    periods = [
        SchedulePeriod(Month(2020, 1), Month(2026, 6), DuesSchedule.MONTHLY),
        SchedulePeriod(Month(2026, 7), None, DuesSchedule.QUARTERLY),
    ]
    facts = MemberMonthFacts(SINCE, paid=paid_through("2026-01"), schedule_periods=periods)
    got = assess(facts)
    assert got.unpaid_run == 5 and not got.flagged  # 02..06; July pending
    # a later period overrides an earlier one it overlaps
    overridden = replace(
        facts,
        schedule_periods=[*periods, SchedulePeriod(Month(2026, 7), None, DuesSchedule.MONTHLY)],
    )
    assert assess(overridden).unpaid_run == 6


def test_the_run_describes_the_current_situation() -> None:
    # a year unpaid long ago, but the last closed month was paid: no run
    paid = paid_through("2024-12")
    paid[JULY] = PaidBy.SELF
    got = assess(MemberMonthFacts(SINCE, paid=paid))
    assert got.unpaid_run == 0 and not got.flagged
    # the current month (August) is never judged
    assert assess(MemberMonthFacts(SINCE, paid=paid_through("2026-07"))).unpaid_run == 0


def test_months_before_tracked_since_do_not_count() -> None:
    # joined (or tracked from) April: four unpaid months, not six
    got = assess(MemberMonthFacts(Month(2026, 4)))
    assert got.unpaid_run == 4 and not got.flagged
    assert got.dues_warning == tuple(months("2026-04", "2026-07"))
    assert got.window_start == Month(2026, 4)
    # tracked from the current month on: nothing to judge yet
    fresh = assess(MemberMonthFacts(Month(2026, 8)))
    assert (fresh.unpaid_run, fresh.life_run, fresh.task_run) == (0, 0, 0)
    assert fresh.flags == () and fresh.family_paid_months == ()


def test_a_run_reaching_the_window_is_at_least_that_long() -> None:
    never_paid = assess(MemberMonthFacts(SINCE))
    flag = never_paid.flag(LapseKind.DUES)
    assert flag is not None and flag.reached_window
    assert never_paid.unpaid_run == 24 and flag.months[0] == Month(2024, 8)
    assert never_paid.window_start == Month(2024, 8)
    # tracked exactly from the window's first month: the run is complete
    exact = assess(MemberMonthFacts(Month(2024, 8))).flag(LapseKind.DUES)
    assert exact is not None and not exact.reached_window
    # a smaller window
    small = assess(MemberMonthFacts(SINCE), window=6).flag(LapseKind.DUES)
    assert small is not None and small.reached_window and len(small.months) == 6
    with pytest.raises(ValueError):
        assess(MemberMonthFacts(SINCE), window=5)


def test_thresholds_are_parameters() -> None:
    facts = MemberMonthFacts(SINCE, paid=paid_through("2026-02"))  # 5 unpaid
    assert not assess(facts).flagged
    got = assess(facts, flag_after=4, warn_after=2)
    assert got.flagged and got.dues_warning is not None
    assert FLAG_MONTHS == 6 and DUES_WARNING_MONTHS == 3


# --- organizational life ------------------------------------------------------------

MISSED = LifeMonth(expected=1, attended=0, excused=0)
ATTENDED = LifeMonth(expected=2, attended=1, excused=0)
EXCUSED_MEETING = LifeMonth(expected=1, attended=0, excused=1)
NONE_HELD = LifeMonth(expected=0, attended=0, excused=0)


def paid_up() -> dict[Month, PaidBy]:
    return paid_through("2026-07")


def test_six_months_without_organizational_life_is_flagged() -> None:
    life = dict.fromkeys(months("2026-02", "2026-07"), MISSED)
    life[Month(2026, 1)] = ATTENDED
    got = assess(MemberMonthFacts(SINCE, paid=paid_up(), life=life))
    flag = got.flag(LapseKind.LIFE)
    assert flag is not None and flag.months == tuple(months("2026-02", "2026-07"))
    assert flag.label == "不参加组织生活" and not flag.reached_window
    assert got.unpaid_run == 0 and got.flags == (flag,)
    life[Month(2026, 2)] = ATTENDED
    assert not assess(MemberMonthFacts(SINCE, paid=paid_up(), life=life)).flagged


def test_months_without_meetings_are_neutral() -> None:
    # missed in 02, 04, 06; nothing held in 03, 05 (no entry) and 07 (expected 0)
    life = {Month(2026, m): MISSED for m in (2, 4, 6)} | {JULY: NONE_HELD}
    life[Month(2026, 1)] = ATTENDED
    got = assess(MemberMonthFacts(SINCE, paid=paid_up(), life=life))
    assert got.life_run == 3 and not got.flagged
    # six missed months spread over a year with empty months between: flagged,
    # and only the counting months are shown
    spread = {Month(2025, m): MISSED for m in (8, 10, 12)} | {
        Month(2026, m): MISSED for m in (2, 4, 6)
    }
    got = assess(MemberMonthFacts(Month(2025, 8), paid=paid_up(), life=spread))
    flag = got.flag(LapseKind.LIFE)
    assert flag is not None
    assert [str(m) for m in flag.months] == [
        "2025-08",
        "2025-10",
        "2025-12",
        "2026-02",
        "2026-04",
        "2026-06",
    ]


def test_an_excused_meeting_or_a_life_reason_breaks_the_run() -> None:
    life = dict.fromkeys(months("2026-01", "2026-07"), MISSED)
    life[Month(2026, 4)] = EXCUSED_MEETING
    assert assess(MemberMonthFacts(SINCE, paid=paid_up(), life=life)).life_run == 3
    all_missed = dict.fromkeys(months("2026-01", "2026-07"), MISSED)
    for kind in (ExcuseKind.LIFE, ExcuseKind.ALL):
        sick = [Excuse(Month(2026, 3), Month(2026, 4), kind)]
        facts = MemberMonthFacts(SINCE, paid=paid_up(), life=all_missed, excuses=sick)
        assert assess(facts).life_run == 3
    tasks_only = [Excuse(Month(2026, 3), Month(2026, 4), ExcuseKind.TASKS)]
    facts = MemberMonthFacts(SINCE, paid=paid_up(), life=all_missed, excuses=tasks_only)
    assert assess(facts).life_run == 7


# --- tasks --------------------------------------------------------------------------


def test_tasks_left_undone_without_reason_count_neutral_months_skip() -> None:
    tasks = {
        Month(2025, 12): TaskMonth(due=1, done=1, excused=0),  # all done: breaks
        Month(2026, 1): TaskMonth(due=2, done=1, excused=0),  # one undone: counts
        Month(2026, 2): TaskMonth(due=1, done=0, excused=0),
        # 2026-03: nothing due
        Month(2026, 4): TaskMonth(due=3, done=1, excused=1),
        Month(2026, 5): TaskMonth(due=0, done=0, excused=0),  # nothing due
        Month(2026, 6): TaskMonth(due=1, done=0, excused=0),
        Month(2026, 7): TaskMonth(due=1, done=0, excused=0),
    }
    got = assess(MemberMonthFacts(SINCE, paid=paid_up(), tasks=tasks))
    assert got.task_run == 5 and not got.flagged
    tasks[Month(2025, 12)] = TaskMonth(due=1, done=0, excused=0)
    got = assess(MemberMonthFacts(SINCE, paid=paid_up(), tasks=tasks))
    flag = got.flag(LapseKind.TASKS)
    assert flag is not None and flag.label == "不做党员工作"
    assert [str(m) for m in flag.months] == [
        "2025-12",
        "2026-01",
        "2026-02",
        "2026-04",
        "2026-06",
        "2026-07",
    ]


def test_excused_tasks_and_task_reasons_break_the_run() -> None:
    tasks = dict.fromkeys(months("2026-01", "2026-07"), TaskMonth(due=1, done=0, excused=0))
    tasks[Month(2026, 5)] = TaskMonth(due=2, done=1, excused=1)  # every task done or excused
    assert assess(MemberMonthFacts(SINCE, paid=paid_up(), tasks=tasks)).task_run == 2
    all_undone = dict.fromkeys(months("2026-01", "2026-07"), TaskMonth(due=1, done=0, excused=0))
    reason = [Excuse(Month(2026, 5), Month(2026, 5), ExcuseKind.TASKS)]
    facts = MemberMonthFacts(SINCE, paid=paid_up(), tasks=all_undone, excuses=reason)
    assert assess(facts).task_run == 2


def test_all_three_flags_in_kind_order() -> None:
    window = months("2026-01", "2026-07")
    facts = MemberMonthFacts(
        SINCE,
        paid=paid_through("2025-12"),
        life=dict.fromkeys(window, MISSED),
        tasks=dict.fromkeys(window, TaskMonth(1, 0, 0)),
    )
    got = assess(facts)
    assert [f.kind for f in got.flags] == [LapseKind.DUES, LapseKind.LIFE, LapseKind.TASKS]
    assert (got.unpaid_run, got.life_run, got.task_run) == (7, 7, 7)
    # ALL excuses every kind
    excused = replace(facts, excuses=[Excuse(Month(2026, 5), Month(2026, 5), ExcuseKind.ALL)])
    got = assess(excused)
    assert (got.unpaid_run, got.life_run, got.task_run) == (2, 2, 2)
    assert not got.flagged and got.dues_warning is None


# --- properties ---------------------------------------------------------------------

SPAN = 30  # facts are generated for the 30 months before the last closed month

_COUNTS, _BREAKS, _SKIP = "counts", "breaks", "skip"


def _excused(facts: MemberMonthFacts, month: Month, kind: ExcuseKind) -> bool:
    return any(
        e.kind in (kind, ExcuseKind.ALL)
        and e.first.ordinal <= month.ordinal
        and (e.last is None or month.ordinal <= e.last.ordinal)
        for e in facts.excuses
    )


def _verdict(kind: LapseKind, facts: MemberMonthFacts, month: Month, last_closed: Month) -> str:
    """The per-month rule, restated for the properties."""
    if kind is LapseKind.DUES:
        if month in facts.paid or _excused(facts, month, ExcuseKind.DUES):
            return _BREAKS
        schedule = DuesSchedule.MONTHLY
        for p in facts.schedule_periods:
            if p.first <= month and (p.last is None or month <= p.last):
                schedule = p.schedule
        quarter_last_month = (month.month - 1) // 3 * 3 + 3
        quarter_over = (month.year, quarter_last_month) <= (last_closed.year, last_closed.month)
        if schedule is DuesSchedule.QUARTERLY and not quarter_over:
            return _SKIP
        return _COUNTS
    if kind is LapseKind.LIFE:
        if _excused(facts, month, ExcuseKind.LIFE):
            return _BREAKS
        life = facts.life.get(month, LifeMonth(0, 0, 0))
        if life.attended or life.excused:
            return _BREAKS
        return _COUNTS if life.expected else _SKIP
    if _excused(facts, month, ExcuseKind.TASKS):
        return _BREAKS
    task = facts.tasks.get(month, TaskMonth(0, 0, 0))
    if not task.due:
        return _SKIP
    return _COUNTS if task.due > task.done + task.excused else _BREAKS


def _full_run(kind: LapseKind, facts: MemberMonthFacts, last_closed: Month) -> int:
    """The run with no window: back from the last closed month to tracked_since."""
    run = 0
    month = last_closed
    while month >= facts.tracked_since:
        found = _verdict(kind, facts, month, last_closed)
        if found == _BREAKS:
            break
        run += found == _COUNTS
        month -= 1
    return run


def _runs(got: LapseAssessment) -> dict[LapseKind, int]:
    return {
        LapseKind.DUES: got.unpaid_run,
        LapseKind.LIFE: got.life_run,
        LapseKind.TASKS: got.task_run,
    }


as_of_days = st.dates(min_value=date(2015, 1, 1), max_value=date(2035, 12, 31))
back = st.integers(min_value=0, max_value=SPAN - 1)
maybe_len = st.one_of(st.none(), st.integers(min_value=0, max_value=12))


@st.composite
def worlds(draw: st.DrawFn) -> tuple[MemberMonthFacts, date, int]:
    as_of = draw(as_of_days)
    last = last_closed_month(as_of)

    def month() -> Month:
        return last - draw(back)

    def period() -> tuple[Month, Month | None]:
        first = last - draw(st.integers(min_value=-2, max_value=SPAN))
        length = draw(maybe_len)
        return first, None if length is None else first + length

    paid = {
        m: draw(st.sampled_from(list(PaidBy)))
        for m in (last - k for k in draw(st.sets(back, max_size=SPAN)))
    }
    schedules = [
        SchedulePeriod(*period(), draw(st.sampled_from(list(DuesSchedule))))
        for _ in range(draw(st.integers(0, 2)))
    ]
    excuses = [
        Excuse(*period(), draw(st.sampled_from(list(ExcuseKind))))
        for _ in range(draw(st.integers(0, 2)))
    ]
    life: dict[Month, LifeMonth] = {}
    for _ in range(draw(st.integers(0, SPAN))):
        expected = draw(st.integers(0, 3))
        life[month()] = LifeMonth(
            expected, draw(st.integers(0, min(expected, 1))), draw(st.integers(0, 1))
        )
    tasks: dict[Month, TaskMonth] = {}
    for _ in range(draw(st.integers(0, SPAN))):
        due = draw(st.integers(0, 3))
        done = draw(st.integers(0, due))
        tasks[month()] = TaskMonth(due, done, draw(st.integers(0, due - done)))
    tracked = last - draw(st.integers(min_value=-2, max_value=SPAN + 2))
    window = draw(st.integers(min_value=FLAG_MONTHS, max_value=SPAN + 4))
    facts = MemberMonthFacts(tracked, paid, schedules, excuses, life, tasks)
    return facts, as_of, window


@given(worlds())
@settings(max_examples=300)
def test_flags_are_runs_of_counting_months(world: tuple[MemberMonthFacts, date, int]) -> None:
    facts, as_of, window = world
    got = assess_lapse(facts, as_of=as_of, window=window)
    last = last_closed_month(as_of)
    assert got.last_closed == last
    assert got.window_start == max(facts.tracked_since, last - (window - 1))
    runs = _runs(got)
    for kind in LapseKind:
        flag = got.flag(kind)
        assert (flag is not None) == (runs[kind] >= FLAG_MONTHS)
        assert runs[kind] <= window
        full = _full_run(kind, facts, last)
        if facts.tracked_since >= got.window_start:  # the window cut nothing off
            assert runs[kind] == full
        else:
            assert runs[kind] <= full
        if flag is None:
            continue
        assert len(flag.months) == runs[kind]
        assert all(a < b for a, b in pairwise(flag.months))
        assert all(facts.tracked_since <= m <= last for m in flag.months)
        assert all(got.window_start <= m for m in flag.months)
        assert all(_verdict(kind, facts, m, last) == _COUNTS for m in flag.months)
        if kind is LapseKind.DUES:
            assert all(
                dues_status(facts, m, last_closed=last) is DuesMonthStatus.UNPAID
                for m in flag.months
            )
        # consecutive in counting order: everything between (and after the newest)
        # neither counts nor breaks
        counted = set(flag.months)
        for m in Month.range(flag.months[0], last):
            if m not in counted:
                assert _verdict(kind, facts, m, last) == _SKIP
        # "at least": exact unless the run went on past the window
        if flag.reached_window:
            assert full >= runs[kind] and facts.tracked_since < got.window_start
        else:
            assert full == runs[kind]
    assert (got.dues_warning is not None) == (got.unpaid_run >= DUES_WARNING_MONTHS)
    if got.dues_warning is not None:
        assert len(got.dues_warning) == got.unpaid_run
        dues_flag = got.flag(LapseKind.DUES)
        assert dues_flag is None or dues_flag.months == got.dues_warning
    assert got.family_paid_months == tuple(
        m for m in Month.range(got.window_start, last) if facts.paid.get(m) is PaidBy.FAMILY
    )


@given(worlds(), back, st.sampled_from(list(PaidBy)))
def test_a_payment_never_increases_the_unpaid_run(
    world: tuple[MemberMonthFacts, date, int], k: int, by: PaidBy
) -> None:
    facts, as_of, window = world
    before = assess_lapse(facts, as_of=as_of, window=window)
    month = before.last_closed - k
    paid: Mapping[Month, PaidBy] = {**facts.paid, month: by}
    after = assess_lapse(replace(facts, paid=paid), as_of=as_of, window=window)
    assert after.unpaid_run <= before.unpaid_run
    assert (after.life_run, after.task_run) == (before.life_run, before.task_run)
    if before.flag(LapseKind.DUES) is None:
        assert after.flag(LapseKind.DUES) is None


@given(worlds(), back, maybe_len, st.sampled_from(list(ExcuseKind)))
def test_an_excuse_never_increases_any_run(
    world: tuple[MemberMonthFacts, date, int], k: int, length: int | None, kind: ExcuseKind
) -> None:
    facts, as_of, window = world
    before = assess_lapse(facts, as_of=as_of, window=window)
    first = before.last_closed - k
    excuse = Excuse(first, None if length is None else first + length, kind)
    after = assess_lapse(
        replace(facts, excuses=[*facts.excuses, excuse]), as_of=as_of, window=window
    )
    for lapse_kind in LapseKind:
        assert _runs(after)[lapse_kind] <= _runs(before)[lapse_kind]
    assert {f.kind for f in after.flags} <= {f.kind for f in before.flags}


@given(worlds(), st.integers(min_value=0, max_value=SPAN))
def test_tracking_from_later_never_increases_any_run(
    world: tuple[MemberMonthFacts, date, int], later: int
) -> None:
    facts, as_of, window = world
    before = assess_lapse(facts, as_of=as_of, window=window)
    after = assess_lapse(
        replace(facts, tracked_since=facts.tracked_since + later), as_of=as_of, window=window
    )
    for kind in LapseKind:
        assert _runs(after)[kind] <= _runs(before)[kind]


@given(worlds(), st.integers(min_value=0, max_value=12))
def test_a_wider_window_never_shortens_a_run(
    world: tuple[MemberMonthFacts, date, int], wider: int
) -> None:
    facts, as_of, window = world
    narrow = assess_lapse(facts, as_of=as_of, window=window)
    wide = assess_lapse(facts, as_of=as_of, window=window + wider)
    for kind in LapseKind:
        assert _runs(wide)[kind] >= _runs(narrow)[kind]
        flag = narrow.flag(kind)
        if flag is not None and not flag.reached_window:
            assert _runs(wide)[kind] == _runs(narrow)[kind]
