"""Error codes of disposal cases (处置不合格党员)."""

from __future__ import annotations

from service.errors import ErrorCode

CASE = "处置案件"

CASE_STAGE_INVALID = ErrorCode("CASE_STAGE_INVALID", "案件当前处于“{stage}”阶段，不能进行此操作")
CASE_ALREADY_OPEN = ErrorCode("CASE_ALREADY_OPEN", "该党员已有未结案的处置案件")
ALREADY_SANCTIONED = ErrorCode(
    "ALREADY_SANCTIONED",
    "该党员近 {months} 个月内已受党纪处分，同一问题不能再作组织处置（不得重复处理）",
)
NOT_SANCTIONED_STATEMENT_MISSING = ErrorCode(
    "NOT_SANCTIONED_STATEMENT_MISSING", "请说明本案不涉及已受党纪处分的问题（不超过 1000 字）"
)
CASE_FACTS_MISSING = ErrorCode("CASE_FACTS_MISSING", "请填写案件事实（不超过 {limit} 字）")
CASE_TEXT_MISSING = ErrorCode("CASE_TEXT_MISSING", "请填写{what}（不超过 {limit} 字）")
CASE_MEMBER_NOT_ON_ROLLS = ErrorCode(
    "CASE_MEMBER_NOT_ON_ROLLS", "该党员状态为“{status}”，不能对其立案处置"
)
CASE_ORIGIN_STATUS_MISMATCH = ErrorCode(
    "CASE_ORIGIN_STATUS_MISMATCH",
    "“停止党籍后失联满两年”只适用于停止党籍的党员；停止党籍的党员也只能以此立案",
)
CASE_DATE_INVALID = ErrorCode(
    "CASE_DATE_INVALID", "日期不能晚于今天，也不能早于立案日期；立案日期最多早于今天一年"
)
TALKERS_INVALID = ErrorCode("TALKERS_INVALID", "组织谈话应由两名正式党员进行，请填写两人姓名")
EDUCATORS_INVALID = ErrorCode(
    "EDUCATORS_INVALID", "教育转化联系人应为本支部两名正式党员，且不能是当事党员本人"
)
DISPOSAL_UNFIT = ErrorCode("DISPOSAL_UNFIT", "处置方式不符合规定：{why}")
CORRECTION_NOT_DUE = ErrorCode(
    "CORRECTION_NOT_DUE", "限期改正期限到 {deadline} 才届满，届满后再评定是否改正"
)
CORRECTION_MONTHS_INVALID = ErrorCode(
    "CORRECTION_MONTHS_INVALID", "限期改正期限应为 1 至 {maximum} 个月"
)
PRE_REVIEW_DONE = ErrorCode("PRE_REVIEW_DONE", "该级党组织已对本处置意见作出预审")
ASSEMBLY_COUNTS_INVALID = ErrorCode(
    "ASSEMBLY_COUNTS_INVALID",
    "表决票数有误：赞成、反对、弃权之和不能超过到会人数，到会人数不能超过应到人数",
)
ASSEMBLY_NO_QUORUM = ErrorCode(
    "ASSEMBLY_NO_QUORUM",
    "到会有表决权的党员未超过应到会人数的半数（{present}/{expected}），不能表决",
)
ASSEMBLY_EXPECTED_VOTERS_MISMATCH = ErrorCode(
    "ASSEMBLY_EXPECTED_VOTERS_MISMATCH",
    "应到会有表决权的党员为 {expected} 人（本支部正式党员，不含留党察看期间和经同意不计入的党员），"
    "与所填 {given} 人不符",
)
EXCLUSION_NOT_A_VOTER = ErrorCode(
    "EXCLUSION_NOT_A_VOTER", "不计入应到会人数的只能是本支部有表决权的正式党员"
)
EXCLUSION_REASON_INVALID = ErrorCode("EXCLUSION_REASON_INVALID", "不计入应到会人数须有规定的理由")

UNFIT_LABELS = {
    "withdrawal_needs_application": "退党须由本人申请",
    "application_only_withdrawal": "本人申请退党的案件只能按退党处理",
    "correction_needs_wish": "限期改正须本人愿意改正",
    "correction_not_serious": "问题严重或失联的党员不适用限期改正",
    "correction_already_failed": "本案限期改正期满未改正，不能再次限期改正",
    "persuasion_needs_refusal": "劝退适用于无转变愿望或拒不接受教育的党员；劝退不成的应予除名",
    "persuasion_unreachable": "失联党员无法劝退",
    "removal_grounds": "除名适用于自行脱党、劝而不退或有严重问题造成不良影响的党员",
}
