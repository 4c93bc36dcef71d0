"""Error codes of discipline sanctions (党纪处分)."""

from __future__ import annotations

from service.errors import ErrorCode

SANCTION = "处分记录"

DECIDED_BY_MISSING = ErrorCode("DECIDED_BY_MISSING", "请填写作出处分决定的党组织（不超过 100 字）")
MATTER_MISSING = ErrorCode("MATTER_MISSING", "请填写处分事由（不超过 1000 字）")
DECIDED_IN_FUTURE = ErrorCode("DECIDED_IN_FUTURE", "处分决定日期不能晚于今天")
MEMBER_HAS_LEFT = ErrorCode("MEMBER_HAS_LEFT", "该党员状态为“{status}”，不能再给予党纪处分")
