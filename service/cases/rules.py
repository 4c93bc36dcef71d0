"""Disposal cases (处置不合格党员): the vocabulary and the rules. Pure: no I/O.

The enums below are a contract: cases-periphery (archive, overview, export, demo)
imports them, and their values are stored in `disposal_cases` / `case_records`.
Change a value only with a migration.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, timedelta
from enum import StrEnum

from service.evaluations.rules import DEFAULT_POLICY, MAX_CORRECTION_MONTHS


class CaseOrigin(StrEnum):
    """Where a case starts (DOMAIN.md "Disposal of unqualified members")."""

    UNQUALIFIED_GRADE = "unqualified_grade"
    LAPSE_FLAG = "lapse_flag"
    NOT_REGISTERING = "not_registering"
    WITHDRAWAL_APPLICATION = "withdrawal_application"
    OUT_OF_CONTACT = "out_of_contact"
    SERIOUS_PROBLEMS = "serious_problems"


class Disposal(StrEnum):
    CORRECTION = "correction"
    PERSUASION = "persuasion"
    REMOVAL = "removal"
    WITHDRAWAL = "withdrawal"


class CaseStage(StrEnum):
    """The line of a case; see `MOVES` for the allowed transitions."""

    OPENED = "opened"  # proposed by the branch, advance filing with the committee open
    FILED = "filed"  # the committee has taken the advance filing (事前备案)
    INVESTIGATING = "investigating"  # investigation materials recorded
    TALKED = "talked"  # organizational talk recorded
    EDUCATING = "educating"  # two educators assigned, weekly sessions
    RE_EVALUATED = "re_evaluated"  # re-evaluation after education recorded
    PROPOSED = "proposed"  # the branch proposes a disposal
    PRE_REVIEWED = "pre_reviewed"  # the superior's (and county's) pre-review done
    ASSEMBLY_VOTED = "assembly_voted"  # the assembly passed the disposal
    IN_APPROVAL = "in_approval"  # on the approval chain (or filing, for a withdrawal)
    CORRECTING = "correcting"  # correction approved, deadline running
    PERSUADING = "persuading"  # persuasion approved, the member is being persuaded
    CLOSED = "closed"


class CaseOutcome(StrEnum):
    CORRECTED = "corrected"  # member status back to active
    REMOVED = "removed"  # member status removed, left_by removal
    WITHDREW = "withdrew"  # status withdrew; left_by persuasion or withdrawal
    DROPPED = "dropped"  # the branch found no ground; status untouched


class RecordKind(StrEnum):
    OPENING = "opening"
    FILING = "filing"
    INVESTIGATION = "investigation"
    TALK = "talk"
    EDUCATION_ASSIGNED = "education_assigned"
    RE_EVALUATION = "re_evaluation"
    PROPOSAL = "proposal"
    PRE_REVIEW = "pre_review"
    ASSEMBLY = "assembly"
    APPROVAL = "approval"
    DECISION_TOLD = "decision_told"
    CORRECTION_REVIEW = "correction_review"
    PERSUASION_ANSWER = "persuasion_answer"
    STATEMENT = "statement"
    APPEAL = "appeal"
    ARCHIVE = "archive"
    FOLLOW_UP = "follow_up"
    DROPPED = "dropped"


ORIGIN_LABELS: dict[CaseOrigin, str] = {
    CaseOrigin.UNQUALIFIED_GRADE: "评议为不合格",
    CaseOrigin.LAPSE_FLAG: "“三不”情形经支部确认",
    CaseOrigin.NOT_REGISTERING: "本人不愿登记",
    CaseOrigin.WITHDRAWAL_APPLICATION: "本人申请退党",
    CaseOrigin.OUT_OF_CONTACT: "停止党籍后失联满两年",
    CaseOrigin.SERIOUS_PROBLEMS: "其他严重问题",
}

DISPOSAL_LABELS: dict[Disposal, str] = {
    Disposal.CORRECTION: "限期改正",
    Disposal.PERSUASION: "劝退",
    Disposal.REMOVAL: "除名",
    Disposal.WITHDRAWAL: "退党",
}

STAGE_LABELS: dict[CaseStage, str] = {
    CaseStage.OPENED: "已立案待备案",
    CaseStage.FILED: "已事前备案",
    CaseStage.INVESTIGATING: "调查核实",
    CaseStage.TALKED: "已组织谈话",
    CaseStage.EDUCATING: "教育转化",
    CaseStage.RE_EVALUATED: "已再次评议",
    CaseStage.PROPOSED: "支委会提出处置意见",
    CaseStage.PRE_REVIEWED: "上级已预审",
    CaseStage.ASSEMBLY_VOTED: "党员大会已表决",
    CaseStage.IN_APPROVAL: "上级审批中",
    CaseStage.CORRECTING: "限期改正中",
    CaseStage.PERSUADING: "劝退中",
    CaseStage.CLOSED: "已结案",
}

OUTCOME_LABELS: dict[CaseOutcome, str] = {
    CaseOutcome.CORRECTED: "已改正",
    CaseOutcome.REMOVED: "已除名",
    CaseOutcome.WITHDREW: "已退党",
    CaseOutcome.DROPPED: "已撤销",
}

RECORD_KIND_LABELS: dict[RecordKind, str] = {
    RecordKind.OPENING: "立案",
    RecordKind.FILING: "事前备案",
    RecordKind.INVESTIGATION: "调查核实",
    RecordKind.TALK: "组织谈话",
    RecordKind.EDUCATION_ASSIGNED: "确定教育转化联系人",
    RecordKind.RE_EVALUATION: "再次评议",
    RecordKind.PROPOSAL: "处置意见",
    RecordKind.PRE_REVIEW: "上级预审",
    RecordKind.ASSEMBLY: "党员大会表决",
    RecordKind.APPROVAL: "上级审批",
    RecordKind.DECISION_TOLD: "告知本人",
    RecordKind.CORRECTION_REVIEW: "限期改正期满评定",
    RecordKind.PERSUASION_ANSWER: "劝退答复",
    RecordKind.STATEMENT: "本人陈述",
    RecordKind.APPEAL: "申诉",
    RecordKind.ARCHIVE: "立卷归档",
    RecordKind.FOLLOW_UP: "跟踪帮教",
    RecordKind.DROPPED: "撤销案件",
}


# --- the state machine ------------------------------------------------------------------
#
#   opened --filing approved--> filed --investigate--> investigating --talk--> talked
#   --assign educators--> educating --re-evaluate--> re_evaluated --propose--> proposed
#   --pre-review done--> pre_reviewed --assembly passed--> assembly_voted --submit-->
#   in_approval --approved--> correcting | persuading | closed (removal, withdrawal)
#
#   correcting --corrected--> closed;  correcting --not corrected--> re_evaluated
#     (the next disposal, on the same case; correction may not be proposed again)
#   persuading --accepted--> closed (withdrew);  persuading --refused--> proposed
#     (removal, on the same case: pre-review, assembly and approval again)
#   a refusal anywhere (pre-review disagrees, the assembly does not pass, the approval
#     is rejected) returns the case to the branch: re_evaluated, to propose again.
#   A withdrawal application or a member out of contact skips education: the branch
#     may propose from filed/investigating/talked (`SHORT_ORIGINS`).
#   The branch may drop a case (no ground found) before the assembly has voted.


class CaseEvent(StrEnum):
    FILING_APPROVED = "filing_approved"
    FILING_REJECTED = "filing_rejected"
    INVESTIGATE = "investigate"
    TALK = "talk"
    ASSIGN_EDUCATORS = "assign_educators"
    RE_EVALUATE = "re_evaluate"
    PROPOSE = "propose"
    PRE_REVIEW_DONE = "pre_review_done"
    PRE_REVIEW_REFUSED = "pre_review_refused"
    ASSEMBLY_PASSED = "assembly_passed"
    ASSEMBLY_FAILED = "assembly_failed"
    SUBMIT = "submit"
    APPROVED = "approved"
    REJECTED = "rejected"
    CORRECTED = "corrected"
    NOT_CORRECTED = "not_corrected"
    PERSUASION_ACCEPTED = "persuasion_accepted"
    PERSUASION_REFUSED = "persuasion_refused"
    DROP = "drop"


S = CaseStage
E = CaseEvent

# (source, event) -> target. APPROVED's target depends on the disposal: see `APPROVED_TO`.
MOVES: dict[tuple[CaseStage, CaseEvent], CaseStage] = {
    (S.OPENED, E.FILING_APPROVED): S.FILED,
    (S.OPENED, E.FILING_REJECTED): S.CLOSED,
    (S.FILED, E.INVESTIGATE): S.INVESTIGATING,
    (S.INVESTIGATING, E.INVESTIGATE): S.INVESTIGATING,  # more materials
    (S.INVESTIGATING, E.TALK): S.TALKED,
    (S.FILED, E.TALK): S.TALKED,  # nothing to investigate (an application to withdraw)
    (S.TALKED, E.TALK): S.TALKED,  # a second talk
    (S.TALKED, E.ASSIGN_EDUCATORS): S.EDUCATING,
    (S.EDUCATING, E.RE_EVALUATE): S.RE_EVALUATED,
    (S.RE_EVALUATED, E.PROPOSE): S.PROPOSED,
    (S.PROPOSED, E.PRE_REVIEW_DONE): S.PRE_REVIEWED,
    (S.PROPOSED, E.PRE_REVIEW_REFUSED): S.RE_EVALUATED,
    (S.PRE_REVIEWED, E.ASSEMBLY_PASSED): S.ASSEMBLY_VOTED,
    (S.PRE_REVIEWED, E.ASSEMBLY_FAILED): S.RE_EVALUATED,
    (S.ASSEMBLY_VOTED, E.SUBMIT): S.IN_APPROVAL,
    (S.IN_APPROVAL, E.REJECTED): S.RE_EVALUATED,
    (S.CORRECTING, E.CORRECTED): S.CLOSED,
    (S.CORRECTING, E.NOT_CORRECTED): S.RE_EVALUATED,
    (S.PERSUADING, E.PERSUASION_ACCEPTED): S.CLOSED,
    (S.PERSUADING, E.PERSUASION_REFUSED): S.PROPOSED,
}
for _stage in (
    S.OPENED,
    S.FILED,
    S.INVESTIGATING,
    S.TALKED,
    S.EDUCATING,
    S.RE_EVALUATED,
    S.PROPOSED,
    S.PRE_REVIEWED,
):
    MOVES[(_stage, E.DROP)] = S.CLOSED

APPROVED_TO: dict[Disposal, CaseStage] = {
    Disposal.CORRECTION: S.CORRECTING,
    Disposal.PERSUASION: S.PERSUADING,
    Disposal.REMOVAL: S.CLOSED,
    Disposal.WITHDRAWAL: S.CLOSED,
}

# Origins whose cases may be proposed without education: the member applied to leave,
# or cannot be reached at all.
SHORT_ORIGINS = frozenset({CaseOrigin.WITHDRAWAL_APPLICATION, CaseOrigin.OUT_OF_CONTACT})
SHORT_PROPOSE_FROM = frozenset({S.FILED, S.INVESTIGATING, S.TALKED})


class MoveRefused(ValueError):
    """The event is not allowed in the stage (the service answers STAGE_INVALID)."""


def move(
    stage: CaseStage,
    event: CaseEvent,
    *,
    origin: CaseOrigin,
    disposal: Disposal | None = None,
) -> tuple[CaseStage, CaseOutcome | None]:
    """The stage after `event`, and the outcome when it closes the case.

    `disposal` is the case's disposal: the one being proposed for PROPOSE, else the
    one on the case (APPROVED needs it).

    >>> move(CaseStage.EDUCATING, CaseEvent.RE_EVALUATE, origin=CaseOrigin.LAPSE_FLAG)
    (<CaseStage.RE_EVALUATED: 're_evaluated'>, None)
    >>> move(CaseStage.IN_APPROVAL, CaseEvent.APPROVED, origin=CaseOrigin.LAPSE_FLAG,
    ...      disposal=Disposal.REMOVAL)
    (<CaseStage.CLOSED: 'closed'>, <CaseOutcome.REMOVED: 'removed'>)
    >>> move(CaseStage.FILED, CaseEvent.PROPOSE, origin=CaseOrigin.WITHDRAWAL_APPLICATION,
    ...      disposal=Disposal.WITHDRAWAL)
    (<CaseStage.PROPOSED: 'proposed'>, None)
    """
    if event is E.APPROVED:
        if stage is not S.IN_APPROVAL or disposal is None:
            raise MoveRefused(f"{event} in {stage}")
        target = APPROVED_TO[disposal]
    elif event is E.PROPOSE and origin in SHORT_ORIGINS and stage in SHORT_PROPOSE_FROM:
        target = S.PROPOSED
    else:
        found = MOVES.get((stage, event))
        if found is None:
            raise MoveRefused(f"{event} in {stage}")
        target = found
    if event is E.PROPOSE and disposal is None:
        raise MoveRefused("a proposal names its disposal")
    return target, (outcome_of(event, disposal) if target is S.CLOSED else None)


def outcome_of(event: CaseEvent, disposal: Disposal | None) -> CaseOutcome:
    """How a closing event ends the case."""
    if event is E.CORRECTED:
        return CaseOutcome.CORRECTED
    if event is E.PERSUASION_ACCEPTED:
        return CaseOutcome.WITHDREW
    if event is E.APPROVED and disposal is Disposal.REMOVAL:
        return CaseOutcome.REMOVED
    if event is E.APPROVED and disposal is Disposal.WITHDRAWAL:
        return CaseOutcome.WITHDREW
    return CaseOutcome.DROPPED


def allowed_events(stage: CaseStage, origin: CaseOrigin) -> frozenset[CaseEvent]:
    """Every event `stage` accepts (for the client's buttons and the properties)."""
    found = {event for (source, event) in MOVES if source is stage}
    if stage is S.IN_APPROVAL:
        found.add(E.APPROVED)
    if origin in SHORT_ORIGINS and stage in SHORT_PROPOSE_FROM:
        found.add(E.PROPOSE)
    return frozenset(found)


# --- the member's status a case implies ------------------------------------------------

# Member statuses (service.members.rules.MemberStatus values), kept as text here so the
# rules stay importable without the members package.
ACTIVE, CORRECTING, REMOVED, WITHDREW = "active", "correcting", "removed", "withdrew"


def member_status(
    stage: CaseStage, outcome: CaseOutcome | None, *, correction_failed: bool = False
) -> str | None:
    """The member status a case in `stage` holds its member in; None: the case does not
    set it (an open case changes nothing by itself until a decision is approved).

    A correction that failed keeps the member `correcting` until the next disposal
    decides (the measure is still on them); dropping such a case restores `active`.
    """
    if stage is S.CORRECTING:
        return CORRECTING
    if stage is S.CLOSED:
        if outcome is CaseOutcome.CORRECTED:
            return ACTIVE
        if outcome is CaseOutcome.REMOVED:
            return REMOVED
        if outcome is CaseOutcome.WITHDREW:
            return WITHDREW
        return ACTIVE if correction_failed else None
    return CORRECTING if correction_failed else None


def left_by(outcome: CaseOutcome | None, disposal: Disposal | None) -> str | None:
    """`members.left_by` after a closed case: 'removal', 'persuasion' or 'withdrawal'."""
    if outcome is CaseOutcome.REMOVED:
        return "removal"
    if outcome is CaseOutcome.WITHDREW:
        return "persuasion" if disposal is Disposal.PERSUASION else "withdrawal"
    return None


# --- which disposal fits which facts (DOMAIN.md's table) -------------------------------


class Unfit(StrEnum):
    """Why a disposal does not fit the case (each has an error message in errors.py)."""

    WITHDRAWAL_NEEDS_APPLICATION = "withdrawal_needs_application"
    APPLICATION_ONLY_WITHDRAWAL = "application_only_withdrawal"
    CORRECTION_NEEDS_WISH = "correction_needs_wish"
    CORRECTION_NOT_SERIOUS = "correction_not_serious"
    CORRECTION_ALREADY_FAILED = "correction_already_failed"
    PERSUASION_NEEDS_REFUSAL = "persuasion_needs_refusal"
    PERSUASION_UNREACHABLE = "persuasion_unreachable"
    REMOVAL_GROUNDS = "removal_grounds"


# Origins that are removal grounds in themselves: lapsed (自行脱党: 三不 confirmed, out of
# contact two years after suspension) or serious problems with bad influence.
REMOVAL_ORIGINS = frozenset(
    {CaseOrigin.LAPSE_FLAG, CaseOrigin.OUT_OF_CONTACT, CaseOrigin.SERIOUS_PROBLEMS}
)


def disposal_unfit(
    disposal: Disposal,
    *,
    origin: CaseOrigin,
    wants_to_stay: bool,
    correction_failed: bool = False,
    persuasion_refused: bool = False,
) -> Unfit | None:
    """None when `disposal` fits the facts, else why not.

    - withdrawal only on the member's application, and an application leads only to a
      withdrawal (or the case is dropped when the member takes it back);
    - correction only when the member wants to stay, the problem is not serious
      (not `serious_problems`), and no earlier correction on this case failed;
    - persuasion when the member does not wish to correct (or a correction failed),
      never for a member out of contact (nobody to persuade);
    - removal for a lapse (三不, out of contact), serious problems, or a refused
      persuasion.

    >>> disposal_unfit(Disposal.CORRECTION, origin=CaseOrigin.UNQUALIFIED_GRADE,
    ...                wants_to_stay=True) is None
    True
    >>> disposal_unfit(Disposal.CORRECTION, origin=CaseOrigin.UNQUALIFIED_GRADE,
    ...                wants_to_stay=False)
    <Unfit.CORRECTION_NEEDS_WISH: 'correction_needs_wish'>
    """
    applied = origin is CaseOrigin.WITHDRAWAL_APPLICATION
    if disposal is Disposal.WITHDRAWAL:
        return None if applied else Unfit.WITHDRAWAL_NEEDS_APPLICATION
    if applied:
        return Unfit.APPLICATION_ONLY_WITHDRAWAL
    if disposal is Disposal.CORRECTION:
        if correction_failed:
            return Unfit.CORRECTION_ALREADY_FAILED
        if origin in (CaseOrigin.SERIOUS_PROBLEMS, CaseOrigin.OUT_OF_CONTACT):
            return Unfit.CORRECTION_NOT_SERIOUS
        return None if wants_to_stay else Unfit.CORRECTION_NEEDS_WISH
    if disposal is Disposal.PERSUASION:
        if origin is CaseOrigin.OUT_OF_CONTACT:
            return Unfit.PERSUASION_UNREACHABLE
        if persuasion_refused:
            return Unfit.PERSUASION_NEEDS_REFUSAL  # refused once: removal follows
        return None if (correction_failed or not wants_to_stay) else Unfit.PERSUASION_NEEDS_REFUSAL
    # removal
    if origin in REMOVAL_ORIGINS or persuasion_refused:
        return None
    return Unfit.REMOVAL_GROUNDS


def needs_county_pre_review(disposal: Disposal) -> bool:
    """Persuasion and removal are pre-reviewed by the county organization department
    too, in writing; the others by the tenant's committee alone."""
    return disposal in (Disposal.PERSUASION, Disposal.REMOVAL)


def approval_kind_is_filing(disposal: Disposal) -> bool:
    """A voluntary withdrawal is filed (备案) with the superior, not approved."""
    return disposal is Disposal.WITHDRAWAL


# --- dates (Asia/Shanghai business dates; the caller passes "today") -------------------

# The correction deadline is the grading policy's (`correction_months`, a county or
# tenant may set it): its default, and the most DOMAIN.md allows.
DEFAULT_CORRECTION_MONTHS = DEFAULT_POLICY.correction_months
# Double handling: a sanction decided this many months before the opening day is taken
# to cover the member's conduct of that time (see `double_handling`).
SANCTION_LOOKBACK_MONTHS = 12
# A case may be entered after the branch committee proposed it (or taken over from
# paper), but not from further back than a year: the opening day may lie at most this
# many days before today. The double-handling check also looks back from today.
MAX_OPENING_BACKDATE_DAYS = 366


def add_months(day: date, months: int) -> date:
    """The same day `months` later, clamped to the month's last day.

    >>> add_months(date(2026, 8, 31), 6)
    datetime.date(2027, 2, 28)
    >>> add_months(date(2027, 12, 15), -12)
    datetime.date(2026, 12, 15)
    """
    index = day.year * 12 + (day.month - 1) + months
    year, month = divmod(index, 12)
    month += 1
    last = (date(year + (month == 12), month % 12 + 1, 1) - timedelta(days=1)).day
    return date(year, month, min(day.day, last))


def correction_deadline(approved_on: date, months: int = DEFAULT_CORRECTION_MONTHS) -> date:
    """The last day of a correction period starting on `approved_on`.

    >>> correction_deadline(date(2026, 3, 1))
    datetime.date(2026, 9, 1)
    """
    if not 1 <= months <= MAX_CORRECTION_MONTHS:
        raise ValueError(f"correction months must be 1..{MAX_CORRECTION_MONTHS}")
    return add_months(approved_on, months)


def double_handling(origin: CaseOrigin, sanction_dates: Iterable[date], today: date) -> bool:
    """Whether opening a case would handle again what a sanction already punished.

    Pingyi's rule: the secretary states that the case is not about a sanctioned matter
    (required), and the case is refused when the member has a party sanction decided
    in the `SANCTION_LOOKBACK_MONTHS` before the opening day: an unqualified grade of
    that time is forced by the sanction itself (service.sanctions.rules.grade_override)
    and the conduct behind a 三不 flag or "serious problems" then is what the sanction
    judged. A member's own application to withdraw is not a handling of conduct and is
    never refused.

    >>> double_handling(CaseOrigin.UNQUALIFIED_GRADE, [date(2026, 1, 10)], date(2026, 6, 1))
    True
    >>> double_handling(CaseOrigin.UNQUALIFIED_GRADE, [date(2025, 1, 10)], date(2026, 6, 1))
    False
    """
    if origin is CaseOrigin.WITHDRAWAL_APPLICATION:
        return False
    since = add_months(today, -SANCTION_LOOKBACK_MONTHS)
    return any(since <= d <= today for d in sanction_dates)


def education_weeks(start: date, until: date) -> list[tuple[date, date]]:
    """The whole weeks of education from `start` (the educators' assignment day) that
    ended before `until` (today, or the re-evaluation day): week i is
    [start + 7i, start + 7i + 6].

    >>> [(a.day, b.day) for a, b in education_weeks(date(2026, 3, 2), date(2026, 3, 16))]
    [(2, 8), (9, 15)]
    """
    weeks = []
    first = start
    while first + timedelta(days=6) < until:
        weeks.append((first, first + timedelta(days=6)))
        first += timedelta(days=7)
    return weeks


def missed_weeks(start: date, sessions: Iterable[date], until: date) -> list[tuple[date, date]]:
    """The finished education weeks with no session logged (flagged on the case).

    >>> missed_weeks(date(2026, 3, 2), [date(2026, 3, 4)], date(2026, 3, 16))
    [(datetime.date(2026, 3, 9), datetime.date(2026, 3, 15))]
    """
    held = sorted(sessions)
    return [
        (first, last)
        for first, last in education_weeks(start, until)
        if not any(first <= d <= last for d in held)
    ]
