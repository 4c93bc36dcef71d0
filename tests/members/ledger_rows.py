"""Rows of the ledger's dues, meetings and tasks, written with plain SQL: the services
that will write them belong to other packages; these tests only need the facts there.
Months are relative to today's last closed month (`LAST`), so the tests never age."""

from __future__ import annotations

from datetime import date
from typing import Any

from service.dues.rules import Month
from service.members.lapse import last_closed_month

LAST = last_closed_month(date.today())


def month(back: int) -> Month:
    """The closed month `back` months before the last closed one (0: LAST)."""
    return LAST - back


async def pay(tx: Any, member: Any, months: list[Month], *, paid_by: str = "self") -> None:
    """One payment covering `months`."""
    payment = await tx.scalar(
        "INSERT INTO dues_payments (tenant_id, member_id, paid_on, amount_fen, paid_by,"
        " recorded_by) VALUES (%(t)s, %(m)s, current_date, 100, %(by)s, 'tests') RETURNING id",
        {"t": member.tenant_id, "m": member.id, "by": paid_by},
    )
    for paid in months:
        await tx.execute(
            "INSERT INTO dues_months (tenant_id, member_id, month, payment_id, paid_by)"
            " VALUES (%(t)s, %(m)s, %(month)s, %(p)s, %(by)s)",
            {
                "t": member.tenant_id,
                "m": member.id,
                "month": paid.ordinal,
                "p": payment,
                "by": paid_by,
            },
        )


async def meeting(tx: Any, member: Any, held: Month, presence: str) -> None:
    """A meeting of the member's branch in `held`, with the member's presence."""
    meeting_id = await tx.scalar(
        "INSERT INTO meetings (tenant_id, branch_id, branch_path, kind, held_on, month, topic,"
        " recorded_by) VALUES (%(t)s, %(b)s, %(p)s, 'branch_meeting', %(d)s, %(month)s,"
        " '学习', 'tests') RETURNING id",
        {
            "t": member.tenant_id,
            "b": member.branch_id,
            "p": member.branch_path,
            "d": held.first_day,
            "month": held.ordinal,
        },
    )
    await tx.execute(
        "INSERT INTO meeting_attendance (tenant_id, meeting_id, member_id, month, presence,"
        " reason) VALUES (%(t)s, %(mt)s, %(m)s, %(month)s, %(pr)s, %(r)s)",
        {
            "t": member.tenant_id,
            "mt": meeting_id,
            "m": member.id,
            "month": held.ordinal,
            "pr": presence,
            "r": "请假" if presence == "excused" else None,
        },
    )


async def task(tx: Any, member: Any, due: Month, outcome: str) -> None:
    """A task due in `due` with its outcome (pending, done, not_done, excused)."""
    await tx.execute(
        "INSERT INTO member_tasks (tenant_id, member_id, title, assigned_on, due_on, due_month,"
        " outcome, recorded_by) VALUES (%(t)s, %(m)s, '联系群众', %(d)s, %(d)s, %(month)s,"
        " %(o)s, 'tests')",
        {
            "t": member.tenant_id,
            "m": member.id,
            "d": due.first_day,
            "month": due.ordinal,
            "o": outcome,
        },
    )
