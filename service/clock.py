"""Business time: "now" of a request by the service's clock, and the business date in
Asia/Shanghai (deadlines, education weeks, correction periods are counted in the
county's calendar days, not UTC's).

The GraphQL view sets `tx.now` from `AppState.clock` (injectable: tests set the clock,
never sleep); a service asks `now(tx)` / `today(tx)`. Outside a request (the CLI,
demo loading) the wall clock answers.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

from service.db import Transaction

BUSINESS_ZONE = ZoneInfo("Asia/Shanghai")


def business_today(now: datetime) -> date:
    """The Asia/Shanghai calendar day of the instant `now` (aware; naive is UTC).

    >>> business_today(datetime(2026, 11, 27, 16, 0, tzinfo=UTC))
    datetime.date(2026, 11, 28)
    >>> business_today(datetime(2026, 11, 27, 15, 59, tzinfo=UTC))
    datetime.date(2026, 11, 27)
    """
    if now.tzinfo is None:
        now = now.replace(tzinfo=UTC)
    return now.astimezone(BUSINESS_ZONE).date()


def business_time(moment: datetime | None) -> datetime | None:
    """A time a person typed: without an offset it is Beijing's wall clock (not the
    server's nor the database session's zone); with one, as it is.

    >>> business_time(datetime(2026, 11, 28, 8, 0)).astimezone(UTC).hour
    0
    """
    if moment is None or moment.tzinfo is not None:
        return moment
    return moment.replace(tzinfo=BUSINESS_ZONE)


def now(tx: Transaction | None = None) -> datetime:
    """The request's instant (the service's clock), else the wall clock, in UTC."""
    found = getattr(tx, "now", None) if tx is not None else None
    return found if found is not None else datetime.now(UTC)


def today(tx: Transaction | None = None) -> date:
    """The request's business date in Asia/Shanghai."""
    return business_today(now(tx))
