"""GraphQL of a round's determinations (三定一公示): the committee's proposals, the
member assembly and its votes, telling each member, resubmitting to the superior, the
public notice's objections, and the members' grade history.

Reads: `evaluationDeterminations(roundId)` (each entry with its committee grade,
assembly votes and telling), `evaluationAssembly(roundId)`, `evaluationObjections
(roundId)` and `memberGrades(memberId)` (one's own without `memberId`). The stage moves
themselves are `advanceEvaluationRound` (service/evaluations/graphql.py), whose checks
after the tally live in service/evaluations/determinations.py.
"""

from __future__ import annotations

from datetime import date, datetime
from enum import Enum
from typing import Any

import strawberry
from strawberry.types import Info

from service.evaluations import determinations as service
from service.evaluations import rules
from service.evaluations.determinations import (
    EXCLUSION_LABELS,
    AssemblyRecord,
    AssemblyVote,
    CommitteeGrade,
    Exclusion,
    ExclusionReason,
)
from service.evaluations.graphql import EvaluationEntry, EvaluationRound, EvaluationRoundPayload
from service.evaluations.policies_graphql import GRADES, Grade
from service.evaluations.service import sees_tally
from service.evaluations.stages import Stage
from service.schema.context import Context
from service.schema.ids import from_global_id, to_global_id
from service.schema.relay import Connection, Node, connection, register_node

AssemblyExclusionReason = strawberry.enum(
    Enum("AssemblyExclusionReason", {m.name: m.value for m in ExclusionReason}),  # type: ignore[misc]
    description="不计入应到会人数的原因（仅限所列情形）：因病不能表达意志、出国（境）半年以上、"
    "正在服刑、卧床不起、外出半年以上且组织关系未转出",
)
_REASONS = {m.value: AssemblyExclusionReason(m.value) for m in ExclusionReason}


def _grade(value: str | None) -> Any:
    return GRADES[value] if value else None


def _member_gid(member_id: int) -> strawberry.ID:
    return strawberry.ID(to_global_id("Member", member_id))


@strawberry.type(description="评议对象的“三定”情况：支委会初定、党员大会表决、转告本人")
class EvaluationDetermination:
    entry: EvaluationEntry
    row: strawberry.Private[Any]
    visible: strawberry.Private[bool]

    @classmethod
    def seen_by(cls, context: Context, row: Any) -> EvaluationDetermination:
        principal = context.principal
        own = principal.account_id is not None and row.member_account_id == principal.account_id
        # The branch's readers after the tally; the member once told of the decision.
        visible = sees_tally(principal, row) or (own and row.told_at is not None)
        return cls(entry=EvaluationEntry.seen_by(context, row), row=row, visible=visible)

    def _shown(self, value: Any) -> Any:
        return value if self.visible else None

    @strawberry.field(description="支委会初定等次")
    def committee_grade(self) -> Grade | None:  # type: ignore[valid-type]
        return self._shown(_grade(self.row.committee_grade))

    @strawberry.field(description="初定等次与计票结果不同的理由")
    def committee_reason(self) -> str | None:
        return self._shown(self.row.committee_reason)

    @strawberry.field(description="组织考核认定（评为不合格的依据）")
    def organizational_finding(self) -> str | None:
        return self._shown(self.row.organizational_finding_note)

    @strawberry.field(description="党员大会赞成票")
    def votes_for(self) -> int | None:
        return self._shown(self.row.votes_for)

    @strawberry.field(description="党员大会反对票")
    def votes_against(self) -> int | None:
        return self._shown(self.row.votes_against)

    @strawberry.field(description="党员大会弃权票")
    def votes_abstain(self) -> int | None:
        return self._shown(self.row.votes_abstain)

    @strawberry.field(description="党员大会是否通过（超过应到会有表决权党员的半数赞成）")
    def assembly_passed(self) -> bool | None:
        return self._shown(self.row.assembly_passed)

    @strawberry.field(description="转告本人的时间")
    def told_at(self) -> datetime | None:
        return self._shown(self.row.told_at)

    @strawberry.field(description="最终等次（评议结束后）")
    def final_grade(self) -> Grade | None:  # type: ignore[valid-type]
        final = self.row.stage == Stage.FINAL.value
        return _grade(self.row.final_grade) if final else None


@strawberry.type(description="不计入应到会人数的党员及其原因")
class AssemblyExclusion:
    member_id: strawberry.ID
    reason: AssemblyExclusionReason  # type: ignore[valid-type]
    reason_label: str
    note: str | None
    superior_consent: bool = strawberry.field(description="经上级党组织同意")
    assembly_agreed: bool = strawberry.field(description="经党员大会通过")


@strawberry.type(description="支部党员大会（审定评议结果）")
class EvaluationAssembly:
    held_on: date | None = strawberry.field(description="召开日期（重新审定前为空）")
    expected_voters: int | None = strawberry.field(description="应到会有表决权的党员数")
    present_count: int = strawberry.field(description="实到有表决权的党员数")
    present_member_ids: list[strawberry.ID]
    exclusions: list[AssemblyExclusion]
    superior_consent_by: str | None = strawberry.field(description="同意减除人数的上级党组织")
    superior_consent_on: date | None
    note: str | None
    recorded_by: str
    updated_at: datetime


async def _assembly(context: Context, row: Any) -> EvaluationAssembly:
    exclusions = await service.exclusions_of(context.tx, row)
    return EvaluationAssembly(
        held_on=row.held_on,
        expected_voters=row.expected_voters,
        present_count=len(row.present_member_ids),
        present_member_ids=[_member_gid(m) for m in row.present_member_ids],
        exclusions=[
            AssemblyExclusion(
                member_id=_member_gid(x.member_id),
                reason=_REASONS[x.reason],
                reason_label=EXCLUSION_LABELS[ExclusionReason(x.reason)],
                note=x.note,
                superior_consent=x.superior_consent,
                assembly_agreed=x.assembly_agreed,
            )
            for x in exclusions
        ],
        superior_consent_by=row.superior_consent_by,
        superior_consent_on=row.superior_consent_on,
        note=row.note,
        recorded_by=row.recorded_by,
        updated_at=row.updated_at,
    )


@strawberry.type(description="公示期间对评议结果提出的异议及支部的答复")
class EvaluationObjection(Node):
    id: strawberry.ID
    member_id: strawberry.ID = strawberry.field(description="异议所涉党员")
    member_name: str
    text: str
    raised_by: str
    raised_at: datetime
    answer: str | None
    answered_by: str | None
    answered_at: datetime | None
    round_id: strawberry.ID

    @classmethod
    def of(cls, row: Any) -> EvaluationObjection:
        return cls(
            id=strawberry.ID(to_global_id("EvaluationObjection", row.id)),
            member_id=_member_gid(row.member_id),
            member_name=row.member_name,
            text=row.text,
            raised_by=row.raised_by,
            raised_at=row.raised_at,
            answer=row.answer,
            answered_by=row.answered_by,
            answered_at=row.answered_at,
            round_id=strawberry.ID(to_global_id("EvaluationRound", row.round_id)),
        )


async def objection_by_id(context: Context, objection_id: int) -> EvaluationObjection:
    row = await service.get_objection(context.tx, context.principal, objection_id)
    return EvaluationObjection.of(row)


register_node("EvaluationObjection", objection_by_id)


@strawberry.type(description="党员某一年度的评议等次（以该年度最后一轮结束的评议为准）")
class MemberGradeRecord:
    year: int
    grade: Grade  # type: ignore[valid-type]
    grade_label: str
    round_id: strawberry.ID | None


def _grade_record(row: Any) -> MemberGradeRecord:
    return MemberGradeRecord(
        year=row.year,
        grade=GRADES[row.grade],
        grade_label=rules.GRADE_LABELS[rules.Grade(row.grade)],
        round_id=(
            strawberry.ID(to_global_id("EvaluationRound", row.round_id))
            if row.round_id is not None
            else None
        ),
    )


def _round_id(global_id: strawberry.ID) -> int:
    return from_global_id(global_id, "EvaluationRound")[1]


def _member_id(global_id: strawberry.ID) -> int:
    return from_global_id(global_id, "Member")[1]


@strawberry.type
class DeterminationsQuery:
    @strawberry.field(
        description="评议对象的“三定”情况（支部可见全部；党员本人在转告后可见自己的）"
    )
    async def evaluation_determinations(
        self,
        info: Info[Context, None],
        round_id: strawberry.ID,
        first: int | None = None,
        after: str | None = None,
    ) -> Connection[EvaluationDetermination]:
        ctx = info.context
        _, page = await service.round_determinations(
            ctx.tx, ctx.principal, _round_id(round_id), ctx.page(first, after)
        )
        return connection(page, lambda r: EvaluationDetermination.seen_by(ctx, r))  # type: ignore[no-any-return]

    @strawberry.field(description="评议的支部党员大会记录（尚未召开时为 null）")
    async def evaluation_assembly(
        self, info: Info[Context, None], round_id: strawberry.ID
    ) -> EvaluationAssembly | None:
        ctx = info.context
        row = await service.get_assembly(ctx.tx, ctx.principal, _round_id(round_id))
        return await _assembly(ctx, row) if row is not None else None

    @strawberry.field(description="公示期间的异议（支部可见全部；党员本人可见涉及自己的）")
    async def evaluation_objections(
        self,
        info: Info[Context, None],
        round_id: strawberry.ID,
        first: int | None = None,
        after: str | None = None,
    ) -> Connection[EvaluationObjection]:
        ctx = info.context
        page = await service.round_objections(
            ctx.tx, ctx.principal, _round_id(round_id), ctx.page(first, after)
        )
        return connection(page, EvaluationObjection.of)  # type: ignore[no-any-return]

    @strawberry.field(description="党员历年评议等次（不填 memberId 为本人的）")
    async def member_grades(
        self,
        info: Info[Context, None],
        member_id: strawberry.ID | None = None,
        first: int | None = None,
        after: str | None = None,
    ) -> Connection[MemberGradeRecord]:
        ctx = info.context
        page = await service.member_grade_history(
            ctx.tx,
            ctx.principal,
            _member_id(member_id) if member_id is not None else None,
            ctx.page(first, after),
        )
        return connection(page, _grade_record)  # type: ignore[no-any-return]


@strawberry.input(description="支委会对一名党员的初定等次")
class CommitteeGradeInput:
    member_id: strawberry.ID
    grade: Grade  # type: ignore[valid-type]
    reason: str | None = strawberry.field(
        default=None, description="与计票结果不同（含待研究事项）时必填"
    )
    organizational_finding: str | None = strawberry.field(
        default=None, description="组织考核认定情况（评为不合格时必填）"
    )


@strawberry.input(description="支委会初定（确认或调整建议等次）")
class ProposeEvaluationGradesInput:
    round_id: strawberry.ID
    grades: list[CommitteeGradeInput]


@strawberry.input(description="不计入应到会人数的党员（须经上级党组织同意并经党员大会通过）")
class AssemblyExclusionInput:
    member_id: strawberry.ID
    reason: AssemblyExclusionReason  # type: ignore[valid-type]
    superior_consent: bool
    assembly_agreed: bool
    note: str | None = None


@strawberry.input(description="支部党员大会召开情况")
class RecordEvaluationAssemblyInput:
    round_id: strawberry.ID
    held_on: date
    present_member_ids: list[strawberry.ID] = strawberry.field(description="实到的有表决权党员")
    exclusions: list[AssemblyExclusionInput] = strawberry.field(default_factory=list)
    superior_consent_by: str | None = strawberry.field(
        default=None, description="同意减除人数的上级党组织（有减除时必填）"
    )
    superior_consent_on: date | None = None
    note: str | None = None


@strawberry.input(description="党员大会对一名党员等次的表决结果（无记名投票的计票）")
class RecordAssemblyVoteInput:
    round_id: strawberry.ID
    member_id: strawberry.ID
    votes_for: int
    votes_against: int
    votes_abstain: int


@strawberry.input(description="已将审定结果转告本人（不填 memberIds 为全部已通过的党员）")
class TellEvaluationResultsInput:
    round_id: strawberry.ID
    member_ids: list[strawberry.ID] | None = None


@strawberry.input(description="上级退回补充材料后重新报送")
class ResubmitEvaluationResultsInput:
    round_id: strawberry.ID
    material: str


@strawberry.input(description="公示期间对评议结果提出异议")
class RaiseEvaluationObjectionInput:
    round_id: strawberry.ID
    member_id: strawberry.ID
    text: str


@strawberry.input(description="答复异议")
class AnswerEvaluationObjectionInput:
    objection_id: strawberry.ID
    answer: str


@strawberry.type
class EvaluationDeterminationsPayload:
    determinations: list[EvaluationDetermination]


@strawberry.type
class EvaluationDeterminationPayload:
    determination: EvaluationDetermination


@strawberry.type
class EvaluationAssemblyPayload:
    assembly: EvaluationAssembly


@strawberry.type
class EvaluationObjectionPayload:
    objection: EvaluationObjection


async def _determinations(ctx: Context, entry_ids: list[int]) -> list[EvaluationDetermination]:
    """The entries just written, read again with their joins (one statement)."""
    from service.evaluations.service import load_entries

    rows = await load_entries(ctx.tx, ctx.principal, entry_ids)
    return [EvaluationDetermination.seen_by(ctx, r) for r in rows if r is not None]


@strawberry.type
class DeterminationsMutation:
    @strawberry.mutation(
        description="支委会初定：确认或调整建议等次（调整须写明理由；不合格须有组织考核认定）"
    )
    async def propose_evaluation_grades(
        self, info: Info[Context, None], input: ProposeEvaluationGradesInput
    ) -> EvaluationDeterminationsPayload:
        ctx = info.context
        round_id = _round_id(input.round_id)
        rows = await service.propose_grades(
            ctx.tx,
            ctx.principal,
            round_id=round_id,
            grades=[
                CommitteeGrade(
                    member_id=_member_id(g.member_id),
                    grade=rules.Grade(g.grade.value),
                    reason=g.reason,
                    finding=g.organizational_finding,
                )
                for g in input.grades
            ],
        )
        return EvaluationDeterminationsPayload(
            determinations=await _determinations(ctx, [r.id for r in rows])
        )

    @strawberry.mutation(
        description="登记支部党员大会：召开日期、实到的有表决权党员、经同意减除的应到会人员"
    )
    async def record_evaluation_assembly(
        self, info: Info[Context, None], input: RecordEvaluationAssemblyInput
    ) -> EvaluationAssemblyPayload:
        ctx = info.context
        row = await service.record_assembly(
            ctx.tx,
            ctx.principal,
            round_id=_round_id(input.round_id),
            assembly=AssemblyRecord(
                held_on=input.held_on,
                present_member_ids=[_member_id(m) for m in input.present_member_ids],
                exclusions=[
                    Exclusion(
                        member_id=_member_id(x.member_id),
                        reason=ExclusionReason(x.reason.value),
                        superior_consent=x.superior_consent,
                        assembly_agreed=x.assembly_agreed,
                        note=x.note,
                    )
                    for x in input.exclusions
                ],
                superior_consent_by=input.superior_consent_by,
                superior_consent_on=input.superior_consent_on,
                note=input.note,
            ),
        )
        return EvaluationAssemblyPayload(assembly=await _assembly(ctx, row))

    @strawberry.mutation(description="登记党员大会对一名党员等次的表决结果（逐人表决）")
    async def record_assembly_vote(
        self, info: Info[Context, None], input: RecordAssemblyVoteInput
    ) -> EvaluationDeterminationPayload:
        ctx = info.context
        round_id = _round_id(input.round_id)
        row = await service.record_vote(
            ctx.tx,
            ctx.principal,
            round_id=round_id,
            vote=AssemblyVote(
                member_id=_member_id(input.member_id),
                votes_for=input.votes_for,
                votes_against=input.votes_against,
                votes_abstain=input.votes_abstain,
            ),
        )
        [determination] = await _determinations(ctx, [row.id])
        return EvaluationDeterminationPayload(determination=determination)

    @strawberry.mutation(description="登记已将审定结果转告本人")
    async def tell_evaluation_results(
        self, info: Info[Context, None], input: TellEvaluationResultsInput
    ) -> EvaluationDeterminationsPayload:
        ctx = info.context
        round_id = _round_id(input.round_id)
        rows = await service.tell_members(
            ctx.tx,
            ctx.principal,
            round_id=round_id,
            member_ids=(
                [_member_id(m) for m in input.member_ids] if input.member_ids is not None else None
            ),
        )
        return EvaluationDeterminationsPayload(
            determinations=await _determinations(ctx, [r.id for r in rows])
        )

    @strawberry.mutation(description="上级退回补充材料后，补充材料并重新报送审批")
    async def resubmit_evaluation_results(
        self, info: Info[Context, None], input: ResubmitEvaluationResultsInput
    ) -> EvaluationRoundPayload:
        ctx = info.context
        row = await service.resubmit_results(
            ctx.tx, ctx.principal, round_id=_round_id(input.round_id), material=input.material
        )
        return EvaluationRoundPayload(round=EvaluationRound.of(row))

    @strawberry.mutation(description="公示期间对评议结果提出异议")
    async def raise_evaluation_objection(
        self, info: Info[Context, None], input: RaiseEvaluationObjectionInput
    ) -> EvaluationObjectionPayload:
        ctx = info.context
        row = await service.raise_objection(
            ctx.tx,
            ctx.principal,
            round_id=_round_id(input.round_id),
            member_id=_member_id(input.member_id),
            text=input.text,
        )
        return EvaluationObjectionPayload(objection=EvaluationObjection.of(row))

    @strawberry.mutation(description="答复公示期间的异议")
    async def answer_evaluation_objection(
        self, info: Info[Context, None], input: AnswerEvaluationObjectionInput
    ) -> EvaluationObjectionPayload:
        ctx = info.context
        row = await service.answer_objection(
            ctx.tx,
            ctx.principal,
            objection_id=from_global_id(input.objection_id, "EvaluationObjection")[1],
            answer=input.answer,
        )
        return EvaluationObjectionPayload(objection=EvaluationObjection.of(row))
