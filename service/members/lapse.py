"""Detection of "三不": members who, without a recorded valid reason, for 6 consecutive
months paid no dues (不交纳党费), attended no organizational life (不参加组织生活)
or did not do the work the organization gave them (不做党员工作). No I/O.

A flag is a prompt for the branch, never a decision: the branch confirms it (and
may open a case) or records the reason it did not know of.

The walk
--------
Runs describe the member's current situation. Each is counted backward from the
last closed month, the month before `as_of`'s month (as of 2026-03-15 that is
2026-02; the current month is never judged), through at most `window` months
(default 24: the repository fetches only those). Each month of the walk is, per
kind, one of:

- COUNTS: a month of failing; added to the run;
- BREAKS: the run ends here (the month is not added);
- SKIPPED: neither counts nor breaks; the walk goes on past it.

The walk also ends, as a break does, at the member's `tracked_since` (the later of
the joining month and the month the ledger started tracking them): months before
it never count. A run of at least `flag_after` (6) counting months is a flag; a
dues run of at least `warn_after` (3) is the earlier dues warning (批评教育、限期改正),
shown also when the member is flagged. A run that is still open at the window's
oldest month, while the member was tracked before that month, is reported with
`reached_window=True`: "at least N months". Thresholds and window are parameters;
`window` must be at least `flag_after`.

Excuses (a recorded valid reason) are periods `first .. last` (inclusive; `last`
None = open-ended) of kind DUES, LIFE, TASKS or ALL (ALL covers the three kinds).
A month covered by an excuse of its kind BREAKS the run, before anything else is
looked at (except a dues payment, which also breaks: a paid month shows as PAID).

Dues, per month (`dues_status`), the first that holds:
1. PAID: a payment covers the month (`paid[month]`), whether paid by the member
   (SELF) or by a relative (FAMILY, counts as paid; those months are listed in
   `family_paid_months`). A back-payment recorded later makes the months it names
   PAID: payments are read by covered month, not by payment date. BREAKS.
2. EXCUSED: an excuse of kind DUES or ALL covers it. BREAKS.
3. PENDING: the schedule in force for the month is QUARTERLY and the month's quarter
   is not over (its last month is after the last closed month): a quarterly payer is
   not late before the quarter ends. SKIPPED (such months only occur at the recent
   end of the walk).
4. UNPAID. COUNTS.
The schedule in force for a month is that of the last period in `schedule_periods`
covering it (pass them oldest first); MONTHLY where none does.

Organizational life, per month, the first that holds:
1. an excuse of kind LIFE or ALL covers it: BREAKS;
2. the member attended or was excused from at least one meeting: BREAKS;
3. meetings the member was expected at were held (expected > 0), none attended,
   none excused: COUNTS;
4. no meeting held (no entry, or expected 0): SKIPPED. The branch held nothing,
   which is not the member's failing; it does not end the run either.

Tasks, per month (tasks are counted in the month they were due), the first that holds:
1. an excuse of kind TASKS or ALL covers it: BREAKS;
2. no task due (no entry, or due 0): SKIPPED;
3. at least one due task left undone without a recorded reason
   (due - done - excused > 0): COUNTS;
4. every due task done or excused: BREAKS.

The input is shaped for one aggregate query per page of members: per member, the
paid months, schedule periods, excuses, and per-month meeting and task counts.
Everything is plain loops over at most `window` months.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from enum import StrEnum
from typing import NamedTuple

from service.dues.rules import MIN_ORDINAL, DuesSchedule, Month, PaidBy

FLAG_MONTHS = 6  # 连续六个月: a flag
DUES_WARNING_MONTHS = 3  # three unpaid months: the branch's warning task
WINDOW_MONTHS = 24  # months looked at (and fetched)


class LapseKind(StrEnum):
    DUES = "dues"  # 不交纳党费
    LIFE = "life"  # 不参加组织生活
    TASKS = "tasks"  # 不做党员工作

    @property
    def label(self) -> str:
        return LAPSE_KIND_LABELS[self]


LAPSE_KIND_LABELS = {
    LapseKind.DUES: "不交纳党费",
    LapseKind.LIFE: "不参加组织生活",
    LapseKind.TASKS: "不做党员工作",
}


class ExcuseKind(StrEnum):
    DUES = "dues"  # 党费
    LIFE = "life"  # 组织生活
    TASKS = "tasks"  # 党员工作
    ALL = "all"  # 全部


EXCUSE_KIND_LABELS = {
    ExcuseKind.DUES: "党费",
    ExcuseKind.LIFE: "组织生活",
    ExcuseKind.TASKS: "党员工作",
    ExcuseKind.ALL: "全部",
}


class DuesMonthStatus(StrEnum):
    PAID = "paid"  # 已交
    EXCUSED = "excused"  # 有正当理由
    PENDING = "pending"  # 季度未结束
    UNPAID = "unpaid"  # 未交


DUES_STATUS_LABELS = {
    DuesMonthStatus.PAID: "已交",
    DuesMonthStatus.EXCUSED: "有正当理由",
    DuesMonthStatus.PENDING: "季度未结束",
    DuesMonthStatus.UNPAID: "未交",
}


# --- input --------------------------------------------------------------------------


class Excuse(NamedTuple):
    """A recorded valid reason for months `first .. last` (inclusive; None: open-ended)."""

    first: Month
    last: Month | None
    kind: ExcuseKind


class SchedulePeriod(NamedTuple):
    """A dues schedule in force for months `first .. last` (inclusive; None: open-ended)."""

    first: Month
    last: Month | None
    schedule: DuesSchedule


class LifeMonth(NamedTuple):
    """One month of organizational life: meetings held that the member was expected
    at, how many they attended, how many they were excused from."""

    expected: int
    attended: int
    excused: int


class TaskMonth(NamedTuple):
    """Tasks due in one month: how many, how many done, how many left undone with a
    recorded reason. The rest (due - done - excused) were left undone without one."""

    due: int
    done: int
    excused: int


@dataclass(frozen=True, slots=True)
class MemberMonthFacts:
    """What the ledger knows of one member, month by month (only months of the window
    are read; extra entries are ignored)."""

    tracked_since: Month
    paid: Mapping[Month, PaidBy] = field(default_factory=dict)
    schedule_periods: Sequence[SchedulePeriod] = ()
    excuses: Sequence[Excuse] = ()
    life: Mapping[Month, LifeMonth] = field(default_factory=dict)
    tasks: Mapping[Month, TaskMonth] = field(default_factory=dict)


# --- output -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class LapseFlag:
    """One "三不" flag: the counting months of the run, oldest first (a life or task run
    may skip months without meetings or tasks, so they need not be adjacent). With
    `reached_window` the run goes on past the window: "at least len(months)"."""

    kind: LapseKind
    months: tuple[Month, ...]
    reached_window: bool

    @property
    def label(self) -> str:
        return self.kind.label


@dataclass(frozen=True, slots=True)
class LapseAssessment:
    """The member's situation as of a day. The months looked at are
    `window_start .. last_closed` (empty when the member is tracked only from later)."""

    last_closed: Month
    window_start: Month
    flags: tuple[LapseFlag, ...]  # in LapseKind order, only the kinds flagged
    dues_warning: tuple[Month, ...] | None  # the unpaid run, oldest first, if >= warn_after
    family_paid_months: tuple[Month, ...]  # months looked at that a relative paid, oldest first
    unpaid_run: int
    life_run: int
    task_run: int

    @property
    def flagged(self) -> bool:
        return bool(self.flags)

    def flag(self, kind: LapseKind) -> LapseFlag | None:
        for found in self.flags:
            if found.kind is kind:
                return found
        return None


# --- rules --------------------------------------------------------------------------

_SKIP, _COUNTS, _BREAKS = 0, 1, 2


def last_closed_month(as_of: date) -> Month:
    """The last month that is over on `as_of`: the month before its month."""
    return Month.of(as_of) - 1


def _covers(first: Month, last: Month | None, month: Month) -> bool:
    return first <= month and (last is None or month <= last)


def is_excused(excuses: Sequence[Excuse], month: Month, kind: ExcuseKind) -> bool:
    """Whether an excuse of `kind` (or ALL) covers `month`."""
    for first, last, excuse_kind in excuses:
        if (excuse_kind == kind or excuse_kind == ExcuseKind.ALL) and _covers(first, last, month):
            return True
    return False


def schedule_in_force(periods: Sequence[SchedulePeriod], month: Month) -> DuesSchedule:
    """The schedule of the last period covering `month`; MONTHLY where none does."""
    found = DuesSchedule.MONTHLY
    for first, last, schedule in periods:
        if _covers(first, last, month):
            found = schedule
    return found


def dues_status(facts: MemberMonthFacts, month: Month, *, last_closed: Month) -> DuesMonthStatus:
    """The dues status of a closed month (`month <= last_closed`), see the module docstring."""
    if month in facts.paid:
        return DuesMonthStatus.PAID
    if is_excused(facts.excuses, month, ExcuseKind.DUES):
        return DuesMonthStatus.EXCUSED
    if (
        month.quarter_end > last_closed
        and schedule_in_force(facts.schedule_periods, month) == DuesSchedule.QUARTERLY
    ):
        return DuesMonthStatus.PENDING
    return DuesMonthStatus.UNPAID


def _dues_verdict(facts: MemberMonthFacts, last_closed: Month) -> Callable[[Month], int]:
    def verdict(month: Month) -> int:
        status = dues_status(facts, month, last_closed=last_closed)
        if status is DuesMonthStatus.UNPAID:
            return _COUNTS
        if status is DuesMonthStatus.PENDING:
            return _SKIP
        return _BREAKS

    return verdict


def _life_verdict(facts: MemberMonthFacts) -> Callable[[Month], int]:
    def verdict(month: Month) -> int:
        if is_excused(facts.excuses, month, ExcuseKind.LIFE):
            return _BREAKS
        entry = facts.life.get(month)
        if entry is None:
            return _SKIP
        expected, attended, excused = entry
        if attended > 0 or excused > 0:
            return _BREAKS
        return _COUNTS if expected > 0 else _SKIP

    return verdict


def _task_verdict(facts: MemberMonthFacts) -> Callable[[Month], int]:
    def verdict(month: Month) -> int:
        if is_excused(facts.excuses, month, ExcuseKind.TASKS):
            return _BREAKS
        entry = facts.tasks.get(month)
        if entry is None:
            return _SKIP
        due, done, excused = entry
        if due <= 0:
            return _SKIP
        return _COUNTS if due - done - excused > 0 else _BREAKS

    return verdict


def _walk(
    verdict: Callable[[Month], int], last_closed: Month, floor: Month, open_below: bool
) -> tuple[tuple[Month, ...], bool]:
    """The counting months from `last_closed` back to `floor` until a break, oldest
    first, and whether the run is still open below `floor` (`open_below`: the member
    was tracked before the window's start)."""
    counted: list[Month] = []
    for ordinal in range(last_closed.ordinal, floor.ordinal - 1, -1):
        month = Month.from_ordinal(ordinal)
        found = verdict(month)
        if found == _BREAKS:
            counted.reverse()
            return tuple(counted), False
        if found == _COUNTS:
            counted.append(month)
    counted.reverse()
    return tuple(counted), open_below


def assess_lapse(
    facts: MemberMonthFacts,
    *,
    as_of: date,
    window: int = WINDOW_MONTHS,
    flag_after: int = FLAG_MONTHS,
    warn_after: int = DUES_WARNING_MONTHS,
) -> LapseAssessment:
    """The member's "三不" runs, flags and dues warning as of `as_of` (see the module
    docstring for the exact rules)."""
    if flag_after < 1 or warn_after < 1:
        raise ValueError("thresholds must be at least 1")
    if window < flag_after:
        raise ValueError(f"a window of {window} months cannot show a run of {flag_after}")
    last_closed = last_closed_month(as_of)
    edge = Month.from_ordinal(max(last_closed.ordinal - window + 1, MIN_ORDINAL))
    window_start = max(facts.tracked_since, edge)
    open_below = facts.tracked_since < edge

    dues_months, dues_open = _walk(
        _dues_verdict(facts, last_closed), last_closed, window_start, open_below
    )
    life_months, life_open = _walk(_life_verdict(facts), last_closed, window_start, open_below)
    task_months, task_open = _walk(_task_verdict(facts), last_closed, window_start, open_below)

    flags: list[LapseFlag] = []
    for kind, months, still_open in (
        (LapseKind.DUES, dues_months, dues_open),
        (LapseKind.LIFE, life_months, life_open),
        (LapseKind.TASKS, task_months, task_open),
    ):
        if len(months) >= flag_after:
            flags.append(LapseFlag(kind, months, still_open))

    family = tuple(
        month
        for month in Month.range(window_start, last_closed)
        if facts.paid.get(month) == PaidBy.FAMILY
    )
    return LapseAssessment(
        last_closed=last_closed,
        window_start=window_start,
        flags=tuple(flags),
        dues_warning=dues_months if len(dues_months) >= warn_after else None,
        family_paid_months=family,
        unpaid_run=len(dues_months),
        life_run=len(life_months),
        task_run=len(task_months),
    )
