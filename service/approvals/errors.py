"""Error codes of approval chains (审批)."""

from __future__ import annotations

from service.errors import ErrorCode

REQUEST = "审批事项"
STEP = "审批步骤"

APPROVAL_ORIGIN_INVALID = ErrorCode(
    "APPROVAL_ORIGIN_INVALID", "审批事项只能由党支部（党总支）提交，且其上须有党（工）委和县"
)
APPROVAL_STEP_DAYS_INVALID = ErrorCode(
    "APPROVAL_STEP_DAYS_INVALID", "每级审批期限应在 1 到 {maximum} 天之间"
)
APPROVAL_DIGEST_INVALID = ErrorCode("APPROVAL_DIGEST_INVALID", "审批内容摘要无效")
APPROVAL_SUBJECT_INVALID = ErrorCode("APPROVAL_SUBJECT_INVALID", "审批对象无效")
APPROVAL_ALREADY_SUBMITTED = ErrorCode(
    "APPROVAL_ALREADY_SUBMITTED", "该事项已在审批中，不能重复提交"
)
APPROVAL_NOT_RETURNED = ErrorCode("APPROVAL_NOT_RETURNED", "只有退回补充材料的审批事项才能重新提交")
APPROVAL_ALREADY_DECIDED = ErrorCode("APPROVAL_ALREADY_DECIDED", "该审批步骤已处理，不能重复审批")
APPROVAL_OWN_MATTER = ErrorCode("APPROVAL_OWN_MATTER", "不能审批本人提交的事项")
APPROVAL_REASON_REQUIRED = ErrorCode(
    "APPROVAL_REASON_REQUIRED", "不同意或退回时须写明理由（不超过 {limit} 字）"
)
APPROVAL_CONTENT_CHANGED = ErrorCode(
    "APPROVAL_CONTENT_CHANGED", "审批内容已变更，请按最新内容重新审批"
)
