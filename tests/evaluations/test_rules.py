"""The grading rules of democratic evaluation (service/evaluations/rules.py): a worked
example of every rule of DOMAIN.md on each side of its boundary, then hypothesis
properties over all tallies and over random policies."""

from __future__ import annotations

from dataclasses import replace
from fractions import Fraction as F

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from service.evaluations.rules import (
    DEFAULT_POLICY,
    GRADE_LABELS,
    GRADE_RANK,
    RULE_LABELS,
    Grade,
    GradingPolicy,
    Proposal,
    Tally,
    apply_quota,
    assembly_passes,
    assembly_quorum,
    counts_visible,
    parse_share,
    policy_gap,
    propose,
    quota_size,
    turnout_ok,
    validate_policy,
)
from service.sanctions.rules import Override

P = DEFAULT_POLICY


def grade(e: int, q: int, b: int, u: int, **more: object) -> tuple[Grade, str]:
    found = propose(Tally(e, q, b, u, **more), P)  # type: ignore[arg-type]
    return found.grade, found.rule


# --- the bands and their boundaries ----------------------------------------------------


def test_excellent_at_exactly_60_percent_and_not_at_59() -> None:
    assert grade(60, 40, 0, 0) == (Grade.EXCELLENT, "excellent")
    assert grade(59, 41, 0, 0) == (Grade.QUALIFIED, "qualified")
    # 599/1000 is 59.9 %: still short of 60 %
    assert grade(599, 401, 0, 0) == (Grade.QUALIFIED, "qualified")


def test_excellent_needs_unqualified_at_most_10_percent() -> None:
    assert grade(60, 30, 0, 10) == (Grade.EXCELLENT, "excellent")  # exactly 10 %
    assert grade(60, 29, 0, 11) == (Grade.QUALIFIED, "qualified")  # 11 %


def test_qualified_at_exactly_70_percent_and_unqualified_at_most_20() -> None:
    assert grade(10, 60, 30, 0) == (Grade.QUALIFIED, "qualified")  # e + q = 70 %
    assert grade(10, 59, 31, 0) == (Grade.BASIC, "basic")  # 69 %
    assert grade(30, 50, 0, 20) == (Grade.QUALIFIED, "qualified")  # u = 20 %
    assert grade(30, 49, 0, 21) == (Grade.BASIC, "basic")  # u = 21 %


def test_basic_band() -> None:
    # e + q + b >= 50 % and u <= 1/3: with the default candidate rules these always
    # hold once rule 1 did not, so rule 4 is what every remaining tally gets
    assert grade(2, 2, 2, 0) == (Grade.BASIC, "basic")
    assert grade(0, 4, 0, 2) == (Grade.BASIC, "basic")  # u exactly 1/3


def test_unqualified_share_exactly_a_third_is_not_a_candidate_just_over_is() -> None:
    assert grade(0, 2, 0, 1) == (Grade.BASIC, "basic")  # 1/3
    assert grade(0, 2, 0, 1, organizational_finding=True) == (Grade.BASIC, "basic")
    # 34/100 > 1/3
    assert grade(0, 66, 0, 34, organizational_finding=True) == (
        Grade.UNQUALIFIED,
        "unqualified_share",
    )
    found = propose(Tally(0, 66, 0, 34), P)
    assert (found.grade, found.rule, found.candidate) == (
        Grade.BASIC,
        "no_finding_basic",
        "unqualified_share",
    )
    assert found.needs_person


def test_unqualified_plus_basic_exactly_half_is_not_a_candidate_over_is() -> None:
    assert grade(5, 0, 3, 2, organizational_finding=True) == (Grade.BASIC, "basic")  # 1/2
    assert grade(4, 0, 4, 2, organizational_finding=True) == (
        Grade.UNQUALIFIED,
        "unqualified_basic_share",
    )
    assert grade(4, 0, 4, 2) == (Grade.BASIC, "no_finding_basic")


def test_organizational_finding_without_a_candidate_changes_nothing() -> None:
    assert grade(8, 2, 0, 0, organizational_finding=True) == (Grade.EXCELLENT, "excellent")


def test_second_consecutive_year_of_basic() -> None:
    last = {"last_year_grade": Grade.BASIC}
    # basic again this year: a candidate
    assert grade(2, 2, 2, 0, **last) == (Grade.BASIC, "no_finding_basic")
    assert grade(2, 2, 2, 0, organizational_finding=True, **last) == (
        Grade.UNQUALIFIED,
        "second_year_basic",
    )
    # qualified this year: no second year of basic
    assert grade(3, 7, 0, 0, organizational_finding=True, **last) == (
        Grade.QUALIFIED,
        "qualified",
    )
    # last year qualified, basic now: the first year of basic
    assert grade(2, 2, 2, 0, last_year_grade=Grade.QUALIFIED, organizational_finding=True) == (
        Grade.BASIC,
        "basic",
    )
    # a county may switch the clause off
    off = replace(P, second_year_basic=False)
    found = propose(Tally(2, 2, 2, 0, organizational_finding=True, **last), off)  # type: ignore[arg-type]
    assert (found.grade, found.rule) == (Grade.BASIC, "basic")


# --- discipline overrides --------------------------------------------------------------


def test_warning_skips_the_excellent_rule() -> None:
    warned = {"sanction_override": Override.NOT_EXCELLENT}
    assert grade(10, 0, 0, 0, **warned) == (Grade.QUALIFIED, "sanction_not_excellent")
    # when rule 2 would not have held anyway, the ordinary rule is named
    assert grade(5, 5, 0, 0, **warned) == (Grade.QUALIFIED, "qualified")
    # rule 1 still comes first
    assert grade(6, 0, 0, 4, organizational_finding=True, **warned) == (
        Grade.UNQUALIFIED,
        "unqualified_share",
    )
    # and rule 4 after rule 3: excellent votes with too many unqualified for rule 3
    assert grade(7, 0, 0, 3, **warned) == (Grade.BASIC, "basic")


def test_serious_sanctions_make_unqualified_whatever_the_votes() -> None:
    found = propose(Tally(10, 0, 0, 0, sanction_override=Override.UNQUALIFIED), P)
    assert (found.grade, found.rule) == (Grade.UNQUALIFIED, "sanction_unqualified")
    assert found.shares == {"excellent": 1, "qualified": 0, "basic": 0, "unqualified": 0}
    # even with no ballots at all
    none = propose(Tally(0, 0, 0, 0, sanction_override=Override.UNQUALIFIED), P)
    assert (none.grade, none.shares) == (Grade.UNQUALIFIED, None)


def test_two_year_probation_year_one_unqualified_year_two_comment_only() -> None:
    from datetime import date

    from service.sanctions.rules import Sanction, SanctionKind, grade_override

    probation = Sanction.decided(SanctionKind.PROBATION_TWO_YEARS, date(2025, 10, 1))
    year1 = Tally(9, 1, 0, 0, sanction_override=grade_override([probation], 2025))
    year2 = Tally(9, 1, 0, 0, sanction_override=grade_override([probation], 2026))
    year3 = Tally(9, 1, 0, 0, sanction_override=grade_override([probation], 2027))
    assert (propose(year1, P).grade, propose(year1, P).rule) == (
        Grade.UNQUALIFIED,
        "sanction_unqualified",
    )
    assert (propose(year2, P).grade, propose(year2, P).rule) == (Grade.NOT_GRADED, "comment_only")
    assert propose(year3, P).grade is Grade.EXCELLENT


def test_expelled_member_is_not_evaluated() -> None:
    found = propose(Tally(1, 0, 0, 0, sanction_override=Override.NOT_EVALUATED), P)
    assert (found.grade, found.rule) == (Grade.NOT_GRADED, "not_evaluated")


def test_no_ballots_needs_a_decision() -> None:
    found = propose(Tally(0, 0, 0, 0, last_year_grade=Grade.BASIC), P)
    assert (found.grade, found.rule, found.shares) == (Grade.NEEDS_DECISION, "no_ballots", None)
    assert found.needs_person


def test_shares_are_exact_fractions() -> None:
    found = propose(Tally(2, 1, 0, 0), P)
    assert found.shares == {
        "excellent": F(2, 3),
        "qualified": F(1, 3),
        "basic": F(0),
        "unqualified": F(0),
    }
    assert all(isinstance(v, F) for v in found.shares.values())


# --- the quota -------------------------------------------------------------------------


def excellent(e: int, u: int = 0, total: int = 100) -> Proposal:
    return propose(Tally(e, total - e - u, 0, u), P)


def test_quota_is_rounded_down() -> None:
    assert quota_size(10, P) == 3
    assert quota_size(9, P) == 3
    assert quota_size(8, P) == 2
    assert quota_size(2, P) == 0
    assert quota_size(10, replace(P, excellent_quota=None)) is None


def test_quota_roster_10_allows_3_and_ranks_by_share_then_fewer_unqualified() -> None:
    proposals = [
        excellent(70),  # 4th
        excellent(90),  # 1st
        excellent(65),  # 6th
        excellent(80, u=5),  # 2nd: 80 % with 5 % unqualified ...
        excellent(66),  # 5th
        excellent(80, u=6),  # ... 3rd: 80 % with 6 %
    ]
    out = apply_quota(proposals, 10, P)
    assert [p.grade for p in out] == [
        Grade.QUALIFIED,
        Grade.EXCELLENT,
        Grade.QUALIFIED,
        Grade.EXCELLENT,
        Grade.QUALIFIED,
        Grade.EXCELLENT,
    ]
    assert [p.rule for p in out] == [
        "quota",
        "excellent",
        "quota",
        "excellent",
        "quota",
        "excellent",
    ]
    # the shares stay with each proposal; only the grade and rule change
    assert out[0].shares == proposals[0].shares


def test_quota_tie_at_the_boundary_goes_to_the_committee() -> None:
    proposals = [excellent(90), excellent(80), excellent(70), excellent(70), excellent(60)]
    out = apply_quota(proposals, 10, P)  # 3 allowed; places 3 and 4 tie
    assert [(p.grade, p.rule) for p in out] == [
        (Grade.EXCELLENT, "excellent"),
        (Grade.EXCELLENT, "excellent"),
        (Grade.NEEDS_DECISION, "quota_tie"),
        (Grade.NEEDS_DECISION, "quota_tie"),
        (Grade.QUALIFIED, "quota"),
    ]


def test_a_tie_wholly_inside_or_outside_the_line_is_no_tie() -> None:
    inside = apply_quota([excellent(90), excellent(90), excellent(80), excellent(70)], 10, P)
    assert [p.grade for p in inside] == [Grade.EXCELLENT] * 3 + [Grade.QUALIFIED]
    outside = apply_quota(
        [excellent(90), excellent(85), excellent(80), excellent(70), excellent(70)], 10, P
    )
    assert [p.rule for p in outside] == ["excellent"] * 3 + ["quota", "quota"]


def test_same_excellent_share_ranked_by_unqualified_share_is_no_tie() -> None:
    out = apply_quota([excellent(90), excellent(80), excellent(70, u=1), excellent(70)], 10, P)
    assert [p.grade for p in out] == [Grade.EXCELLENT] * 2 + [Grade.QUALIFIED, Grade.EXCELLENT]


def test_no_quota_and_within_quota_change_nothing() -> None:
    many = [excellent(90)] * 8
    assert apply_quota(many, 10, replace(P, excellent_quota=None)) == many
    few = [excellent(90), excellent(60), propose(Tally(1, 1, 1, 0), P)]
    assert apply_quota(few, 10, P) == few


def test_quota_of_zero_leaves_nobody_excellent_and_no_tie() -> None:
    out = apply_quota([excellent(90), excellent(90)], 2, P)  # floor(2/3) = 0
    assert [(p.grade, p.rule) for p in out] == [(Grade.QUALIFIED, "quota")] * 2


# --- turnout, secrecy, assembly --------------------------------------------------------


def test_turnout_strictly_more_than_half() -> None:
    assert not turnout_ok(5, 10, P)
    assert turnout_ok(6, 10, P)
    assert turnout_ok(4, 7, P)
    assert not turnout_ok(0, 0, P)
    assert turnout_ok(2, 3, replace(P, turnout_min=F(3, 5)))
    assert not turnout_ok(3, 5, replace(P, turnout_min=F(3, 5)))


def test_secrecy_threshold() -> None:
    assert not counts_visible(4, P)
    assert counts_visible(5, P)
    assert counts_visible(3, replace(P, secrecy_threshold=3))


def test_assembly_quorum_and_pass_count_against_the_expected_voters() -> None:
    assert not assembly_quorum(5, 10)
    assert assembly_quorum(6, 10)
    assert assembly_quorum(4, 7)
    assert not assembly_quorum(0, 0)
    # more than half of the expected, not of those present
    assert not assembly_passes(5, 10)
    assert assembly_passes(6, 10)
    assert not assembly_passes(3, 7)
    assert assembly_passes(4, 7)


# --- the policy ------------------------------------------------------------------------


def test_default_policy_is_valid_and_round_trips_through_json() -> None:
    assert validate_policy(P) == []
    assert policy_gap(P) is None
    assert GradingPolicy.from_json(P.to_json()) == P
    assert P.to_json()["excellent_min"] == "3/5"
    assert GradingPolicy.from_json({}) == P
    assert GradingPolicy.from_json({"excellent_quota": None}).excellent_quota is None


def test_policy_with_a_gap_is_refused_with_an_example() -> None:
    gappy = replace(P, basic_max_unqualified=F(1, 4))  # u in (1/4, 1/3]: no band
    problems = validate_policy(gappy)
    assert len(problems) == 1 and "空档" in problems[0], problems
    witness = policy_gap(gappy)
    assert witness is not None
    assert propose(witness, gappy).rule == "no_rule"


def test_gap_only_for_warned_members_is_found() -> None:
    # Candidates only above 1/2 unqualified; rule 2 takes every u <= 1/2 (any excellent
    # share), rules 3 and 4 stop at 1/3: u in (1/3, 1/2] is graded only by rule 2,
    # which a warning skips.
    only_excellent_covers = replace(
        P,
        unqualified_share=F(1, 2),
        excellent_max_unqualified=F(1, 2),
        excellent_min=F(0),
        basic_max_unqualified=F(1, 3),
    )
    witness = policy_gap(only_excellent_covers)
    assert witness is not None
    assert witness.sanction_override is Override.NOT_EXCELLENT
    assert "受警告处分" in validate_policy(only_excellent_covers)[0]
    assert propose(witness, only_excellent_covers).rule == "no_rule"


@pytest.mark.parametrize(
    ("change", "word"),
    [
        ({"excellent_min": F(3, 2)}, "优秀票最低比例"),
        ({"basic_max_unqualified": F(-1, 3)}, "基本合格等次"),
        ({"excellent_quota": F(0)}, "优秀名额"),
        ({"excellent_quota": F(4, 3)}, "优秀名额"),
        ({"turnout_min": F(1)}, "参评率"),
        ({"notice_days": 0}, "公示天数"),
        ({"notice_days": 31}, "公示天数"),
        ({"period_months": 3}, "评议周期"),
        ({"secrecy_threshold": 0}, "保密人数"),
        ({"step_days": 0}, "审批期限"),
        ({"correction_months": 0}, "限期改正期限"),
        ({"correction_months": 13}, "限期改正期限"),
    ],
)
def test_out_of_range_values_are_refused(change: dict[str, object], word: str) -> None:
    problems = validate_policy(replace(P, **change))  # type: ignore[arg-type]
    assert any(word in p for p in problems), problems


def test_shares_parse_exactly_and_floats_are_refused() -> None:
    assert parse_share("2/3") == F(2, 3)
    assert parse_share("0.6") == F(3, 5)
    assert parse_share("60%") == F(3, 5)
    assert parse_share(1) == 1
    for bad in (0.6, "abc", "1/0", True, None, "9" * 50):
        with pytest.raises(ValueError):
            parse_share(bad)
    with pytest.raises(ValueError):
        GradingPolicy.from_json({"no_such_value": 1})
    with pytest.raises(ValueError):
        GradingPolicy.from_json({"notice_days": "5"})


def test_every_rule_has_a_label_and_every_grade_a_chinese_name() -> None:
    assert set(GRADE_LABELS) == set(Grade)
    assert GRADE_LABELS[Grade.BASIC] == "基本合格"
    for rule in ("excellent", "no_finding_basic", "quota_tie", "comment_only"):
        assert rule in RULE_LABELS


# --- properties ------------------------------------------------------------------------

counts = st.integers(min_value=0, max_value=60)
overrides = st.sampled_from(list(Override))
last_years = st.sampled_from([None, *GRADE_RANK])


@st.composite
def tallies(draw: st.DrawFn) -> Tally:
    return Tally(
        draw(counts),
        draw(counts),
        draw(counts),
        draw(counts),
        last_year_grade=draw(last_years),
        sanction_override=draw(overrides),
        organizational_finding=draw(st.booleans()),
    )


@given(tallies())
def test_every_tally_gets_exactly_one_grade_under_the_default(tally: Tally) -> None:
    found = propose(tally, P)
    assert found.rule in RULE_LABELS
    assert found.rule != "no_rule"
    if found.grade is Grade.NEEDS_DECISION:
        assert found.rule == "no_ballots" and tally.total == 0
    if tally.total > 0 and tally.sanction_override in (Override.NONE, Override.NOT_EXCELLENT):
        assert found.grade in GRADE_RANK  # one of the four grades
    # deterministic: asked again, the same single answer
    assert propose(tally, P) == found


@given(tallies())
def test_adding_an_unqualified_vote_never_raises_a_grade(tally: Tally) -> None:
    before = propose(tally, P)
    after = propose(replace(tally, unqualified=tally.unqualified + 1), P)
    if before.grade in GRADE_RANK:
        assert after.grade in GRADE_RANK
        assert GRADE_RANK[after.grade] <= GRADE_RANK[before.grade], (before, after)


shares = st.fractions(min_value=0, max_value=1, max_denominator=12)


@st.composite
def quota_cases(draw: st.DrawFn) -> tuple[list[Proposal], int, GradingPolicy]:
    roster = draw(st.integers(min_value=0, max_value=40))
    quota = draw(st.one_of(st.none(), st.fractions(min_value=F(1, 20), max_value=1)))
    proposals = [propose(t, P) for t in draw(st.lists(tallies(), max_size=roster or 1))]
    return proposals, roster, replace(P, excellent_quota=quota)


@given(quota_cases())
def test_the_quota_is_never_exceeded_and_only_excellent_ones_move(
    case: tuple[list[Proposal], int, GradingPolicy],
) -> None:
    proposals, roster, policy = case
    out = apply_quota(proposals, roster, policy)
    assert len(out) == len(proposals)
    allowed = quota_size(roster, policy)
    if allowed is not None:
        assert sum(p.grade is Grade.EXCELLENT for p in out) <= allowed
    for before, after in zip(proposals, out, strict=True):
        if before.grade is not Grade.EXCELLENT:
            assert after == before
        elif after != before:
            assert (after.grade, after.rule) in {
                (Grade.QUALIFIED, "quota"),
                (Grade.NEEDS_DECISION, "quota_tie"),
            }
            assert after.shares == before.shares
    # a tie is never left half decided: tied keys are all pending or none is
    tied = {
        (p.shares["excellent"], p.shares["unqualified"])  # type: ignore[index]
        for p in out
        if p.rule == "quota_tie"
    }
    for p in out:
        if p.shares is not None and p.grade in (Grade.EXCELLENT, Grade.QUALIFIED):
            assert (p.shares["excellent"], p.shares["unqualified"]) not in tied or p.rule not in (
                "excellent",
                "quota",
            )


@st.composite
def policies(draw: st.DrawFn) -> GradingPolicy:
    return replace(
        P,
        unqualified_share=draw(shares),
        unqualified_plus_basic_share=draw(shares),
        excellent_min=draw(shares),
        excellent_max_unqualified=draw(shares),
        qualified_min=draw(shares),
        qualified_max_unqualified=draw(shares),
        basic_min=draw(shares),
        basic_max_unqualified=draw(shares),
    )


@settings(max_examples=100, deadline=None)
@given(policies(), st.lists(tallies(), min_size=1, max_size=20))
def test_validate_policy_is_exact(policy: GradingPolicy, sample: list[Tally]) -> None:
    """Accepted: no tally of the sample falls through. Refused: the example it names
    really falls through."""
    witness = policy_gap(policy)
    assert bool(validate_policy(policy)) == (witness is not None)
    if witness is None:
        for tally in sample:
            assert propose(tally, policy).rule != "no_rule", (policy, tally)
    else:
        assert propose(witness, policy).rule == "no_rule", (policy, witness)


@settings(max_examples=60, deadline=None)
@given(policies())
def test_validate_policy_agrees_with_an_exhaustive_search_of_small_tallies(
    policy: GradingPolicy,
) -> None:
    """Every composition of up to 10 ballots, and the warned variant: a gap found there
    is a gap validate_policy reports (the converse needs larger tallies, which the exact
    search covers)."""
    falls_through = any(
        propose(Tally(e, q, b, n - e - q - b, sanction_override=o), policy).rule == "no_rule"
        for n in range(1, 11)
        for e in range(n + 1)
        for q in range(n + 1 - e)
        for b in range(n + 1 - e - q)
        for o in (Override.NONE, Override.NOT_EXCELLENT)
    )
    if falls_through:
        assert validate_policy(policy), policy
