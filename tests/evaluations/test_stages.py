"""The stage machine of a round (stages.py): worked examples and properties."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from service.evaluations.actions import EvaluationAction
from service.evaluations.stages import (
    MOVES,
    ORDER,
    STAGE_LABELS,
    WITH_SUPERIOR,
    Stage,
    at_or_after,
    is_closed,
    move_to,
    next_stage,
    send_back_target,
)

stages = st.sampled_from(list(Stage))


def test_the_line_of_stages_and_who_moves_them() -> None:
    assert [s.value for s in ORDER] == [
        "draft",
        "self_evaluation",
        "balloting",
        "tallied",
        "proposed",
        "assembly",
        "superior_review",
        "public_notice",
        "final",
    ]
    assert next_stage(Stage.BALLOTING) is Stage.TALLIED and next_stage(Stage.FINAL) is None
    assert {m.action for m in MOVES.values()} == {EvaluationAction.RUN}
    assert [m.source for m in MOVES.values() if m.by_approval] == [Stage.SUPERIOR_REVIEW]
    assert STAGE_LABELS[Stage.BALLOTING] == "民主测评" and len(STAGE_LABELS) == len(Stage)


def test_send_back_is_one_stage_and_never_reopens_counted_ballots() -> None:
    assert send_back_target(Stage.BALLOTING) is Stage.SELF_EVALUATION
    assert send_back_target(Stage.ASSEMBLY) is Stage.PROPOSED
    for refused in (Stage.DRAFT, Stage.TALLIED, Stage.FINAL):
        assert send_back_target(refused) is None


def test_send_back_stops_where_the_superior_holds_the_matter() -> None:
    # An approval request is open (superior_review) or decided (public_notice): the way
    # back is the decision (reject / return), never a stage move under the request.
    for held in (Stage.SUPERIOR_REVIEW, Stage.PUBLIC_NOTICE, Stage.FINAL):
        assert held in WITH_SUPERIOR
        assert send_back_target(held) is None


@given(stages, stages)
def test_a_move_goes_only_to_the_next_stage(source: Stage, target: Stage) -> None:
    found = move_to(source, target)
    assert (found is not None) == (ORDER.index(target) == ORDER.index(source) + 1)


@given(stages)
def test_send_back_goes_exactly_one_stage_back_and_not_into_open_balloting(stage: Stage) -> None:
    target = send_back_target(stage)
    if target is not None:
        assert ORDER.index(target) == ORDER.index(stage) - 1
        # once counted (closed), never back to where ballots may arrive
        assert not (is_closed(stage) and not is_closed(target))
        # nor out of (or into) the stages where the superior holds the matter
        assert stage not in WITH_SUPERIOR and target not in WITH_SUPERIOR
    # every stage at or after superior review is with the superior
    assert (stage in WITH_SUPERIOR) == at_or_after(stage, Stage.SUPERIOR_REVIEW)
