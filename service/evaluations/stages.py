"""The stages of an evaluation round (评议阶段) and the moves between them. Pure: no I/O.

"四评三定一公示" as a line of stages:

    draft 未启动 -> self_evaluation 个人自评 -> balloting 民主测评 -> tallied 已计票
    -> proposed 支委会初定 -> assembly 党员大会审定 -> superior_review 上级党组织审批
    -> public_notice 公示 -> final 结束

Each forward move goes only from the stage right before it and needs one
`EvaluationAction` at the round's branch (the branch secretary's `evaluation:run`;
superior_review -> public_notice is made when the approval chain approves, by the
approvals handler, so it needs the deciding step rather than a role here).

`send_back` moves a round one stage back; it needs `evaluation:send_back` (a superior:
the committee secretary, the county organizer). It never reopens balloting once the
ballots are counted (tallied -> balloting would let a second ballot follow
visible counts), and a final round stays final.

Nor is a round sent back once the result is with the superior (superior_review,
public_notice and after): there an approval request is open or decided, and moving the
round under it would strand the request (no decision could move the round, and a
resubmission would meet the open request). While the superior holds the matter its
way back is the approval decision itself: reject with reasons (back to the committee,
支委会初定) or return for more material (补充材料), both in `service.approvals`.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from service.evaluations.actions import EvaluationAction
from service.evaluations.errors import ROUND_PERIOD_INVALID


class Stage(StrEnum):
    DRAFT = "draft"
    SELF_EVALUATION = "self_evaluation"
    BALLOTING = "balloting"
    TALLIED = "tallied"
    PROPOSED = "proposed"
    ASSEMBLY = "assembly"
    SUPERIOR_REVIEW = "superior_review"
    PUBLIC_NOTICE = "public_notice"
    FINAL = "final"


ORDER: tuple[Stage, ...] = tuple(Stage)

STAGE_LABELS: dict[Stage, str] = {
    Stage.DRAFT: "未启动",
    Stage.SELF_EVALUATION: "个人自评",
    Stage.BALLOTING: "民主测评",
    Stage.TALLIED: "已计票",
    Stage.PROPOSED: "支委会初定",
    Stage.ASSEMBLY: "党员大会审定",
    Stage.SUPERIOR_REVIEW: "上级党组织审批",
    Stage.PUBLIC_NOTICE: "公示",
    Stage.FINAL: "结束",
}

# Stages in which ballots may still arrive: no count exists for anyone.
OPEN_STAGES = frozenset({Stage.DRAFT, Stage.SELF_EVALUATION, Stage.BALLOTING})
# Stages in which a member may write or change their self-evaluation.
SELF_EVALUATION_STAGES = frozenset({Stage.SELF_EVALUATION, Stage.BALLOTING})
# Stages in which the branch may excuse a member (before the roster is counted).
EXCUSE_STAGES = frozenset({Stage.DRAFT, Stage.SELF_EVALUATION, Stage.BALLOTING})


@dataclass(frozen=True)
class Move:
    """One forward move: from, to, the action it needs at the branch, and whether the
    approvals chain (not a person at the round) makes it."""

    source: Stage
    target: Stage
    action: EvaluationAction
    by_approval: bool = False


MOVES: dict[Stage, Move] = {
    m.source: m
    for m in (
        Move(Stage.DRAFT, Stage.SELF_EVALUATION, EvaluationAction.RUN),
        Move(Stage.SELF_EVALUATION, Stage.BALLOTING, EvaluationAction.RUN),
        Move(Stage.BALLOTING, Stage.TALLIED, EvaluationAction.RUN),
        Move(Stage.TALLIED, Stage.PROPOSED, EvaluationAction.RUN),
        Move(Stage.PROPOSED, Stage.ASSEMBLY, EvaluationAction.RUN),
        Move(Stage.ASSEMBLY, Stage.SUPERIOR_REVIEW, EvaluationAction.RUN),
        Move(Stage.SUPERIOR_REVIEW, Stage.PUBLIC_NOTICE, EvaluationAction.RUN, by_approval=True),
        Move(Stage.PUBLIC_NOTICE, Stage.FINAL, EvaluationAction.RUN),
    )
}

# Where send_back goes from each stage that allows it: only before the result goes to
# the superior (from superior_review on, the approval decision is the way back).
SEND_BACK: dict[Stage, Stage] = {
    Stage.SELF_EVALUATION: Stage.DRAFT,
    Stage.BALLOTING: Stage.SELF_EVALUATION,
    Stage.PROPOSED: Stage.TALLIED,
    Stage.ASSEMBLY: Stage.PROPOSED,
}
# Stages where the superior holds the matter through an approval request.
WITH_SUPERIOR = frozenset({Stage.SUPERIOR_REVIEW, Stage.PUBLIC_NOTICE, Stage.FINAL})
SEND_BACK_ACTION = EvaluationAction.SEND_BACK


def next_stage(stage: Stage) -> Stage | None:
    """The stage after `stage`; None after final."""
    move = MOVES.get(stage)
    return move.target if move is not None else None


def move_to(source: Stage, target: Stage) -> Move | None:
    """The move from `source` to `target`, or None when it is not the next stage.

    >>> move_to(Stage.DRAFT, Stage.SELF_EVALUATION).action.value
    'evaluation:run'
    >>> move_to(Stage.DRAFT, Stage.BALLOTING) is None
    True
    """
    move = MOVES.get(source)
    return move if move is not None and move.target is target else None


def send_back_target(stage: Stage) -> Stage | None:
    """Where a superior's send_back takes a round in `stage`; None where it is refused.

    >>> send_back_target(Stage.ASSEMBLY).value
    'proposed'
    >>> send_back_target(Stage.TALLIED) is None, send_back_target(Stage.FINAL) is None
    (True, True)
    >>> send_back_target(Stage.SUPERIOR_REVIEW) is None  # reject or return instead
    True
    """
    return SEND_BACK.get(stage)


def is_closed(stage: Stage) -> bool:
    """Whether balloting has closed (the counts are in the entries)."""
    return stage not in OPEN_STAGES


def at_or_after(stage: Stage, other: Stage) -> bool:
    return ORDER.index(stage) >= ORDER.index(other)


@dataclass(frozen=True)
class Period:
    """A half-year of evaluation: `year` and `half` (1: January–June, 2: July–December)."""

    year: int
    half: int

    def checked(self) -> Period:
        if not 2000 <= self.year <= 2100 or self.half not in (1, 2):
            raise ROUND_PERIOD_INVALID.error()
        return self

    @property
    def label(self) -> str:
        return f"{self.year}年{'上' if self.half == 1 else '下'}半年"
