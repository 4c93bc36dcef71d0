"""Tables of democratic evaluation (民主评议党员); migrations 0010, 0015 and 0018 have
the constraints, row-level security and the SECURITY DEFINER functions
(`evaluation_count_ballot`, `evaluation_take_counts`).

`evaluation_counts` (per round and roster position, how many ballots gave each grade)
has no model on purpose: the application neither reads nor writes it; a ballot adds
to it through `evaluation_count_ballot`; the close takes the counts (deleting the
counters) with `evaluation_take_counts` and stores them in the entries. Grade
codes: 1 excellent, 2 qualified, 3 basic, 4 unqualified (`repository.BALLOT_CODES`; a
blank, 0, is never passed)."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Date,
    DateTime,
    Integer,
    LargeBinary,
    SmallInteger,
    Text,
    Uuid,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.orm import Mapped, mapped_column

from service.db import Base
from service.members.models import ledger_id


class EvaluationRound(Base):
    """A branch's round of one half-year (or the policy's period), with the policy
    snapshot it uses."""

    __tablename__ = "evaluation_rounds"

    tenant_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    id: Mapped[int] = ledger_id()
    batch: Mapped[uuid.UUID] = mapped_column(Uuid)
    branch_id: Mapped[int] = mapped_column(BigInteger)
    branch_path: Mapped[str] = mapped_column(Text)
    year: Mapped[int] = mapped_column(SmallInteger)
    half: Mapped[int] = mapped_column(SmallInteger)
    title: Mapped[str] = mapped_column(Text)
    stage: Mapped[str] = mapped_column(Text)
    policy_id: Mapped[int | None] = mapped_column(BigInteger)
    policy_version: Mapped[int] = mapped_column(Integer)
    policy: Mapped[dict[str, Any]] = mapped_column(JSONB)
    opened_by: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    stage_changed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    stage_changed_by: Mapped[str | None] = mapped_column(Text)
    sent_back_reason: Mapped[str | None] = mapped_column(Text)
    closed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    notice_starts_on: Mapped[date | None] = mapped_column(Date)
    notice_ends_on: Mapped[date | None] = mapped_column(Date)
    approval_request_id: Mapped[int | None] = mapped_column(BigInteger)
    ballots_cast: Mapped[int | None] = mapped_column(Integer)
    roster_voters: Mapped[int | None] = mapped_column(Integer)
    mass_tokens_issued: Mapped[int] = mapped_column(Integer)
    version: Mapped[int] = mapped_column(Integer)


class EvaluationEntry(Base):
    """One member on a round's roster (参评党员): tally, proposal and determinations."""

    __tablename__ = "evaluation_entries"

    tenant_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    id: Mapped[int] = ledger_id()
    round_id: Mapped[int] = mapped_column(BigInteger)
    member_id: Mapped[int] = mapped_column(BigInteger)
    position: Mapped[int | None] = mapped_column(Integer)
    name: Mapped[str] = mapped_column(Text)
    category: Mapped[str] = mapped_column(Text)
    may_vote: Mapped[bool] = mapped_column(Boolean)
    excused: Mapped[bool] = mapped_column(Boolean)
    excused_reason: Mapped[str | None] = mapped_column(Text)
    excused_opinion: Mapped[str | None] = mapped_column(Text)
    excused_by: Mapped[str | None] = mapped_column(Text)
    override: Mapped[str] = mapped_column(Text)
    last_year_grade: Mapped[str | None] = mapped_column(Text)
    self_evaluation: Mapped[str | None] = mapped_column(Text)
    self_evaluated_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    excellent: Mapped[int | None] = mapped_column(Integer)
    qualified: Mapped[int | None] = mapped_column(Integer)
    basic: Mapped[int | None] = mapped_column(Integer)
    unqualified: Mapped[int | None] = mapped_column(Integer)
    blank: Mapped[int | None] = mapped_column(Integer)
    computed_grade: Mapped[str | None] = mapped_column(Text)
    computed_rule: Mapped[str | None] = mapped_column(Text)
    organizational_finding: Mapped[bool] = mapped_column(Boolean)
    organizational_finding_note: Mapped[str | None] = mapped_column(Text)
    committee_grade: Mapped[str | None] = mapped_column(Text)
    committee_reason: Mapped[str | None] = mapped_column(Text)
    committee_by: Mapped[str | None] = mapped_column(Text)
    votes_for: Mapped[int | None] = mapped_column(Integer)
    votes_against: Mapped[int | None] = mapped_column(Integer)
    votes_abstain: Mapped[int | None] = mapped_column(Integer)
    assembly_passed: Mapped[bool | None] = mapped_column(Boolean)
    told_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    told_by: Mapped[str | None] = mapped_column(Text)
    final_grade: Mapped[str | None] = mapped_column(Text)
    version: Mapped[int] = mapped_column(Integer)


class EvaluationParticipation(Base):
    """That a member voted in a round (never what, never when)."""

    __tablename__ = "evaluation_participation"

    tenant_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    round_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    voter_member_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)


class EvaluationBallotToken(Base):
    """A mass representative's one-time ballot token: only its SHA-256 is stored."""

    __tablename__ = "evaluation_ballot_tokens"

    tenant_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    token_hash: Mapped[bytes] = mapped_column(LargeBinary, primary_key=True)
    round_id: Mapped[int] = mapped_column(BigInteger)
    used: Mapped[bool] = mapped_column(Boolean)
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class EvaluationAssembly(Base):
    """The member assembly (支部党员大会) of a round."""

    __tablename__ = "evaluation_assemblies"

    tenant_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    id: Mapped[int] = ledger_id()
    round_id: Mapped[int] = mapped_column(BigInteger)
    held_on: Mapped[date | None] = mapped_column(Date)
    expected_voters: Mapped[int | None] = mapped_column(Integer)
    present_member_ids: Mapped[list[int]] = mapped_column(ARRAY(BigInteger))
    superior_consent_by: Mapped[str | None] = mapped_column(Text)
    superior_consent_on: Mapped[date | None] = mapped_column(Date)
    superior_consent_note: Mapped[str | None] = mapped_column(Text)
    assembly_agreed: Mapped[bool] = mapped_column(Boolean)
    note: Mapped[str | None] = mapped_column(Text)
    recorded_by: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    version: Mapped[int] = mapped_column(Integer)


class EvaluationAssemblyExclusion(Base):
    """A member left out of the expected voters for a listed reason."""

    __tablename__ = "evaluation_assembly_exclusions"

    tenant_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    assembly_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    member_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    reason: Mapped[str] = mapped_column(Text)
    note: Mapped[str | None] = mapped_column(Text)
    superior_consent: Mapped[bool] = mapped_column(Boolean)
    assembly_agreed: Mapped[bool] = mapped_column(Boolean)
    recorded_by: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class EvaluationObjection(Base):
    """An objection raised during public notice (公示) and the branch's answer."""

    __tablename__ = "evaluation_objections"

    tenant_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    id: Mapped[int] = ledger_id()
    round_id: Mapped[int] = mapped_column(BigInteger)
    member_id: Mapped[int] = mapped_column(BigInteger)
    text: Mapped[str] = mapped_column(Text)
    raised_by: Mapped[str] = mapped_column(Text)
    raised_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    answer: Mapped[str | None] = mapped_column(Text)
    answered_by: Mapped[str | None] = mapped_column(Text)
    answered_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    version: Mapped[int] = mapped_column(Integer)


class MemberGrade(Base):
    """A member's grade of a year: the last final round of that year."""

    __tablename__ = "member_grades"

    tenant_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    member_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    year: Mapped[int] = mapped_column(SmallInteger, primary_key=True)
    grade: Mapped[str] = mapped_column(Text)
    round_id: Mapped[int | None] = mapped_column(BigInteger)
    recorded_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
