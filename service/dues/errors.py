"""Error codes of party dues (党费). The codes of `rules.DuesProblem` are declared here
with their Chinese messages (`PROBLEMS`); messages never carry ID or phone numbers."""

from __future__ import annotations

from service.dues.rules import (
    BACK_PAYMENT_WINDOW_MONTHS,
    MAX_BACK_PAYMENT_MONTHS,
    DuesProblem,
)
from service.errors import ErrorCode

PAYMENT = "党费记录"

MONTHS_EMPTY = ErrorCode("MONTHS_EMPTY", "请至少填写一个交纳月份")
MONTHS_DUPLICATED = ErrorCode("MONTHS_DUPLICATED", "交纳月份有重复")
MONTH_IN_FUTURE = ErrorCode("MONTH_IN_FUTURE", "不能预交以后月份（按季交纳的只能预交本季度）的党费")
BACK_PAYMENT_TOO_OLD = ErrorCode(
    "BACK_PAYMENT_TOO_OLD", f"补缴党费最多补交前 {BACK_PAYMENT_WINDOW_MONTHS} 个月"
)
BACK_PAYMENT_TOO_MANY_MONTHS = ErrorCode(
    "BACK_PAYMENT_TOO_MANY_MONTHS", f"一次补缴最多 {MAX_BACK_PAYMENT_MONTHS} 个月"
)
AMOUNT_INVALID = ErrorCode("AMOUNT_INVALID", "交纳金额须为 1 分至 10 万元之间的整数（分）")
MONTH_INVALID = ErrorCode("MONTH_INVALID", "月份格式应为“2026-03”")
DUES_MONTH_ALREADY_PAID = ErrorCode("DUES_MONTH_ALREADY_PAID", "{months}的党费已交纳，不能重复交纳")
DUES_MONTH_BEFORE_JOINED = ErrorCode("DUES_MONTH_BEFORE_JOINED", "{month}早于该党员入党的月份")
NOTE_TOO_LONG = ErrorCode("NOTE_TOO_LONG", "备注不超过 500 个字")
SCHEDULE_FROM_MONTH_INVALID = ErrorCode(
    "SCHEDULE_FROM_MONTH_INVALID", "新的交纳方式须从现行约定起始月份之后开始"
)

PROBLEMS: dict[DuesProblem, ErrorCode] = {
    DuesProblem.MONTHS_EMPTY: MONTHS_EMPTY,
    DuesProblem.MONTHS_DUPLICATED: MONTHS_DUPLICATED,
    DuesProblem.MONTH_IN_FUTURE: MONTH_IN_FUTURE,
    DuesProblem.BACK_PAYMENT_TOO_OLD: BACK_PAYMENT_TOO_OLD,
    DuesProblem.BACK_PAYMENT_TOO_MANY_MONTHS: BACK_PAYMENT_TOO_MANY_MONTHS,
    DuesProblem.AMOUNT_INVALID: AMOUNT_INVALID,
}
