"""Use cases of disposal cases (处置不合格党员): open, record each procedure step, move
along `rules.MOVES`, and react to the approval chain.

Who does what:

- the branch secretary (`case:run` at the branch) opens a case and records every step;
- the tenant's committee pre-reviews a proposal (`case:pre_review`), and for
  persuasion and removal the county organization department too (`case:county_review`);
- the approval chain (service.approvals) decides the advance filing (CASE_FILING), the
  disposal (CASE_DISPOSAL) and a withdrawal's filing (CASE_FILING, to the county);
- readers of the branch's cases (`case:read`: secretaries, committees, the county) see
  them; the member concerned sees their own case and files statements and appeals; the
  two educators see their case only and log weekly sessions. Mass representatives have
  no account and see nothing.

Every move is one conditional UPDATE on the case's version (a double submit or a race
moves it once; the loser is told the stage), one record row and one audit event, in
the request's transaction. A move that decides the member's status writes it through
`members.service.set_status` (history + audit) and `members.left_on/left_by`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from types import SimpleNamespace
from typing import Any

from service import approvals, attachments
from service.approvals import ApprovalKind, Outcome
from service.audit.service import record
from service.auth.principal import Principal
from service.authz import authorizer, readable_paths, require
from service.authz.actions import Action
from service.cases import repository, rules
from service.cases.actions import CaseAction
from service.cases.errors import (
    ALREADY_SANCTIONED,
    ASSEMBLY_COUNTS_INVALID,
    ASSEMBLY_EXPECTED_VOTERS_MISMATCH,
    ASSEMBLY_NO_QUORUM,
    CASE,
    CASE_ALREADY_OPEN,
    CASE_DATE_INVALID,
    CASE_FACTS_MISSING,
    CASE_MEMBER_NOT_ON_ROLLS,
    CASE_ORIGIN_STATUS_MISMATCH,
    CASE_STAGE_INVALID,
    CASE_TEXT_MISSING,
    CORRECTION_MONTHS_INVALID,
    CORRECTION_NOT_DUE,
    DISPOSAL_UNFIT,
    EDUCATORS_INVALID,
    EXCLUSION_NOT_A_VOTER,
    EXCLUSION_REASON_INVALID,
    NOT_SANCTIONED_STATEMENT_MISSING,
    PRE_REVIEW_DONE,
    TALKERS_INVALID,
    UNFIT_LABELS,
)
from service.cases.rules import (
    CaseEvent,
    CaseOrigin,
    CaseOutcome,
    CaseStage,
    Disposal,
    RecordKind,
)
from service.clock import today as business_today
from service.db import Transaction
from service.errors import forbidden, not_found
from service.evaluations.determinations import ExclusionReason
from service.evaluations.policies import effective_policy
from service.evaluations.rules import assembly_passes, assembly_quorum
from service.members import repository as members_repository
from service.members.mobile import clean_text
from service.members.rules import STATUS_LABELS, MemberStatus, may_move
from service.members.service import get_member, on_account_linked, set_status
from service.pagination import Page, PageRequest, fits_bigint
from service.sanctions.rules import sanctions_from_json, under_probation

SUBJECT_TYPE = "DisposalCase"
MAX_TEXT = 4000
MAX_STATEMENT = 1000
MAX_PEOPLE = 20
STEP_DAYS = 7  # each approval step's allowance (the evaluation policy's default)
# The listed reasons a member is left out of the expected voters (as evaluations).
EXCLUSION_REASONS = frozenset(ExclusionReason)
# A case may be opened for a member on the rolls, or suspended (停止党籍: out of contact).
OPENABLE = frozenset({MemberStatus.ACTIVE, MemberStatus.SUSPENDED})


# --- reading and who sees --------------------------------------------------------------


def _own(principal: Principal, row: Any) -> bool:
    return principal.account_id is not None and row.member_account_id == principal.account_id


def _educator(principal: Principal, row: Any) -> bool:
    ids = getattr(row, "educator_account_ids", None) or ()
    return principal.account_id is not None and principal.account_id in ids


def _reader(principal: Principal, row: Any) -> bool:
    return authorizer().allowed(principal, CaseAction.READ, row.branch_path)


def sees(principal: Principal, row: Any) -> bool:
    """The case's readers: the branch's readers, the member concerned, its educators."""
    return _reader(principal, row) or _own(principal, row) or _educator(principal, row)


async def get_case(tx: Transaction, principal: Principal, case_id: int) -> Any:
    row = await repository.get_case(tx, case_id) if fits_bigint(case_id) else None
    if row is None or not sees(principal, row):
        raise not_found(CASE)
    return row


async def may_read_case(tx: Transaction, principal: Principal, case_id: int) -> bool:
    """Whether the principal reads the case (attachments of a case follow it)."""
    row = await repository.get_case(tx, case_id) if fits_bigint(case_id) else None
    return row is not None and sees(principal, row)


async def load_cases(tx: Transaction, principal: Principal, ids: Sequence[int]) -> list[Any | None]:
    by_id = await repository.get_cases(tx, [i for i in ids if fits_bigint(i)])
    found: list[Any | None] = []
    for case_id in ids:
        row = by_id.get(case_id)
        found.append(row if row is not None and sees(principal, row) else None)
    return found


async def cases(
    tx: Transaction,
    principal: Principal,
    page: PageRequest,
    *,
    branch_id: int | None = None,
    stage: CaseStage | None = None,
) -> Page[Any]:
    """Cases under the principal's `case:read` scope (the county's, a tenant's, a
    branch's), optionally under one org unit and of one stage. A unit the principal does
    not read cases of is NOT_FOUND, like a missing one."""
    readable = readable_paths(principal, CaseAction.READ)
    wanted = stage.value if stage else None
    if branch_id is None:
        if not readable:
            return Page.empty()
        return await repository.cases_page(tx, readable, page, stage=wanted)
    found = (
        await repository.cases_page_under(tx, readable, branch_id, page, stage=wanted)
        if fits_bigint(branch_id) and readable
        else None
    )
    if found is None:
        raise not_found("组织")
    path, rows = found
    require(principal, CaseAction.READ, path, what="组织", seen_with=CaseAction.READ)
    return rows


async def my_cases(tx: Transaction, principal: Principal, page: PageRequest) -> Page[Any]:
    if principal.account_id is None:
        return Page.empty()
    return await repository.own_cases_page(tx, principal.account_id, page)


async def educator_cases(tx: Transaction, principal: Principal, page: PageRequest) -> Page[Any]:
    if principal.account_id is None:
        return Page.empty()
    return await repository.educator_cases_page(tx, principal.account_id, page)


async def case_records(
    tx: Transaction, principal: Principal, case: Any, page: PageRequest
) -> Page[Any]:
    """The steps of a case already shown to the principal."""
    if not sees(principal, case):
        raise not_found(CASE)
    return await repository.records_page(tx, case, page)


async def case_educators(tx: Transaction, principal: Principal, case: Any) -> list[Any]:
    if not sees(principal, case):
        raise not_found(CASE)
    return await repository.educators_of(tx, case)


async def education_sessions(tx: Transaction, principal: Principal, case: Any) -> list[Any]:
    if not sees(principal, case):
        raise not_found(CASE)
    return await repository.sessions_of(tx, case)


async def missed_weeks(tx: Transaction, principal: Principal, case: Any) -> list[tuple[date, date]]:
    """Finished education weeks without a session (flagged on the case)."""
    if case.education_started_on is None:
        return []
    sessions = await education_sessions(tx, principal, case)
    until = case.education_ended_on or business_today(tx)
    return rules.missed_weeks(case.education_started_on, [s.held_on for s in sessions], until)


async def case_candidates(tx: Transaction, principal: Principal, branch_id: int) -> list[Any]:
    """Members under the unit a case may be opened for (readers of its cases)."""
    from service.approvals import repository as approvals_repository

    branch = (
        await approvals_repository.branch_unit(tx, branch_id) if fits_bigint(branch_id) else None
    )
    if branch is None:
        raise not_found("组织")
    require(principal, CaseAction.READ, branch.path, what="组织", seen_with=CaseAction.READ)
    return await repository.candidates(tx, branch.path)


@dataclass(frozen=True)
class CaseArchiveData:
    """Everything the archive bundle shows of a case (service.cases.archive)."""

    case: Any
    records: list[Any]
    educators: list[Any]
    sessions: list[Any]
    approval_requests: list[Any]


async def case_for_archive(
    tx: Transaction, principal: Principal, *, case_id: int, action: Action = CaseAction.READ
) -> CaseArchiveData:
    """The case with every record, educator, session and approval request (with its
    steps), for whoever may do `action` on the branch's cases (the archive passes its
    export action). Every approval of the case is included: reading the case is what
    authorizes them, not the reader's own approval rights."""
    row = await get_case(tx, principal, case_id)
    require(principal, action, row.branch_path, what=CASE, seen_with=CaseAction.READ)
    # Every request the case went through (a rejected disposal, then the next one).
    found = await tx.rows(
        "SELECT id FROM approval_requests WHERE tenant_id = %(tenant)s"
        " AND kind IN ('case_filing', 'case_disposal') AND subject_type = %(type)s"
        " AND subject_id = %(case)s ORDER BY id",
        {"tenant": row.tenant_id, "type": SUBJECT_TYPE, "case": row.id},
    )
    requests = await approvals.requests_with_steps(tx, [r.id for r in found])
    return CaseArchiveData(
        case=row,
        records=await repository.records_of(tx, row),
        educators=await repository.educators_of(tx, row),
        sessions=await repository.sessions_of(tx, row),
        approval_requests=requests,
    )


# --- writing helpers -------------------------------------------------------------------


def _text(value: str | None, what: str, limit: int = MAX_TEXT) -> str:
    said = clean_text(value, limit)
    if said is None:
        raise CASE_TEXT_MISSING.error(what=what, limit=limit)
    return said


def _optional_text(value: str | None, limit: int = MAX_TEXT) -> str | None:
    if value is None or not value.strip():
        return None
    return _text(value, "说明", limit)


async def _audit(
    tx: Transaction, principal: Principal, row: Any, action: str, details: dict[str, Any]
) -> None:
    """One audit event about the case `row` (every write of this module makes one)."""
    await record(
        tx,
        principal,
        tenant_id=row.tenant_id,
        action=action,
        object_type=SUBJECT_TYPE,
        object_id=row.id,
        details=details,
    )


def _people(names: Sequence[str] | None) -> list[str]:
    found = [n.strip() for n in names or () if n and n.strip()]
    if len(found) > MAX_PEOPLE or any(len(n) > 50 for n in found):
        raise CASE_TEXT_MISSING.error(what="参与人员姓名", limit=50)
    return found


def _day(tx: Transaction, row: Any, on: date | None) -> date:
    today = business_today(tx)
    day = on or today
    if day > today or (row is not None and day < row.opened_on):
        raise CASE_DATE_INVALID.error()
    return day


async def _locked(
    tx: Transaction, principal: Principal, case_id: int, action: CaseAction = CaseAction.RUN
) -> Any:
    row = await repository.get_case(tx, case_id, lock=True) if fits_bigint(case_id) else None
    if row is None:
        raise not_found(CASE)
    require(principal, action, row.branch_path, what=CASE, seen_with=CaseAction.READ)
    return row


def _stage_error(row: Any) -> Exception:
    return CASE_STAGE_INVALID.error(stage=rules.STAGE_LABELS[CaseStage(row.stage)])


async def _check_attachments(
    tx: Transaction, principal: Principal, ids: Sequence[int], row: Any
) -> None:
    """Every named file exists in the case's tenant (else NOT_FOUND), checked right
    after the case is found and authorized, before any rule: an id of another tenant
    answers as a missing one does, whatever else is wrong with the request."""
    if not ids:
        return
    from service.attachments import repository as files

    found = await files.get_many(tx, list(dict.fromkeys(ids)))
    if any(found.get(i) is None or found[i].tenant_id != row.tenant_id for i in ids):
        raise not_found("附件")


async def _link(
    tx: Transaction, principal: Principal, ids: Sequence[int], kind: str, owner: Any
) -> None:
    if not ids:
        return
    from service.attachments.service import link

    await link(tx, principal, ids, kind, owner.id, tenant_id=owner.tenant_id)


async def _add(
    tx: Transaction,
    principal: Principal,
    row: Any,
    kind: RecordKind,
    on: date,
    *,
    people: Sequence[str] = (),
    body: str = "",
    data: dict[str, Any] | None = None,
    attachment_ids: Sequence[int] = (),
) -> Any:
    saved = await repository.add_record(
        tx,
        row,
        kind=kind.value,
        occurred_on=on,
        people=people,
        body=body,
        data=data,
        account_id=principal.account_id,
        actor=principal.actor,
    )
    await _link(tx, principal, attachment_ids, "case_record", saved)
    return saved


async def _move(
    tx: Transaction,
    principal: Principal,
    row: Any,
    event: CaseEvent,
    *,
    disposal: Disposal | None = None,
    on: date | None = None,
    extra: dict[str, Any] | None = None,
    details: dict[str, Any] | None = None,
) -> Any:
    """Move the case by `event` (rules.move), write the member's status it implies, and
    audit it. `disposal` defaults to the case's."""
    chosen = disposal or (Disposal(row.disposal) if row.disposal else None)
    try:
        target, outcome = rules.move(
            CaseStage(row.stage), event, origin=CaseOrigin(row.origin), disposal=chosen
        )
    except rules.MoveRefused as exc:
        raise _stage_error(row) from exc
    day = on or business_today(tx)
    values: dict[str, Any] = {"stage": target.value, **(extra or {})}
    if outcome is not None:
        values |= {"outcome": outcome.value, "closed_on": day}
    moved = await repository.update_case(tx, row, **values)
    if moved is None:
        raise _stage_error(row)
    await _audit(
        tx,
        principal,
        row,
        f"case.{event.value}",
        {
            "from": row.stage,
            "to": target.value,
            "disposal": chosen.value if chosen else None,
            "outcome": outcome.value if outcome else None,
            **(details or {}),
        },
    )
    await _apply_status(tx, principal, moved, day)
    return moved


async def _apply_status(tx: Transaction, principal: Principal, row: Any, day: date) -> None:
    """Bring the member's status in line with the case (rules.member_status)."""
    outcome = CaseOutcome(row.outcome) if row.outcome else None
    wanted = rules.member_status(
        CaseStage(row.stage), outcome, correction_failed=row.correction_failed
    )
    if wanted is None:
        return
    member = await members_repository.get_member(tx, row.member_id)
    if member is None:
        return  # moved to another tenant meanwhile: its new branch keeps its status
    current = MemberStatus(member.status)
    target = MemberStatus(wanted)
    if current is not target:
        if not may_move(current, target):
            raise CASE_MEMBER_NOT_ON_ROLLS.error(status=STATUS_LABELS[current])
        note = f"处置案件：{rules.STAGE_LABELS[CaseStage(row.stage)]}"
        if outcome is not None:
            note = f"处置案件结案：{rules.OUTCOME_LABELS[outcome]}"
        await set_status(tx, principal, member, status=target, effective_on=day, note=note)
    left = rules.left_by(outcome, Disposal(row.disposal) if row.disposal else None)
    if left is not None:
        await repository.set_left(tx, member, left_on=day, left_by=left)


# --- opening and the advance filing ----------------------------------------------------


async def open_case(
    tx: Transaction,
    principal: Principal,
    *,
    member_id: int,
    origin: CaseOrigin,
    facts: str,
    not_sanctioned_statement: str,
    opened_on: date | None = None,
    evaluation_round_id: int | None = None,
    attachment_ids: Sequence[int] = (),
) -> Any:
    """Open a case (立案) and file it in advance with the tenant's committee."""
    member = await get_member(tx, principal, member_id, CaseAction.RUN)
    if evaluation_round_id is not None:
        found = (
            await tx.first(
                "SELECT tenant_id FROM evaluation_rounds WHERE id = %(id)s",
                {"id": evaluation_round_id},
            )
            if fits_bigint(evaluation_round_id)
            else None
        )
        if found is None or found.tenant_id != member.tenant_id:
            raise not_found("评议")
    await _check_attachments(tx, principal, attachment_ids, member)
    status = MemberStatus(member.status)
    # A member out of contact is one whose membership was suspended (停止党籍) two years
    # ago; a suspended member's case is only that one (it can end only in removal, the
    # one way out of suspension a case takes).
    suspended = status is MemberStatus.SUSPENDED
    if status not in OPENABLE:
        raise CASE_MEMBER_NOT_ON_ROLLS.error(status=STATUS_LABELS[status])
    if suspended != (origin is CaseOrigin.OUT_OF_CONTACT):
        raise CASE_ORIGIN_STATUS_MISMATCH.error()
    what = clean_text(facts, MAX_TEXT)
    if what is None:
        raise CASE_FACTS_MISSING.error(limit=MAX_TEXT)
    statement = clean_text(not_sanctioned_statement, MAX_STATEMENT)
    if statement is None:
        raise NOT_SANCTIONED_STATEMENT_MISSING.error()
    day = _day(tx, None, opened_on)
    today = business_today(tx)
    if (today - day).days > rules.MAX_OPENING_BACKDATE_DAYS:
        raise CASE_DATE_INVALID.error()
    sanctions = await repository.sanction_dates(tx, member.tenant_id, member.id)
    # Measured from today as well as from the stated opening day: a backdated opening
    # must not step outside the lookback of a recent sanction.
    if rules.double_handling(origin, sanctions, day) or rules.double_handling(
        origin, sanctions, today
    ):
        raise ALREADY_SANCTIONED.error(months=rules.SANCTION_LOOKBACK_MONTHS)
    row = await repository.insert_case(
        tx,
        tenant_id=member.tenant_id,
        branch_id=member.branch_id,
        branch_path=member.branch_path,
        member_id=member.id,
        member_name=member.name,
        member_account_id=member.account_id,
        origin=origin.value,
        facts=what,
        not_sanctioned_statement=statement,
        evaluation_round_id=evaluation_round_id,
        opened_on=day,
        opened_by=principal.actor,
    )
    if row is None:
        raise CASE_ALREADY_OPEN.error()
    await _add(
        tx, principal, row, RecordKind.OPENING, day, body=what, data={"origin": origin.value}
    )
    await _link(tx, principal, attachment_ids, "case", row)
    request = await approvals.submit(
        tx,
        principal,
        kind=ApprovalKind.CASE_FILING,
        subject_type=SUBJECT_TYPE,
        subject_id=row.id,
        branch_unit=row.branch_id,
        digest=approvals.digest_of({"case": row.id, "step": "opening", "facts": what}),
        summary={
            "step": "opening",
            "member": row.member_name,
            "origin": rules.ORIGIN_LABELS[origin],
        },
        to_county=False,
        step_days=STEP_DAYS,
    )
    row = await repository.update_case(tx, row, filing_request_id=request.id)
    await _audit(
        tx,
        principal,
        row,
        "case.open",
        {"member_id": member.id, "origin": origin.value, "filing_request_id": request.id},
    )
    return row


# --- the procedure's steps -------------------------------------------------------------


async def record_investigation(
    tx: Transaction,
    principal: Principal,
    *,
    case_id: int,
    occurred_on: date | None,
    investigators: Sequence[str],
    findings: str,
    attachment_ids: Sequence[int] = (),
) -> Any:
    row = await _locked(tx, principal, case_id)
    await _check_attachments(tx, principal, attachment_ids, row)
    day = _day(tx, row, occurred_on)
    moved = await _move(tx, principal, row, CaseEvent.INVESTIGATE, on=day)
    await _add(
        tx,
        principal,
        moved,
        RecordKind.INVESTIGATION,
        day,
        people=_people(investigators),
        body=_text(findings, "调查核实情况"),
        attachment_ids=attachment_ids,
    )
    return moved


TALK_RESPONSES = frozenset({"heard", "refused", "unreachable"})


async def record_talk(
    tx: Transaction,
    principal: Principal,
    *,
    case_id: int,
    occurred_on: date | None,
    talkers: Sequence[str],
    summary: str,
    response: str,
    member_statement: str | None = None,
    wants_to_stay: bool | None = None,
    attachment_ids: Sequence[int] = (),
) -> Any:
    """The organizational talk: two full members, the findings and the proposed measure
    told; the member's views, or that they refused or could not be reached."""
    row = await _locked(tx, principal, case_id)
    await _check_attachments(tx, principal, attachment_ids, row)
    names = _people(talkers)
    if len(set(names)) != 2:
        raise TALKERS_INVALID.error()
    if response not in TALK_RESPONSES:
        raise CASE_TEXT_MISSING.error(what="谈话结果", limit=20)
    day = _day(tx, row, occurred_on)
    extra = {} if wants_to_stay is None else {"wants_to_stay": wants_to_stay}
    moved = await _move(tx, principal, row, CaseEvent.TALK, on=day, extra=extra)
    await _add(
        tx,
        principal,
        moved,
        RecordKind.TALK,
        day,
        people=names,
        body=_text(summary, "谈话情况"),
        data={
            "response": response,
            "member_statement": _optional_text(member_statement),
            "wants_to_stay": wants_to_stay,
        },
        attachment_ids=attachment_ids,
    )
    return moved


async def assign_educators(
    tx: Transaction,
    principal: Principal,
    *,
    case_id: int,
    educator_member_ids: Sequence[int],
    assigned_on: date | None = None,
) -> Any:
    """Two full members of the branch (not the member concerned) educate the member."""
    row = await _locked(tx, principal, case_id)
    ids = list(dict.fromkeys(educator_member_ids))
    found = await members_repository.get_members(tx, [i for i in ids if fits_bigint(i)])
    if any(found.get(i) is None for i in ids):
        raise not_found("党员")  # another tenant's member answers as a missing one
    educators = [found[i] for i in ids]
    if len(ids) != 2 or row.member_id in ids:
        raise EDUCATORS_INVALID.error()
    if any(
        e.branch_id != row.branch_id
        or e.category != "full"
        or e.status not in (MemberStatus.ACTIVE.value,)
        for e in educators
    ):
        raise EDUCATORS_INVALID.error()
    day = _day(tx, row, assigned_on)
    moved = await _move(
        tx, principal, row, CaseEvent.ASSIGN_EDUCATORS, on=day, extra={"education_started_on": day}
    )
    await repository.add_educators(tx, moved, educators, day)
    await _add(
        tx,
        principal,
        moved,
        RecordKind.EDUCATION_ASSIGNED,
        day,
        people=[e.name for e in educators],
        data={"educator_member_ids": ids},
    )
    return moved


async def log_education_session(
    tx: Transaction,
    principal: Principal,
    *,
    case_id: int,
    held_on: date | None,
    summary: str,
) -> Any:
    """An educator logs one session (web or mini-program); only the case's educators."""
    row = await repository.get_case(tx, case_id) if fits_bigint(case_id) else None
    if row is None or not sees(principal, row):
        raise not_found(CASE)
    mine = [
        e
        for e in await repository.educators_of(tx, row)
        if principal.account_id is not None and e.account_id == principal.account_id
    ]
    if not mine:  # a reader of the case, but not one of its educators
        raise forbidden()
    require(
        principal,
        CaseAction.PARTICIPATE,
        row.branch_path,
        what=CASE,
        seen_with=CaseAction.PARTICIPATE,
    )
    if CaseStage(row.stage) is not CaseStage.EDUCATING:
        raise _stage_error(row)
    day = held_on or business_today(tx)
    if day > business_today(tx) or day < mine[0].assigned_on:
        raise CASE_DATE_INVALID.error()
    saved = await repository.add_session(
        tx,
        row,
        educator_member_id=mine[0].member_id,
        held_on=day,
        summary=_text(summary, "帮教情况"),
        actor=principal.actor,
    )
    await _audit(
        tx,
        principal,
        row,
        "case.education_session",
        {"session_id": saved.id, "held_on": day.isoformat()},
    )
    return saved


async def record_re_evaluation(
    tx: Transaction,
    principal: Principal,
    *,
    case_id: int,
    occurred_on: date | None,
    participants: Sequence[str],
    summary: str,
    mass_representatives: int = 0,
) -> Any:
    """The re-evaluation after education by members and mass representatives."""
    row = await _locked(tx, principal, case_id)
    day = _day(tx, row, occurred_on)
    moved = await _move(
        tx, principal, row, CaseEvent.RE_EVALUATE, on=day, extra={"education_ended_on": day}
    )
    await _add(
        tx,
        principal,
        moved,
        RecordKind.RE_EVALUATION,
        day,
        people=_people(participants),
        body=_text(summary, "再次评议情况"),
        data={"mass_representatives": max(0, int(mass_representatives))},
    )
    return moved


async def propose_disposal(
    tx: Transaction,
    principal: Principal,
    *,
    case_id: int,
    disposal: Disposal,
    reasons: str,
    wants_to_stay: bool | None = None,
    correction_months: int | None = None,
    occurred_on: date | None = None,
) -> Any:
    """The branch committee proposes a disposal; it must fit DOMAIN.md's table."""
    row = await _locked(tx, principal, case_id)
    stay = row.wants_to_stay if wants_to_stay is None else wants_to_stay
    why = rules.disposal_unfit(
        disposal,
        origin=CaseOrigin(row.origin),
        wants_to_stay=bool(stay),
        correction_failed=row.correction_failed,
        persuasion_refused=row.persuasion_refused,
    )
    if why is not None:
        raise DISPOSAL_UNFIT.error(why=UNFIT_LABELS[why.value])
    months = None
    if disposal is Disposal.CORRECTION:
        # The tenant's (else the county's) grading policy sets the deadline; the
        # committee may name another within DOMAIN.md's bound.
        policy = await effective_policy(
            tx, SimpleNamespace(path=row.branch_path, tenant_id=row.tenant_id), principal=principal
        )
        months = correction_months or policy.policy.correction_months
        if not 1 <= months <= rules.MAX_CORRECTION_MONTHS:
            raise CORRECTION_MONTHS_INVALID.error(maximum=rules.MAX_CORRECTION_MONTHS)
    day = _day(tx, row, occurred_on)
    moved = await _move(
        tx,
        principal,
        row,
        CaseEvent.PROPOSE,
        disposal=disposal,
        on=day,
        extra={
            "disposal": disposal.value,
            "wants_to_stay": stay,
            "correction_months": months,
            "committee_pre_reviewed": False,
            "county_pre_reviewed": False,
        },
    )
    await _add(
        tx,
        principal,
        moved,
        RecordKind.PROPOSAL,
        day,
        body=_text(reasons, "处置意见及理由"),
        data={"disposal": disposal.value, "correction_months": months},
    )
    return moved


async def record_pre_review(
    tx: Transaction,
    principal: Principal,
    *,
    case_id: int,
    agreed: bool,
    opinion: str,
    county: bool | None = None,
    occurred_on: date | None = None,
    attachment_ids: Sequence[int] = (),
) -> Any:
    """The superior's pre-review: the tenant's committee (`case:pre_review`), and for
    persuasion and removal the county organization department in writing
    (`case:county_review`). A disagreement returns the case to the branch."""
    if county is None:
        # The level follows who reviews: the county organization department where the
        # principal holds `case:county_review` there, else the tenant's committee.
        found = await repository.get_case(tx, case_id) if fits_bigint(case_id) else None
        county = found is not None and authorizer().allowed(
            principal, CaseAction.COUNTY_REVIEW, found.branch_path
        )
    action = CaseAction.COUNTY_REVIEW if county else CaseAction.PRE_REVIEW
    row = await _locked(tx, principal, case_id, action)
    await _check_attachments(tx, principal, attachment_ids, row)
    if CaseStage(row.stage) is not CaseStage.PROPOSED:
        raise _stage_error(row)
    done = row.county_pre_reviewed if county else row.committee_pre_reviewed
    disposal = Disposal(row.disposal)
    if done or (county and not rules.needs_county_pre_review(disposal)):
        raise PRE_REVIEW_DONE.error()
    text = _text(opinion, "预审意见")
    day = _day(tx, row, occurred_on)
    level = "county" if county else "committee"
    if not agreed:
        moved = await _move(
            tx,
            principal,
            row,
            CaseEvent.PRE_REVIEW_REFUSED,
            on=day,
            extra={"committee_pre_reviewed": False, "county_pre_reviewed": False},
            details={"level": level},
        )
    else:
        flags = {
            "committee_pre_reviewed": row.committee_pre_reviewed or not county,
            "county_pre_reviewed": row.county_pre_reviewed or county,
        }
        complete = flags["committee_pre_reviewed"] and (
            flags["county_pre_reviewed"] or not rules.needs_county_pre_review(disposal)
        )
        if complete:
            moved = await _move(
                tx,
                principal,
                row,
                CaseEvent.PRE_REVIEW_DONE,
                on=day,
                extra=flags,
                details={"level": level},
            )
        else:
            moved = await repository.update_case(tx, row, **flags)
            if moved is None:
                raise _stage_error(row)
            await _audit(tx, principal, row, "case.pre_review", {"level": level, "agreed": True})
    await _add(
        tx,
        principal,
        moved,
        RecordKind.PRE_REVIEW,
        day,
        body=text,
        data={"level": level, "agreed": agreed},
        attachment_ids=attachment_ids,
    )
    return moved


@dataclass(frozen=True)
class Exclusion:
    member_id: int
    reason: str
    note: str | None = None


async def assembly_voters(tx: Transaction, row: Any) -> set[int]:
    """Who may vote in the branch's member assembly on the case today: its full members
    on the rolls, less those under probation (留党察看). The expected voters are these
    less the exclusions the assembly agreed to (each a listed reason)."""
    today = business_today(tx)
    return {
        v.id
        for v in await repository.branch_voters(tx, row.tenant_id, row.branch_id)
        if not under_probation(sanctions_from_json(v.sanctions), today)
    }


async def record_case_assembly(
    tx: Transaction,
    principal: Principal,
    *,
    case_id: int,
    held_on: date | None,
    expected_voters: int,
    present: int,
    votes_for: int,
    votes_against: int,
    votes_abstain: int,
    defence: str | None,
    speakers: Sequence[str] = (),
    exclusions: Sequence[Exclusion] = (),
    minutes: str | None = None,
    attachment_ids: Sequence[int] = (),
) -> Any:
    """The branch assembly's secret vote on this member alone, under the quorum rule of
    evaluations (more than half of the expected voters present; passed with more than
    half of the expected voters for). No quorum: nothing moves (ASSEMBLY_NO_QUORUM)."""
    row = await _locked(tx, principal, case_id)
    listed = {e.member_id for e in exclusions}
    if listed:  # a member the principal cannot see answers as a missing one
        found = await members_repository.get_members(tx, [i for i in listed if fits_bigint(i)])
        if any(found.get(i) is None for i in listed):
            raise not_found("党员")
    await _check_attachments(tx, principal, attachment_ids, row)
    if CaseStage(row.stage) is not CaseStage.PRE_REVIEWED:
        raise _stage_error(row)
    voters = await assembly_voters(tx, row)
    if not listed <= voters:
        raise EXCLUSION_NOT_A_VOTER.error()
    # 应到会有表决权的党员: counted here, not taken from the minutes.
    expected = len(voters - listed)
    if expected_voters != expected:
        raise ASSEMBLY_EXPECTED_VOTERS_MISMATCH.error(expected=expected, given=expected_voters)
    counts = (expected_voters, present, votes_for, votes_against, votes_abstain)
    if min(counts) < 0 or votes_for + votes_against + votes_abstain > present:
        raise ASSEMBLY_COUNTS_INVALID.error()
    if present > expected_voters:
        raise ASSEMBLY_COUNTS_INVALID.error()
    for e in exclusions:
        if e.reason not in EXCLUSION_REASONS:
            raise EXCLUSION_REASON_INVALID.error()
    if not assembly_quorum(present, expected_voters):
        raise ASSEMBLY_NO_QUORUM.error(present=present, expected=expected_voters)
    passed = assembly_passes(votes_for, expected_voters)
    day = _day(tx, row, held_on)
    data = {
        "expected_voters": expected_voters,
        "present": present,
        "votes_for": votes_for,
        "votes_against": votes_against,
        "votes_abstain": votes_abstain,
        "passed": passed,
        "defence": _optional_text(defence),
        "exclusions": [
            {"member_id": e.member_id, "reason": e.reason, "note": _optional_text(e.note, 200)}
            for e in exclusions
        ],
        "disposal": row.disposal,
    }
    event = CaseEvent.ASSEMBLY_PASSED if passed else CaseEvent.ASSEMBLY_FAILED
    moved = await _move(tx, principal, row, event, on=day, details={"votes_for": votes_for})
    await _add(
        tx,
        principal,
        moved,
        RecordKind.ASSEMBLY,
        day,
        people=_people(speakers),
        body=_optional_text(minutes) or "",
        data=data,
        attachment_ids=attachment_ids,
    )
    return moved


def _disposal_digest(row: Any) -> str:
    return approvals.digest_of({"case": row.id, "disposal": row.disposal, "stage": "submit"})


async def submit_disposal(tx: Transaction, principal: Principal, *, case_id: int) -> Any:
    """Send the assembly's decision up the chain: approval for correction, persuasion
    and removal (the tenant's committee); a withdrawal is filed (备案) with the county."""
    row = await _locked(tx, principal, case_id)
    if CaseStage(row.stage) is not CaseStage.ASSEMBLY_VOTED:
        raise _stage_error(row)
    disposal = Disposal(row.disposal)
    filing = rules.approval_kind_is_filing(disposal)
    request = await approvals.submit(
        tx,
        principal,
        kind=ApprovalKind.CASE_FILING if filing else ApprovalKind.CASE_DISPOSAL,
        subject_type=SUBJECT_TYPE,
        subject_id=row.id,
        branch_unit=row.branch_id,
        digest=_disposal_digest(row),
        summary={
            "step": "disposal",
            "member": row.member_name,
            "disposal": rules.DISPOSAL_LABELS[disposal],
        },
        to_county=filing,
        step_days=STEP_DAYS,
    )
    return await _move(
        tx,
        principal,
        row,
        CaseEvent.SUBMIT,
        extra={"approval_request_id": request.id},
        details={"approval_request_id": request.id},
    )


async def resubmit_to_superior(
    tx: Transaction, principal: Principal, *, case_id: int, material: str
) -> Any:
    """The superior returned the filing or the disposal for more material (退回补充材料):
    the branch adds it and submits again; the returning step is decided anew."""
    row = await _locked(tx, principal, case_id)
    text = _text(material, "补充材料")
    stage = CaseStage(row.stage)
    request_id = {
        CaseStage.OPENED: row.filing_request_id,
        CaseStage.IN_APPROVAL: row.approval_request_id,
    }.get(stage)
    if request_id is None:
        raise _stage_error(row)
    request = await approvals.get_request(tx, principal, request_id)
    if request.state != approvals.RequestState.RETURNED.value:
        raise _stage_error(row)
    summary = dict(request.summary) if isinstance(request.summary, dict) else {}
    await approvals.resubmit(
        tx,
        principal,
        request_id=request.id,
        digest=approvals.digest_of({"case": row.id, "previous": request.digest, "material": text}),
        summary=summary | {"material": text},
    )
    await _add(
        tx,
        principal,
        row,
        RecordKind.FILING if stage is CaseStage.OPENED else RecordKind.APPROVAL,
        business_today(tx),
        body=text,
        data={"resubmitted": True, "approval_request_id": request.id},
    )
    await _audit(tx, principal, row, "case.resubmit", {"approval_request_id": request.id})
    return row


async def on_approval_outcome(
    tx: Transaction, principal: Principal, request: Any, outcome: str, reason: str | None
) -> None:
    """What the chain's decision does to the case (registered for both kinds)."""
    if request.subject_type != SUBJECT_TYPE:
        return
    row = await repository.get_case(tx, request.subject_id, lock=True)
    if row is None:
        return
    day = business_today(tx)
    if request.id == row.filing_request_id and CaseStage(row.stage) is CaseStage.OPENED:
        event = {
            Outcome.APPROVED.value: CaseEvent.FILING_APPROVED,
            Outcome.REJECTED.value: CaseEvent.FILING_REJECTED,
        }.get(outcome)
        if event is not None:
            moved = await _move(tx, principal, row, event, on=day, details={"reason": reason})
            await _add(
                tx,
                principal,
                moved,
                RecordKind.FILING,
                day,
                body=reason or "",
                data={"outcome": outcome, "approval_request_id": request.id},
            )
        return
    if request.id != row.approval_request_id or CaseStage(row.stage) is not CaseStage.IN_APPROVAL:
        return
    if outcome == Outcome.APPROVED.value:
        disposal = Disposal(row.disposal)
        extra: dict[str, Any] = {}
        if disposal is Disposal.CORRECTION:
            months = row.correction_months or rules.DEFAULT_CORRECTION_MONTHS
            extra = {
                "correction_started_on": day,
                "correction_deadline": rules.correction_deadline(day, months),
            }
        moved = await _move(tx, principal, row, CaseEvent.APPROVED, on=day, extra=extra)
    elif outcome == Outcome.REJECTED.value:
        moved = await _move(
            tx, principal, row, CaseEvent.REJECTED, on=day, details={"reason": reason}
        )
    else:
        moved = row
    await _add(
        tx,
        principal,
        moved,
        RecordKind.APPROVAL,
        day,
        body=reason or "",
        data={"outcome": outcome, "approval_request_id": request.id, "kind": request.kind},
    )


async def record_correction_review(
    tx: Transaction,
    principal: Principal,
    *,
    case_id: int,
    corrected: bool,
    finding: str,
    occurred_on: date | None = None,
) -> Any:
    """At the end of the correction period: changed closes the case (member active
    again); not changed moves the same case on to the next disposal."""
    row = await _locked(tx, principal, case_id)
    day = _day(tx, row, occurred_on)
    # "At its end" (DOMAIN.md): the finding is made once the period is over.
    if CaseStage(row.stage) is CaseStage.CORRECTING and row.correction_deadline is not None:
        if day < row.correction_deadline:
            raise CORRECTION_NOT_DUE.error(deadline=row.correction_deadline.isoformat())
    if corrected:
        moved = await _move(tx, principal, row, CaseEvent.CORRECTED, on=day)
    else:
        moved = await _move(
            tx,
            principal,
            row,
            CaseEvent.NOT_CORRECTED,
            on=day,
            extra={"correction_failed": True, "disposal": None, "approval_request_id": None},
        )
    await _add(
        tx,
        principal,
        moved,
        RecordKind.CORRECTION_REVIEW,
        day,
        body=_text(finding, "改正情况评定"),
        data={"corrected": corrected, "deadline": str(row.correction_deadline)},
    )
    return moved


async def record_persuasion_answer(
    tx: Transaction,
    principal: Principal,
    *,
    case_id: int,
    accepted: bool,
    note: str,
    occurred_on: date | None = None,
) -> Any:
    """The member's answer to persuasion: accepted (withdrew) or refused (removal is
    proposed on the same case: pre-review, assembly and approval again)."""
    row = await _locked(tx, principal, case_id)
    day = _day(tx, row, occurred_on)
    if accepted:
        moved = await _move(tx, principal, row, CaseEvent.PERSUASION_ACCEPTED, on=day)
    else:
        moved = await _move(
            tx,
            principal,
            row,
            CaseEvent.PERSUASION_REFUSED,
            disposal=Disposal.PERSUASION,
            on=day,
            extra={
                "persuasion_refused": True,
                "disposal": Disposal.REMOVAL.value,
                "approval_request_id": None,
                "committee_pre_reviewed": False,
                "county_pre_reviewed": False,
            },
        )
    await _add(
        tx,
        principal,
        moved,
        RecordKind.PERSUASION_ANSWER,
        day,
        body=_text(note, "劝退情况"),
        data={"accepted": accepted},
    )
    return moved


async def drop_case(tx: Transaction, principal: Principal, *, case_id: int, reason: str) -> Any:
    """The branch closes a case without a disposal (no ground found, an application to
    withdraw taken back); never after the assembly voted."""
    row = await _locked(tx, principal, case_id)
    text = _text(reason, "撤销理由")
    moved = await _move(tx, principal, row, CaseEvent.DROP)
    await _add(tx, principal, moved, RecordKind.DROPPED, business_today(tx), body=text)
    # What the superior had not yet decided leaves their inbox with the case.
    for kind in (ApprovalKind.CASE_FILING, ApprovalKind.CASE_DISPOSAL):
        await approvals.withdraw_open(
            tx,
            principal,
            tenant_id=row.tenant_id,
            kind=kind,
            subject_type=SUBJECT_TYPE,
            subject_id=row.id,
            reason=f"案件已撤销：{text}",
        )
    return moved


NOTE_KINDS = frozenset({RecordKind.DECISION_TOLD, RecordKind.FOLLOW_UP})


async def record_case_note(
    tx: Transaction,
    principal: Principal,
    *,
    case_id: int,
    kind: RecordKind,
    text: str,
    occurred_on: date | None = None,
    people: Sequence[str] = (),
) -> Any:
    """A record that does not move the case: the decision told to the member (any
    time after a decision), follow-up after removal or withdrawal (closed cases)."""
    row = await _locked(tx, principal, case_id)
    if kind not in NOTE_KINDS:
        raise CASE_TEXT_MISSING.error(what="记录类型", limit=20)
    if kind is RecordKind.FOLLOW_UP and row.outcome not in (
        CaseOutcome.REMOVED.value,
        CaseOutcome.WITHDREW.value,
    ):
        raise _stage_error(row)
    day = _day(tx, row, occurred_on)
    saved = await _add(
        tx, principal, row, kind, day, people=_people(people), body=_text(text, "记录内容")
    )
    await _audit(tx, principal, row, f"case.{kind.value}", {"record_id": saved.id})
    return saved


async def file_statement(
    tx: Transaction, principal: Principal, *, case_id: int, appeal: bool, text: str
) -> Any:
    """The member concerned files a statement (陈述) or an appeal (申诉) on their own
    case; the superior sees it beside the case (it is one of the case's records)."""
    row = await repository.get_case(tx, case_id) if fits_bigint(case_id) else None
    if row is None or not sees(principal, row):
        raise not_found(CASE)
    if not _own(principal, row):  # a reader of the case, not the member concerned
        raise forbidden()
    require(
        principal,
        CaseAction.PARTICIPATE,
        row.branch_path,
        what=CASE,
        seen_with=CaseAction.PARTICIPATE,
    )
    kind = RecordKind.APPEAL if appeal else RecordKind.STATEMENT
    saved = await _add(
        tx, principal, row, kind, business_today(tx), body=_text(text, "陈述或申诉内容")
    )
    await _audit(tx, principal, row, f"case.{kind.value}", {"record_id": saved.id})
    return saved


async def _lock_case(tx: Transaction, tenant_id: int, subject_type: str, subject_id: int) -> None:
    """A decision on a case's request locks the case first, as every step of the case
    does before it touches the case's requests (see `approvals.lock_subjects_with`)."""
    if subject_type == SUBJECT_TYPE and fits_bigint(subject_id):
        await repository.get_case(tx, subject_id, lock=True)


async def _follow_member_account(tx: Transaction, member: Any, account_id: int | None) -> None:
    """The member's cases follow the login account linked to the member later (the
    member reads their own case and files statements through it); an unlinked account
    no longer reads them."""
    await repository.follow_member_account(tx, member.tenant_id, member.id, account_id)


async def _may_read_material(tx: Transaction, principal: Principal, attachment: Any) -> bool:
    """Who reads an attachment of a case or of one of its records: the case's readers."""
    if attachment.owner_kind == "case":
        case_id: int | None = int(attachment.owner_id)
    else:
        case_id = await repository.case_of_record(tx, attachment.owner_id)
    return case_id is not None and await may_read_case(tx, principal, case_id)


def install() -> None:
    """Register the approval outcome handler, the subject lock and the member-account
    follower (idempotent; done on import)."""
    approvals.on_outcome(ApprovalKind.CASE_FILING, on_approval_outcome)
    approvals.on_outcome(ApprovalKind.CASE_DISPOSAL, on_approval_outcome)
    approvals.lock_subjects_with(ApprovalKind.CASE_FILING, _lock_case)
    approvals.lock_subjects_with(ApprovalKind.CASE_DISPOSAL, _lock_case)
    on_account_linked(_follow_member_account)
    attachments.register_owner_kind("case", _may_read_material)
    attachments.register_owner_kind("case_record", _may_read_material)


install()
