"""Error codes of democratic evaluation (民主评议党员), each declared once with its
Chinese message. Sections: grading policy, rounds and stages, ballots, determinations."""

from __future__ import annotations

from service.errors import ErrorCode

ROUND = "评议"
POLICY = "评议办法"

# --- grading policy -----------------------------------------------------------------

POLICY_INVALID = ErrorCode("POLICY_INVALID", "评议办法不能保存：{problems}")
POLICY_UNIT_INVALID = ErrorCode(
    "POLICY_UNIT_INVALID", "评议办法只能由县或乡镇（开发区、新区、县直部门）一级制定"
)
POLICY_NOTE_TOO_LONG = ErrorCode("POLICY_NOTE_TOO_LONG", "说明不能超过 {limit} 字")
PREVIEW_TOO_MANY = ErrorCode("PREVIEW_TOO_MANY", "一次最多试算 {maximum} 条票数")
PREVIEW_ROSTER_INVALID = ErrorCode(
    "PREVIEW_ROSTER_INVALID", "应评议党员人数应在 0 到 {maximum} 之间"
)
TALLY_INVALID = ErrorCode("TALLY_INVALID", "每项票数应在 0 到 {maximum} 之间")

# --- rounds and stages --------------------------------------------------------------

ENTRY = "评议对象"
ROUND_UNIT_INVALID = ErrorCode(
    "ROUND_UNIT_INVALID", "民主评议只能在党支部开展，或由上级组织为其下各党支部统一发起"
)
ROUND_NO_BRANCHES = ErrorCode("ROUND_NO_BRANCHES", "该组织下没有在用的党支部")
ROUND_EXISTS = ErrorCode("ROUND_EXISTS", "{branch}{year}年{half}的民主评议已经发起，不能重复发起")
ROUND_PERIOD_INVALID = ErrorCode(
    "ROUND_PERIOD_INVALID", "评议年度应在 2000 到 2100 之间，半年度为 1（上半年）或 2（下半年）"
)
ROUND_TITLE_MISSING = ErrorCode("ROUND_TITLE_MISSING", "请填写评议名称（不超过 100 字）")
STAGE_CHANGED = ErrorCode("STAGE_CHANGED", "评议当前处于“{stage}”阶段，与提交时不同，请刷新后重试")
STAGE_MOVE_INVALID = ErrorCode("STAGE_MOVE_INVALID", "评议只能从“{source}”进入下一阶段“{target}”")
STAGE_MOVE_ELSEWHERE = ErrorCode(
    "STAGE_MOVE_ELSEWHERE", "“{stage}”阶段之后的推进请使用相应的办理功能"
)
SEND_BACK_REFUSED = ErrorCode(
    "SEND_BACK_REFUSED",
    "评议处于“{stage}”阶段，不能退回；已报上级党组织审批的，请在审批中不予批准或退回补充材料",
)
SEND_BACK_BALLOTS_CAST = ErrorCode(
    "SEND_BACK_BALLOTS_CAST", "已有人投票，民主测评不能退回到个人自评"
)
REASON_REQUIRED = ErrorCode("REASON_REQUIRED", "请写明理由（不超过 {limit} 字）")
ROSTER_EMPTY = ErrorCode("ROSTER_EMPTY", "该党支部没有在册的正式党员和预备党员，无法开展民主测评")
NOT_ON_ROSTER = ErrorCode("NOT_ON_ROSTER", "您不在本次民主评议的参评党员名单中")
SELF_EVALUATION_CLOSED = ErrorCode(
    "SELF_EVALUATION_CLOSED", "只能在个人自评或民主测评阶段填写个人自评"
)
SELF_EVALUATION_MISSING = ErrorCode(
    "SELF_EVALUATION_MISSING", "请填写个人自评（不超过 {limit} 字）"
)
EXCUSE_CLOSED = ErrorCode("EXCUSE_CLOSED", "民主测评结束后不能再登记不参加集中评议的党员")
EXCUSE_AFTER_VOTE = ErrorCode("EXCUSE_AFTER_VOTE", "该党员已经投票，不能再登记为不参加集中评议")
TURNOUT_TOO_LOW = ErrorCode(
    "TURNOUT_TOO_LOW",
    "参加投票的党员未达到规定比例（应投票 {voters} 人，已投票 {voted} 人），暂不能计票",
)

# --- ballots ------------------------------------------------------------------------

BALLOTING_CLOSED = ErrorCode("BALLOTING_CLOSED", "本次民主评议不在民主测评阶段，不能投票")
NO_VOTE = ErrorCode("NO_VOTE", "您在本次民主测评中没有表决权")
ALREADY_VOTED = ErrorCode("ALREADY_VOTED", "您已经投过票，每人只能投一次")
SELF_GRADE = ErrorCode("SELF_GRADE", "不能给自己评定等次")
BALLOT_CANDIDATE_INVALID = ErrorCode(
    "BALLOT_CANDIDATE_INVALID", "选票中有不属于本次评议对象的党员，或同一党员出现多次"
)
TOKEN_COUNT_INVALID = ErrorCode("TOKEN_COUNT_INVALID", "每次可生成 1 到 {maximum} 张群众测评票")
TOKEN_INVALID = ErrorCode("TOKEN_INVALID", "测评票无效或已使用", 400)

# --- determinations, assembly, notice ------------------------------------------------

OBJECTION = "异议"
GRADE_UNSETTLED = ErrorCode("GRADE_UNSETTLED", "以下党员的等次尚待支委会研究确定：{names}")
GRADE_NOT_DECIDABLE = ErrorCode(
    "GRADE_NOT_DECIDABLE", "支委会初定的等次应为优秀、合格、基本合格、不合格或不定等次"
)
CHANGE_REASON_REQUIRED = ErrorCode(
    "CHANGE_REASON_REQUIRED", "初定等次与计票结果不同，须写明理由（不超过 {limit} 字）"
)
FINDING_REQUIRED = ErrorCode(
    "FINDING_REQUIRED", "评定为不合格须有组织考核认定，请填写认定情况（不超过 {limit} 字）"
)
PROPOSAL_CLOSED = ErrorCode(
    "PROPOSAL_CLOSED", "评议处于“{stage}”阶段，支委会不能再修改该党员的初定等次"
)
PROPOSAL_DUPLICATE = ErrorCode("PROPOSAL_DUPLICATE", "同一党员在一次提交中出现多次")
EXCLUSION_NOT_VOTER = ErrorCode(
    "EXCLUSION_NOT_VOTER", "只能从有表决权的正式党员中减除应到会人数，{name}不在其列"
)
EXCLUSION_CONSENT_REQUIRED = ErrorCode(
    "EXCLUSION_CONSENT_REQUIRED",
    "减除应到会人数须经上级党组织同意并经党员大会通过，并写明同意的上级党组织",
)
PRESENT_NOT_VOTER = ErrorCode(
    "PRESENT_NOT_VOTER", "到会人员中有不属于应到会有表决权党员的人员，或同一人出现多次"
)
QUORUM_NOT_MET = ErrorCode(
    "QUORUM_NOT_MET",
    "到会有表决权的党员未超过应到会人数的半数（应到 {expected} 人，实到 {present} 人），不能表决",
)
ASSEMBLY_NOT_RECORDED = ErrorCode("ASSEMBLY_NOT_RECORDED", "请先登记党员大会的召开情况")
ASSEMBLY_VOTING_STARTED = ErrorCode(
    "ASSEMBLY_VOTING_STARTED", "党员大会已开始逐人表决，不能再修改到会和减除情况"
)
ASSEMBLY_STAGE_ONLY = ErrorCode(
    "ASSEMBLY_STAGE_ONLY", "只有在“党员大会审定”阶段才能登记党员大会和表决结果"
)
VOTE_NOT_OPEN = ErrorCode("VOTE_NOT_OPEN", "该党员已表决，或未获通过、须先由支委会重新研究")
VOTES_INVALID = ErrorCode(
    "VOTES_INVALID", "赞成、反对、弃权票数应为非负整数，合计不超过到会人数 {present}"
)
ASSEMBLY_UNDECIDED = ErrorCode(
    "ASSEMBLY_UNDECIDED", "以下党员的等次尚未经党员大会表决通过：{names}"
)
NOT_TOLD = ErrorCode("NOT_TOLD", "以下党员尚未转告本人：{names}")
TELL_UNDECIDED = ErrorCode("TELL_UNDECIDED", "只能转告已经党员大会表决通过的结果")
RESUBMIT_NOT_RETURNED = ErrorCode(
    "RESUBMIT_NOT_RETURNED", "上级党组织未退回补充材料，不需要重新报送"
)
MATERIAL_MISSING = ErrorCode("MATERIAL_MISSING", "请写明补充的材料（不超过 {limit} 字）")
NOTICE_NOT_OPEN = ErrorCode("NOTICE_NOT_OPEN", "评议结果不在公示期，不能提出或答复异议")
OBJECTION_TEXT_MISSING = ErrorCode("OBJECTION_TEXT_MISSING", "请填写异议内容（不超过 {limit} 字）")
ANSWER_MISSING = ErrorCode("ANSWER_MISSING", "请填写答复（不超过 {limit} 字）")
OBJECTION_ANSWERED = ErrorCode("OBJECTION_ANSWERED", "该异议已经答复")
NOTICE_NOT_OVER = ErrorCode("NOTICE_NOT_OVER", "公示期至 {ends_on} 结束，公示期满后才能确定结果")
OBJECTIONS_OPEN = ErrorCode("OBJECTIONS_OPEN", "还有 {count} 条异议未答复，答复后才能确定结果")
GRADE_AGAINST_SANCTION = ErrorCode(
    "GRADE_AGAINST_SANCTION", "{name}：{why}，支委会初定等次只能为{allowed}"
)
EXCELLENT_OVER_QUOTA = ErrorCode(
    "EXCELLENT_OVER_QUOTA",
    "评为优秀的党员不能超过 {quota} 人（参评 {roster} 人，现为 {count} 人）；"
    "票数并列的，由支委会在名额内研究确定",
)
