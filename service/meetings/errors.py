"""Error codes of organizational life and tasks. Messages name a member by name at
most, never by an id, ID-card or phone number."""

from __future__ import annotations

from service.errors import ErrorCode

MEETING = "会议"
ATTENDANCE = "出席记录"
TASK = "任务"

ATTENDEE_NOT_IN_BRANCH = ErrorCode(
    "ATTENDEE_NOT_IN_BRANCH", "{name}不是该党支部在册的党员，不能登记其出席情况"
)
ATTENDEE_DUPLICATED = ErrorCode("ATTENDEE_DUPLICATED", "{name}在出席名单中出现了两次")
EXCUSE_REASON_REQUIRED = ErrorCode("EXCUSE_REASON_REQUIRED", "请假须填写理由（不超过 500 个字）")
TOPIC_INVALID = ErrorCode("TOPIC_INVALID", "会议主题不能为空，且不超过 200 个字")
TASK_TITLE_INVALID = ErrorCode("TASK_TITLE_INVALID", "任务名称不能为空，且不超过 200 个字")
TASK_DUE_BEFORE_ASSIGNED = ErrorCode("TASK_DUE_BEFORE_ASSIGNED", "任务的完成期限不能早于分配日期")
TASK_NOTE_REQUIRED = ErrorCode(
    "TASK_NOTE_REQUIRED", "任务未完成或有正当理由未完成时须说明情况（不超过 500 个字）"
)
