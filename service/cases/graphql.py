"""GraphQL of disposal cases: the `DisposalCase` node, its records, educators and
sessions; `disposalCase`, `disposalCases`, `myCases`, `educatorCases`,
`caseCandidates`; one mutation per procedure step (each returns the case)."""

from __future__ import annotations

from datetime import date, datetime
from enum import Enum
from typing import TYPE_CHECKING, Annotated, Any

import strawberry
from strawberry.scalars import JSON
from strawberry.types import Info

from service.attachments.graphql import Attachment, load_owner_attachments
from service.cases import rules, service
from service.schema.context import Context
from service.schema.ids import from_global_id, to_global_id
from service.schema.relay import Connection, Node, connection, register_node

if TYPE_CHECKING:
    from service.members.graphql import Member

LazyMember = Annotated["Member", strawberry.lazy("service.members.graphql")]


def _enum(source: type[Enum], name: str, description: str) -> Any:
    return strawberry.enum(
        Enum(name, {m.name: m.value for m in source}),  # type: ignore[misc]
        description=description,
    )


CaseOriginEnum = _enum(rules.CaseOrigin, "CaseOrigin", "案件来源")
DisposalEnum = _enum(rules.Disposal, "Disposal", "处置方式：限期改正、劝退、除名、退党")
CaseStageEnum = _enum(rules.CaseStage, "CaseStage", "案件阶段")
CaseOutcomeEnum = _enum(rules.CaseOutcome, "CaseOutcome", "结案结果")
RecordKindEnum = _enum(rules.RecordKind, "CaseRecordKind", "案件记录类型")


@strawberry.enum(description="本人提交的材料类型")
class CaseStatementKind(Enum):
    STATEMENT = "statement"  # 陈述
    APPEAL = "appeal"  # 申诉


@strawberry.enum(description="组织谈话中党员的反应")
class TalkResponse(Enum):
    HEARD = "heard"  # 听取了本人意见
    REFUSED = "refused"  # 拒绝谈话
    UNREACHABLE = "unreachable"  # 无法联系


@strawberry.enum(description="可单独记录的案件事项")
class CaseNoteKind(Enum):
    DECISION_TOLD = "decision_told"  # 告知本人
    FOLLOW_UP = "follow_up"  # 跟踪帮教


def _global(kind: str, value: int) -> strawberry.ID:
    return strawberry.ID(to_global_id(kind, value))


def _ids(values: list[strawberry.ID] | None, kind: str) -> list[int]:
    return [from_global_id(v, kind)[1] for v in values or ()]


@strawberry.type(description="案件的一条程序记录（时间、人员、内容）")
class CaseRecord:
    id: strawberry.ID
    kind: RecordKindEnum  # type: ignore[valid-type]
    kind_label: str
    occurred_on: date
    people: list[str]
    body: str
    data: JSON
    recorded_by_name: str
    recorded_at: datetime
    record_id: strawberry.Private[int]

    @strawberry.field(description="本记录所附材料（调查材料、签字会议记录照片等）")
    async def attachments(self, info: Info[Context, None]) -> list[Attachment]:
        # The record was read through its case, which the reader may see.
        loader = info.context.loader(load_owner_attachments)
        return await loader.load(("case_record", self.record_id))  # type: ignore[no-any-return]

    @classmethod
    def of(cls, row: Any) -> CaseRecord:
        return cls(
            record_id=row.id,
            id=_global("CaseRecord", row.id),
            kind=RecordKindEnum(row.kind),
            kind_label=rules.RECORD_KIND_LABELS[rules.RecordKind(row.kind)],
            occurred_on=row.occurred_on,
            people=[str(p) for p in row.people],
            body=row.body,
            data=row.data,
            recorded_by_name=row.recorded_by_name,
            recorded_at=row.recorded_at,
        )


@strawberry.type(description="教育转化联系人")
class CaseEducator:
    member_id: strawberry.ID
    name: str
    assigned_on: date


@strawberry.type(description="帮教记录")
class EducationSession:
    id: strawberry.ID
    educator_member_id: strawberry.ID
    held_on: date
    summary: str
    recorded_by: str


@strawberry.type(description="未开展帮教的一周")
class MissedWeek:
    starts_on: date
    ends_on: date


@strawberry.type(description="处置不合格党员案件")
class DisposalCase(Node):
    id: strawberry.ID
    branch_id: strawberry.ID
    member_id: strawberry.ID
    member_name: str
    origin: CaseOriginEnum  # type: ignore[valid-type]
    origin_label: str
    stage: CaseStageEnum  # type: ignore[valid-type]
    stage_label: str
    disposal: DisposalEnum | None  # type: ignore[valid-type]
    disposal_label: str | None
    # `result`, not `outcome`: MemberTask.outcome is another type, and node(id:) selects
    # both in one document (each such clash costs an alias)
    result: CaseOutcomeEnum | None = strawberry.field(description="结案结果")  # type: ignore[valid-type]
    result_label: str | None
    facts: str
    not_sanctioned_statement: str
    wants_to_stay: bool | None
    correction_failed: bool
    persuasion_refused: bool
    opened_on: date
    closed_on: date | None
    education_started_on: date | None
    education_ended_on: date | None
    correction_months: int | None
    correction_deadline: date | None
    committee_pre_reviewed: bool
    county_pre_reviewed: bool
    filing_request_id: strawberry.ID | None
    approval_request_id: strawberry.ID | None
    row: strawberry.Private[Any]

    @classmethod
    def of(cls, row: Any) -> DisposalCase:
        disposal = rules.Disposal(row.disposal) if row.disposal else None
        outcome = rules.CaseOutcome(row.outcome) if row.outcome else None
        return cls(
            id=_global("DisposalCase", row.id),
            branch_id=_global("OrgUnit", row.branch_id),
            member_id=_global("Member", row.member_id),
            member_name=row.member_name,
            origin=CaseOriginEnum(row.origin),
            origin_label=rules.ORIGIN_LABELS[rules.CaseOrigin(row.origin)],
            stage=CaseStageEnum(row.stage),
            stage_label=rules.STAGE_LABELS[rules.CaseStage(row.stage)],
            disposal=DisposalEnum(row.disposal) if disposal else None,
            disposal_label=rules.DISPOSAL_LABELS[disposal] if disposal else None,
            result=CaseOutcomeEnum(row.outcome) if outcome else None,
            result_label=rules.OUTCOME_LABELS[outcome] if outcome else None,
            facts=row.facts,
            not_sanctioned_statement=row.not_sanctioned_statement,
            wants_to_stay=row.wants_to_stay,
            correction_failed=row.correction_failed,
            persuasion_refused=row.persuasion_refused,
            opened_on=row.opened_on,
            closed_on=row.closed_on,
            education_started_on=row.education_started_on,
            education_ended_on=row.education_ended_on,
            correction_months=row.correction_months,
            correction_deadline=row.correction_deadline,
            committee_pre_reviewed=row.committee_pre_reviewed,
            county_pre_reviewed=row.county_pre_reviewed,
            filing_request_id=(
                _global("ApprovalRequest", row.filing_request_id) if row.filing_request_id else None
            ),
            approval_request_id=(
                _global("ApprovalRequest", row.approval_request_id)
                if row.approval_request_id
                else None
            ),
            row=row,
        )

    @strawberry.field(description="程序记录，按时间先后")
    async def records(
        self, info: Info[Context, None], first: int | None = None, after: str | None = None
    ) -> Connection[CaseRecord]:
        ctx = info.context
        page = await service.case_records(ctx.tx, ctx.principal, self.row, ctx.page(first, after))
        return connection(page, CaseRecord.of)  # type: ignore[no-any-return]

    @strawberry.field(description="案件所附材料（各程序记录的材料见 records 的 attachments）")
    async def attachments(self, info: Info[Context, None]) -> list[Attachment]:
        loader = info.context.loader(load_owner_attachments)
        return await loader.load(("case", self.row.id))  # type: ignore[no-any-return]

    @strawberry.field(
        description="支部党员大会应到会有表决权的党员数（本支部正式党员，不含留党察看期内的；"
        "经同意不计入者另减）：recordCaseAssembly 的 expectedVoters 须与之相符"
    )
    async def assembly_voters(self, info: Info[Context, None]) -> int:
        return len(await service.assembly_voters(info.context.tx, self.row))

    @strawberry.field(description="教育转化联系人")
    async def educators(self, info: Info[Context, None]) -> list[CaseEducator]:
        ctx = info.context
        rows = await service.case_educators(ctx.tx, ctx.principal, self.row)
        return [
            CaseEducator(
                member_id=_global("Member", r.member_id), name=r.name, assigned_on=r.assigned_on
            )
            for r in rows
        ]

    @strawberry.field(description="帮教记录")
    async def education_sessions(self, info: Info[Context, None]) -> list[EducationSession]:
        ctx = info.context
        rows = await service.education_sessions(ctx.tx, ctx.principal, self.row)
        return [
            EducationSession(
                id=_global("EducationSession", r.id),
                educator_member_id=_global("Member", r.educator_member_id),
                held_on=r.held_on,
                summary=r.summary,
                recorded_by=r.recorded_by,
            )
            for r in rows
        ]

    @strawberry.field(description="教育转化期间未开展帮教的周（按北京时间）")
    async def missed_weeks(self, info: Info[Context, None]) -> list[MissedWeek]:
        ctx = info.context
        weeks = await service.missed_weeks(ctx.tx, ctx.principal, self.row)
        return [MissedWeek(starts_on=a, ends_on=b) for a, b in weeks]

    @strawberry.field(description="当事党员；无权查看其党员信息时为 null")
    async def member(self, info: Info[Context, None]) -> LazyMember | None:
        from service.members.graphql import Member, load_members

        row = await info.context.loader(load_members).load(self.row.member_id)
        return Member.of(row) if row is not None else None


async def case_by_id(context: Context, case_id: int) -> DisposalCase:
    return DisposalCase.of(await service.get_case(context.tx, context.principal, case_id))


register_node("DisposalCase", case_by_id)


@strawberry.type(description="可立案处置的党员")
class CaseCandidate:
    member_id: strawberry.ID
    name: str
    origin: CaseOriginEnum  # type: ignore[valid-type]
    year: int | None
    open_case_id: strawberry.ID | None = strawberry.field(description="已立案未结的案件")


@strawberry.type
class CasesQuery:
    @strawberry.field(description="处置案件")
    async def disposal_case(self, info: Info[Context, None], id: strawberry.ID) -> DisposalCase:
        ctx = info.context
        case_id = from_global_id(id, "DisposalCase")[1]
        return DisposalCase.of(await service.get_case(ctx.tx, ctx.principal, case_id))

    @strawberry.field(description="本人可查看的处置案件（支部、党(工)委、县委组织部）")
    async def disposal_cases(
        self,
        info: Info[Context, None],
        branch_id: strawberry.ID | None = None,
        stage: CaseStageEnum | None = None,  # type: ignore[valid-type]
        first: int | None = None,
        after: str | None = None,
    ) -> Connection[DisposalCase]:
        ctx = info.context
        page = await service.cases(
            ctx.tx,
            ctx.principal,
            ctx.page(first, after),
            branch_id=from_global_id(branch_id, "OrgUnit")[1] if branch_id else None,
            stage=rules.CaseStage(stage.value) if stage is not None else None,
        )
        return connection(page, DisposalCase.of)  # type: ignore[no-any-return]

    @strawberry.field(description="关于本人的处置案件")
    async def my_cases(
        self, info: Info[Context, None], first: int | None = None, after: str | None = None
    ) -> Connection[DisposalCase]:
        ctx = info.context
        page = await service.my_cases(ctx.tx, ctx.principal, ctx.page(first, after))
        return connection(page, DisposalCase.of)  # type: ignore[no-any-return]

    @strawberry.field(description="本人担任教育转化联系人的案件")
    async def educator_cases(
        self, info: Info[Context, None], first: int | None = None, after: str | None = None
    ) -> Connection[DisposalCase]:
        ctx = info.context
        page = await service.educator_cases(ctx.tx, ctx.principal, ctx.page(first, after))
        return connection(page, DisposalCase.of)  # type: ignore[no-any-return]

    @strawberry.field(description="可立案处置的党员：评议不合格、本人不愿登记等")
    async def case_candidates(
        self, info: Info[Context, None], branch_id: strawberry.ID
    ) -> list[CaseCandidate]:
        ctx = info.context
        rows = await service.case_candidates(
            ctx.tx, ctx.principal, from_global_id(branch_id, "OrgUnit")[1]
        )
        return [
            CaseCandidate(
                member_id=_global("Member", r.member_id),
                name=r.name,
                origin=CaseOriginEnum(r.origin),
                year=r.year,
                open_case_id=_global("DisposalCase", r.open_case_id) if r.open_case_id else None,
            )
            for r in rows
        ]


# --- mutations -------------------------------------------------------------------------


@strawberry.input(description="立案（同时报党(工)委事前备案）")
class OpenDisposalCaseInput:
    member_id: strawberry.ID
    origin: CaseOriginEnum  # type: ignore[valid-type]
    facts: str = strawberry.field(description="案件事实")
    not_sanctioned_statement: str = strawberry.field(
        description="本案不涉及已受党纪处分问题的说明（不得重复处理）"
    )
    opened_on: date | None = None
    evaluation_round_id: strawberry.ID | None = None
    attachment_ids: list[strawberry.ID] | None = None


@strawberry.input(description="调查核实")
class CaseInvestigationInput:
    case_id: strawberry.ID
    occurred_on: date | None = None
    investigators: list[str]
    findings: str
    attachment_ids: list[strawberry.ID] | None = None


@strawberry.input(description="组织谈话")
class CaseTalkInput:
    case_id: strawberry.ID
    occurred_on: date | None = None
    talkers: list[str] = strawberry.field(description="谈话的两名正式党员")
    summary: str
    response: TalkResponse
    member_statement: str | None = None
    wants_to_stay: bool | None = None
    attachment_ids: list[strawberry.ID] | None = None


@strawberry.input(description="确定两名教育转化联系人")
class AssignCaseEducatorsInput:
    case_id: strawberry.ID
    educator_member_ids: list[strawberry.ID]
    assigned_on: date | None = None


@strawberry.input(description="帮教记录（教育转化联系人填写）")
class EducationSessionInput:
    case_id: strawberry.ID
    held_on: date | None = None
    summary: str


@strawberry.input(description="教育转化后再次评议")
class CaseReEvaluationInput:
    case_id: strawberry.ID
    occurred_on: date | None = None
    participants: list[str]
    summary: str
    mass_representatives: int = 0


@strawberry.input(description="支委会提出处置意见")
class ProposeCaseDisposalInput:
    case_id: strawberry.ID
    disposal: DisposalEnum  # type: ignore[valid-type]
    reasons: str
    wants_to_stay: bool | None = None
    correction_months: int | None = strawberry.field(
        default=None, description="限期改正期限（月），默认 6，最长 12"
    )
    occurred_on: date | None = None


@strawberry.input(
    description="上级预审：党(工)委书记为党(工)委预审；县委组织部为书面预审（劝退、除名须有）"
)
class CasePreReviewInput:
    case_id: strawberry.ID
    agreed: bool
    opinion: str
    occurred_on: date | None = None
    attachment_ids: list[strawberry.ID] | None = None


@strawberry.input(description="不计入应到会人数的党员及规定理由")
class CaseAssemblyExclusionInput:
    member_id: strawberry.ID
    reason: str
    note: str | None = None


@strawberry.input(description="支部党员大会对本案无记名投票表决")
class CaseAssemblyInput:
    case_id: strawberry.ID
    held_on: date | None = None
    expected_voters: int
    present: int
    votes_for: int
    votes_against: int
    votes_abstain: int
    defence: str | None = strawberry.field(default=None, description="本人申辩意见")
    speakers: list[str] | None = None
    exclusions: list[CaseAssemblyExclusionInput] | None = None
    minutes: str | None = None
    attachment_ids: list[strawberry.ID] | None = None


@strawberry.input(description="限期改正期满评定")
class CorrectionReviewInput:
    case_id: strawberry.ID
    corrected: bool
    finding: str
    occurred_on: date | None = None


@strawberry.input(description="劝退答复")
class PersuasionAnswerInput:
    case_id: strawberry.ID
    accepted: bool
    note: str
    occurred_on: date | None = None


@strawberry.input(description="告知本人、跟踪帮教等记录")
class CaseNoteInput:
    case_id: strawberry.ID
    kind: CaseNoteKind
    text: str
    occurred_on: date | None = None
    people: list[str] | None = None


@strawberry.type
class DisposalCasePayload:
    case: DisposalCase


@strawberry.type
class CaseRecordPayload:
    record: CaseRecord


@strawberry.type
class EducationSessionPayload:
    session: EducationSession


def _case(id: strawberry.ID) -> int:
    return from_global_id(id, "DisposalCase")[1]


def _payload(row: Any) -> DisposalCasePayload:
    return DisposalCasePayload(case=DisposalCase.of(row))


@strawberry.type
class CasesMutation:
    @strawberry.mutation(description="立案处置（报党(工)委事前备案）")
    async def open_disposal_case(
        self, info: Info[Context, None], input: OpenDisposalCaseInput
    ) -> DisposalCasePayload:
        ctx = info.context
        row = await service.open_case(
            ctx.tx,
            ctx.principal,
            member_id=from_global_id(input.member_id, "Member")[1],
            origin=rules.CaseOrigin(input.origin.value),
            facts=input.facts,
            not_sanctioned_statement=input.not_sanctioned_statement,
            opened_on=input.opened_on,
            evaluation_round_id=(
                from_global_id(input.evaluation_round_id, "EvaluationRound")[1]
                if input.evaluation_round_id
                else None
            ),
            attachment_ids=_ids(input.attachment_ids, "Attachment"),
        )
        return _payload(row)

    @strawberry.mutation(description="记录调查核实")
    async def record_case_investigation(
        self, info: Info[Context, None], input: CaseInvestigationInput
    ) -> DisposalCasePayload:
        ctx = info.context
        row = await service.record_investigation(
            ctx.tx,
            ctx.principal,
            case_id=_case(input.case_id),
            occurred_on=input.occurred_on,
            investigators=input.investigators,
            findings=input.findings,
            attachment_ids=_ids(input.attachment_ids, "Attachment"),
        )
        return _payload(row)

    @strawberry.mutation(description="记录组织谈话")
    async def record_case_talk(
        self, info: Info[Context, None], input: CaseTalkInput
    ) -> DisposalCasePayload:
        ctx = info.context
        row = await service.record_talk(
            ctx.tx,
            ctx.principal,
            case_id=_case(input.case_id),
            occurred_on=input.occurred_on,
            talkers=input.talkers,
            summary=input.summary,
            response=input.response.value,
            member_statement=input.member_statement,
            wants_to_stay=input.wants_to_stay,
            attachment_ids=_ids(input.attachment_ids, "Attachment"),
        )
        return _payload(row)

    @strawberry.mutation(description="确定教育转化联系人")
    async def assign_case_educators(
        self, info: Info[Context, None], input: AssignCaseEducatorsInput
    ) -> DisposalCasePayload:
        ctx = info.context
        row = await service.assign_educators(
            ctx.tx,
            ctx.principal,
            case_id=_case(input.case_id),
            educator_member_ids=_ids(input.educator_member_ids, "Member"),
            assigned_on=input.assigned_on,
        )
        return _payload(row)

    @strawberry.mutation(description="记录一次帮教（教育转化联系人）")
    async def log_education_session(
        self, info: Info[Context, None], input: EducationSessionInput
    ) -> EducationSessionPayload:
        ctx = info.context
        r = await service.log_education_session(
            ctx.tx,
            ctx.principal,
            case_id=_case(input.case_id),
            held_on=input.held_on,
            summary=input.summary,
        )
        return EducationSessionPayload(
            session=EducationSession(
                id=_global("EducationSession", r.id),
                educator_member_id=_global("Member", r.educator_member_id),
                held_on=r.held_on,
                summary=r.summary,
                recorded_by=r.recorded_by,
            )
        )

    @strawberry.mutation(description="记录再次评议")
    async def record_case_re_evaluation(
        self, info: Info[Context, None], input: CaseReEvaluationInput
    ) -> DisposalCasePayload:
        ctx = info.context
        row = await service.record_re_evaluation(
            ctx.tx,
            ctx.principal,
            case_id=_case(input.case_id),
            occurred_on=input.occurred_on,
            participants=input.participants,
            summary=input.summary,
            mass_representatives=input.mass_representatives,
        )
        return _payload(row)

    @strawberry.mutation(description="提出处置意见")
    async def propose_case_disposal(
        self, info: Info[Context, None], input: ProposeCaseDisposalInput
    ) -> DisposalCasePayload:
        ctx = info.context
        row = await service.propose_disposal(
            ctx.tx,
            ctx.principal,
            case_id=_case(input.case_id),
            disposal=rules.Disposal(input.disposal.value),
            reasons=input.reasons,
            wants_to_stay=input.wants_to_stay,
            correction_months=input.correction_months,
            occurred_on=input.occurred_on,
        )
        return _payload(row)

    @strawberry.mutation(description="记录上级预审意见")
    async def record_case_pre_review(
        self, info: Info[Context, None], input: CasePreReviewInput
    ) -> DisposalCasePayload:
        ctx = info.context
        row = await service.record_pre_review(
            ctx.tx,
            ctx.principal,
            case_id=_case(input.case_id),
            agreed=input.agreed,
            opinion=input.opinion,
            occurred_on=input.occurred_on,
            attachment_ids=_ids(input.attachment_ids, "Attachment"),
        )
        return _payload(row)

    @strawberry.mutation(description="记录支部党员大会表决")
    async def record_case_assembly(
        self, info: Info[Context, None], input: CaseAssemblyInput
    ) -> DisposalCasePayload:
        ctx = info.context
        row = await service.record_case_assembly(
            ctx.tx,
            ctx.principal,
            case_id=_case(input.case_id),
            held_on=input.held_on,
            expected_voters=input.expected_voters,
            present=input.present,
            votes_for=input.votes_for,
            votes_against=input.votes_against,
            votes_abstain=input.votes_abstain,
            defence=input.defence,
            speakers=input.speakers or (),
            exclusions=[
                service.Exclusion(from_global_id(e.member_id, "Member")[1], e.reason, e.note)
                for e in input.exclusions or ()
            ],
            minutes=input.minutes,
            attachment_ids=_ids(input.attachment_ids, "Attachment"),
        )
        return _payload(row)

    @strawberry.mutation(description="报上级审批（退党为备案）")
    async def submit_case_disposal(
        self, info: Info[Context, None], case_id: strawberry.ID
    ) -> DisposalCasePayload:
        ctx = info.context
        row = await service.submit_disposal(ctx.tx, ctx.principal, case_id=_case(case_id))
        return _payload(row)

    @strawberry.mutation(description="上级退回补充材料后重新报送（事前备案或处置审批）")
    async def resubmit_disposal_case(
        self, info: Info[Context, None], case_id: strawberry.ID, material: str
    ) -> DisposalCasePayload:
        ctx = info.context
        row = await service.resubmit_to_superior(
            ctx.tx, ctx.principal, case_id=_case(case_id), material=material
        )
        return _payload(row)

    @strawberry.mutation(description="限期改正期满评定")
    async def record_correction_review(
        self, info: Info[Context, None], input: CorrectionReviewInput
    ) -> DisposalCasePayload:
        ctx = info.context
        row = await service.record_correction_review(
            ctx.tx,
            ctx.principal,
            case_id=_case(input.case_id),
            corrected=input.corrected,
            finding=input.finding,
            occurred_on=input.occurred_on,
        )
        return _payload(row)

    @strawberry.mutation(description="记录劝退答复（拒不退党的转为除名）")
    async def record_persuasion_answer(
        self, info: Info[Context, None], input: PersuasionAnswerInput
    ) -> DisposalCasePayload:
        ctx = info.context
        row = await service.record_persuasion_answer(
            ctx.tx,
            ctx.principal,
            case_id=_case(input.case_id),
            accepted=input.accepted,
            note=input.note,
            occurred_on=input.occurred_on,
        )
        return _payload(row)

    @strawberry.mutation(description="撤销案件")
    async def drop_disposal_case(
        self, info: Info[Context, None], case_id: strawberry.ID, reason: str
    ) -> DisposalCasePayload:
        ctx = info.context
        row = await service.drop_case(ctx.tx, ctx.principal, case_id=_case(case_id), reason=reason)
        return _payload(row)

    @strawberry.mutation(description="记录告知本人、跟踪帮教")
    async def record_case_note(
        self, info: Info[Context, None], input: CaseNoteInput
    ) -> CaseRecordPayload:
        ctx = info.context
        saved = await service.record_case_note(
            ctx.tx,
            ctx.principal,
            case_id=_case(input.case_id),
            kind=rules.RecordKind(input.kind.value),
            text=input.text,
            occurred_on=input.occurred_on,
            people=input.people or (),
        )
        return CaseRecordPayload(record=CaseRecord.of(saved))

    @strawberry.mutation(description="当事党员提交陈述或申诉")
    async def file_case_statement(
        self,
        info: Info[Context, None],
        case_id: strawberry.ID,
        kind: CaseStatementKind,
        text: str,
    ) -> CaseRecordPayload:
        ctx = info.context
        saved = await service.file_statement(
            ctx.tx,
            ctx.principal,
            case_id=_case(case_id),
            appeal=kind is CaseStatementKind.APPEAL,
            text=text,
        )
        return CaseRecordPayload(record=CaseRecord.of(saved))
