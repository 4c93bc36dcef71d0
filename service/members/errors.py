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
MEMBER_NOT_ON_ROLLS = ErrorCode("MEMBER_NOT_ON_ROLLS", "该党员状态为“{status}”，不能再{doing}")
NOT_PROBATIONARY = ErrorCode("NOT_PROBATIONARY", "只有预备党员才能转正")
SAME_BRANCH = ErrorCode("SAME_BRANCH", "该党员已在这个党支部")
REASON_REQUIRED = ErrorCode("REASON_REQUIRED", "请填写查看个人敏感信息的事由（2–200 字）")
ACCOUNT_ALREADY_LINKED = ErrorCode("ACCOUNT_ALREADY_LINKED", "该账号已关联其他党员")
PII_UNREADABLE = ErrorCode("PII_UNREADABLE", "该党员的加密信息无法解密，请联系管理员", 500)
