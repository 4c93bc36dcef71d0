"""Determinations of an evaluation round (三定一公示): the branch committee's proposals
(支委会初定), the member assembly's decision (党员大会审定), telling each member
(转告本人), the superior committee's approval (上级党组织审批, through
`service.approvals`), the public notice (公示) with its objections, and the final
grades that enter each member's history (`member_grades`).

The stage moves after `tallied` are E1's `advance_round` (service.py); this module
registers what each of them checks and does (`register_move`), and the approval
outcome handler that moves a round out of superior review:

- tallied -> proposed: every entry has a committee grade. An entry the tally settled
  and nobody touched takes its computed grade; what needs a person (待研究: a quota
  tie, no ballots, an excused member) must have been settled with a reason. An
  unqualified candidate without an organizational finding (组织考核认定) stays basic.
  Whatever the reason, the committee stays within the discipline overrides (警告:
  not excellent; a sanction of the year: unqualified; the year after 留党察看二年 and
  an expelled member: not graded) and within the policy's excellent quota (a quota
  tie is settled by choosing within it); both checked on every batch of proposals
  and again on this move.
- proposed -> assembly: the assembly is convened; votes of an earlier pass (before a
  rejection) are cleared.
- assembly -> superior_review: every entry passed the assembly and was told; the
  result is submitted (`approvals.submit`, kind EVALUATION_RESULT) with a digest
  over the determined grades.
- approved -> public_notice (notice dates from the policy snapshot); rejected ->
  proposed, with the reason kept as the round's `sent_back_reason`; returned -> the
  branch adds material and resubmits.
- public_notice -> final: the notice period is over and every objection answered;
  final grades are written, each member's year grade upserted (a year's grade is its
  last final round), and each member with an account hears of their own grade
  (`EVENT_TOPIC`).

Who may do what (Casbin at the round's branch): the committee's proposals, the
assembly, the votes, the resubmission, the answers and the moves take
`evaluation:run` (the branch secretary); telling members `evaluation:assist` (the
branch committee); an objection is raised by the member whose result it is
(`evaluation:participate`) or by the branch about anyone (`evaluation:assist`).
NOT_FOUND before FORBIDDEN: who cannot read the round learns nothing about it.

A superior does not send a round back once it is in superior review or later
(stages.py): the approval decision (reject with reasons, return for material) is the
way back while the superior holds the matter.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from enum import StrEnum
from typing import Any

from service import approvals
from service.approvals import ApprovalKind, Outcome
from service.audit.service import record
from service.auth.principal import Principal
from service.authz import authorizer, require
from service.db import Transaction
from service.errors import DomainError, not_found
from service.evaluations import repository, rules
from service.evaluations.actions import EvaluationAction
from service.evaluations.errors import (
    ANSWER_MISSING,
    ASSEMBLY_NOT_RECORDED,
    ASSEMBLY_STAGE_ONLY,
    ASSEMBLY_UNDECIDED,
    ASSEMBLY_VOTING_STARTED,
    CHANGE_REASON_REQUIRED,
    ENTRY,
    EXCELLENT_OVER_QUOTA,
    EXCLUSION_CONSENT_REQUIRED,
    EXCLUSION_NOT_VOTER,
    FINDING_REQUIRED,
    GRADE_AGAINST_SANCTION,
    GRADE_NOT_DECIDABLE,
    GRADE_UNSETTLED,
    MATERIAL_MISSING,
    NOT_TOLD,
    NOTICE_NOT_OPEN,
    NOTICE_NOT_OVER,
    OBJECTION,
    OBJECTION_ANSWERED,
    OBJECTION_TEXT_MISSING,
    OBJECTIONS_OPEN,
    PRESENT_NOT_VOTER,
    PROPOSAL_CLOSED,
    PROPOSAL_DUPLICATE,
    QUORUM_NOT_MET,
    RESUBMIT_NOT_RETURNED,
    ROUND,
    STAGE_CHANGED,
    TELL_UNDECIDED,
    VOTE_NOT_OPEN,
    VOTES_INVALID,
)
from service.evaluations.rules import Grade
from service.evaluations.service import (
    change_stage,
    get_round,
    policy_of,
    reads_round,
    register_move,
)
from service.evaluations.stages import STAGE_LABELS, Stage
from service.members.mobile import clean_text
from service.members.service import my_member
from service.pagination import Page, PageRequest, fits_bigint, keyset
from service.sanctions.rules import Override

SUBJECT_TYPE = "EvaluationRound"
EVENT_TOPIC = "evaluation_result"
MAX_REASON = 500
MAX_FINDING = 2000
MAX_NOTE = 500
MAX_OBJECTION = 2000
MAX_ANSWER = 2000
MAX_MATERIAL = 2000
# Account ids per event: a branch's members fit one NOTIFY many times over.
EVENT_CHUNK = 200

# --- pure rules ---------------------------------------------------------------------


class ExclusionReason(StrEnum):
    """The listed reasons a member may be left out of the expected voters
    (应到会有表决权的党员), and only with the superior committee's consent and the
    assembly's agreement."""

    ILLNESS_UNABLE = "illness_unable"  # 患有疾病不能表达本人意志
    ABROAD_SIX_MONTHS = "abroad_six_months"  # 出国（境）半年以上
    SERVING_SENTENCE = "serving_sentence"  # 正在服刑
    BEDRIDDEN = "bedridden"  # 年老体弱卧床不起
    AWAY_NOT_MOVED = "away_not_moved"  # 外出半年以上、组织关系未转出


EXCLUSION_LABELS: dict[ExclusionReason, str] = {
    ExclusionReason.ILLNESS_UNABLE: "患有疾病，不能表达本人意志",
    ExclusionReason.ABROAD_SIX_MONTHS: "出国（境）半年以上",
    ExclusionReason.SERVING_SENTENCE: "正在服刑",
    ExclusionReason.BEDRIDDEN: "年老体弱，卧床不起",
    ExclusionReason.AWAY_NOT_MOVED: "外出工作、学习半年以上，组织关系未转出",
}

# What the committee may decide an entry's grade to be (never "待研究").
DECIDED_GRADES = frozenset(
    {Grade.EXCELLENT, Grade.QUALIFIED, Grade.BASIC, Grade.UNQUALIFIED, Grade.NOT_GRADED}
)
# A computed rule that makes a member an unqualified candidate without a finding yet.
NO_FINDING_RULE = "no_finding_basic"
SANCTION_UNQUALIFIED_RULE = "sanction_unqualified"

# What a discipline override (service.sanctions.rules.Override, fixed on the entry as
# balloting opens) leaves the committee: a warning (警告) rules out excellent; a
# sanction of the year that makes a member unqualified keeps them unqualified; the
# year after 留党察看二年 (a written comment only) and an expelled member are not graded.
# The committee may settle a quota tie or an excused member, never lift a sanction.
SANCTION_GRADES: dict[Override, frozenset[Grade]] = {
    Override.NONE: DECIDED_GRADES,
    Override.NOT_EXCELLENT: DECIDED_GRADES - {Grade.EXCELLENT},
    Override.UNQUALIFIED: frozenset({Grade.UNQUALIFIED}),
    Override.COMMENT_ONLY: frozenset({Grade.NOT_GRADED}),
    Override.NOT_EVALUATED: frozenset({Grade.NOT_GRADED}),
}
# The rule (a key of rules.RULE_LABELS) whose label says why.
_SANCTION_RULES: dict[Override, str] = {
    Override.NOT_EXCELLENT: "sanction_not_excellent",
    Override.UNQUALIFIED: SANCTION_UNQUALIFIED_RULE,
    Override.COMMENT_ONLY: "comment_only",
    Override.NOT_EVALUATED: "not_evaluated",
}


def is_voter(category: str, may_vote: bool) -> bool:
    """Who votes in the assembly: full members not under probation (留党察看).

    >>> is_voter("full", True), is_voter("probationary", True), is_voter("full", False)
    (True, False, False)
    """
    return category == "full" and may_vote


def expected_voters(entries: Iterable[Any], excluded: Iterable[int]) -> frozenset[int]:
    """The expected voters (应到会有表决权的党员): the roster's voters less the members
    left out for a listed reason. `entries` have `member_id`, `category`, `may_vote`."""
    out = frozenset(excluded)
    return frozenset(
        e.member_id for e in entries if is_voter(e.category, e.may_vote) and e.member_id not in out
    )


def rule_grade(computed_grade: str | None, computed_rule: str | None, finding: bool) -> Grade:
    """The grade the tally's rules give once the committee's organizational finding is
    known: an unqualified candidate is unqualified with one, basic without.

    >>> rule_grade("basic", "no_finding_basic", True).value
    'unqualified'
    >>> rule_grade("basic", "no_finding_basic", False).value
    'basic'
    >>> rule_grade("excellent", "excellent", True).value
    'excellent'
    """
    if computed_rule == NO_FINDING_RULE:
        return Grade.UNQUALIFIED if finding else Grade.BASIC
    return Grade(computed_grade) if computed_grade else Grade.NEEDS_DECISION


def sanction_allows(override: str | None, grade: Grade) -> bool:
    """Whether a member with the discipline `override` may be graded `grade`.

    >>> sanction_allows("not_excellent", Grade.EXCELLENT)
    False
    >>> sanction_allows("not_excellent", Grade.QUALIFIED), sanction_allows(None, Grade.EXCELLENT)
    (True, True)
    >>> sanction_allows("unqualified", Grade.BASIC), sanction_allows("comment_only", Grade.BASIC)
    (False, False)
    """
    return grade in SANCTION_GRADES[Override(override or Override.NONE)]


def sanction_refusal(name: str, override: str | None) -> DomainError:
    """GRADE_AGAINST_SANCTION for `name`: why, and the grades the sanction allows."""
    o = Override(override or Override.NONE)
    allowed = [g for g in rules.GRADE_LABELS if g in SANCTION_GRADES[o]]
    return GRADE_AGAINST_SANCTION.error(
        name=name,
        why=rules.RULE_LABELS.get(_SANCTION_RULES.get(o, ""), "受纪律处分"),
        allowed="、".join(rules.GRADE_LABELS[g] for g in allowed),
    )


def excellent_over_quota(
    grades: Iterable[str | None], roster: int, policy: rules.GradingPolicy
) -> tuple[int, int] | None:
    """(excellent, quota) when more of `grades` are excellent than the policy's quota
    of a roster of `roster` allows (rules.quota_size, rounded down); None within it or
    without a quota.

    >>> from service.evaluations.rules import DEFAULT_POLICY
    >>> excellent_over_quota(["excellent"] * 3 + ["qualified"] * 7, 10, DEFAULT_POLICY)
    >>> excellent_over_quota(["excellent"] * 4 + ["qualified"] * 6, 10, DEFAULT_POLICY)
    (4, 3)
    """
    quota = rules.quota_size(roster, policy)
    count = sum(1 for g in grades if g == Grade.EXCELLENT.value)
    return (count, quota) if quota is not None and count > quota else None


def check_committee_grade(
    *,
    computed_grade: str | None,
    computed_rule: str | None,
    grade: Grade,
    reason: str | None,
    finding: str | None,
    override: str | None = None,
) -> str | None:
    """What is wrong with the committee deciding `grade` (None: nothing).

    - "not_decidable": 待研究 is not a decision;
    - "sanction": the member's discipline override does not allow `grade`
      (`sanction_allows`), whatever the reason;
    - "finding": unqualified needs an organizational finding (组织考核认定), unless a
      sanction already makes the member unqualified;
    - "reason": a grade other than the one the rules give needs a written reason.

    >>> check_committee_grade(computed_grade="qualified", computed_rule="qualified",
    ...     grade=Grade.QUALIFIED, reason=None, finding=None) is None
    True
    >>> check_committee_grade(computed_grade="qualified", computed_rule="qualified",
    ...     grade=Grade.EXCELLENT, reason=None, finding=None)
    'reason'
    >>> check_committee_grade(computed_grade="basic", computed_rule="no_finding_basic",
    ...     grade=Grade.UNQUALIFIED, reason=None, finding=None)
    'finding'
    >>> check_committee_grade(computed_grade="basic", computed_rule="no_finding_basic",
    ...     grade=Grade.UNQUALIFIED, reason=None, finding="经考核，存在严重问题") is None
    True
    >>> check_committee_grade(computed_grade="qualified", computed_rule="sanction_not_excellent",
    ...     grade=Grade.EXCELLENT, reason="表现突出", finding=None, override="not_excellent")
    'sanction'
    """
    if grade not in DECIDED_GRADES:
        return "not_decidable"
    if not sanction_allows(override, grade):
        return "sanction"
    sanctioned = computed_rule == SANCTION_UNQUALIFIED_RULE or override == Override.UNQUALIFIED
    if grade is Grade.UNQUALIFIED and not finding and not sanctioned:
        return "finding"
    if grade is not rule_grade(computed_grade, computed_rule, bool(finding)) and not reason:
        return "reason"
    return None


def default_grade(computed_grade: str | None, computed_rule: str | None) -> Grade | None:
    """The grade an entry nobody touched takes when the committee confirms (None: a
    person must settle it). An unqualified candidate with no finding stays basic."""
    grade = rule_grade(computed_grade, computed_rule, False)
    return grade if grade in DECIDED_GRADES else None


def results_digest(round_id: int, grades: Mapping[int, str]) -> str:
    """SHA-256 over the determined grades (member id -> grade) of the round: what the
    superior approves; any change of a grade after approval is a new matter."""
    return approvals.digest_of(
        {"round": round_id, "grades": {str(m): grades[m] for m in sorted(grades)}}
    )


def notice_period(starts_on: date, notice_days: int) -> tuple[date, date]:
    """The notice (公示) runs `notice_days` days from `starts_on`, both days included.

    >>> notice_period(date(2026, 7, 1), 5)
    (datetime.date(2026, 7, 1), datetime.date(2026, 7, 5))
    """
    return starts_on, starts_on + timedelta(days=max(notice_days, 1) - 1)


def notice_over(ends_on: date | None, today: date) -> bool:
    """Whether the notice period has passed (the day after its last day).

    >>> last = date(2026, 7, 5)
    >>> notice_over(last, date(2026, 7, 5)), notice_over(last, date(2026, 7, 6))
    (False, True)
    """
    return ends_on is not None and today > ends_on


# --- statements -----------------------------------------------------------------------

_ASSEMBLY_FIELDS = (
    "tenant_id, id, round_id, held_on, expected_voters, present_member_ids,"
    " superior_consent_by, superior_consent_on, superior_consent_note, assembly_agreed,"
    " note, recorded_by, created_at, updated_at, version"
)
_OBJECTION_FIELDS = (
    "tenant_id, id, round_id, member_id, text, raised_by, raised_at, answer, answered_by,"
    " answered_at, version"
)
# An objection with what authorization needs: its round's branch and stage, and the
# account of the member it is about.
_OBJECTION = (
    "SELECT o.tenant_id, o.id, o.round_id, o.member_id, o.text, o.raised_by, o.raised_at,"
    " o.answer, o.answered_by, o.answered_at, o.version, r.branch_path, r.stage,"
    " m.account_id AS member_account_id, e.name AS member_name"
    " FROM evaluation_objections o"
    " JOIN evaluation_rounds r ON r.tenant_id = o.tenant_id AND r.id = o.round_id"
    " JOIN evaluation_entries e ON e.tenant_id = o.tenant_id AND e.round_id = o.round_id"
    " AND e.member_id = o.member_id"
    # By id alone and optionally, as the entries (repository._ENTRY): a member who has
    # transferred to another tenant since keeps their entry here, without an account.
    " LEFT JOIN members m ON m.id = o.member_id"
)


async def _entries(tx: Transaction, round_row: Any, *, lock: bool = False) -> list[Any]:
    suffix = " FOR UPDATE OF e" if lock else ""
    return await tx.rows(
        f"SELECT {', '.join('e.' + c for c in repository.ENTRY_FIELDS)},"
        " m.account_id AS member_account_id"
        " FROM evaluation_entries e LEFT JOIN members m ON m.id = e.member_id"
        # Before balloting opens the roster has no positions yet (every service here
        # refuses by stage then, after finding the member on it).
        " WHERE e.tenant_id = %(tenant)s AND e.round_id = %(round)s"
        f" ORDER BY e.position NULLS LAST, e.member_id{suffix}",
        {"tenant": round_row.tenant_id, "round": round_row.id},
    )


async def get_assembly_row(tx: Transaction, round_row: Any) -> Any | None:
    return await tx.first(
        f"SELECT {_ASSEMBLY_FIELDS} FROM evaluation_assemblies"
        " WHERE tenant_id = %(tenant)s AND round_id = %(round)s",
        {"tenant": round_row.tenant_id, "round": round_row.id},
    )


async def exclusions_of(tx: Transaction, assembly: Any) -> list[Any]:
    return await tx.rows(
        "SELECT x.tenant_id, x.assembly_id, x.member_id, x.reason, x.note,"
        " x.superior_consent, x.assembly_agreed, x.recorded_by, x.created_at"
        " FROM evaluation_assembly_exclusions x"
        " WHERE x.tenant_id = %(tenant)s AND x.assembly_id = %(assembly)s ORDER BY x.member_id",
        {"tenant": assembly.tenant_id, "assembly": assembly.id},
    )


async def _reset_votes(tx: Transaction, round_row: Any) -> None:
    """A new pass of the assembly: votes, outcomes and telling of the earlier one go."""
    await tx.execute(
        "UPDATE evaluation_entries SET votes_for = NULL, votes_against = NULL,"
        " votes_abstain = NULL, assembly_passed = NULL, told_at = NULL, told_by = NULL,"
        " version = version + 1"
        " WHERE tenant_id = %(tenant)s AND round_id = %(round)s",
        {"tenant": round_row.tenant_id, "round": round_row.id},
    )
    await tx.execute(
        "UPDATE evaluation_assemblies SET held_on = NULL, expected_voters = NULL,"
        " present_member_ids = '{}', updated_at = now(), version = version + 1"
        " WHERE tenant_id = %(tenant)s AND round_id = %(round)s",
        {"tenant": round_row.tenant_id, "round": round_row.id},
    )


# --- reading --------------------------------------------------------------------------


async def round_determinations(
    tx: Transaction, principal: Principal, round_id: int, page: PageRequest
) -> tuple[Any, Page[Any]]:
    """The round and a page of its entries with their determinations: all of them to
    the branch's readers, one's own entry to a member."""
    from service.evaluations.service import round_entries

    row = await get_round(tx, principal, round_id)
    return row, await round_entries(tx, principal, row, page)


async def get_assembly(tx: Transaction, principal: Principal, round_id: int) -> Any | None:
    """The round's assembly record, to the branch's readers (None: not held yet)."""
    row = await get_round(tx, principal, round_id)
    if not reads_round(principal, row):
        raise not_found(ROUND)
    return await get_assembly_row(tx, row)


def sees_objection(principal: Principal, objection: Any) -> bool:
    """The branch's readers, and the member the objection is about."""
    own = principal.account_id is not None and objection.member_account_id == principal.account_id
    return own or authorizer().allowed(principal, EvaluationAction.READ, objection.branch_path)


async def get_objection(tx: Transaction, principal: Principal, objection_id: int) -> Any:
    row = (
        await tx.first(f"{_OBJECTION} WHERE o.id = %(id)s", {"id": objection_id})
        if fits_bigint(objection_id)
        else None
    )
    if row is None or not sees_objection(principal, row):
        raise not_found(OBJECTION)
    return row


async def round_objections(
    tx: Transaction, principal: Principal, round_id: int, page: PageRequest
) -> Page[Any]:
    """The round's objections: all to its readers, those about oneself to a member."""
    row = await get_round(tx, principal, round_id)
    params: dict[str, Any] = {"tenant": row.tenant_id, "round": row.id} | page.params
    only = ""
    if not reads_round(principal, row):
        only = " AND m.account_id = %(account)s"
        params["account"] = principal.account_id
    rows = await tx.rows(
        f"{_OBJECTION} WHERE o.tenant_id = %(tenant)s AND o.round_id = %(round)s{only}"
        f" AND {keyset('o.id')}",
        params,
    )
    return Page.of(rows, page)


async def member_grade_history(
    tx: Transaction, principal: Principal, member_id: int | None, page: PageRequest
) -> Page[Any]:
    """A member's grades by year (the last final round of each year): one's own
    (`member_id` None), or a member whose branch the principal reads."""
    from service.members.service import get_member

    if member_id is None:
        member = await my_member(tx, principal)
        if member is None:
            return Page.empty()
    else:
        member = await get_member(tx, principal, member_id)
    rows = await tx.rows(
        "SELECT g.tenant_id, g.member_id, g.year AS id, g.year, g.grade, g.round_id,"
        " g.recorded_at FROM member_grades g"
        " WHERE g.tenant_id = %(tenant)s AND g.member_id = %(member)s"
        f" AND {keyset('g.year')}",
        {"tenant": member.tenant_id, "member": member.id} | page.params,
    )
    return Page.of(rows, page)


# --- the committee's proposals (支委会初定) ---------------------------------------------


@dataclass(frozen=True)
class CommitteeGrade:
    """The committee's grade for one member, with its reason (where it differs from the
    rules) and the organizational finding (组织考核认定, for unqualified)."""

    member_id: int
    grade: Grade
    reason: str | None = None
    finding: str | None = None


async def _locked_round(
    tx: Transaction, principal: Principal, round_id: int, action: EvaluationAction
) -> Any:
    from service.evaluations.repository import get_round as fetch

    row = await fetch(tx, round_id, lock=True) if fits_bigint(round_id) else None
    if row is None:
        raise not_found(ROUND)
    require(principal, action, row.branch_path, what=ROUND, seen_with=EvaluationAction.READ)
    return row


def _on_roster(entries: Sequence[Any], member_ids: Iterable[int]) -> dict[int, Any]:
    """The roster by member id; NOT_FOUND for an id not on it (before any other check,
    so a member of another branch or tenant is indistinguishable from none)."""
    by_member = {e.member_id: e for e in entries}
    if any(m not in by_member for m in member_ids):
        raise not_found(ENTRY)
    return by_member


def _names(entries: Iterable[Any]) -> str:
    return "、".join(e.name for e in entries)


def _effective_grade(entry: Any) -> str | None:
    """The grade an entry stands at: the committee's, else the one it takes if nobody
    touches it before the committee confirms (None: still for a person to settle)."""
    if entry.committee_grade is not None:
        return str(entry.committee_grade)
    grade = default_grade(entry.computed_grade, entry.computed_rule)
    return grade.value if grade is not None else None


def _check_quota(row: Any, entries: Sequence[Any], grades: Mapping[int, str | None]) -> None:
    """EXCELLENT_OVER_QUOTA when the round's excellent grades (`grades`: member id ->
    grade, every entry) exceed the policy's quota of the roster. A quota tie (待研究)
    is settled by choosing within the quota, never by widening it."""
    roster = sum(1 for e in entries if e.position is not None)
    over = excellent_over_quota(grades.values(), roster, policy_of(row))
    if over is not None:
        count, quota = over
        raise EXCELLENT_OVER_QUOTA.error(quota=quota, roster=roster, count=count)


async def propose_grades(
    tx: Transaction, principal: Principal, *, round_id: int, grades: Sequence[CommitteeGrade]
) -> list[Any]:
    """The committee confirms or changes proposed grades (while tallied or proposed;
    during the assembly only for a member the assembly did not pass, which sends that
    member back to the committee and to a new vote). Each grade must be one the
    member's discipline override allows, and the round's excellent grades, the batch
    applied, must stay within the policy's quota. Returns the entries changed."""
    row = await _locked_round(tx, principal, round_id, EvaluationAction.RUN)
    entries = await _entries(tx, row, lock=True)
    by_member = _on_roster(entries, (g.member_id for g in grades))
    stage = Stage(row.stage)
    if stage not in (Stage.TALLIED, Stage.PROPOSED, Stage.ASSEMBLY):
        raise PROPOSAL_CLOSED.error(stage=STAGE_LABELS[stage])
    # Every proposal checked first, then the quota over the round as it would stand,
    # then the writes.
    planned: list[tuple[Any, CommitteeGrade, str | None, str | None]] = []
    seen: set[int] = set()
    for proposal in grades:
        if proposal.member_id in seen:
            raise PROPOSAL_DUPLICATE.error()
        seen.add(proposal.member_id)
        entry = by_member.get(proposal.member_id)
        if entry is None:
            raise not_found(ENTRY)
        if stage is Stage.ASSEMBLY and entry.assembly_passed is not False:
            raise PROPOSAL_CLOSED.error(stage=STAGE_LABELS[stage])
        reason = clean_text(proposal.reason, MAX_REASON)
        if proposal.reason and reason is None:
            raise CHANGE_REASON_REQUIRED.error(limit=MAX_REASON)
        finding = clean_text(proposal.finding, MAX_FINDING)
        if proposal.finding and finding is None:
            raise FINDING_REQUIRED.error(limit=MAX_FINDING)
        problem = check_committee_grade(
            computed_grade=entry.computed_grade,
            computed_rule=entry.computed_rule,
            grade=proposal.grade,
            reason=reason,
            finding=finding,
            override=entry.override,
        )
        if problem == "not_decidable":
            raise GRADE_NOT_DECIDABLE.error()
        if problem == "sanction":
            raise sanction_refusal(entry.name, entry.override)
        if problem == "finding":
            raise FINDING_REQUIRED.error(limit=MAX_FINDING)
        if problem == "reason":
            raise CHANGE_REASON_REQUIRED.error(limit=MAX_REASON)
        planned.append((entry, proposal, reason, finding))
    after = {e.member_id: _effective_grade(e) for e in entries}
    after |= {p.member_id: p.grade.value for _e, p, _r, _f in planned}
    _check_quota(row, entries, after)
    changed: list[Any] = []
    for entry, proposal, reason, finding in planned:
        values: dict[str, Any] = {
            "committee_grade": proposal.grade.value,
            "committee_reason": reason,
            "committee_by": principal.actor,
            "organizational_finding": finding is not None,
            "organizational_finding_note": finding,
        }
        if stage is Stage.ASSEMBLY:  # back from the assembly: a new vote on this member
            values |= {
                "votes_for": None,
                "votes_against": None,
                "votes_abstain": None,
                "assembly_passed": None,
            }
        changed.append(await repository.update_entry(tx, entry, **values))
        await record(
            tx,
            principal,
            tenant_id=row.tenant_id,
            action="evaluation.propose",
            object_type="EvaluationEntry",
            object_id=entry.id,
            details={
                "round_id": row.id,
                "member_id": entry.member_id,
                "grade": proposal.grade.value,
                "computed_grade": entry.computed_grade,
                "reason": reason,
                "finding": finding is not None,
            },
        )
    return changed


async def _confirm_proposals(tx: Transaction, principal: Principal, row: Any) -> None:
    """tallied -> proposed: untouched entries take the rules' grade; what needs a person
    must have been settled; every grade is one its discipline override allows, and the
    excellent grades stay within the quota (checked again here: the whole round as it
    goes to the assembly, whatever was written before)."""
    entries = await _entries(tx, row, lock=True)
    unsettled = [e for e in entries if _effective_grade(e) is None]
    if unsettled:
        raise GRADE_UNSETTLED.error(names=_names(unsettled))
    grades = {e.member_id: _effective_grade(e) for e in entries}
    for e in entries:
        if not sanction_allows(e.override, Grade(grades[e.member_id])):
            raise sanction_refusal(e.name, e.override)
    _check_quota(row, entries, grades)
    untouched = [e for e in entries if e.committee_grade is None]
    if untouched:
        await tx.execute(
            "UPDATE evaluation_entries e SET committee_grade = v.grade, committee_by = %(actor)s,"
            " version = e.version + 1"
            " FROM unnest(%(ids)s::bigint[], %(grades)s::text[]) AS v(id, grade)"
            " WHERE e.tenant_id = %(tenant)s AND e.id = v.id",
            {
                "tenant": row.tenant_id,
                "actor": principal.actor,
                "ids": [e.id for e in untouched],
                "grades": [grades[e.member_id] for e in untouched],
            },
        )


async def _convene_assembly(tx: Transaction, principal: Principal, row: Any) -> None:
    """proposed -> assembly: every entry has a committee grade (a round sent back or
    rejected may have had one changed); a fresh pass of the assembly."""
    entries = await _entries(tx, row, lock=True)
    unsettled = [e for e in entries if e.committee_grade is None]
    if unsettled:
        raise GRADE_UNSETTLED.error(names=_names(unsettled))
    await _reset_votes(tx, row)


# --- the member assembly (党员大会审定) ---------------------------------------------------


@dataclass(frozen=True)
class Exclusion:
    """A member left out of the expected voters: a listed reason, the superior
    committee's consent and the assembly's agreement."""

    member_id: int
    reason: ExclusionReason
    superior_consent: bool
    assembly_agreed: bool
    note: str | None = None


@dataclass(frozen=True)
class AssemblyRecord:
    held_on: date
    present_member_ids: Sequence[int]
    exclusions: Sequence[Exclusion] = ()
    superior_consent_by: str | None = None  # which superior committee consented
    superior_consent_on: date | None = None
    note: str | None = None


async def record_assembly(
    tx: Transaction, principal: Principal, *, round_id: int, assembly: AssemblyRecord
) -> Any:
    """Record the assembly: the date, the exclusions from the expected voters, who of
    the expected voters attended. The service computes the expected voters and refuses
    unless more than half of them are present (rules.assembly_quorum). May be recorded
    again until the first vote."""
    row = await _locked_round(tx, principal, round_id, EvaluationAction.RUN)
    entries = await _entries(tx, row, lock=True)
    named = [*(x.member_id for x in assembly.exclusions), *assembly.present_member_ids]
    by_member = _on_roster(entries, named)
    if Stage(row.stage) is not Stage.ASSEMBLY:
        raise ASSEMBLY_STAGE_ONLY.error()
    if any(e.assembly_passed is not None for e in entries):
        raise ASSEMBLY_VOTING_STARTED.error()
    excluded: dict[int, Exclusion] = {}
    for x in assembly.exclusions:
        entry = by_member.get(x.member_id)
        if entry is None or not is_voter(entry.category, entry.may_vote) or x.member_id in excluded:
            raise EXCLUSION_NOT_VOTER.error(name=entry.name if entry is not None else "该人员")
        if not (x.superior_consent and x.assembly_agreed):
            raise EXCLUSION_CONSENT_REQUIRED.error()
        excluded[x.member_id] = x
    consent_by = clean_text(assembly.superior_consent_by, 100)
    if excluded and consent_by is None:
        raise EXCLUSION_CONSENT_REQUIRED.error()
    expected = expected_voters(entries, excluded)
    present = list(dict.fromkeys(assembly.present_member_ids))
    if len(present) != len(assembly.present_member_ids) or not set(present) <= expected:
        raise PRESENT_NOT_VOTER.error()
    if not rules.assembly_quorum(len(present), len(expected)):
        raise QUORUM_NOT_MET.error(expected=len(expected), present=len(present))
    note = clean_text(assembly.note, MAX_NOTE)
    saved = await tx.one(
        "INSERT INTO evaluation_assemblies (tenant_id, round_id, held_on, expected_voters,"
        " present_member_ids, superior_consent_by, superior_consent_on, assembly_agreed,"
        " note, recorded_by)"
        " VALUES (%(tenant)s, %(round)s, %(held)s, %(expected)s, %(present)s::bigint[],"
        " %(by)s, %(on)s, %(agreed)s, %(note)s, %(actor)s)"
        " ON CONFLICT (tenant_id, round_id) DO UPDATE SET held_on = EXCLUDED.held_on,"
        " expected_voters = EXCLUDED.expected_voters,"
        " present_member_ids = EXCLUDED.present_member_ids,"
        " superior_consent_by = EXCLUDED.superior_consent_by,"
        " superior_consent_on = EXCLUDED.superior_consent_on,"
        " assembly_agreed = EXCLUDED.assembly_agreed, note = EXCLUDED.note,"
        " recorded_by = EXCLUDED.recorded_by, updated_at = now(),"
        " version = evaluation_assemblies.version + 1"
        f" RETURNING {_ASSEMBLY_FIELDS}",
        {
            "tenant": row.tenant_id,
            "round": row.id,
            "held": assembly.held_on,
            "expected": len(expected),
            "present": sorted(present),
            "by": consent_by if excluded else None,
            "on": assembly.superior_consent_on if excluded else None,
            "agreed": bool(excluded),
            "note": note,
            "actor": principal.actor,
        },
    )
    await tx.execute(
        "DELETE FROM evaluation_assembly_exclusions"
        " WHERE tenant_id = %(tenant)s AND assembly_id = %(assembly)s",
        {"tenant": row.tenant_id, "assembly": saved.id},
    )
    if excluded:
        xs = list(excluded.values())
        await tx.execute(
            "INSERT INTO evaluation_assembly_exclusions (tenant_id, assembly_id, member_id,"
            " reason, note, superior_consent, assembly_agreed, recorded_by)"
            " SELECT %(tenant)s, %(assembly)s, v.member_id, v.reason, v.note, true, true,"
            " %(actor)s FROM unnest(%(members)s::bigint[], %(reasons)s::text[],"
            " %(notes)s::text[]) AS v(member_id, reason, note)",
            {
                "tenant": row.tenant_id,
                "assembly": saved.id,
                "actor": principal.actor,
                "members": [x.member_id for x in xs],
                "reasons": [x.reason.value for x in xs],
                "notes": [clean_text(x.note, MAX_NOTE) for x in xs],
            },
        )
    await record(
        tx,
        principal,
        tenant_id=row.tenant_id,
        action="evaluation.assembly",
        object_type="EvaluationAssembly",
        object_id=saved.id,
        details={
            "round_id": row.id,
            "held_on": assembly.held_on.isoformat(),
            "expected_voters": len(expected),
            "present": len(present),
            "exclusions": {str(m): x.reason.value for m, x in excluded.items()},
            "superior_consent_by": consent_by if excluded else None,
        },
    )
    return saved


@dataclass(frozen=True)
class AssemblyVote:
    """The counts of the secret ballot on one member's grade at the assembly."""

    member_id: int
    votes_for: int
    votes_against: int
    votes_abstain: int


async def record_vote(
    tx: Transaction, principal: Principal, *, round_id: int, vote: AssemblyVote
) -> Any:
    """The assembly's vote on one member (one at a time, by secret ballot): it passes
    only with more than half of the EXPECTED voters (rules.assembly_passes); a member
    not passed goes back to the committee (`propose_grades`, then a new vote)."""
    row = await _locked_round(tx, principal, round_id, EvaluationAction.RUN)
    entry = (
        await repository.entry_of_member(tx, row, vote.member_id, lock=True)
        if fits_bigint(vote.member_id)
        else None
    )
    if entry is None or entry.position is None:
        raise not_found(ENTRY)
    if Stage(row.stage) is not Stage.ASSEMBLY:
        raise ASSEMBLY_STAGE_ONLY.error()
    assembly = await get_assembly_row(tx, row)
    if assembly is None or assembly.held_on is None or assembly.expected_voters is None:
        raise ASSEMBLY_NOT_RECORDED.error()
    if entry.assembly_passed is not None or entry.committee_grade is None:
        raise VOTE_NOT_OPEN.error()
    present = len(assembly.present_member_ids)
    counts = (vote.votes_for, vote.votes_against, vote.votes_abstain)
    if min(counts) < 0 or sum(counts) > present:
        raise VOTES_INVALID.error(present=present)
    passed = rules.assembly_passes(vote.votes_for, assembly.expected_voters)
    updated = await repository.update_entry(
        tx,
        entry,
        votes_for=vote.votes_for,
        votes_against=vote.votes_against,
        votes_abstain=vote.votes_abstain,
        assembly_passed=passed,
    )
    await record(
        tx,
        principal,
        tenant_id=row.tenant_id,
        action="evaluation.assembly_vote",
        object_type="EvaluationEntry",
        object_id=entry.id,
        details={
            "round_id": row.id,
            "member_id": entry.member_id,
            "grade": entry.committee_grade,
            "for": vote.votes_for,
            "against": vote.votes_against,
            "abstain": vote.votes_abstain,
            "expected_voters": assembly.expected_voters,
            "passed": passed,
        },
    )
    return updated


# --- telling each member (转告本人) and submitting upward --------------------------------


async def tell_members(
    tx: Transaction, principal: Principal, *, round_id: int, member_ids: Sequence[int] | None
) -> list[Any]:
    """Record that the assembly's decision was told to each member (all passed entries
    when `member_ids` is None). Returns the entries told now."""
    row = await _locked_round(tx, principal, round_id, EvaluationAction.ASSIST)
    entries = await _entries(tx, row, lock=True)
    by_member = _on_roster(entries, member_ids or ())
    if Stage(row.stage) is not Stage.ASSEMBLY:
        raise ASSEMBLY_STAGE_ONLY.error()
    if member_ids is None:
        chosen = [e for e in entries if e.assembly_passed]
    else:
        chosen = []
        for member_id in dict.fromkeys(member_ids):
            entry = by_member[member_id]
            if not entry.assembly_passed:
                raise TELL_UNDECIDED.error()
            chosen.append(entry)
    if not chosen:
        return []
    told = await tx.rows(
        "UPDATE evaluation_entries SET told_at = now(), told_by = %(actor)s,"
        " version = version + 1"
        " WHERE tenant_id = %(tenant)s AND id = ANY(%(ids)s::bigint[])"
        f" RETURNING {', '.join(repository.ENTRY_FIELDS)}",
        {"tenant": row.tenant_id, "ids": [e.id for e in chosen], "actor": principal.actor},
    )
    await record(
        tx,
        principal,
        tenant_id=row.tenant_id,
        action="evaluation.tell",
        object_type="EvaluationRound",
        object_id=row.id,
        details={"member_ids": sorted(e.member_id for e in chosen)},
    )
    return sorted(told, key=lambda e: e.id)


def _determined(entries: Sequence[Any]) -> dict[int, str]:
    return {e.member_id: e.committee_grade for e in entries}


def _summary(row: Any, entries: Sequence[Any], material: str | None = None) -> dict[str, Any]:
    counts: dict[str, int] = {}
    for e in entries:
        counts[e.committee_grade] = counts.get(e.committee_grade, 0) + 1
    summary: dict[str, Any] = {
        "title": row.title,
        "year": row.year,
        "half": row.half,
        "members": len(entries),
        "grades": counts,
    }
    if material is not None:
        summary["material"] = material
    return summary


async def _submit_results(tx: Transaction, principal: Principal, row: Any) -> dict[str, Any]:
    """assembly -> superior_review: every member passed the assembly and was told; the
    result goes to the superior committee's inbox."""
    entries = await _entries(tx, row, lock=True)
    undecided = [e for e in entries if not e.assembly_passed]
    if undecided:
        raise ASSEMBLY_UNDECIDED.error(names=_names(undecided))
    untold = [e for e in entries if e.told_at is None]
    if untold:
        raise NOT_TOLD.error(names=_names(untold))
    policy = policy_of(row)
    request = await approvals.submit(
        tx,
        principal,
        kind=ApprovalKind.EVALUATION_RESULT,
        subject_type=SUBJECT_TYPE,
        subject_id=row.id,
        branch_unit=row.branch_id,
        digest=results_digest(row.id, _determined(entries)),
        summary=_summary(row, entries),
        to_county=policy.route_to_county,
        step_days=policy.step_days,
    )
    return {"approval_request_id": request.id}


async def resubmit_results(
    tx: Transaction, principal: Principal, *, round_id: int, material: str
) -> Any:
    """The superior returned the result for more material: the branch adds it and
    submits again (the returning step is decided anew)."""
    row = await _locked_round(tx, principal, round_id, EvaluationAction.RUN)
    text = clean_text(material, MAX_MATERIAL)
    if text is None:
        raise MATERIAL_MISSING.error(limit=MAX_MATERIAL)
    if Stage(row.stage) is not Stage.SUPERIOR_REVIEW or row.approval_request_id is None:
        raise RESUBMIT_NOT_RETURNED.error()
    request = await approvals.get_request(tx, principal, row.approval_request_id)
    if request.state != approvals.RequestState.RETURNED.value:
        raise RESUBMIT_NOT_RETURNED.error()
    entries = await _entries(tx, row)
    await approvals.resubmit(
        tx,
        principal,
        request_id=request.id,
        digest=results_digest(row.id, _determined(entries)),
        summary=_summary(row, entries, text),
    )
    await record(
        tx,
        principal,
        tenant_id=row.tenant_id,
        action="evaluation.resubmit",
        object_type="EvaluationRound",
        object_id=row.id,
        details={"approval_request_id": request.id, "material": text},
    )
    return row


async def on_approval_outcome(
    tx: Transaction, principal: Principal, request: Any, outcome: str, reason: str | None
) -> None:
    """What the superior's decision does to the round (registered with approvals)."""
    if request.subject_type != SUBJECT_TYPE:
        return
    from service.evaluations.repository import get_round as fetch

    row = await fetch(tx, request.subject_id, lock=True)
    if row is None or row.approval_request_id != request.id:
        return  # not a round's current request (none of ours to move)
    if Stage(row.stage) is not Stage.SUPERIOR_REVIEW:
        raise STAGE_CHANGED.error(stage=STAGE_LABELS[Stage(row.stage)])
    if outcome == Outcome.APPROVED.value:
        # The content approved must be the content now (a digest of the grades).
        entries = await _entries(tx, row)
        if results_digest(row.id, _determined(entries)) != request.digest:
            raise STAGE_CHANGED.error(stage=STAGE_LABELS[Stage(row.stage)])
        starts, ends = notice_period(date.today(), policy_of(row).notice_days)
        await change_stage(
            tx,
            principal,
            row,
            Stage.PUBLIC_NOTICE,
            action="evaluation.approved",
            extra={"notice_starts_on": starts, "notice_ends_on": ends},
        )
    elif outcome == Outcome.REJECTED.value:
        # Back to the committee with the reasons kept; the assembly decides again.
        await _reset_votes(tx, row)
        await change_stage(
            tx, principal, row, Stage.PROPOSED, action="evaluation.rejected", reason=reason
        )
    elif outcome == Outcome.RETURNED.value:
        await record(
            tx,
            principal,
            tenant_id=row.tenant_id,
            action="evaluation.returned",
            object_type="EvaluationRound",
            object_id=row.id,
            details={"approval_request_id": request.id, "reason": reason},
        )


# --- public notice (公示) and objections ---------------------------------------------


async def raise_objection(
    tx: Transaction, principal: Principal, *, round_id: int, member_id: int, text: str
) -> Any:
    """An objection to a member's result during the notice: by the member about their
    own (`evaluation:participate` at the branch), or by the branch (its secretary and
    committee, `evaluation:assist` there) about any member, themselves included. A
    superior who reads the round decides on it through the approval instead
    (FORBIDDEN here); who cannot read the round learns nothing (NOT_FOUND)."""
    row = await get_round(tx, principal, round_id)
    entry = await repository.entry_of_member(tx, row, member_id) if fits_bigint(member_id) else None
    own = (
        entry is not None
        and principal.account_id is not None
        and entry.member_account_id == principal.account_id
    )
    if entry is None or not (own or reads_round(principal, row)):
        raise not_found(ENTRY)
    # The capacity it is raised in: as the member (their own result, and a member role
    # there), else as the branch; the decision itself is `require`'s.
    as_member = own and authorizer().allowed(
        principal, EvaluationAction.PARTICIPATE, row.branch_path
    )
    require(
        principal,
        EvaluationAction.PARTICIPATE if as_member else EvaluationAction.ASSIST,
        row.branch_path,
        what=ENTRY,
        seen_with=EvaluationAction.READ,
    )
    if Stage(row.stage) is not Stage.PUBLIC_NOTICE:
        raise NOTICE_NOT_OPEN.error()
    said = clean_text(text, MAX_OBJECTION)
    if said is None:
        raise OBJECTION_TEXT_MISSING.error(limit=MAX_OBJECTION)
    saved = await tx.one(
        "INSERT INTO evaluation_objections (tenant_id, round_id, member_id, text, raised_by)"
        " VALUES (%(tenant)s, %(round)s, %(member)s, %(text)s, %(actor)s)"
        f" RETURNING {_OBJECTION_FIELDS}",
        {
            "tenant": row.tenant_id,
            "round": row.id,
            "member": member_id,
            "text": said,
            "actor": principal.actor,
        },
    )
    await record(
        tx,
        principal,
        tenant_id=row.tenant_id,
        action="evaluation.objection",
        object_type="EvaluationObjection",
        object_id=saved.id,
        details={"round_id": row.id, "member_id": member_id},
    )
    return await get_objection(tx, principal, saved.id)


async def answer_objection(
    tx: Transaction, principal: Principal, *, objection_id: int, answer: str
) -> Any:
    """The branch answers an objection, once (`evaluation:run`: the branch secretary)."""
    objection = await get_objection(tx, principal, objection_id)
    own = principal.account_id is not None and objection.member_account_id == principal.account_id
    # Seen (a reader, or the member it is about, who takes part there): FORBIDDEN, not
    # NOT_FOUND, for who may not answer.
    require(
        principal,
        EvaluationAction.RUN,
        objection.branch_path,
        what=OBJECTION,
        seen_with=EvaluationAction.PARTICIPATE if own else EvaluationAction.READ,
    )
    if Stage(objection.stage) is not Stage.PUBLIC_NOTICE:
        raise NOTICE_NOT_OPEN.error()
    said = clean_text(answer, MAX_ANSWER)
    if said is None:
        raise ANSWER_MISSING.error(limit=MAX_ANSWER)
    done = await tx.first(
        "UPDATE evaluation_objections SET answer = %(answer)s, answered_by = %(actor)s,"
        " answered_at = now(), version = version + 1"
        " WHERE tenant_id = %(tenant)s AND id = %(id)s AND answered_at IS NULL"
        " RETURNING id",
        {
            "answer": said,
            "actor": principal.actor,
            "tenant": objection.tenant_id,
            "id": objection.id,
        },
    )
    if done is None:
        raise OBJECTION_ANSWERED.error()
    await record(
        tx,
        principal,
        tenant_id=objection.tenant_id,
        action="evaluation.objection_answer",
        object_type="EvaluationObjection",
        object_id=objection.id,
        details={"round_id": objection.round_id},
    )
    return await get_objection(tx, principal, objection.id)


# --- final (结束) ------------------------------------------------------------------------


async def _check_final(tx: Transaction, row: Any, today: date) -> None:
    if not notice_over(row.notice_ends_on, today):
        ends = row.notice_ends_on.isoformat() if row.notice_ends_on else "—"
        raise NOTICE_NOT_OVER.error(ends_on=ends)
    open_count = await tx.scalar(
        "SELECT count(*) FROM evaluation_objections WHERE tenant_id = %(tenant)s"
        " AND round_id = %(round)s AND answered_at IS NULL",
        {"tenant": row.tenant_id, "round": row.id},
    )
    if open_count:
        raise OBJECTIONS_OPEN.error(count=open_count)


async def _write_final(tx: Transaction, row: Any) -> None:
    """Final grades on the entries, each member's grade of the year (the latest half's
    final round wins), and an event for each member with an account."""
    # Every entry of the roster gets its final grade, also a member who has transferred
    # to another tenant since; the grade history (member_grades lives with the member's
    # record) and the event reach only the members still in this tenant: the history of
    # one who left is for their new tenant to keep, from this round's result.
    entries = await tx.rows(
        "WITH graded AS (UPDATE evaluation_entries e SET final_grade = e.committee_grade,"
        " version = e.version + 1 WHERE e.tenant_id = %(tenant)s AND e.round_id = %(round)s"
        " AND e.position IS NOT NULL RETURNING e.member_id, e.final_grade)"
        " SELECT g.member_id, g.final_grade, m.account_id FROM graded g"
        " JOIN members m ON m.tenant_id = %(tenant)s AND m.id = g.member_id",
        {"tenant": row.tenant_id, "round": row.id},
    )
    await tx.execute(
        "INSERT INTO member_grades (tenant_id, member_id, year, grade, round_id)"
        " SELECT %(tenant)s, v.member_id, %(year)s, v.grade, %(round)s"
        " FROM unnest(%(members)s::bigint[], %(grades)s::text[]) AS v(member_id, grade)"
        " ON CONFLICT (tenant_id, member_id, year) DO UPDATE SET grade = EXCLUDED.grade,"
        " round_id = EXCLUDED.round_id, recorded_at = now()"
        # A year's grade is its last final round: an earlier half finalized late does
        # not overwrite a later one.
        " WHERE member_grades.round_id IS NULL OR NOT EXISTS (SELECT 1 FROM"
        " evaluation_rounds r WHERE r.tenant_id = member_grades.tenant_id"
        " AND r.id = member_grades.round_id AND r.half > %(half)s)",
        {
            "tenant": row.tenant_id,
            "year": row.year,
            "half": row.half,
            "round": row.id,
            "members": [e.member_id for e in entries],
            "grades": [e.final_grade for e in entries],
        },
    )
    from service.events import publish

    accounts = sorted(e.account_id for e in entries if e.account_id is not None)
    for start in range(0, len(accounts), EVENT_CHUNK):
        await publish(
            tx,
            EVENT_TOPIC,
            {
                "round_id": row.id,
                "tenant_id": row.tenant_id,
                "account_ids": accounts[start : start + EVENT_CHUNK],
            },
        )


async def _finalize_move(tx: Transaction, principal: Principal, row: Any) -> dict[str, Any] | None:
    await _check_final(tx, row, date.today())
    await _write_final(tx, row)
    return None


async def finalize(
    tx: Transaction, principal: Principal, *, round_id: int, today: date | None = None
) -> Any:
    """public_notice -> final, as `advanceEvaluationRound` does it, with the day given
    (the demo loader ends the notice of a round of a past half-year)."""
    row = await _locked_round(tx, principal, round_id, EvaluationAction.RUN)
    if Stage(row.stage) is not Stage.PUBLIC_NOTICE:
        raise STAGE_CHANGED.error(stage=STAGE_LABELS[Stage(row.stage)])
    await _check_final(tx, row, today or date.today())
    await _write_final(tx, row)
    return await change_stage(tx, principal, row, Stage.FINAL, action="evaluation.advance")


async def _propose_move(tx: Transaction, principal: Principal, row: Any) -> dict[str, Any] | None:
    await _confirm_proposals(tx, principal, row)
    return None


async def _assembly_move(tx: Transaction, principal: Principal, row: Any) -> dict[str, Any] | None:
    await _convene_assembly(tx, principal, row)
    return None


def install() -> None:
    """Register the moves after the tally and the approval outcome handler (idempotent;
    done on import)."""
    register_move(Stage.TALLIED, _propose_move)
    register_move(Stage.PROPOSED, _assembly_move)
    register_move(Stage.ASSEMBLY, _submit_results)
    register_move(Stage.PUBLIC_NOTICE, _finalize_move)
    approvals.on_outcome(ApprovalKind.EVALUATION_RESULT, on_approval_outcome)


install()
