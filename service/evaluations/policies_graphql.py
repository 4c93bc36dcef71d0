"""GraphQL of grading policies (评议办法): the `Grade` enum (shared with the rest of
evaluations: import it from here), the `GradingPolicyVersion` node, `gradingPolicy`,
`gradingPolicies`, `gradingPreview` and `setGradingPolicy`.

Shares travel as exact strings: the API writes "n/d" ("3/5"); a client may send
"3/5", "0.6" or "60%". Never floats: 0.6 as a binary float is not 3/5, and a boundary
such as "exactly 60 %" must be decided exactly.
"""

from __future__ import annotations

from datetime import datetime
from enum import Enum
from fractions import Fraction
from typing import Any

import strawberry
from strawberry.types import Info

from service.evaluations import policies, rules
from service.evaluations.errors import (
    PREVIEW_ROSTER_INVALID,
    PREVIEW_TOO_MANY,
    TALLY_INVALID,
)
from service.sanctions.graphql import SanctionKind
from service.schema.context import Context
from service.schema.ids import from_global_id, to_global_id
from service.schema.relay import Connection, Node, connection, register_node
from service.tenants.graphql import OrgUnit, load_org_units

MAX_PREVIEW_TALLIES = 500
MAX_COUNT = 100_000

Grade = strawberry.enum(
    Enum("Grade", {m.name: m.value for m in rules.Grade}),  # type: ignore[misc]
    description="评议等次：优秀、合格、基本合格、不合格；不定等次（只作评语）；待研究（须研究确定）",
)
GRADES = {m.value: Grade(m.value) for m in rules.Grade}


def share_text(value: Fraction | None) -> str | None:
    return None if value is None else f"{value.numerator}/{value.denominator}"


@strawberry.type(description='评议办法的各项数值；比例写作分数字符串，如 "3/5"')
class GradingPolicy:
    unqualified_share: str = strawberry.field(
        description="不合格票超过此比例即为不合格候选（默认 1/3）"
    )
    unqualified_plus_basic_share: str = strawberry.field(
        description="不合格与基本合格票合计超过此比例即为不合格候选（默认 1/2）"
    )
    second_year_basic: bool = strawberry.field(
        description="连续两年基本合格即为不合格候选（默认是）"
    )
    excellent_min: str = strawberry.field(description="优秀：优秀票不低于此比例（默认 3/5）")
    excellent_max_unqualified: str = strawberry.field(
        description="优秀：不合格票不超过此比例（默认 1/10）"
    )
    qualified_min: str = strawberry.field(
        description="合格：优秀与合格票合计不低于此比例（默认 7/10）"
    )
    qualified_max_unqualified: str = strawberry.field(
        description="合格：不合格票不超过此比例（默认 1/5）"
    )
    basic_min: str = strawberry.field(
        description="基本合格：优秀、合格与基本合格票合计不低于此比例（默认 1/2）"
    )
    basic_max_unqualified: str = strawberry.field(
        description="基本合格：不合格票不超过此比例（默认 1/3）"
    )
    excellent_quota: str | None = strawberry.field(
        description="优秀名额占应评议党员的比例，向下取整（默认 1/3）；null：不限名额"
    )
    turnout_min: str = strawberry.field(
        description="参加投票的党员须超过应投票党员的此比例（默认 1/2）"
    )
    secrecy_threshold: int = strawberry.field(
        description="投票人数少于此数时只公布等次、不公布票数（默认 5）"
    )
    notice_days: int = strawberry.field(description="公示天数（默认 5）")
    period_months: int = strawberry.field(description="评议周期：6 每半年，12 每年（默认 6）")
    route_to_county: bool = strawberry.field(
        description="评议结果经党(工)委审批后再报县委组织部审批（默认否）"
    )
    step_days: int = strawberry.field(description="每级审批期限（天，默认 7）")
    correction_months: int = strawberry.field(
        description="不合格党员限期改正的期限（月，默认 6，最多 12）"
    )

    @classmethod
    def of(cls, policy: rules.GradingPolicy) -> GradingPolicy:
        return cls(**policy.to_json())


@strawberry.type(description="评议办法的一个版本（县或乡镇一级）；version 0 为尚未保存的默认办法")
class GradingPolicyVersion(Node):
    id: strawberry.ID
    version: int
    policy: GradingPolicy
    note: str | None
    created_by: str | None
    created_at: datetime | None
    item: strawberry.Private[policies.PolicyVersion]

    @classmethod
    def of(cls, item: policies.PolicyVersion) -> GradingPolicyVersion:
        return cls(
            id=strawberry.ID(to_global_id("GradingPolicyVersion", item.id)),
            version=item.version,
            policy=GradingPolicy.of(item.policy),
            note=item.note,
            created_by=item.created_by,
            created_at=item.created_at,
            item=item,
        )

    @strawberry.field(description="制定该办法的组织（县或乡镇一级）；无权查看时为 null")
    async def org_unit(self, info: Info[Context, None]) -> OrgUnit | None:
        row = await info.context.loader(load_org_units).load(self.item.scope_unit_id)
        return OrgUnit.of(row) if row is not None else None


async def load_versions(context: Context, ids: Any) -> list[Any]:
    return await policies.load_versions(context.tx, context.principal, ids)


async def version_by_id(context: Context, policy_id: int) -> GradingPolicyVersion:
    found = await policies.get_policy_version(context.tx, context.principal, policy_id)
    return GradingPolicyVersion.of(found)


register_node("GradingPolicyVersion", version_by_id)


@strawberry.input(description="试算用的一名党员的票数（不含空白票）及影响等次的情况")
class TallyInput:
    excellent: int
    qualified: int
    basic: int
    unqualified: int
    last_year_grade: Grade | None = strawberry.field(  # type: ignore[valid-type]
        default=None, description="上一年度的等次（连续两年基本合格的判断）"
    )
    sanction_this_year: SanctionKind | None = strawberry.field(  # type: ignore[valid-type]
        default=None, description="当年受到的党纪处分"
    )
    two_year_probation_last_year: bool = strawberry.field(
        default=False, description="上一年受留党察看二年处分（本年只作评语、不定等次）"
    )
    organizational_finding: bool = strawberry.field(
        default=False, description="支部已作组织考核认定（确有严重问题）"
    )


@strawberry.type(description="各等次票数占有效票的比例（分数字符串）")
class GradeShares:
    excellent: str
    qualified: str
    basic: str
    unqualified: str

    @classmethod
    def of(cls, shares: dict[str, Fraction] | None) -> GradeShares | None:
        if shares is None:
            return None
        return cls(**{k: share_text(v) for k, v in shares.items()})  # type: ignore[arg-type]


@strawberry.type(description="按评议办法得出的等次及依据")
class GradeProposal:
    grade: Grade  # type: ignore[valid-type]
    grade_label: str = strawberry.field(description="等次的中文名称")
    rule: str = strawberry.field(
        description="起决定作用的规则，如 excellent、unqualified_share、no_finding_basic、quota_tie"
    )
    rule_label: str = strawberry.field(description="规则的中文说明")
    candidate: str | None = strawberry.field(
        description="不合格候选的依据（unqualified_share、unqualified_basic_share、second_year_basic）"
    )
    shares: GradeShares | None = strawberry.field(description="没有有效票时为 null")

    @classmethod
    def of(cls, p: rules.Proposal) -> GradeProposal:
        return cls(
            grade=GRADES[p.grade.value],
            grade_label=rules.GRADE_LABELS[p.grade],
            rule=p.rule,
            rule_label=rules.RULE_LABELS[p.rule],
            candidate=p.candidate,
            shares=GradeShares.of(p.shares),
        )


def _tally(t: TallyInput) -> rules.Tally:
    counts = (t.excellent, t.qualified, t.basic, t.unqualified)
    if any(not 0 <= c <= MAX_COUNT for c in counts):
        raise TALLY_INVALID.error(maximum=MAX_COUNT)
    return rules.Tally(
        *counts,
        last_year_grade=rules.Grade(t.last_year_grade.value) if t.last_year_grade else None,
        sanction_override=rules.override_for(
            t.sanction_this_year.value if t.sanction_this_year else None,
            t.two_year_probation_last_year,
        ),
        organizational_finding=t.organizational_finding,
    )


def _unit_id(global_id: strawberry.ID | None) -> int | None:
    return from_global_id(global_id, "OrgUnit")[1] if global_id else None


@strawberry.type
class PoliciesQuery:
    @strawberry.field(
        description="某组织现行的评议办法（其乡镇一级的，否则县的）；不指定组织时为本人所在县的"
    )
    async def grading_policy(
        self, info: Info[Context, None], org_unit_id: strawberry.ID | None = None
    ) -> GradingPolicyVersion:
        ctx = info.context
        found = await policies.current_policy(
            ctx.tx, ctx.principal, org_unit_id=_unit_id(org_unit_id)
        )
        return GradingPolicyVersion.of(found)

    @strawberry.field(description="县或乡镇一级评议办法的各个版本（从早到晚）")
    async def grading_policies(
        self,
        info: Info[Context, None],
        org_unit_id: strawberry.ID,
        first: int | None = None,
        after: str | None = None,
    ) -> Connection[GradingPolicyVersion]:
        ctx = info.context
        page = await policies.list_versions(
            ctx.tx,
            ctx.principal,
            org_unit_id=from_global_id(org_unit_id, "OrgUnit")[1],
            page=ctx.page(first, after),
        )
        return connection(page, GradingPolicyVersion.of)  # type: ignore[no-any-return]

    @strawberry.field(
        description="用评议办法试算等次：不指定办法时用本人所在县现行的；给出应评议人数时按优秀比例限额"
    )
    async def grading_preview(
        self,
        info: Info[Context, None],
        tallies: list[TallyInput],
        policy_id: strawberry.ID | None = None,
        roster: int | None = None,
    ) -> list[GradeProposal]:
        ctx = info.context
        policies.preview_readers(ctx.principal)
        if len(tallies) > MAX_PREVIEW_TALLIES:
            raise PREVIEW_TOO_MANY.error(maximum=MAX_PREVIEW_TALLIES)
        if roster is not None and not 0 <= roster <= MAX_COUNT:
            raise PREVIEW_ROSTER_INVALID.error(maximum=MAX_COUNT)
        if policy_id is not None:
            local = from_global_id(policy_id, "GradingPolicyVersion")[1]
            version = await policies.get_policy_version(ctx.tx, ctx.principal, local)
        else:
            version = await policies.current_policy(ctx.tx, ctx.principal, org_unit_id=None)
        policy = version.policy
        proposals = [rules.propose(_tally(t), policy) for t in tallies]
        if roster is not None:
            proposals = rules.apply_quota(proposals, roster, policy)
        return [GradeProposal.of(p) for p in proposals]


@strawberry.input(
    description=(
        '制定评议办法的新版本：未填的数值沿用该组织现行办法；比例写作 "2/3"、"0.6" 或 "60%"'
    )
)
class GradingPolicyInput:
    org_unit_id: strawberry.ID = strawberry.field(description="县或乡镇（开发区、新区、县直部门）")
    note: str | None = strawberry.field(default=None, description="修订说明")
    unqualified_share: str | None = None
    unqualified_plus_basic_share: str | None = None
    second_year_basic: bool | None = None
    excellent_min: str | None = None
    excellent_max_unqualified: str | None = None
    qualified_min: str | None = None
    qualified_max_unqualified: str | None = None
    basic_min: str | None = None
    basic_max_unqualified: str | None = None
    excellent_quota: str | None = strawberry.field(
        default=None, description="优秀名额比例；不限名额请设 noExcellentQuota"
    )
    no_excellent_quota: bool | None = strawberry.field(
        default=None, description='不设优秀名额限制（"不设比例、不唯票数"）'
    )
    turnout_min: str | None = None
    secrecy_threshold: int | None = None
    notice_days: int | None = None
    period_months: int | None = None
    route_to_county: bool | None = None
    step_days: int | None = None
    correction_months: int | None = None


_VALUE_FIELDS = tuple(f for f in rules.FIELD_LABELS)


@strawberry.type
class GradingPolicyPayload:
    policy_version: GradingPolicyVersion


@strawberry.type
class PoliciesMutation:
    @strawberry.mutation(description="制定评议办法的新版本（县委组织部）")
    async def set_grading_policy(
        self, info: Info[Context, None], input: GradingPolicyInput
    ) -> GradingPolicyPayload:
        ctx = info.context
        changes: dict[str, Any] = {
            name: getattr(input, name) for name in _VALUE_FIELDS if getattr(input, name) is not None
        }
        if input.no_excellent_quota:
            changes["excellent_quota"] = None
        found = await policies.set_policy(
            ctx.tx,
            ctx.principal,
            org_unit_id=from_global_id(input.org_unit_id, "OrgUnit")[1],
            policy=changes,
            note=input.note,
        )
        return GradingPolicyPayload(policy_version=GradingPolicyVersion.of(found))
