"""Use cases of organizational life (组织生活) and assigned tasks: record a meeting
and who came, correct one entry, assign a task and record its outcome; read them.

Writes take `life:record` at the branch (a meeting) or at the member's branch (a
task); reads take `member:read` there, as the rest of the ledger does. A meeting
lists every member of its branch on the rolls at recording: those not named by the
branch are recorded absent. Every write leaves one audit event in its transaction.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

from service.audit.service import record
from service.auth.principal import Principal
from service.authz import authorizer, readable_paths, require
from service.db import Transaction
from service.dues.service import on_rolls
from service.errors import not_found
from service.meetings import repository, rules
from service.meetings.actions import LifeAction
from service.meetings.errors import (
    ATTENDANCE,
    ATTENDEE_DUPLICATED,
    ATTENDEE_NOT_IN_BRANCH,
    EXCUSE_REASON_REQUIRED,
    MEETING,
    TASK,
    TASK_DUE_BEFORE_ASSIGNED,
    TASK_NOTE_REQUIRED,
    TASK_TITLE_INVALID,
    TOPIC_INVALID,
)
from service.meetings.rules import MeetingKind, Presence, TaskOutcome
from service.members import repository as members
from service.members.actions import MemberAction
from service.members.errors import BRANCH_ARCHIVED, MEMBER, NOT_A_BRANCH
from service.members.rules import ON_ROLLS, MemberStatus
from service.members.service import get_member, own_or_readable
from service.pagination import Page, PageRequest
from service.tenants import repository as units
from service.tenants.rules import OrgUnitKind

BRANCH = "党支部"


@dataclass(frozen=True)
class Entry:
    """One line of a meeting's attendance as the branch gives it."""

    member_id: int
    presence: Presence
    reason: str | None = None


def _reason(presence: Presence, reason: str | None) -> str | None:
    """The reason kept with an entry: required (and kept) for an excused absence."""
    if rules.needs_reason(presence):
        cleaned = rules.clean_text(reason, rules.MAX_REASON_LENGTH)
        if cleaned is None:
            raise EXCUSE_REASON_REQUIRED.error()
        return cleaned
    return rules.clean_text(reason, rules.MAX_REASON_LENGTH)


# --- meetings -----------------------------------------------------------------------


async def record_meeting(
    tx: Transaction,
    principal: Principal,
    *,
    branch_id: int,
    kind: MeetingKind,
    held_on: date,
    topic: str,
    attendance: Sequence[Entry],
) -> Any:
    """Record a meeting of a branch; members of the branch on the rolls not listed
    are recorded absent."""
    branch = await units.get_unit(tx, branch_id)
    if branch is None:
        raise not_found(BRANCH)
    require(principal, LifeAction.RECORD, branch.path, what=BRANCH, seen_with=MemberAction.READ)
    # Every listed member is looked up before anything else is judged: an id the
    # principal may not read answers as a missing one does.
    listed = await members.get_members(tx, [e.member_id for e in attendance])
    auth = authorizer()
    for entry in attendance:
        found = listed.get(entry.member_id)
        if found is None or not auth.allowed(principal, MemberAction.READ, found.branch_path):
            raise not_found(MEMBER)
    if branch.kind != OrgUnitKind.BRANCH:
        raise NOT_A_BRANCH.error()
    if branch.archived_at is not None:
        raise BRANCH_ARCHIVED.error()
    seen: set[int] = set()
    for entry in attendance:
        member = listed[entry.member_id]
        if entry.member_id in seen:
            raise ATTENDEE_DUPLICATED.error(name=member.name)
        seen.add(entry.member_id)
        if (
            member.tenant_id != branch.tenant_id
            or member.branch_id != branch.id
            or MemberStatus(member.status) not in ON_ROLLS
        ):
            raise ATTENDEE_NOT_IN_BRANCH.error(name=member.name)
    given = {e.member_id: (e.presence, _reason(e.presence, e.reason)) for e in attendance}
    cleaned_topic = rules.clean_text(topic, rules.MAX_TOPIC_LENGTH)
    if cleaned_topic is None:
        raise TOPIC_INVALID.error()
    month = rules.month_of(held_on)
    meeting = await repository.insert_meeting(
        tx,
        tenant_id=branch.tenant_id,
        branch_id=branch.id,
        branch_path=branch.path,
        kind=kind.value,
        held_on=held_on,
        month=month,
        topic=cleaned_topic,
        recorded_by=principal.actor,
    )
    roll = await repository.on_roll_members(tx, branch)
    rows = []
    counts = dict.fromkeys(Presence, 0)
    for member in roll:
        presence, reason = given.get(member.id, (Presence.ABSENT, None))
        counts[presence] += 1
        rows.append(
            {
                "tenant_id": branch.tenant_id,
                "meeting_id": meeting.id,
                "member_id": member.id,
                "month": month,
                "presence": presence.value,
                "reason": reason,
            }
        )
    await repository.insert_attendance(tx, rows)
    await record(
        tx,
        principal,
        tenant_id=branch.tenant_id,
        action="meeting.record",
        object_type="Meeting",
        object_id=meeting.id,
        details={
            "branch_id": branch.id,
            "kind": kind.value,
            "held_on": held_on.isoformat(),
            **{p.value: n for p, n in counts.items()},
        },
    )
    return meeting


async def _meeting(tx: Transaction, principal: Principal, meeting_id: int, action: Any) -> Any:
    meeting = await repository.get_meeting(tx, meeting_id)
    if meeting is None:
        raise not_found(MEETING)
    require(principal, action, meeting.branch_path, what=MEETING, seen_with=MemberAction.READ)
    return meeting


async def update_attendance(
    tx: Transaction,
    principal: Principal,
    *,
    meeting_id: int,
    member_id: int,
    presence: Presence,
    reason: str | None = None,
) -> Any:
    """Correct one member's entry of a meeting (the meeting's attendance list is fixed
    at recording: an entry is corrected, never added)."""
    meeting = await _meeting(tx, principal, meeting_id, LifeAction.RECORD)
    entry = await repository.get_attendance(tx, meeting, member_id)
    if entry is None:
        raise not_found(ATTENDANCE)
    kept = _reason(presence, reason)
    updated = await repository.update_attendance(tx, entry, presence=presence.value, reason=kept)
    await record(
        tx,
        principal,
        tenant_id=meeting.tenant_id,
        action="meeting.attendance",
        object_type="Meeting",
        object_id=meeting.id,
        details={"member_id": member_id, "from": entry.presence, "to": presence.value},
    )
    return updated


async def get_meeting(tx: Transaction, principal: Principal, meeting_id: int) -> Any:
    return await _meeting(tx, principal, meeting_id, MemberAction.READ)


async def load_meetings(
    tx: Transaction, principal: Principal, ids: Sequence[int]
) -> list[Any | None]:
    """Batch read for DataLoaders; meetings the principal may not read come back None."""
    by_id = await repository.get_meetings(tx, ids)
    auth = authorizer()
    return [
        m
        if (m := by_id.get(i)) is not None
        and auth.allowed(principal, MemberAction.READ, m.branch_path)
        else None
        for i in ids
    ]


async def list_meetings(
    tx: Transaction,
    principal: Principal,
    page: PageRequest,
    *,
    org_unit_id: int,
    from_date: date | None = None,
    to_date: date | None = None,
) -> Page[Any]:
    """Meetings of the branches at or below a unit whose members the principal reads."""
    unit = await units.get_unit(tx, org_unit_id)
    if unit is None:
        raise not_found("组织")
    require(principal, MemberAction.READ, unit.path, what="组织")
    readable = readable_paths(principal, MemberAction.READ)
    return await repository.meetings_page(
        tx,
        readable,
        page,
        tenant_id=unit.tenant_id,
        within=unit.path,
        from_date=from_date,
        to_date=to_date,
    )


async def meeting_attendance(
    tx: Transaction, principal: Principal, meeting: Any, page: PageRequest
) -> Page[Any]:
    """Who was at a meeting already read (`meeting` passed authorization)."""
    return await repository.meeting_attendance_page(tx, meeting, page)


async def member_attendance(
    tx: Transaction, principal: Principal, member: Any, page: PageRequest
) -> Page[Any]:
    if not own_or_readable(principal, member):
        return Page.empty()
    return await repository.member_attendance_page(tx, member, page)


# --- tasks --------------------------------------------------------------------------


async def assign_task(
    tx: Transaction,
    principal: Principal,
    *,
    member_id: int,
    title: str,
    assigned_on: date,
    due_on: date,
) -> Any:
    """Give a member a task (组织分配的任务), due on `due_on`."""
    member = await get_member(tx, principal, member_id, LifeAction.RECORD)
    on_rolls(member, "分配任务")
    cleaned = rules.clean_text(title, rules.MAX_TOPIC_LENGTH)
    if cleaned is None:
        raise TASK_TITLE_INVALID.error()
    if due_on < assigned_on:
        raise TASK_DUE_BEFORE_ASSIGNED.error()
    task_id = await repository.insert_task(
        tx,
        tenant_id=member.tenant_id,
        member_id=member.id,
        title=cleaned,
        assigned_on=assigned_on,
        due_on=due_on,
        due_month=rules.month_of(due_on),
        recorded_by=principal.actor,
    )
    await record(
        tx,
        principal,
        tenant_id=member.tenant_id,
        action="task.assign",
        object_type="MemberTask",
        object_id=task_id,
        details={"member_id": member.id, "title": cleaned, "due_on": due_on.isoformat()},
    )
    task = await repository.get_task(tx, [member.tenant_id], task_id)
    assert task is not None
    return task


async def _task(tx: Transaction, principal: Principal, task_id: int, action: Any) -> Any:
    task = await repository.get_task(tx, tx.scope.tenant_ids, task_id)
    if task is None:
        raise not_found(TASK)
    require(principal, action, task.branch_path, what=TASK, seen_with=MemberAction.READ)
    return task


async def record_task_outcome(
    tx: Transaction,
    principal: Principal,
    *,
    task_id: int,
    outcome: TaskOutcome,
    note: str | None = None,
) -> Any:
    """Record (or correct) whether a task was done; not done or excused says why."""
    task = await _task(tx, principal, task_id, LifeAction.RECORD)
    kept = rules.clean_text(note, rules.MAX_REASON_LENGTH)
    if rules.needs_note(outcome) and kept is None:
        raise TASK_NOTE_REQUIRED.error()
    await repository.set_outcome(tx, task, outcome=outcome.value, note=kept)
    await record(
        tx,
        principal,
        tenant_id=task.tenant_id,
        action="task.outcome",
        object_type="MemberTask",
        object_id=task.id,
        details={"from": task.outcome, "to": outcome.value},
    )
    updated = await repository.get_task(tx, [task.tenant_id], task.id)
    assert updated is not None
    return updated


async def get_task(tx: Transaction, principal: Principal, task_id: int) -> Any:
    return await _task(tx, principal, task_id, MemberAction.READ)


async def member_tasks(
    tx: Transaction, principal: Principal, member: Any, page: PageRequest
) -> Page[Any]:
    if not own_or_readable(principal, member):
        return Page.empty()
    return await repository.tasks_page(tx, member, page)
