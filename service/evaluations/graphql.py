"""GraphQL of evaluation rounds (民主评议党员): the `EvaluationRound` and
`EvaluationEntry` nodes, the lists `evaluationRounds` and `myEvaluations`, the mass
representatives' `tokenBallot`, and the mutations from opening a round to its tally.

`tokenBallot` and `castTokenBallot` are the only operations a request without an
account may run (service/schema/view.py); their types show a round's title and the
candidates' names, nothing that leads further into the graph.
"""

from __future__ import annotations

from datetime import datetime
from enum import Enum
from typing import TYPE_CHECKING, Annotated, Any

import strawberry
from strawberry.types import Info

from service.evaluations import rules, service

# One `Grade` enum and one `GradeShares` type in the schema: the grading policy's.
from service.evaluations.policies_graphql import Grade, GradeShares
from service.evaluations.service import (
    DECISION_LABELS,
    RULE_LABELS,
    DecisionReason,
    ExcuseReason,
    RoundQuery,
)
from service.evaluations.stages import STAGE_LABELS, Stage
from service.schema.context import Context
from service.schema.ids import from_global_id, to_global_id
from service.schema.relay import Connection, Node, connection, register_node
from service.tenants.graphql import OrgUnit, load_org_units

if TYPE_CHECKING:
    from service.members.graphql import Member

LazyMember = Annotated["Member", strawberry.lazy("service.members.graphql")]

EvaluationStage = strawberry.enum(
    Enum("EvaluationStage", {m.name: m.value for m in Stage}),  # type: ignore[misc]
    description="评议阶段：未启动、个人自评、民主测评、已计票、支委会初定、党员大会审定、"
    "上级党组织审批、公示、结束",
)
_STAGES = {m.value: EvaluationStage(m.value) for m in Stage}

_GRADES = {m.value: Grade(m.value) for m in rules.Grade}

BallotGrade = strawberry.enum(
    Enum("BallotGrade", {m.name: m.value for m in rules.BALLOT_GRADES}),  # type: ignore[misc]
    description="选票上的等次：优秀、合格、基本合格、不合格（不填即弃权）",
)
EvaluationExcuseReason = strawberry.enum(
    Enum("EvaluationExcuseReason", {m.name: m.value for m in ExcuseReason}),  # type: ignore[misc]
    description="不参加集中评议的原因：年老、体弱、患病",
)
_EXCUSES = {m.value: EvaluationExcuseReason(m.value) for m in ExcuseReason}
EvaluationDecisionReason = strawberry.enum(
    Enum("EvaluationDecisionReason", {m.name: m.value for m in DecisionReason}),  # type: ignore[misc]
    description="须由支委会研究确定的原因",
)


async def load_rounds(context: Context, ids: Any) -> list[Any | None]:
    return await service.load_rounds(context.tx, context.principal, ids)


async def load_entries(context: Context, ids: Any) -> list[Any | None]:
    return await service.load_entries(context.tx, context.principal, ids)


@strawberry.type(description="选票计数（弃权不计入比例）")
class BallotCounts:
    excellent: int
    qualified: int
    basic: int
    unqualified: int
    blank: int = strawberry.field(description="弃权（未评定）")


@strawberry.type(description="须研究确定的事项")
class DecisionNeeded:
    reason: EvaluationDecisionReason  # type: ignore[valid-type]
    label: str


@strawberry.type(description="评议对象（参评党员名单中的一人）及其自评、计票与建议等次")
class EvaluationEntry(Node):
    id: strawberry.ID
    name: str
    category: str = strawberry.field(description="full 正式党员 / probationary 预备党员")
    position: int | None = strawberry.field(description="在选票上的序号（民主测评开始时确定）")
    may_vote: bool = strawberry.field(description="有表决权（留党察看期间没有）")
    excused: bool = strawberry.field(description="经支部同意不参加集中评议（年老、体弱、患病）")
    excused_reason: EvaluationExcuseReason | None  # type: ignore[valid-type]
    excused_opinion: str | None = strawberry.field(description="本人的意见")
    self_evaluation: str | None = strawberry.field(description="个人自评")
    self_evaluated_at: datetime | None
    row: strawberry.Private[Any]
    tally_visible: strawberry.Private[bool]
    counts_visible: strawberry.Private[bool]

    @classmethod
    def of(cls, row: Any, *, tally: bool = False, counts: bool = False) -> EvaluationEntry:
        reason = row.excused_reason
        return cls(
            id=strawberry.ID(to_global_id("EvaluationEntry", row.id)),
            name=row.name,
            category=row.category,
            position=row.position,
            may_vote=row.may_vote,
            excused=row.excused,
            excused_reason=_EXCUSES.get(reason) if reason else None,
            excused_opinion=row.excused_opinion,
            self_evaluation=row.self_evaluation,
            self_evaluated_at=row.self_evaluated_at,
            row=row,
            tally_visible=tally,
            counts_visible=counts,
        )

    @classmethod
    def seen_by(cls, context: Context, row: Any) -> EvaluationEntry:
        return cls.of(
            row,
            tally=service.sees_tally(context.principal, row),
            counts=service.sees_counts(context.principal, row),
        )

    @strawberry.field(description="建议等次（计票后，支部及上级可见）")
    def computed_grade(self) -> Grade | None:  # type: ignore[valid-type]
        grade = self.row.computed_grade
        return _GRADES[grade] if self.tally_visible and grade else None

    @strawberry.field(description="决定建议等次的规则")
    def computed_rule(self) -> str | None:
        return self.row.computed_rule if self.tally_visible else None

    @strawberry.field(description="规则说明")
    def computed_rule_label(self) -> str | None:
        rule = self.row.computed_rule
        return RULE_LABELS.get(rule, rule) if self.tally_visible and rule else None

    @strawberry.field(description="票数（计票后；投票人数少于保密人数时不公布）")
    def counts(self) -> BallotCounts | None:
        r = self.row
        if not self.counts_visible or r.excellent is None:
            return None
        return BallotCounts(
            excellent=r.excellent,
            qualified=r.qualified,
            basic=r.basic,
            unqualified=r.unqualified,
            blank=r.blank,
        )

    @strawberry.field(description="各等次比例（同票数的公布条件）")
    def shares(self) -> GradeShares | None:
        return GradeShares.of(service.entry_shares(self.row)) if self.counts_visible else None

    @strawberry.field(description="须支委会研究确定的事项（计票后）")
    def needs_decision(self) -> list[DecisionNeeded]:
        if not self.tally_visible:
            return []
        return [
            DecisionNeeded(reason=EvaluationDecisionReason(r.value), label=DECISION_LABELS[r])
            for r in service.needs_decision(self.row)
        ]

    @strawberry.field(description="最终等次（评议结束后可见）")
    def final_grade(self) -> Grade | None:  # type: ignore[valid-type]
        grade = self.row.final_grade
        return _GRADES[grade] if self.row.stage == Stage.FINAL.value and grade else None

    @strawberry.field(description="参评党员；无权查看其台账时为 null（本人可见自己的）")
    async def member(self, info: Info[Context, None]) -> LazyMember | None:
        from service.members.graphql import Member, load_account_members, load_members

        ctx = info.context
        row = await ctx.loader(load_members).load(self.row.member_id)
        if row is None and ctx.principal.account_id is not None:
            own = await ctx.loader(load_account_members).load(ctx.principal.account_id)
            row = own if own is not None and own.id == self.row.member_id else None
        return Member.of(row) if row is not None else None

    @strawberry.field
    async def round(self, info: Info[Context, None]) -> EvaluationRound | None:
        row = await info.context.loader(load_rounds).load(self.row.round_id)
        return EvaluationRound.of(row) if row is not None else None


@strawberry.type(description="民主评议（一个党支部一个评议周期的一轮评议）")
class EvaluationRound(Node):
    id: strawberry.ID
    batch: str = strawberry.field(description="同一次统一发起的各支部评议共享的批次号")
    title: str
    year: int
    half: int = strawberry.field(description="1 上半年，2 下半年")
    stage: EvaluationStage  # type: ignore[valid-type]
    stage_label: str
    policy_version: int = strawberry.field(description="所用评议办法的版本（0 为内置默认办法）")
    opened_by: str
    created_at: datetime
    stage_changed_at: datetime
    stage_changed_by: str | None
    sent_back_reason: str | None = strawberry.field(description="上级退回的理由")
    closed_at: datetime | None = strawberry.field(description="民主测评结束（计票）时间")
    ballots_cast: int | None = strawberry.field(description="投票数（计票后才有）")
    roster_voters: int | None = strawberry.field(description="有表决权的参评党员数（计票时）")
    mass_tokens_issued: int = strawberry.field(description="已发放的群众测评票数")
    row: strawberry.Private[Any]

    @classmethod
    def of(cls, row: Any) -> EvaluationRound:
        closed = Stage(row.stage) not in (Stage.DRAFT, Stage.SELF_EVALUATION, Stage.BALLOTING)
        return cls(
            id=strawberry.ID(to_global_id("EvaluationRound", row.id)),
            batch=str(row.batch),
            title=row.title,
            year=row.year,
            half=row.half,
            stage=_STAGES[row.stage],
            stage_label=STAGE_LABELS[Stage(row.stage)],
            policy_version=row.policy_version,
            opened_by=row.opened_by,
            created_at=row.created_at,
            stage_changed_at=row.stage_changed_at,
            stage_changed_by=row.stage_changed_by,
            sent_back_reason=row.sent_back_reason,
            closed_at=row.closed_at,
            ballots_cast=row.ballots_cast if closed else None,
            roster_voters=row.roster_voters if closed else None,
            mass_tokens_issued=row.mass_tokens_issued,
            row=row,
        )

    @strawberry.field(description="计票结果是否公布票数（投票人数不少于保密人数）")
    def counts_visible(self) -> bool:
        if self.row.ballots_cast is None:
            return False
        return rules.counts_visible(self.row.ballots_cast, service.policy_of(self.row))

    @strawberry.field(description="党支部；无权查看时为 null")
    async def branch(self, info: Info[Context, None]) -> OrgUnit | None:
        row = await info.context.loader(load_org_units).load(self.row.branch_id)
        return OrgUnit.of(row) if row is not None else None

    @strawberry.field(description="参评党员名单（支部可见全部；党员本人只见自己的）")
    async def entries(
        self, info: Info[Context, None], first: int | None = None, after: str | None = None
    ) -> Connection[EvaluationEntry]:
        ctx = info.context
        page = await service.round_entries(ctx.tx, ctx.principal, self.row, ctx.page(first, after))
        return connection(page, lambda r: EvaluationEntry.seen_by(ctx, r))  # type: ignore[no-any-return]


async def round_by_id(context: Context, round_id: int) -> EvaluationRound:
    return EvaluationRound.of(await service.get_round(context.tx, context.principal, round_id))


async def entry_by_id(context: Context, entry_id: int) -> EvaluationEntry:
    row = await service.get_entry(context.tx, context.principal, entry_id)
    return EvaluationEntry.seen_by(context, row)


register_node("EvaluationRound", round_by_id)
register_node("EvaluationEntry", entry_by_id)


@strawberry.type(description="群众测评票上的评议对象（只有姓名）")
class TokenBallotCandidate:
    member_id: strawberry.ID
    name: str


@strawberry.type(description="凭测评票可见的内容：评议名称和评议对象的姓名")
class TokenBallot:
    title: str
    candidates: list[TokenBallotCandidate]


def _round_id(global_id: strawberry.ID) -> int:
    return from_global_id(global_id, "EvaluationRound")[1]


def _unit_id(global_id: strawberry.ID | None) -> int | None:
    return from_global_id(global_id, "OrgUnit")[1] if global_id else None


@strawberry.type
class EvaluationQuery:
    @strawberry.field(
        description="可见的民主评议（有权查看的各党支部；可按组织、年度、半年度、阶段筛选）"
    )
    async def evaluation_rounds(
        self,
        info: Info[Context, None],
        org_unit_id: strawberry.ID | None = None,
        year: int | None = None,
        half: int | None = None,
        stage: EvaluationStage | None = None,  # type: ignore[valid-type]
        first: int | None = None,
        after: str | None = None,
    ) -> Connection[EvaluationRound]:
        ctx = info.context
        query = RoundQuery(
            org_unit_id=_unit_id(org_unit_id),
            year=year,
            half=half,
            stage=Stage(stage.value) if stage is not None else None,
        )
        page = await service.list_rounds(ctx.tx, ctx.principal, query, ctx.page(first, after))
        return connection(page, EvaluationRound.of)  # type: ignore[no-any-return]

    @strawberry.field(description="本人参加的民主评议（每轮一条；最终等次在评议结束后可见）")
    async def my_evaluations(
        self, info: Info[Context, None], first: int | None = None, after: str | None = None
    ) -> Connection[EvaluationEntry]:
        ctx = info.context
        page = await service.my_entries(ctx.tx, ctx.principal, ctx.page(first, after))
        return connection(page, lambda r: EvaluationEntry.seen_by(ctx, r))  # type: ignore[no-any-return]

    @strawberry.field(description="凭群众测评票查看测评内容（无需登录）")
    async def token_ballot(self, info: Info[Context, None], token: str) -> TokenBallot:
        found = await service.token_ballot(info.context.tx, token)
        return TokenBallot(
            title=found.round.title,
            candidates=[
                TokenBallotCandidate(
                    member_id=strawberry.ID(to_global_id("Member", e.member_id)), name=e.name
                )
                for e in found.candidates
            ],
        )


@strawberry.input(description="发起民主评议：一个党支部，或其上级组织下的全部党支部")
class OpenEvaluationRoundsInput:
    org_unit_id: strawberry.ID
    year: int
    half: int = strawberry.field(description="1 上半年，2 下半年")
    title: str


@strawberry.input(description="对一名评议对象的评定（不填的对象视为弃权）")
class BallotGradeInput:
    member_id: strawberry.ID
    grade: BallotGrade  # type: ignore[valid-type]


@strawberry.type
class EvaluationRoundsPayload:
    rounds: list[EvaluationRound]


@strawberry.type
class EvaluationRoundPayload:
    round: EvaluationRound


@strawberry.type
class EvaluationEntryPayload:
    entry: EvaluationEntry


@strawberry.type(description="已投票（选票内容不回显）")
class BallotPayload:
    accepted: bool


@strawberry.type(description="新发放的群众测评票：每张只在此返回一次，请立即打印")
class BallotTokensPayload:
    round: EvaluationRound
    tokens: list[str]
    expires_at: datetime = strawberry.field(description="最迟失效时间；计票时即失效")


def _grades(grades: list[BallotGradeInput]) -> list[tuple[int, rules.Grade]]:
    return [(from_global_id(g.member_id, "Member")[1], rules.Grade(g.grade.value)) for g in grades]


@strawberry.type
class EvaluationMutation:
    @strawberry.mutation(description="发起民主评议（党支部书记发起本支部的；县或上级组织统一发起）")
    async def open_evaluation_rounds(
        self, info: Info[Context, None], input: OpenEvaluationRoundsInput
    ) -> EvaluationRoundsPayload:
        ctx = info.context
        rows = await service.open_rounds(
            ctx.tx,
            ctx.principal,
            org_unit_id=from_global_id(input.org_unit_id, "OrgUnit")[1],
            year=input.year,
            half=input.half,
            title=input.title,
        )
        return EvaluationRoundsPayload(rounds=[EvaluationRound.of(r) for r in rows])

    @strawberry.mutation(description="推进评议到下一阶段（须说明当前阶段，防止重复推进）")
    async def advance_evaluation_round(
        self,
        info: Info[Context, None],
        round_id: strawberry.ID,
        expected_stage: EvaluationStage,  # type: ignore[valid-type]
    ) -> EvaluationRoundPayload:
        ctx = info.context
        row = await service.advance_round(
            ctx.tx,
            ctx.principal,
            round_id=_round_id(round_id),
            expected_stage=Stage(expected_stage.value),
        )
        return EvaluationRoundPayload(round=EvaluationRound.of(row))

    @strawberry.mutation(description="上级党组织将评议退回上一阶段（须写明理由）")
    async def send_back_evaluation_round(
        self, info: Info[Context, None], round_id: strawberry.ID, reason: str
    ) -> EvaluationRoundPayload:
        ctx = info.context
        row = await service.send_back_round(
            ctx.tx, ctx.principal, round_id=_round_id(round_id), reason=reason
        )
        return EvaluationRoundPayload(round=EvaluationRound.of(row))

    @strawberry.mutation(description="填写本人的个人自评")
    async def write_self_evaluation(
        self, info: Info[Context, None], round_id: strawberry.ID, text: str
    ) -> EvaluationEntryPayload:
        ctx = info.context
        row = await service.write_self_evaluation(
            ctx.tx, ctx.principal, round_id=_round_id(round_id), text=text
        )
        return EvaluationEntryPayload(entry=EvaluationEntry.seen_by(ctx, row))

    @strawberry.mutation(
        description="登记经支部同意不参加集中评议的党员（年老、体弱、患病）及其意见"
    )
    async def excuse_from_evaluation(
        self,
        info: Info[Context, None],
        round_id: strawberry.ID,
        member_id: strawberry.ID,
        reason: EvaluationExcuseReason,  # type: ignore[valid-type]
        opinion: str | None = None,
    ) -> EvaluationEntryPayload:
        ctx = info.context
        row = await service.excuse_member(
            ctx.tx,
            ctx.principal,
            round_id=_round_id(round_id),
            member_id=from_global_id(member_id, "Member")[1],
            reason=ExcuseReason(reason.value),
            opinion=opinion,
        )
        return EvaluationEntryPayload(entry=EvaluationEntry.seen_by(ctx, row))

    @strawberry.mutation(description="投出本人的民主测评票（无记名；每轮一次；不能评自己）")
    async def cast_evaluation_ballot(
        self, info: Info[Context, None], round_id: strawberry.ID, grades: list[BallotGradeInput]
    ) -> BallotPayload:
        ctx = info.context
        await service.cast_ballot(
            ctx.tx, ctx.principal, round_id=_round_id(round_id), grades=_grades(grades)
        )
        return BallotPayload(accepted=True)

    @strawberry.mutation(description="生成群众测评票（每张只返回一次）")
    async def issue_ballot_tokens(
        self, info: Info[Context, None], round_id: strawberry.ID, count: int
    ) -> BallotTokensPayload:
        ctx = info.context
        issued = await service.issue_tokens(
            ctx.tx, ctx.principal, round_id=_round_id(round_id), count=count
        )
        return BallotTokensPayload(
            round=EvaluationRound.of(issued.round),
            tokens=issued.tokens,
            expires_at=issued.expires_at,
        )

    @strawberry.mutation(description="凭群众测评票投票（无需登录；每张一次）")
    async def cast_token_ballot(
        self, info: Info[Context, None], token: str, grades: list[BallotGradeInput]
    ) -> BallotPayload:
        await service.cast_token_ballot(info.context.tx, token, _grades(grades))
        return BallotPayload(accepted=True)


# Root fields a request without an account may run (service/schema/view.py).
TOKEN_FIELDS = frozenset({"tokenBallot", "castTokenBallot"})
