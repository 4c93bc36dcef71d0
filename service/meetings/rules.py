"""Pure rules of organizational life (组织生活) and assigned tasks: the kinds of
meeting (三会一课 and the rest) with their Chinese names, presence, task outcomes,
and which of them need a stated reason. No I/O.

三会一课 is the branch assembly (支部党员大会), the branch committee (支部委员会),
the party group meeting (党小组会) and the party lecture (党课); the branch also holds
themed party days (主题党日), the annual organizational life meeting (组织生活会) and
democratic evaluation (民主评议). A member of the branch on the rolls who is not
listed for a meeting was absent: the branch lists who came and who was excused.
"""

from __future__ import annotations

from datetime import date
from enum import StrEnum

from service.dues.rules import Month


class MeetingKind(StrEnum):
    BRANCH_ASSEMBLY = "branch_assembly"  # 支部党员大会
    BRANCH_COMMITTEE = "branch_committee"  # 支部委员会
    PARTY_GROUP = "party_group"  # 党小组会
    PARTY_LECTURE = "party_lecture"  # 党课
    THEMED_PARTY_DAY = "themed_party_day"  # 主题党日
    ORGANIZATIONAL_LIFE_MEETING = "organizational_life_meeting"  # 组织生活会
    DEMOCRATIC_EVALUATION = "democratic_evaluation"  # 民主评议


MEETING_KIND_LABELS = {
    MeetingKind.BRANCH_ASSEMBLY: "支部党员大会",
    MeetingKind.BRANCH_COMMITTEE: "支部委员会",
    MeetingKind.PARTY_GROUP: "党小组会",
    MeetingKind.PARTY_LECTURE: "党课",
    MeetingKind.THEMED_PARTY_DAY: "主题党日",
    MeetingKind.ORGANIZATIONAL_LIFE_MEETING: "组织生活会",
    MeetingKind.DEMOCRATIC_EVALUATION: "民主评议",
}
# 三会一课
THREE_MEETINGS_ONE_LECTURE = frozenset(
    {
        MeetingKind.BRANCH_ASSEMBLY,
        MeetingKind.BRANCH_COMMITTEE,
        MeetingKind.PARTY_GROUP,
        MeetingKind.PARTY_LECTURE,
    }
)


class Presence(StrEnum):
    ATTENDED = "attended"  # 出席
    EXCUSED = "excused"  # 请假（须有理由）
    ABSENT = "absent"  # 缺席


PRESENCE_LABELS = {Presence.ATTENDED: "出席", Presence.EXCUSED: "请假", Presence.ABSENT: "缺席"}


class TaskOutcome(StrEnum):
    DONE = "done"  # 已完成
    NOT_DONE = "not_done"  # 未完成（须说明）
    EXCUSED = "excused"  # 有正当理由未完成（须说明）


TASK_OUTCOME_LABELS = {
    TaskOutcome.DONE: "已完成",
    TaskOutcome.NOT_DONE: "未完成",
    TaskOutcome.EXCUSED: "有正当理由未完成",
}
TASK_PENDING = "pending"  # the stored outcome of a task not yet judged

MAX_TOPIC_LENGTH = 200
MAX_REASON_LENGTH = 500


def clean_text(text: str | None, limit: int) -> str | None:
    """`text` with outer and doubled whitespace removed; None if empty or over `limit`."""
    cleaned = " ".join((text or "").split())
    if not cleaned or len(cleaned) > limit:
        return None
    return cleaned


def needs_reason(presence: Presence) -> bool:
    """An excused absence (请假) states its reason; attending or being absent does not."""
    return presence is Presence.EXCUSED


def needs_note(outcome: TaskOutcome) -> bool:
    """A task not done, or excused, says why; a task done need not."""
    return outcome is not TaskOutcome.DONE


def month_of(day: date) -> int:
    """The month ordinal a meeting (its date) or a task (its due date) counts in, as
    the 三不 walk reads them (service.dues.rules.Month)."""
    return Month.of(day).ordinal
