"""GraphQL of organizational life and tasks: `Meeting`, `MemberTask`, attendance,
the `meetings` list, the `Member` fields `attendance` and `tasks`, and the
mutations `recordMeeting`, `updateAttendance`, `assignTask`, `recordTaskOutcome`.

`Member` lives in service/members/graphql.py, which attaches the `member_*` fields
below; this module names the type lazily (the two import each other).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime
from enum import Enum
from typing import TYPE_CHECKING, Annotated, Any

import strawberry
from strawberry.types import Info

from service.dues.rules import Month
from service.meetings import rules, service
from service.meetings.service import Entry
from service.schema.context import Context
from service.schema.ids import from_global_id, to_global_id
from service.schema.relay import Connection, Node, connection, register_node
from service.tenants.graphql import OrgUnit, load_org_units

if TYPE_CHECKING:
    from service.members.graphql import Member


def _enum(name: str, domain: type[Enum], description: str) -> Any:
    return strawberry.enum(
        Enum(name, {m.name: m.value for m in domain}),  # type: ignore[misc]
        description=description,
    )


MeetingKind = _enum(
    "MeetingKind",
    rules.MeetingKind,
    "会议类型：" + "、".join(rules.MEETING_KIND_LABELS[k] for k in rules.MeetingKind),
)
Presence = _enum("Presence", rules.Presence, "出席情况：出席、请假（须有理由）、缺席")
TaskOutcome = _enum(
    "TaskOutcome", rules.TaskOutcome, "任务完成情况：已完成、未完成、有正当理由未完成"
)
_KINDS = {m.value: MeetingKind(m.value) for m in rules.MeetingKind}
_PRESENCES = {m.value: Presence(m.value) for m in rules.Presence}
_OUTCOMES = {m.value: TaskOutcome(m.value) for m in rules.TaskOutcome}

MemberRef = Annotated["Member", strawberry.lazy("service.members.graphql")]


async def _member(info: Info[Context, None], member_id: int) -> Member | None:
    from service.members.graphql import Member, load_members  # imports this module

    row = await info.context.loader(load_members).load(member_id)
    return Member.of(row) if row is not None else None


async def load_meetings(context: Context, ids: Sequence[int]) -> list[Any | None]:
    return await service.load_meetings(context.tx, context.principal, ids)


@strawberry.type(description="组织生活：党支部的一次会议或活动")
class Meeting(Node):
    id: strawberry.ID
    kind: MeetingKind  # type: ignore[valid-type]
    kind_label: str = strawberry.field(description="会议类型的中文名称")
    held_on: date
    topic: str
    recorded_by: str
    created_at: datetime
    row: strawberry.Private[Any]

    @classmethod
    def of(cls, row: Any) -> Meeting:
        kind = rules.MeetingKind(row.kind)
        return cls(
            id=strawberry.ID(to_global_id("Meeting", row.id)),
            kind=_KINDS[row.kind],
            kind_label=rules.MEETING_KIND_LABELS[kind],
            held_on=row.held_on,
            topic=row.topic,
            recorded_by=row.recorded_by,
            created_at=row.created_at,
            row=row,
        )

    @strawberry.field(description="召开会议的党支部；无权查看时为 null")
    async def branch(self, info: Info[Context, None]) -> OrgUnit | None:
        row = await info.context.loader(load_org_units).load(self.row.branch_id)
        return OrgUnit.of(row) if row is not None else None

    @strawberry.field(description="出席情况：该支部在册党员每人一条")
    async def attendance(
        self, info: Info[Context, None], first: int | None = None, after: str | None = None
    ) -> Connection[Attendance]:
        ctx = info.context
        page = await service.meeting_attendance(
            ctx.tx, ctx.principal, self.row, ctx.page(first, after)
        )
        return connection(page, Attendance.of)  # type: ignore[no-any-return]


@strawberry.type(description="一名党员在一次会议中的出席情况")
class Attendance:
    presence: Presence  # type: ignore[valid-type]
    reason: str | None = strawberry.field(description="请假理由")
    month: str = strawberry.field(description="计入的月份（2026-03）")
    row: strawberry.Private[Any]

    @classmethod
    def of(cls, row: Any) -> Attendance:
        return cls(
            presence=_PRESENCES[row.presence],
            reason=row.reason,
            month=str(Month.from_ordinal(row.month)),
            row=row,
        )

    @strawberry.field(description="党员；无权查看时为 null")
    async def member(self, info: Info[Context, None]) -> MemberRef | None:
        return await _member(info, self.row.member_id)

    @strawberry.field(description="会议；无权查看时为 null")
    async def meeting(self, info: Info[Context, None]) -> Meeting | None:
        row = await info.context.loader(load_meetings).load(self.row.meeting_id)
        return Meeting.of(row) if row is not None else None


@strawberry.type(description="组织分配给党员的任务")
class MemberTask(Node):
    id: strawberry.ID
    title: str
    assigned_on: date
    due_on: date = strawberry.field(description="完成期限")
    outcome: TaskOutcome | None = strawberry.field(  # type: ignore[valid-type]
        description="完成情况；尚未登记为 null"
    )
    note: str | None = strawberry.field(description="未完成的情况说明")
    recorded_by: str
    row: strawberry.Private[Any]

    @classmethod
    def of(cls, row: Any) -> MemberTask:
        return cls(
            id=strawberry.ID(to_global_id("MemberTask", row.id)),
            title=row.title,
            assigned_on=row.assigned_on,
            due_on=row.due_on,
            outcome=_OUTCOMES.get(row.outcome),
            note=row.outcome_note,
            recorded_by=row.recorded_by,
            row=row,
        )

    @strawberry.field(description="党员；无权查看时为 null")
    async def member(self, info: Info[Context, None]) -> MemberRef | None:
        return await _member(info, self.row.member_id)


async def meeting_by_id(context: Context, meeting_id: int) -> Meeting:
    return Meeting.of(await service.get_meeting(context.tx, context.principal, meeting_id))


async def task_by_id(context: Context, task_id: int) -> MemberTask:
    return MemberTask.of(await service.get_task(context.tx, context.principal, task_id))


register_node("Meeting", meeting_by_id)
register_node("MemberTask", task_by_id)


# --- fields of Member ---------------------------------------------------------------


async def member_attendance_resolver(
    root: Any, info: Info[Context, None], first: int | None = None, after: str | None = None
) -> Connection[Attendance]:
    ctx = info.context
    page = await service.member_attendance(ctx.tx, ctx.principal, root.row, ctx.page(first, after))
    return connection(page, Attendance.of)  # type: ignore[no-any-return]


async def member_tasks_resolver(
    root: Any, info: Info[Context, None], first: int | None = None, after: str | None = None
) -> Connection[MemberTask]:
    ctx = info.context
    page = await service.member_tasks(ctx.tx, ctx.principal, root.row, ctx.page(first, after))
    return connection(page, MemberTask.of)  # type: ignore[no-any-return]


# Attached to `Member` in service/members/graphql.py.
member_attendance = strawberry.field(
    resolver=member_attendance_resolver, description="参加组织生活的情况（按会议）"
)
member_tasks = strawberry.field(resolver=member_tasks_resolver, description="组织分配的任务")


# --- root fields --------------------------------------------------------------------


@strawberry.type
class MeetingsQuery:
    @strawberry.field(description="某组织（支部、总支、租户）以下各党支部的组织生活")
    async def meetings(
        self,
        info: Info[Context, None],
        org_unit_id: strawberry.ID,
        first: int | None = None,
        after: str | None = None,
        from_date: date | None = None,
        to_date: date | None = None,
    ) -> Connection[Meeting]:
        ctx = info.context
        page = await service.list_meetings(
            ctx.tx,
            ctx.principal,
            ctx.page(first, after),
            org_unit_id=from_global_id(org_unit_id, "OrgUnit")[1],
            from_date=from_date,
            to_date=to_date,
        )
        return connection(page, Meeting.of)  # type: ignore[no-any-return]


@strawberry.input(description="一名党员的出席情况")
class AttendanceInput:
    member_id: strawberry.ID
    presence: Presence  # type: ignore[valid-type]
    reason: str | None = strawberry.field(default=None, description="请假理由（请假时必填）")


@strawberry.input(description="登记一次组织生活；名单中未列出的在册党员记为缺席")
class RecordMeetingInput:
    branch_id: strawberry.ID
    kind: MeetingKind  # type: ignore[valid-type]
    held_on: date
    topic: str
    attendance: list[AttendanceInput]


@strawberry.input(description="更正一名党员在一次会议中的出席情况")
class UpdateAttendanceInput:
    meeting_id: strawberry.ID
    member_id: strawberry.ID
    presence: Presence  # type: ignore[valid-type]
    reason: str | None = None


@strawberry.input(description="给党员分配任务")
class AssignTaskInput:
    member_id: strawberry.ID
    title: str
    assigned_on: date
    due_on: date


@strawberry.input(description="登记任务完成情况（未完成、有正当理由未完成须说明）")
class RecordTaskOutcomeInput:
    task_id: strawberry.ID
    outcome: TaskOutcome  # type: ignore[valid-type]
    note: str | None = None


@strawberry.type
class MeetingPayload:
    meeting: Meeting


@strawberry.type
class AttendancePayload:
    attendance: Attendance


@strawberry.type
class MemberTaskPayload:
    task: MemberTask


def _member_id(global_id: strawberry.ID) -> int:
    return from_global_id(global_id, "Member")[1]


@strawberry.type
class MeetingsMutation:
    @strawberry.mutation(description="登记一次组织生活（三会一课、主题党日等）及出席情况")
    async def record_meeting(
        self, info: Info[Context, None], input: RecordMeetingInput
    ) -> MeetingPayload:
        ctx = info.context
        row = await service.record_meeting(
            ctx.tx,
            ctx.principal,
            branch_id=from_global_id(input.branch_id, "OrgUnit")[1],
            kind=rules.MeetingKind(input.kind.value),
            held_on=input.held_on,
            topic=input.topic,
            attendance=[
                Entry(
                    member_id=_member_id(a.member_id),
                    presence=rules.Presence(a.presence.value),
                    reason=a.reason,
                )
                for a in input.attendance
            ],
        )
        return MeetingPayload(meeting=Meeting.of(row))

    @strawberry.mutation(description="更正一名党员的出席情况")
    async def update_attendance(
        self, info: Info[Context, None], input: UpdateAttendanceInput
    ) -> AttendancePayload:
        ctx = info.context
        row = await service.update_attendance(
            ctx.tx,
            ctx.principal,
            meeting_id=from_global_id(input.meeting_id, "Meeting")[1],
            member_id=_member_id(input.member_id),
            presence=rules.Presence(input.presence.value),
            reason=input.reason,
        )
        return AttendancePayload(attendance=Attendance.of(row))

    @strawberry.mutation(description="给党员分配任务")
    async def assign_task(
        self, info: Info[Context, None], input: AssignTaskInput
    ) -> MemberTaskPayload:
        ctx = info.context
        row = await service.assign_task(
            ctx.tx,
            ctx.principal,
            member_id=_member_id(input.member_id),
            title=input.title,
            assigned_on=input.assigned_on,
            due_on=input.due_on,
        )
        return MemberTaskPayload(task=MemberTask.of(row))

    @strawberry.mutation(description="登记任务完成情况")
    async def record_task_outcome(
        self, info: Info[Context, None], input: RecordTaskOutcomeInput
    ) -> MemberTaskPayload:
        ctx = info.context
        row = await service.record_task_outcome(
            ctx.tx,
            ctx.principal,
            task_id=from_global_id(input.task_id, "MemberTask")[1],
            outcome=rules.TaskOutcome(input.outcome.value),
            note=input.note,
        )
        return MemberTaskPayload(task=MemberTask.of(row))
