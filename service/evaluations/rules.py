"""Pure rules of democratic evaluation (民主评议党员): grades, the grade a tally
proposes, the excellent quota, turnout, the secrecy threshold, the assembly's quorum,
and the validation of a grading policy (评议办法). No I/O; shares are exact
`Fraction`s, never floats, so a boundary such as "exactly 60 %" is decided exactly.

The default policy is DOMAIN.md's ("Grade from the tally"); every number in it is a
field of `GradingPolicy`, which a county (县委组织部) sets and a tenant may override.

Grades (等次): 优秀 excellent, 合格 qualified, 基本合格 basically qualified, 不合格
unqualified; besides them 不定等次 (`NOT_GRADED`: a written comment only, the year after
留党察看二年) and 待研究 (`NEEDS_DECISION`: a person must settle it, e.g. no ballots or a
tie at the quota line).

`propose(tally, policy)`: shares are taken among the non-blank ballots that graded the
member. First the discipline overrides (党纪处分, `service.sanctions.rules.Override`):

- 开除党籍 (NOT_EVALUATED) -> 不定等次, rule "not_evaluated";
- 严重警告、撤销党内职务、留党察看 in the year (UNQUALIFIED) -> 不合格, "sanction_unqualified";
- the year after 留党察看二年 (COMMENT_ONLY) -> 不定等次, "comment_only";
- 警告 (NOT_EXCELLENT) -> rule 2 below is skipped ("sanction_not_excellent" when the
  skip changed the outcome).

Then, with no non-blank ballot: 待研究, "no_ballots". Otherwise the first rule that holds:

1. 不合格候选 (unqualified candidate) when unqualified > `unqualified_share` (1/3)
   ("unqualified_share"), or unqualified + basic > `unqualified_plus_basic_share` (1/2)
   ("unqualified_basic_share"), or rules 2-4 would give 基本合格 for the second
   consecutive year ("second_year_basic"; a year's grade is its last final round). With
   the branch's 组织考核认定 (organizational finding) the grade is 不合格 and the rule is
   the trigger; without one it is 基本合格, rule "no_finding_basic" (the trigger is
   kept in `Proposal.candidate` so the branch sees what needs a person).
2. 优秀 when excellent >= `excellent_min` (60 %) and unqualified <= 10 % ("excellent").
3. 合格 when excellent + qualified >= 70 % and unqualified <= 20 % ("qualified").
4. 基本合格 when excellent + qualified + basic >= 50 % and unqualified <= 1/3 ("basic").

A policy under which some tally meets none of these gets "no_rule" (待研究);
`validate_policy` refuses such a policy before it can be saved.

`apply_quota`: at most `excellent_quota` (1/3) of the roster, rounded down, are 优秀;
rank by excellent share, then by lower unqualified share; those past the line become
合格 ("quota"); members with the same two shares as the last place inside, when such
members stand on both sides of the line, all await the branch committee (待研究,
"quota_tie"). No quota (`None`): some counties rule "no quotas, not by votes alone".
"""

from __future__ import annotations

import functools
import itertools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields, replace
from enum import StrEnum
from fractions import Fraction
from typing import Any

from service.sanctions.rules import Override


class Grade(StrEnum):
    EXCELLENT = "excellent"  # 优秀
    QUALIFIED = "qualified"  # 合格
    BASIC = "basic"  # 基本合格
    UNQUALIFIED = "unqualified"  # 不合格
    NOT_GRADED = "not_graded"  # 不定等次: a written comment only
    NEEDS_DECISION = "needs_decision"  # 待研究: a person settles it


GRADE_LABELS: dict[Grade, str] = {
    Grade.EXCELLENT: "优秀",
    Grade.QUALIFIED: "合格",
    Grade.BASIC: "基本合格",
    Grade.UNQUALIFIED: "不合格",
    Grade.NOT_GRADED: "不定等次",
    Grade.NEEDS_DECISION: "待研究",
}

# What a ballot may say about a member (or leave blank).
BALLOT_GRADES: tuple[Grade, ...] = (
    Grade.EXCELLENT,
    Grade.QUALIFIED,
    Grade.BASIC,
    Grade.UNQUALIFIED,
)

# The order of the four graded outcomes, best highest. NOT_GRADED and NEEDS_DECISION
# are outside it: they are not better or worse, they are not a grade yet.
GRADE_RANK: dict[Grade, int] = {
    Grade.UNQUALIFIED: 0,
    Grade.BASIC: 1,
    Grade.QUALIFIED: 2,
    Grade.EXCELLENT: 3,
}

# Rule names a Proposal carries (stable strings, stored with the entries) and their
# Chinese wording for the branch.
RULE_LABELS: dict[str, str] = {
    "unqualified_share": "不合格票超过规定比例（经组织考核认定）",
    "unqualified_basic_share": "不合格与基本合格票合计超过规定比例（经组织考核认定）",
    "second_year_basic": "连续两年评为基本合格（经组织考核认定）",
    "no_finding_basic": "属不合格候选，未经组织考核认定，暂定基本合格",
    "excellent": "优秀票达到规定比例",
    "qualified": "优秀与合格票合计达到规定比例",
    "basic": "优秀、合格与基本合格票合计达到规定比例",
    "sanction_unqualified": "年内受严重警告、撤销党内职务或留党察看处分",
    "sanction_not_excellent": "年内受警告处分，不得评为优秀",
    "comment_only": "留党察看二年处分的次年，只作评语、不定等次",
    "not_evaluated": "已开除党籍，不参加评议",
    "no_ballots": "没有有效票，须研究确定",
    "no_rule": "评议办法未覆盖该票数，须研究确定",
    "quota": "超出优秀比例，按合格确定",
    "quota_tie": "优秀比例分界处票数相同，由支委会研究确定",
}

CANDIDATE_RULES = ("unqualified_share", "unqualified_basic_share", "second_year_basic")

# Limits of the policy values that are not shares (validate_policy holds them).
PERIOD_MONTHS = (6, 12)  # a round every half year (the county's practice) or every year
MAX_NOTICE_DAYS = 30
MAX_STEP_DAYS = 60
# 限期改正: the deadline of a correction within a deadline is at most 12 months.
MAX_CORRECTION_MONTHS = 12
MAX_SECRECY_THRESHOLD = 50

SHARE_FIELDS = (
    "unqualified_share",
    "unqualified_plus_basic_share",
    "excellent_min",
    "excellent_max_unqualified",
    "qualified_min",
    "qualified_max_unqualified",
    "basic_min",
    "basic_max_unqualified",
    "turnout_min",
)

FIELD_LABELS: dict[str, str] = {
    "unqualified_share": "不合格票比例（超过即为不合格候选）",
    "unqualified_plus_basic_share": "不合格与基本合格票合计比例（超过即为不合格候选）",
    "second_year_basic": "连续两年基本合格即为不合格候选",
    "excellent_min": "优秀票最低比例",
    "excellent_max_unqualified": "优秀等次允许的不合格票最高比例",
    "qualified_min": "优秀与合格票合计最低比例",
    "qualified_max_unqualified": "合格等次允许的不合格票最高比例",
    "basic_min": "优秀、合格与基本合格票合计最低比例",
    "basic_max_unqualified": "基本合格等次允许的不合格票最高比例",
    "excellent_quota": "优秀名额占应评议党员的比例",
    "turnout_min": "参评率（须超过）",
    "secrecy_threshold": "保密人数下限（投票人数少于此数只公布等次）",
    "notice_days": "公示天数",
    "period_months": "评议周期（月）",
    "route_to_county": "评议结果报县委组织部审批",
    "step_days": "每级审批期限（天）",
    "correction_months": "限期改正期限（月）",
}


@dataclass(frozen=True)
class GradingPolicy:
    """Every number of DOMAIN.md's evaluation rules. Shares are `Fraction`s in [0, 1];
    "min" thresholds are met at equality (>=), "max" ones too (<=); the two candidate
    shares and the turnout must be exceeded (>)."""

    unqualified_share: Fraction = Fraction(1, 3)
    unqualified_plus_basic_share: Fraction = Fraction(1, 2)
    second_year_basic: bool = True
    excellent_min: Fraction = Fraction(3, 5)
    excellent_max_unqualified: Fraction = Fraction(1, 10)
    qualified_min: Fraction = Fraction(7, 10)
    qualified_max_unqualified: Fraction = Fraction(1, 5)
    basic_min: Fraction = Fraction(1, 2)
    basic_max_unqualified: Fraction = Fraction(1, 3)
    excellent_quota: Fraction | None = Fraction(1, 3)
    turnout_min: Fraction = Fraction(1, 2)
    secrecy_threshold: int = 5
    notice_days: int = 5
    period_months: int = 6
    route_to_county: bool = False
    step_days: int = 7
    correction_months: int = 6

    def __hash__(self) -> int:
        # Remembered: `propose` is memoized on (tally, policy), and hashing ten
        # Fractions for each of a county's 40,000 tallies was a quarter of its close.
        cached: int | None = self.__dict__.get("_hash")
        if cached is None:
            cached = hash(tuple(getattr(self, f.name) for f in fields(self)))
            object.__setattr__(self, "_hash", cached)
        return cached

    def to_json(self) -> dict[str, Any]:
        """Shares as "n/d" strings (exact), the rest as they are."""
        out: dict[str, Any] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            out[f.name] = _fraction_text(value) if isinstance(value, Fraction) else value
        return out

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> GradingPolicy:
        """The policy a stored (or sent) mapping describes; a missing key takes the
        default (a value added to the policy later reads old versions as before).
        Raises `ValueError` on an unknown key or a value of the wrong form."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown policy fields: {unknown}")
        values: dict[str, Any] = {}
        for name, value in data.items():
            if name == "excellent_quota" and value is None:
                values[name] = None
            elif name in SHARE_FIELDS or name == "excellent_quota":
                try:
                    values[name] = parse_share(value)
                except ValueError as exc:
                    raise ValueError(f"{name}: {exc}") from exc
            elif name in ("second_year_basic", "route_to_county"):
                if not isinstance(value, bool):
                    raise ValueError(f"{name}: must be true or false")
                values[name] = value
            else:
                if isinstance(value, bool) or not isinstance(value, int):
                    raise ValueError(f"{name}: must be an integer")
                values[name] = value
        return cls(**values)


DEFAULT_POLICY = GradingPolicy()


def _fraction_text(value: Fraction) -> str:
    return f"{value.numerator}/{value.denominator}"


def parse_share(value: Any) -> Fraction:
    """A share written "2/3", "0.6", "60%" or as an int; never a float (0.6 as a binary
    float is not 3/5). Raises `ValueError`."""
    if isinstance(value, Fraction):
        return value
    if isinstance(value, bool) or isinstance(value, float):
        raise ValueError('shares are written as text such as "2/3" or "0.6"')
    if isinstance(value, int):
        return Fraction(value)
    if not isinstance(value, str):
        raise ValueError('shares are written as text such as "2/3" or "0.6"')
    text = value.strip()
    if len(text) > 40:
        raise ValueError("share too long")
    percent = text.endswith("%")
    if percent:
        text = text[:-1].strip()
    try:
        share = Fraction(text)
    except (ValueError, ZeroDivisionError) as exc:
        raise ValueError(f"not a share: {value!r}") from exc
    return share / 100 if percent else share


@functools.lru_cache(maxsize=65536)
def _share(count: int, total: int) -> Fraction:
    """count / total; rounds have at most a few hundred ballots, so a county's close
    asks for a few thousand distinct shares 160,000 times (Fractions are immutable)."""
    return Fraction(count, total)


@dataclass(frozen=True)
class Tally:
    """One member's ballots (blanks excluded) and what else bends their grade."""

    excellent: int
    qualified: int
    basic: int
    unqualified: int
    last_year_grade: Grade | None = None
    sanction_override: Override = Override.NONE
    organizational_finding: bool = False

    def __post_init__(self) -> None:
        if min(self.excellent, self.qualified, self.basic, self.unqualified) < 0:
            raise ValueError("ballot counts are never negative")

    @property
    def total(self) -> int:
        return self.excellent + self.qualified + self.basic + self.unqualified

    def shares(self) -> dict[str, Fraction] | None:
        """Each grade's share of the non-blank ballots; None without any."""
        total = self.total
        if total == 0:
            return None
        return {
            "excellent": _share(self.excellent, total),
            "qualified": _share(self.qualified, total),
            "basic": _share(self.basic, total),
            "unqualified": _share(self.unqualified, total),
        }


@dataclass(frozen=True)
class Proposal:
    """The grade a tally proposes, the rule that decided (a key of RULE_LABELS), the
    shares it was decided on, and, for an unqualified candidate, which clause of rule 1
    made them one."""

    grade: Grade
    rule: str
    shares: dict[str, Fraction] | None = field(default=None, compare=True)
    candidate: str | None = None

    @property
    def needs_person(self) -> bool:
        """What the branch must look at: no ballots, a quota tie, a policy gap, or an
        unqualified candidate without an organizational finding."""
        return self.grade is Grade.NEEDS_DECISION or self.rule == "no_finding_basic"


def _at_least(count: int, total: int, share: Fraction) -> bool:
    """count / total >= share, compared in integers (a county's close grades 40,000
    tallies: Fraction arithmetic was most of its Python time)."""
    return count * share.denominator >= share.numerator * total


def _more_than(count: int, total: int, share: Fraction) -> bool:
    """count / total > share, in integers."""
    return count * share.denominator > share.numerator * total


def _band(tally: Tally, policy: GradingPolicy, *, skip_excellent: bool) -> str:
    """The first of rules 2, 3, 4 that holds ("excellent", "qualified", "basic"), or
    "no_rule"; `tally` has ballots (total > 0)."""
    e, q, b, u, n = tally.excellent, tally.qualified, tally.basic, tally.unqualified, tally.total
    if (
        not skip_excellent
        and _at_least(e, n, policy.excellent_min)
        and not _more_than(u, n, policy.excellent_max_unqualified)
    ):
        return "excellent"
    if _at_least(e + q, n, policy.qualified_min) and not _more_than(
        u, n, policy.qualified_max_unqualified
    ):
        return "qualified"
    if _at_least(e + q + b, n, policy.basic_min) and not _more_than(
        u, n, policy.basic_max_unqualified
    ):
        return "basic"
    return "no_rule"


_BAND_GRADES = {
    "excellent": Grade.EXCELLENT,
    "qualified": Grade.QUALIFIED,
    "basic": Grade.BASIC,
    "no_rule": Grade.NEEDS_DECISION,
}


# Pure and over frozen values, so remembered: a county's 40,000 tallies repeat (7,455
# distinct in the benchmark's random half-year; far fewer where most are 合格).
@functools.lru_cache(maxsize=65536)
def propose(tally: Tally, policy: GradingPolicy) -> Proposal:
    """The grade DOMAIN.md's rules give `tally` under `policy` (see the module text)."""
    shares = tally.shares()
    override = tally.sanction_override
    if override is Override.NOT_EVALUATED:
        return Proposal(Grade.NOT_GRADED, "not_evaluated", shares)
    if override is Override.UNQUALIFIED:
        return Proposal(Grade.UNQUALIFIED, "sanction_unqualified", shares)
    if override is Override.COMMENT_ONLY:
        return Proposal(Grade.NOT_GRADED, "comment_only", shares)
    if shares is None:
        return Proposal(Grade.NEEDS_DECISION, "no_ballots", None)
    skip = override is Override.NOT_EXCELLENT
    band = _band(tally, policy, skip_excellent=skip)
    total, unqualified = tally.total, tally.unqualified
    candidate: str | None = None
    if _more_than(unqualified, total, policy.unqualified_share):
        candidate = "unqualified_share"
    elif _more_than(unqualified + tally.basic, total, policy.unqualified_plus_basic_share):
        candidate = "unqualified_basic_share"
    elif policy.second_year_basic and band == "basic" and tally.last_year_grade is Grade.BASIC:
        candidate = "second_year_basic"
    if candidate is not None:
        if tally.organizational_finding:
            return Proposal(Grade.UNQUALIFIED, candidate, shares, candidate)
        return Proposal(Grade.BASIC, "no_finding_basic", shares, candidate)
    rule = band
    if skip and band != "no_rule" and _band(tally, policy, skip_excellent=False) == "excellent":
        rule = "sanction_not_excellent"
    return Proposal(_BAND_GRADES[band], rule, shares)


def override_for(sanction_this_year: str | None, two_year_probation_last_year: bool) -> Override:
    """The override of a sanction decided in the round's year and/or a 留党察看二年 of
    the year before, as `service.sanctions.rules.grade_override` decides it (the
    preview's way of saying what a round reads from the ledger)."""
    from datetime import date

    from service.sanctions.rules import Sanction, SanctionKind, grade_override

    sanctions = []
    if sanction_this_year is not None:
        sanctions.append(Sanction(SanctionKind(sanction_this_year).value, date(2001, 7, 1)))
    if two_year_probation_last_year:
        sanctions.append(Sanction(SanctionKind.PROBATION_TWO_YEARS.value, date(2000, 7, 1)))
    return grade_override(sanctions, 2001)


# --- the excellent quota --------------------------------------------------------------


def quota_size(roster: int, policy: GradingPolicy) -> int | None:
    """How many may be excellent: the share of the roster rounded down (a roster of 10
    with 1/3 allows 3); None without a quota."""
    if policy.excellent_quota is None:
        return None
    return math.floor(max(roster, 0) * policy.excellent_quota)


def _rank_key(p: Proposal) -> tuple[Fraction, Fraction]:
    if p.shares is None:
        raise ValueError("an excellent proposal without shares cannot be ranked")
    # Higher excellent share first, then lower unqualified share.
    return (-p.shares["excellent"], p.shares["unqualified"])


def apply_quota(
    proposals: Sequence[Proposal], roster: int, policy: GradingPolicy
) -> list[Proposal]:
    """The proposals, in the same order, with the excellent quota applied (module text):
    past the line -> 合格 ("quota"); a tie across the line -> 待研究 ("quota_tie")."""
    out = list(proposals)
    allowed = quota_size(roster, policy)
    excellent = [i for i, p in enumerate(out) if p.grade is Grade.EXCELLENT]
    if allowed is None or len(excellent) <= allowed:
        return out
    ranked = sorted(excellent, key=lambda i: _rank_key(out[i]))
    tied: tuple[Fraction, Fraction] | None = None
    if allowed > 0:
        last_inside = _rank_key(out[ranked[allowed - 1]])
        if _rank_key(out[ranked[allowed]]) == last_inside:
            tied = last_inside
    for position, i in enumerate(ranked):
        key = _rank_key(out[i])
        if tied is not None and key == tied:
            out[i] = replace(out[i], grade=Grade.NEEDS_DECISION, rule="quota_tie")
        elif position >= allowed:
            out[i] = replace(out[i], grade=Grade.QUALIFIED, rule="quota")
    return out


# --- turnout, secrecy, assembly --------------------------------------------------------


def turnout_ok(voted: int, roster_voters: int, policy: GradingPolicy) -> bool:
    """Whether enough of the roster's voters cast a ballot: strictly more than the
    policy's share (default: more than half)."""
    if roster_voters <= 0:
        return False
    return Fraction(voted, roster_voters) > policy.turnout_min


def counts_visible(ballots_cast: int, policy: GradingPolicy) -> bool:
    """Whether counts and shares may be shown: with fewer ballots than the secrecy
    threshold only the grades are (a small branch's counts would betray votes)."""
    return ballots_cast >= policy.secrecy_threshold


def assembly_quorum(present: int, expected: int) -> bool:
    """The member assembly (支部党员大会) may vote only when more than half of the
    expected voters (应到会有表决权的党员) are present."""
    return expected > 0 and 2 * present > expected


def assembly_passes(votes_for: int, expected: int) -> bool:
    """A decision passes with more than half of the expected voters, not of those present."""
    return expected > 0 and 2 * votes_for > expected


# --- validating a policy --------------------------------------------------------------


def validate_policy(policy: GradingPolicy) -> list[str]:
    """The problems of `policy` in Chinese; empty when every value is in range and every
    tally gets exactly one grade.

    Exactly one: the rules are tried in order and the first that holds decides, so no
    tally can get two; what remains to prove is that none gets none. The check is
    exact, over the continuum of shares rather than a sample of ballots: a tally that
    is not an unqualified candidate and meets none of rules 2-4 (rule 2 skipped too,
    for a member under a warning) lies in one of finitely many polytopes of the share
    simplex cut by the linear thresholds, and `_gap` decides whether each is empty by
    maximising the slack of its strict inequalities over its vertices (an exact linear
    programme in Fractions, by vertex enumeration), not a sample of ballot sizes. A
    non-empty one has rational points, so some real tally
    (its shares times a common denominator) falls in it: the problem names one.
    """
    problems = _range_problems(policy)
    if problems:
        return problems
    tally = policy_gap(policy)
    if tally is not None:
        warned = tally.sanction_override is Override.NOT_EXCELLENT
        who = "受警告处分的党员" if warned else "党员"
        problems.append(
            f"评议办法有空档：{who}得票为优秀 {tally.excellent}、合格 {tally.qualified}、"
            f"基本合格 {tally.basic}、不合格 {tally.unqualified} 时不属于任何等次"
        )
    return problems


def policy_gap(policy: GradingPolicy) -> Tally | None:
    """A tally that gets no grade under `policy` (with a warning's override when only a
    warned member would fall through), or None when there is none."""
    for skip_excellent in (False, True):
        witness = _gap(policy, skip_excellent=skip_excellent)
        if witness is not None:
            override = Override.NOT_EXCELLENT if skip_excellent else Override.NONE
            return replace(_tally_of(witness), sanction_override=override)
    return None


def _range_problems(policy: GradingPolicy) -> list[str]:
    problems: list[str] = []
    for name in SHARE_FIELDS:
        value = getattr(policy, name)
        if not isinstance(value, Fraction) or not 0 <= value <= 1:
            problems.append(f"{FIELD_LABELS[name]}应在 0 到 1 之间")
    if policy.turnout_min == 1:
        problems.append(f"{FIELD_LABELS['turnout_min']}须小于 1（参评率须超过此比例）")
    quota = policy.excellent_quota
    if quota is not None and (not isinstance(quota, Fraction) or not 0 < quota <= 1):
        problems.append(f"{FIELD_LABELS['excellent_quota']}应大于 0 且不超过 1（不限名额请留空）")
    if not 1 <= policy.secrecy_threshold <= MAX_SECRECY_THRESHOLD:
        problems.append(
            f"{FIELD_LABELS['secrecy_threshold']}应在 1 到 {MAX_SECRECY_THRESHOLD} 之间"
        )
    if not 1 <= policy.notice_days <= MAX_NOTICE_DAYS:
        problems.append(f"{FIELD_LABELS['notice_days']}应在 1 到 {MAX_NOTICE_DAYS} 天之间")
    if policy.period_months not in PERIOD_MONTHS:
        problems.append(f"{FIELD_LABELS['period_months']}只能为 6（每半年）或 12（每年）")
    if not 1 <= policy.step_days <= MAX_STEP_DAYS:
        problems.append(f"{FIELD_LABELS['step_days']}应在 1 到 {MAX_STEP_DAYS} 天之间")
    if not 1 <= policy.correction_months <= MAX_CORRECTION_MONTHS:
        problems.append(
            f"{FIELD_LABELS['correction_months']}应在 1 到 {MAX_CORRECTION_MONTHS} 个月之间"
        )
    return problems


# A linear constraint over the variables (b, u, t): coefficients and bound, a . x <= c.
_Constraint = tuple[tuple[Fraction, Fraction, Fraction], Fraction]


def _le(b: Any, u: Any, c: Any, *, strict: bool = False) -> _Constraint:
    """b*B + u*U <= c; a strict '<' becomes '+ t <= c' with the slack t maximised."""
    return ((Fraction(b), Fraction(u), Fraction(1 if strict else 0)), Fraction(c))


def _gap(policy: GradingPolicy, *, skip_excellent: bool) -> tuple[Fraction, ...] | None:
    """Shares (e, q, b, u) of a tally that is no unqualified candidate and meets none of
    rules 2-4 (rule 2 left out when `skip_excellent`), or None when there is none.

    Only rule 2 looks at the excellent share alone, so a gap may take e = 0 (all of
    e + q = 1 - b - u as qualified), which fails rule 2 whenever its minimum is above 0:
    the search is over (b, u). Each failed rule is a disjunction of two strict
    inequalities; each choice of one per rule gives a polytope, non-empty iff the
    largest slack t of its strict inequalities is > 0."""
    p = policy
    # Not a candidate (the second-year clause only ever turns a basic grade into a
    # candidate, so it opens no gap): u <= 1/3 and u + b <= 1/2.
    base = [
        _le(-1, 0, 0),  # b >= 0
        _le(0, -1, 0),  # u >= 0
        _le(1, 1, 1),  # e + q = 1 - b - u >= 0
        _le(0, 1, p.unqualified_share),
        _le(1, 1, p.unqualified_plus_basic_share),
        ((Fraction(0), Fraction(0), Fraction(1)), Fraction(1)),  # t <= 1 (bounded)
        ((Fraction(0), Fraction(0), Fraction(-1)), Fraction(1)),  # t >= -1
    ]
    # Each rule fails through one of its conditions (strict):
    # rule 2: e < excellent_min (with e = 0: whenever the minimum is above 0), or
    #         u > max_unqualified;
    # rule 3: e + q < qualified_min (1 - b - u < m  <=>  -b - u < m - 1), or u > max;
    # rule 4: e + q + b < basic_min (-u < m - 1), or u > max.
    fails: list[tuple[_Constraint, ...]] = []
    if not skip_excellent:
        rule2 = [_le(0, -1, -p.excellent_max_unqualified, strict=True)]
        if p.excellent_min > 0:
            rule2.append(_le(0, 0, 1, strict=True))  # 0 + t <= 1: always, slack 1
        fails.append(tuple(rule2))
    fails.append(
        (
            _le(-1, -1, p.qualified_min - 1, strict=True),
            _le(0, -1, -p.qualified_max_unqualified, strict=True),
        )
    )
    fails.append(
        (
            _le(0, -1, p.basic_min - 1, strict=True),
            _le(0, -1, -p.basic_max_unqualified, strict=True),
        )
    )
    for choice in itertools.product(*fails):
        found = _max_slack([*base, *choice])
        if found is not None:
            b, u = found
            return (Fraction(0), 1 - b - u, b, u)
    return None


def _max_slack(constraints: list[_Constraint]) -> tuple[Fraction, Fraction] | None:
    """A point (b, u) where every constraint holds with t > 0, if any: the feasible set
    is a bounded polytope in (b, u, t), so the largest t is at a vertex, where three
    constraints are tight. Vertex enumeration (at most C(10, 3) = 120 3x3 systems),
    exact: each constraint is scaled to integers and solved by Cramer's rule."""
    rows = [_integral(a, c) for a, c in constraints]
    best: Fraction | None = None
    best_point: tuple[Fraction, Fraction] | None = None
    for tight in itertools.combinations(rows, 3):
        d = _det([r[:3] for r in tight])
        if d == 0:
            continue
        xs = [_det([(*r[:col], r[3], *r[col + 1 : 3]) for r in tight]) for col in range(3)]
        # a . (xs / d) <= c  <=>  a . xs <= c * d, the sense flipping when d < 0
        sign = 1 if d > 0 else -1
        if all(
            sign * (r[0] * xs[0] + r[1] * xs[1] + r[2] * xs[2]) <= sign * r[3] * d for r in rows
        ):
            t = Fraction(xs[2], d)
            if best is None or t > best:
                best, best_point = t, (Fraction(xs[0], d), Fraction(xs[1], d))
    if best is None or best <= 0:
        return None
    return best_point


def _integral(a: tuple[Fraction, ...], c: Fraction) -> tuple[int, ...]:
    """The constraint a . x <= c times the common denominator of its numbers."""
    k = math.lcm(*(v.denominator for v in (*a, c)))
    return tuple(int(v * k) for v in (*a, c))


def _det(m: Sequence[Sequence[int]]) -> int:
    return (
        m[0][0] * (m[1][1] * m[2][2] - m[1][2] * m[2][1])
        - m[0][1] * (m[1][0] * m[2][2] - m[1][2] * m[2][0])
        + m[0][2] * (m[1][0] * m[2][1] - m[1][1] * m[2][0])
    )


def _tally_of(shares: tuple[Fraction, ...]) -> Tally:
    """Ballot counts with exactly these shares (the smallest common denominator)."""
    denominator = math.lcm(*(s.denominator for s in shares))
    e, q, b, u = (int(s * denominator) for s in shares)
    return Tally(e, q, b, u)
