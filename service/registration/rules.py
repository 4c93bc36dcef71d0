"""Pure rules of the registration drive (党员登记): the window, lateness, the parts of
a self-summary, reviews. No I/O.

A drive gives every full member `days` days (15 by default) from its opening day:
the last day is `opens_on + days - 1`. Before the opening nothing is accepted; after
the last day a submission is still accepted, marked late (late members are reminded,
not shut out).
"""

from __future__ import annotations

from datetime import date, timedelta
from enum import StrEnum

DEFAULT_DAYS = 15
MAX_DAYS = 90
MAX_TITLE = 100
MAX_SUMMARY = 2000

SUMMARY_PARTS = {"thought": "思想", "work": "工作", "conduct": "作风", "life": "生活"}


class RegistrationChannel(StrEnum):
    WEB = "web"  # 网页
    MINI_PROGRAM = "mini_program"  # 小程序


class Review(StrEnum):
    PENDING = "pending"  # 待审核
    ACCEPTED = "accepted"  # 通过
    RETURNED = "returned"  # 退回


class Window(StrEnum):
    NOT_OPEN = "not_open"
    OPEN = "open"
    CLOSED = "closed"


def closes_on(opens_on: date, days: int) -> date:
    """The last day of a drive of `days` days.

    >>> closes_on(date(2025, 3, 1), 15)
    datetime.date(2025, 3, 15)
    """
    return opens_on + timedelta(days=days - 1)


def window(opens_on: date, last_day: date, today: date) -> Window:
    """Where `today` lies against a drive's window.

    >>> [window(date(2025, 3, 1), date(2025, 3, 15), date(2025, 3, d)).value for d in (1, 15, 16)]
    ['open', 'open', 'closed']
    """
    if today < opens_on:
        return Window.NOT_OPEN
    return Window.OPEN if today <= last_day else Window.CLOSED


def is_late(last_day: date, today: date) -> bool:
    return today > last_day
