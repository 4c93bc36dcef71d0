"""The pure rules of disposal cases: the state machine, which disposal fits which
facts, deadlines and missed education weeks (worked examples + hypothesis)."""

from __future__ import annotations

import doctest
from datetime import date, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import service.cases.rules as rules_module
from service.cases.rules import (
    APPROVED_TO,
    MOVES,
    CaseEvent,
    CaseOrigin,
    CaseOutcome,
    CaseStage,
    Disposal,
    MoveRefused,
    allowed_events,
    correction_deadline,
    disposal_unfit,
    double_handling,
    left_by,
    member_status,
    missed_weeks,
    move,
)
from service.clock import business_today
from service.members.rules import MemberStatus, may_move

E = CaseEvent
S = CaseStage


def test_doctests() -> None:
    assert doctest.testmod(rules_module).failed == 0


def test_labels_cover_every_member() -> None:
    assert set(rules_module.ORIGIN_LABELS) == set(CaseOrigin)
    assert set(rules_module.DISPOSAL_LABELS) == set(Disposal)
    assert set(rules_module.STAGE_LABELS) == set(CaseStage)
    assert set(rules_module.OUTCOME_LABELS) == set(CaseOutcome)
    assert set(rules_module.RECORD_KIND_LABELS) == set(rules_module.RecordKind)


# --- worked examples -------------------------------------------------------------------


def run(origin: CaseOrigin, steps: list[tuple[CaseEvent, Disposal | None]]) -> CaseStage:
    stage, disposal = S.OPENED, None
    for event, chosen in steps:
        if chosen is not None:
            disposal = chosen
        stage, _ = move(stage, event, origin=origin, disposal=disposal)
    return stage


def test_the_long_road_correction_fails_persuasion_refused_removal() -> None:
    o = CaseOrigin.UNQUALIFIED_GRADE
    path = [
        (E.FILING_APPROVED, None),
        (E.INVESTIGATE, None),
        (E.TALK, None),
        (E.ASSIGN_EDUCATORS, None),
        (E.RE_EVALUATE, None),
        (E.PROPOSE, Disposal.CORRECTION),
        (E.PRE_REVIEW_DONE, None),
        (E.ASSEMBLY_PASSED, None),
        (E.SUBMIT, None),
        (E.APPROVED, None),
    ]
    assert run(o, path) is S.CORRECTING
    path += [(E.NOT_CORRECTED, None), (E.PROPOSE, Disposal.PERSUASION)]
    assert run(o, path) is S.PROPOSED
    path += [(E.PRE_REVIEW_DONE, None), (E.ASSEMBLY_PASSED, None), (E.SUBMIT, None)]
    path += [(E.APPROVED, None)]
    assert run(o, path) is S.PERSUADING
    path += [(E.PERSUASION_REFUSED, Disposal.REMOVAL)]
    assert run(o, path) is S.PROPOSED
    path += [(E.PRE_REVIEW_DONE, None), (E.ASSEMBLY_PASSED, None), (E.SUBMIT, None)]
    stage, outcome = move(S.IN_APPROVAL, E.APPROVED, origin=o, disposal=Disposal.REMOVAL)
    assert run(o, path) is S.IN_APPROVAL
    assert (stage, outcome) == (S.CLOSED, CaseOutcome.REMOVED)


def test_a_withdrawal_application_skips_education() -> None:
    o = CaseOrigin.WITHDRAWAL_APPLICATION
    assert run(o, [(E.FILING_APPROVED, None), (E.PROPOSE, Disposal.WITHDRAWAL)]) is S.PROPOSED
    # an unqualified grade must go through education first
    with pytest.raises(MoveRefused):
        move(S.FILED, E.PROPOSE, origin=CaseOrigin.UNQUALIFIED_GRADE, disposal=Disposal.REMOVAL)
    stage, outcome = move(S.IN_APPROVAL, E.APPROVED, origin=o, disposal=Disposal.WITHDRAWAL)
    assert (stage, outcome) == (S.CLOSED, CaseOutcome.WITHDREW)
    assert left_by(outcome, Disposal.WITHDRAWAL) == "withdrawal"


def test_out_of_order_moves_are_refused() -> None:
    o = CaseOrigin.LAPSE_FLAG
    for stage, event in [
        (S.OPENED, E.INVESTIGATE),  # not filed yet
        (S.EDUCATING, E.PROPOSE),  # re-evaluate first
        (S.PROPOSED, E.ASSEMBLY_PASSED),  # pre-review first
        (S.ASSEMBLY_VOTED, E.DROP),  # too late to drop
        (S.CLOSED, E.TALK),
        (S.CORRECTING, E.APPROVED),
    ]:
        with pytest.raises(MoveRefused):
            move(stage, event, origin=o, disposal=Disposal.REMOVAL)


def test_which_disposal_fits() -> None:
    U = CaseOrigin.UNQUALIFIED_GRADE
    assert disposal_unfit(Disposal.CORRECTION, origin=U, wants_to_stay=True) is None
    assert disposal_unfit(Disposal.CORRECTION, origin=U, wants_to_stay=False) is not None
    assert (
        disposal_unfit(Disposal.CORRECTION, origin=U, wants_to_stay=True, correction_failed=True)
        is not None
    )
    assert disposal_unfit(Disposal.PERSUASION, origin=U, wants_to_stay=False) is None
    assert disposal_unfit(Disposal.PERSUASION, origin=U, wants_to_stay=True) is not None
    assert (
        disposal_unfit(Disposal.PERSUASION, origin=U, wants_to_stay=True, correction_failed=True)
        is None
    )
    assert disposal_unfit(Disposal.REMOVAL, origin=U, wants_to_stay=False) is not None
    assert (
        disposal_unfit(Disposal.REMOVAL, origin=U, wants_to_stay=False, persuasion_refused=True)
        is None
    )
    assert (
        disposal_unfit(Disposal.REMOVAL, origin=CaseOrigin.LAPSE_FLAG, wants_to_stay=True) is None
    )
    assert disposal_unfit(Disposal.WITHDRAWAL, origin=U, wants_to_stay=False) is not None
    W = CaseOrigin.WITHDRAWAL_APPLICATION
    assert disposal_unfit(Disposal.WITHDRAWAL, origin=W, wants_to_stay=False) is None
    assert disposal_unfit(Disposal.REMOVAL, origin=W, wants_to_stay=False) is not None
    assert (
        disposal_unfit(Disposal.CORRECTION, origin=CaseOrigin.SERIOUS_PROBLEMS, wants_to_stay=True)
        is not None
    )
    assert (
        disposal_unfit(Disposal.PERSUASION, origin=CaseOrigin.OUT_OF_CONTACT, wants_to_stay=False)
        is not None
    )


def test_correction_deadline_default_six_months_at_most_twelve() -> None:
    assert correction_deadline(date(2026, 8, 31)) == date(2027, 2, 28)
    assert correction_deadline(date(2026, 1, 15), 12) == date(2027, 1, 15)
    with pytest.raises(ValueError):
        correction_deadline(date(2026, 1, 15), 13)
    with pytest.raises(ValueError):
        correction_deadline(date(2026, 1, 15), 0)


def test_missed_weeks_count_only_finished_weeks() -> None:
    start = date(2026, 3, 2)
    # week 1 has a session on its last day, week 2 none, week 3 not over yet
    sessions = [date(2026, 3, 8)]
    assert missed_weeks(start, sessions, date(2026, 3, 16)) == [
        (date(2026, 3, 9), date(2026, 3, 15))
    ]
    assert missed_weeks(start, sessions, date(2026, 3, 15)) == []
    assert missed_weeks(start, [], date(2026, 3, 9)) == [(date(2026, 3, 2), date(2026, 3, 8))]


def test_business_dates_are_shanghai_days() -> None:
    from datetime import UTC, datetime

    assert business_today(datetime(2026, 3, 8, 15, 59, tzinfo=UTC)) == date(2026, 3, 8)
    assert business_today(datetime(2026, 3, 8, 16, 0, tzinfo=UTC)) == date(2026, 3, 9)


def test_double_handling_window() -> None:
    today = date(2026, 6, 1)
    U = CaseOrigin.UNQUALIFIED_GRADE
    assert double_handling(U, [date(2025, 6, 1)], today)  # exactly 12 months: inside
    assert not double_handling(U, [date(2025, 5, 31)], today)
    assert not double_handling(CaseOrigin.WITHDRAWAL_APPLICATION, [today], today)
    assert not double_handling(U, [], today)


# --- properties ------------------------------------------------------------------------


@st.composite
def walks(draw: st.DrawFn) -> tuple[CaseOrigin, list[int]]:
    origin = draw(st.sampled_from(list(CaseOrigin)))
    choices = draw(st.lists(st.integers(min_value=0, max_value=1000), max_size=60))
    return origin, choices


def _fitting(origin: CaseOrigin, facts: dict[str, bool]) -> list[Disposal]:
    return [
        d
        for d in Disposal
        if disposal_unfit(
            d,
            origin=origin,
            wants_to_stay=facts["stay"],
            correction_failed=facts["failed"],
            persuasion_refused=facts["refused"],
        )
        is None
    ]


@settings(max_examples=300, deadline=None)
@given(walks(), st.booleans())
def test_no_sequence_of_allowed_moves_reaches_an_undefined_state(
    walk: tuple[CaseOrigin, list[int]], stay: bool
) -> None:
    """Walk the machine choosing only allowed events (and, for a proposal, a disposal
    that fits): every stage reached is defined, every allowed event has a target, a
    closed case has an outcome and nothing leaves it, and the member's status follows
    the ledger's own status moves and ends consistent with the outcome."""
    origin, choices = walk
    stage, disposal, outcome = S.OPENED, None, None
    facts = {"stay": stay, "failed": False, "refused": False}
    status = MemberStatus.ACTIVE
    for choice in choices:
        events = sorted(allowed_events(stage, origin))
        if stage is S.CLOSED:
            assert events == []
            break
        assert events, f"{stage} is a dead end"
        event = events[choice % len(events)]
        if event is E.PROPOSE:
            fitting = _fitting(origin, facts)
            if not fitting:
                event = E.DROP  # nothing fits (e.g. correction failed, wants to stay)
            else:
                disposal = fitting[choice % len(fitting)]
        if event is E.PERSUASION_REFUSED:
            facts["refused"] = True
        stage, outcome = move(stage, event, origin=origin, disposal=disposal)
        assert stage in set(CaseStage)
        if event is E.PERSUASION_REFUSED:
            disposal = Disposal.REMOVAL
            assert (
                disposal_unfit(disposal, origin=origin, wants_to_stay=stay, persuasion_refused=True)
                is None
            )
        if event is E.NOT_CORRECTED:
            facts["failed"] = True
            disposal = None
        if stage is S.CLOSED:
            assert outcome is not None
        wanted = member_status(stage, outcome, correction_failed=facts["failed"])
        if wanted is not None and MemberStatus(wanted) is not status:
            assert may_move(status, MemberStatus(wanted)), (status, wanted)
            status = MemberStatus(wanted)
    if stage is S.CLOSED:
        expected = {
            CaseOutcome.CORRECTED: MemberStatus.ACTIVE,
            CaseOutcome.REMOVED: MemberStatus.REMOVED,
            CaseOutcome.WITHDREW: MemberStatus.WITHDREW,
            CaseOutcome.DROPPED: MemberStatus.ACTIVE,
        }[outcome]  # type: ignore[index]
        assert status is expected
        gone = left_by(outcome, disposal)
        assert (gone is not None) == (status in (MemberStatus.REMOVED, MemberStatus.WITHDREW))
    elif stage is S.CORRECTING or facts["failed"]:
        assert status is MemberStatus.CORRECTING
    else:
        assert status is MemberStatus.ACTIVE


@given(st.sampled_from(list(CaseStage)), st.sampled_from(list(CaseEvent)))
def test_move_is_the_table(stage: CaseStage, event: CaseEvent) -> None:
    """Outside APPROVED and the short proposals, `move` is exactly `MOVES`."""
    origin = CaseOrigin.LAPSE_FLAG  # not a short origin
    try:
        target, _ = move(stage, event, origin=origin, disposal=Disposal.REMOVAL)
    except MoveRefused:
        assert (stage, event) not in MOVES and not (event is E.APPROVED and stage is S.IN_APPROVAL)
    else:
        expected = APPROVED_TO[Disposal.REMOVAL] if event is E.APPROVED else MOVES[(stage, event)]
        assert target is expected


@given(st.dates(min_value=date(2000, 1, 1), max_value=date(2090, 1, 1)), st.integers(1, 12))
def test_correction_deadline_properties(start: date, months: int) -> None:
    end = correction_deadline(start, months)
    assert end > start
    assert (end.year * 12 + end.month) - (start.year * 12 + start.month) == months
    assert end.day <= start.day


@given(
    st.dates(min_value=date(2020, 1, 1), max_value=date(2030, 1, 1)),
    st.sets(st.integers(0, 120), max_size=30),
    st.integers(0, 120),
)
def test_missed_weeks_properties(start: date, offsets: set[int], span: int) -> None:
    sessions = [start + timedelta(days=o) for o in offsets]
    until = start + timedelta(days=span)
    missed = missed_weeks(start, sessions, until)
    weeks = rules_module.education_weeks(start, until)
    assert len(weeks) == span // 7  # a week counts once its last day is over
    for first, last in missed:
        assert (last - first).days == 6 and last < until
        assert not any(first <= s <= last for s in sessions)
    held = {w for w in weeks if any(w[0] <= s <= w[1] for s in sessions)}
    assert set(missed) == set(weeks) - held
