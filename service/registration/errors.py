"""Error codes of the registration drive (党员登记)."""

from __future__ import annotations

from service.errors import ErrorCode

DRIVE = "党员登记"
APPLICATION = "登记申请"

DRIVE_UNIT_INVALID = ErrorCode(
    "DRIVE_UNIT_INVALID", "党员登记只能由县或乡镇（开发区、新区、县直部门）一级组织发起"
)
DRIVE_NO_TENANTS = ErrorCode("DRIVE_NO_TENANTS", "该县下没有在用的乡镇（开发区、新区、县直部门）")
TITLE_MISSING = ErrorCode("TITLE_MISSING", "请填写登记名称（不超过 100 字）")
DAYS_INVALID = ErrorCode("DAYS_INVALID", "登记期限应在 1 到 {maximum} 天之间")
DRIVE_NOT_OPEN = ErrorCode("DRIVE_NOT_OPEN", "本次党员登记尚未开始")
ALREADY_SUBMITTED = ErrorCode("ALREADY_SUBMITTED", "已提交本次党员登记申请，不能重复提交")
NOT_FULL_MEMBER = ErrorCode("NOT_FULL_MEMBER", "只有正式党员参加党员登记")
NOT_IN_DRIVE = ErrorCode("NOT_IN_DRIVE", "本次党员登记不包括您所在的单位")
SUMMARY_MISSING = ErrorCode("SUMMARY_MISSING", "请填写{part}方面的自我总结（不超过 {limit} 字）")
NOTE_REQUIRED = ErrorCode("NOTE_REQUIRED", "退回登记申请须写明理由")
ALREADY_REVIEWED = ErrorCode("ALREADY_REVIEWED", "该登记申请已审核")
