"""Error codes of the member ledger. Messages never carry ID-card or phone numbers."""

from __future__ import annotations

from service.errors import ErrorCode

MEMBER = "党员"

NAME_MISSING = ErrorCode("NAME_MISSING", "姓名不能为空，且不超过 50 个字")
ID_NUMBER_INVALID = ErrorCode("ID_NUMBER_INVALID", "身份证号格式或校验位不正确")
PHONE_INVALID = ErrorCode("PHONE_INVALID", "联系电话格式不正确")
DATE_INVALID = ErrorCode("DATE_INVALID", "{what}不是有效日期")
JOINED_UNDER_18 = ErrorCode("JOINED_UNDER_18", "入党日期早于年满 18 周岁之日")
BIRTH_DATE_MISMATCH = ErrorCode("BIRTH_DATE_MISMATCH", "出生日期与身份证号不符")
CONFIRMED_BEFORE_JOINED = ErrorCode("CONFIRMED_BEFORE_JOINED", "转正日期不能早于入党日期")
MEMBER_ALREADY_EXISTS = ErrorCode("MEMBER_ALREADY_EXISTS", "本单位已有该身份证号的党员（{name}）")
NOT_A_BRANCH = ErrorCode("NOT_A_BRANCH", "党员只能编入党支部")
BRANCH_ARCHIVED = ErrorCode("BRANCH_ARCHIVED", "该党支部已归档，不能再编入党员")
STATUS_MOVE_NOT_ALLOWED = ErrorCode(
    "STATUS_MOVE_NOT_ALLOWED", "党员状态不能从“{current}”改为“{target}”"
)
STATUS_HELD_BY_CASE = ErrorCode(
    "STATUS_HELD_BY_CASE",
    "“限期改正中”以及有未结处置案件时的除名、退党，只能经处置案件的程序决定",
)
MEMBER_NOT_ON_ROLLS = ErrorCode("MEMBER_NOT_ON_ROLLS", "该党员状态为“{status}”，不能再{doing}")
NOT_PROBATIONARY = ErrorCode("NOT_PROBATIONARY", "只有预备党员才能转正")
SAME_BRANCH = ErrorCode("SAME_BRANCH", "该党员已在这个党支部")
REASON_REQUIRED = ErrorCode("REASON_REQUIRED", "请填写查看个人敏感信息的事由（2–200 字）")
ACCOUNT_ALREADY_LINKED = ErrorCode("ACCOUNT_ALREADY_LINKED", "该账号已关联其他党员")
PII_UNREADABLE = ErrorCode("PII_UNREADABLE", "该党员的加密信息无法解密，请联系管理员", 500)
EXCUSE_MONTH_INVALID = ErrorCode("EXCUSE_MONTH_INVALID", "{what}应为“年-月”，如 2026-03")
EXCUSE_MONTHS_REVERSED = ErrorCode("EXCUSE_MONTHS_REVERSED", "截止月份不能早于起始月份")
EXCUSE_REASON_INVALID = ErrorCode("EXCUSE_REASON_INVALID", "请填写正当理由（1–{limit} 字）")
# Mobile members (service/members/mobile.py)
NOT_MOBILE_MEMBER = ErrorCode("NOT_MOBILE_MEMBER", "该党员不是流动党员，无需记录联系情况")
CONTACTED_BY_MISSING = ErrorCode("CONTACTED_BY_MISSING", "请填写联系人（不超过 50 字）")
OUTCOME_MISSING = ErrorCode("OUTCOME_MISSING", "请填写联系情况（不超过 1000 字）")
CONTACT_IN_FUTURE = ErrorCode("CONTACT_IN_FUTURE", "联系日期不能晚于今天")
MONTHS_INVALID = ErrorCode("MONTHS_INVALID", "月数应在 1 到 {maximum} 之间")
