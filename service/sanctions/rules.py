"""Pure rules of discipline sanctions (党纪处分): kinds, the end of a probation, who is
under probation on a day, and how a sanction bends the grade of a democratic
evaluation (DOMAIN.md "Discipline overrides"). No I/O.

Evaluations read these later: a member under probation (留党察看) has no vote, and
`grade_override` says what the grade of a year may be before any tally is looked at.
The functions take any objects with `kind`, `decided_on` and `probation_ends_on`
(sanction rows, or `Sanction` below in tests).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from enum import StrEnum
from typing import Any, Protocol


class SanctionKind(StrEnum):
    WARNING = "warning"  # 警告
    SERIOUS_WARNING = "serious_warning"  # 严重警告
    REMOVAL_FROM_POST = "removal_from_post"  # 撤销党内职务
    PROBATION_ONE_YEAR = "probation_one_year"  # 留党察看一年
    PROBATION_TWO_YEARS = "probation_two_years"  # 留党察看二年
    EXPULSION = "expulsion"  # 开除党籍


KIND_LABELS = {
    SanctionKind.WARNING: "警告",
    SanctionKind.SERIOUS_WARNING: "严重警告",
    SanctionKind.REMOVAL_FROM_POST: "撤销党内职务",
    SanctionKind.PROBATION_ONE_YEAR: "留党察看一年",
    SanctionKind.PROBATION_TWO_YEARS: "留党察看二年",
    SanctionKind.EXPULSION: "开除党籍",
}

PROBATION_YEARS = {SanctionKind.PROBATION_ONE_YEAR: 1, SanctionKind.PROBATION_TWO_YEARS: 2}

MAX_DECIDED_BY = 100
MAX_MATTER = 1000


class SanctionLike(Protocol):
    @property
    def kind(self) -> str: ...

    @property
    def decided_on(self) -> date: ...

    @property
    def probation_ends_on(self) -> date | None: ...


@dataclass(frozen=True)
class Sanction:
    """A sanction as the rules see it."""

    kind: str
    decided_on: date
    probation_ends_on: date | None = None

    @classmethod
    def decided(cls, kind: SanctionKind, decided_on: date) -> Sanction:
        return cls(kind.value, decided_on, probation_ends_on(kind, decided_on))


def sanctions_from_json(items: Any) -> list[Sanction]:
    """Sanctions as a statement aggregates them (`json_agg` of kind, decided_on,
    probation_ends_on; ISO dates), for the rules."""
    return [
        Sanction(
            s["kind"],
            date.fromisoformat(s["decided_on"]),
            date.fromisoformat(s["probation_ends_on"]) if s["probation_ends_on"] else None,
        )
        for s in (items if isinstance(items, list) else [])
    ]


def add_years(day: date, years: int) -> date:
    """The same day `years` later; 29 February becomes 28 February in a common year."""
    try:
        return day.replace(year=day.year + years)
    except ValueError:
        return day.replace(year=day.year + years, day=28)


def probation_ends_on(kind: SanctionKind, decided_on: date) -> date | None:
    """The day a probation (留党察看) ends: the decision date one or two years on;
    None for the other kinds.

    >>> probation_ends_on(SanctionKind.PROBATION_ONE_YEAR, date(2024, 3, 15))
    datetime.date(2025, 3, 15)
    >>> probation_ends_on(SanctionKind.PROBATION_TWO_YEARS, date(2024, 2, 29))
    datetime.date(2026, 2, 28)
    >>> probation_ends_on(SanctionKind.WARNING, date(2024, 3, 15)) is None
    True
    """
    years = PROBATION_YEARS.get(kind)
    return None if years is None else add_years(decided_on, years)


def under_probation(sanctions: Iterable[SanctionLike], on: date) -> bool:
    """Whether a probation is in force on `on` (from the decision day up to, not
    including, its end): such a member has no vote, in ballots or in the assembly.

    >>> s = [Sanction.decided(SanctionKind.PROBATION_ONE_YEAR, date(2024, 3, 15))]
    >>> under_probation(s, date(2024, 3, 15)), under_probation(s, date(2025, 3, 14))
    (True, True)
    >>> under_probation(s, date(2024, 3, 14)), under_probation(s, date(2025, 3, 15))
    (False, False)
    """
    return any(
        s.kind in PROBATION_YEARS
        and s.probation_ends_on is not None
        and s.decided_on <= on < s.probation_ends_on
        for s in sanctions
    )


def sanctions_in_year(sanctions: Iterable[SanctionLike], year: int) -> list[SanctionLike]:
    """The sanctions decided in calendar year `year`, in decision order."""
    return sorted((s for s in sanctions if s.decided_on.year == year), key=lambda s: s.decided_on)


class Override(StrEnum):
    """What the sanctions of a member allow their grade of a year to be."""

    NONE = "none"  # graded by the tally
    NOT_EXCELLENT = "not_excellent"  # 警告: skip the excellent rule
    UNQUALIFIED = "unqualified"  # 严重警告、撤销党内职务、留党察看: 不合格
    COMMENT_ONLY = "comment_only"  # the year after 留党察看二年: a written comment, no grade
    NOT_EVALUATED = "not_evaluated"  # 开除党籍: no longer a member


# When several sanctions apply, the strongest decides (an expelled member is not
# evaluated at all; a fresh sanction's 不合格 outranks the comment-only year).
_STRENGTH = {
    Override.NONE: 0,
    Override.NOT_EXCELLENT: 1,
    Override.COMMENT_ONLY: 2,
    Override.UNQUALIFIED: 3,
    Override.NOT_EVALUATED: 4,
}

_IN_YEAR = {
    SanctionKind.WARNING: Override.NOT_EXCELLENT,
    SanctionKind.SERIOUS_WARNING: Override.UNQUALIFIED,
    SanctionKind.REMOVAL_FROM_POST: Override.UNQUALIFIED,
    SanctionKind.PROBATION_ONE_YEAR: Override.UNQUALIFIED,
    SanctionKind.PROBATION_TWO_YEARS: Override.UNQUALIFIED,
    SanctionKind.EXPULSION: Override.NOT_EVALUATED,
}


def grade_override(sanctions: Iterable[SanctionLike], year: int) -> Override:
    """The discipline override of the evaluation of calendar year `year`.

    - decided in `year`: 警告 -> NOT_EXCELLENT; 严重警告, 撤销党内职务, 留党察看一年,
      留党察看二年 -> UNQUALIFIED; 开除党籍 -> NOT_EVALUATED;
    - 留党察看二年 decided in `year - 1` -> COMMENT_ONLY;
    - 开除党籍 decided in any earlier year -> NOT_EVALUATED.

    >>> w = Sanction.decided(SanctionKind.WARNING, date(2024, 5, 1))
    >>> grade_override([w], 2024), grade_override([w], 2025)
    (<Override.NOT_EXCELLENT: 'not_excellent'>, <Override.NONE: 'none'>)
    >>> p2 = Sanction.decided(SanctionKind.PROBATION_TWO_YEARS, date(2024, 11, 20))
    >>> [grade_override([p2], y).value for y in (2024, 2025, 2026)]
    ['unqualified', 'comment_only', 'none']
    """
    best = Override.NONE
    for s in sanctions:
        kind = SanctionKind(s.kind)
        found = Override.NONE
        if s.decided_on.year == year:
            found = _IN_YEAR[kind]
        elif s.decided_on.year == year - 1 and kind is SanctionKind.PROBATION_TWO_YEARS:
            found = Override.COMMENT_ONLY
        elif s.decided_on.year < year and kind is SanctionKind.EXPULSION:
            found = Override.NOT_EVALUATED
        if _STRENGTH[found] > _STRENGTH[best]:
            best = found
    return best
