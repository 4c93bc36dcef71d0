"""Statements of organizational life and tasks. No authorization and no audit.

A meeting is read with its branch's path (`branch_path`, copied at recording), which
is what authorization looks at; lists of meetings start from `readable_meetings`,
the scoped statement (the request's readable paths over `branch_path`). A task is
read with its member's `branch_path`. Lookups by id name the request's tenants so a
primary key serves them.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import date
from typing import Any

from sqlalchemy import func, update
from sqlalchemy.dialects.postgresql import insert

from service.authz import ReadablePaths
from service.db import Transaction
from service.meetings.models import Meeting, MeetingAttendance, MemberTask
from service.members.rules import ON_ROLLS
from service.pagination import Page, PageRequest, keyset

MEETING_COLUMNS = (
    "tenant_id, id, branch_id, branch_path, kind, held_on, month, topic, recorded_by, created_at"
)


async def get_meeting(tx: Transaction, meeting_id: int) -> Any | None:
    return await tx.first(
        f"SELECT {MEETING_COLUMNS} FROM meetings WHERE id = %(id)s", {"id": meeting_id}
    )


async def get_meetings(tx: Transaction, ids: Sequence[int]) -> dict[int, Any]:
    """Meetings by id, one statement (DataLoaders)."""
    rows = await tx.rows(
        f"SELECT {MEETING_COLUMNS} FROM meetings WHERE id = ANY(%(ids)s::bigint[])",
        {"ids": sorted(set(ids))},
    )
    return {row.id: row for row in rows}


def readable_meetings(
    readable: ReadablePaths,
    *,
    tenant_id: int,
    within: str,
    from_date: date | None,
    to_date: date | None,
) -> tuple[str, dict[str, Any]]:
    """The scoped statement: meetings of branches at or below `within` that the
    request may read, held between the dates (both optional, inclusive)."""
    scope, params = readable.sql("branch_path")
    conditions = [scope, "tenant_id = %(tenant)s", "starts_with(branch_path, %(within)s)"]
    params = {**params, "tenant": tenant_id, "within": within}
    if from_date is not None:
        conditions.append("held_on >= %(from_date)s")
        params["from_date"] = from_date
    if to_date is not None:
        conditions.append("held_on <= %(to_date)s")
        params["to_date"] = to_date
    return f"SELECT {MEETING_COLUMNS} FROM meetings WHERE {' AND '.join(conditions)}", params


async def meetings_page(
    tx: Transaction,
    readable: ReadablePaths,
    page: PageRequest,
    *,
    tenant_id: int,
    within: str,
    from_date: date | None = None,
    to_date: date | None = None,
) -> Page[Any]:
    text, params = readable_meetings(
        readable, tenant_id=tenant_id, within=within, from_date=from_date, to_date=to_date
    )
    rows = await tx.rows(f"{text} AND {keyset()}", params | page.params)
    return Page.of(rows, page)


async def on_roll_members(tx: Transaction, branch: Any) -> list[Any]:
    """The branch's members on the rolls now (id, name)."""
    return await tx.rows(
        "SELECT id, name FROM members WHERE tenant_id = %(tenant)s AND branch_id = %(branch)s"
        " AND status = ANY(%(statuses)s) ORDER BY id",
        {
            "tenant": branch.tenant_id,
            "branch": branch.id,
            "statuses": sorted(s.value for s in ON_ROLLS),
        },
    )


async def insert_meeting(tx: Transaction, **values: Any) -> Any:
    return await tx.one(insert(Meeting).values(**values).returning(*Meeting.__table__.columns))


async def insert_attendance(tx: Transaction, rows: Sequence[dict[str, Any]]) -> None:
    if rows:
        await tx.execute(insert(MeetingAttendance).values(list(rows)))


_ATTENDANCE = "tenant_id, meeting_id, member_id, month, presence, reason"


async def get_attendance(tx: Transaction, meeting: Any, member_id: int) -> Any | None:
    return await tx.first(
        f"SELECT {_ATTENDANCE} FROM meeting_attendance WHERE tenant_id = %(tenant)s"
        " AND meeting_id = %(meeting)s AND member_id = %(member)s FOR UPDATE",
        {"tenant": meeting.tenant_id, "meeting": meeting.id, "member": member_id},
    )


async def update_attendance(
    tx: Transaction, entry: Any, *, presence: str, reason: str | None
) -> Any:
    return await tx.one(
        update(MeetingAttendance)
        .where(
            MeetingAttendance.tenant_id == entry.tenant_id,
            MeetingAttendance.meeting_id == entry.meeting_id,
            MeetingAttendance.member_id == entry.member_id,
        )
        .values(presence=presence, reason=reason)
        .returning(*MeetingAttendance.__table__.columns)
    )


async def meeting_attendance_page(tx: Transaction, meeting: Any, page: PageRequest) -> Page[Any]:
    """Who was at a meeting, in member order (the cursor is the member's id)."""
    rows = await tx.rows(
        f"SELECT member_id AS id, {_ATTENDANCE} FROM meeting_attendance"
        f" WHERE tenant_id = %(tenant)s AND meeting_id = %(meeting)s AND {keyset('member_id')}",
        {"tenant": meeting.tenant_id, "meeting": meeting.id, **page.params},
    )
    return Page.of(rows, page)


async def member_attendance_page(tx: Transaction, member: Any, page: PageRequest) -> Page[Any]:
    """A member's meetings, in meeting order (the cursor is the meeting's id)."""
    rows = await tx.rows(
        f"SELECT meeting_id AS id, {_ATTENDANCE} FROM meeting_attendance"
        f" WHERE tenant_id = %(tenant)s AND member_id = %(member)s AND {keyset('meeting_id')}",
        {"tenant": member.tenant_id, "member": member.id, **page.params},
    )
    return Page.of(rows, page)


# --- tasks --------------------------------------------------------------------------

_TASK = """
SELECT t.tenant_id, t.id, t.member_id, t.title, t.assigned_on, t.due_on, t.due_month,
  t.outcome, t.outcome_note, t.recorded_by, t.created_at, t.updated_at, m.branch_path
FROM member_tasks t JOIN members m ON m.tenant_id = t.tenant_id AND m.id = t.member_id
"""


async def get_task(tx: Transaction, tenant_ids: Iterable[int], task_id: int) -> Any | None:
    return await tx.first(
        f"{_TASK} WHERE t.tenant_id = ANY(%(tenants)s::bigint[]) AND t.id = %(id)s",
        {"tenants": sorted(tenant_ids), "id": task_id},
    )


async def tasks_page(tx: Transaction, member: Any, page: PageRequest) -> Page[Any]:
    rows = await tx.rows(
        f"{_TASK} WHERE t.tenant_id = %(tenant)s AND t.member_id = %(member)s AND {keyset('t.id')}",
        {"tenant": member.tenant_id, "member": member.id, **page.params},
    )
    return Page.of(rows, page)


async def insert_task(tx: Transaction, **values: Any) -> int:
    return int(await tx.scalar(insert(MemberTask).values(**values).returning(MemberTask.id)))


async def set_outcome(tx: Transaction, task: Any, *, outcome: str, note: str | None) -> None:
    await tx.execute(
        update(MemberTask)
        .where(MemberTask.tenant_id == task.tenant_id, MemberTask.id == task.id)
        .values(outcome=outcome, outcome_note=note, updated_at=func.now())
    )
