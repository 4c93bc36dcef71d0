"""Tables of disposal cases (migrations/versions/0012 has the constraints and RLS)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import BigInteger, Boolean, Date, DateTime, Integer, SmallInteger, Text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from service.db import Base
from service.members.models import ledger_id


class DisposalCase(Base):
    """A disposal case of one member (处置不合格党员案件)."""

    __tablename__ = "disposal_cases"

    tenant_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    id: Mapped[int] = ledger_id()
    branch_id: Mapped[int] = mapped_column(BigInteger)
    branch_path: Mapped[str] = mapped_column(Text)
    member_id: Mapped[int] = mapped_column(BigInteger)
    member_name: Mapped[str] = mapped_column(Text)
    member_account_id: Mapped[int | None] = mapped_column(BigInteger)
    origin: Mapped[str] = mapped_column(Text)
    stage: Mapped[str] = mapped_column(Text)
    disposal: Mapped[str | None] = mapped_column(Text)
    facts: Mapped[str] = mapped_column(Text)
    not_sanctioned_statement: Mapped[str] = mapped_column(Text)
    evaluation_round_id: Mapped[int | None] = mapped_column(BigInteger)
    wants_to_stay: Mapped[bool | None] = mapped_column(Boolean)
    correction_failed: Mapped[bool] = mapped_column(Boolean)
    persuasion_refused: Mapped[bool] = mapped_column(Boolean)
    opened_on: Mapped[date] = mapped_column(Date)
    closed_on: Mapped[date | None] = mapped_column(Date)
    outcome: Mapped[str | None] = mapped_column(Text)
    education_started_on: Mapped[date | None] = mapped_column(Date)
    education_ended_on: Mapped[date | None] = mapped_column(Date)
    correction_months: Mapped[int | None] = mapped_column(SmallInteger)
    correction_started_on: Mapped[date | None] = mapped_column(Date)
    correction_deadline: Mapped[date | None] = mapped_column(Date)
    committee_pre_reviewed: Mapped[bool] = mapped_column(Boolean)
    county_pre_reviewed: Mapped[bool] = mapped_column(Boolean)
    filing_request_id: Mapped[int | None] = mapped_column(BigInteger)
    approval_request_id: Mapped[int | None] = mapped_column(BigInteger)
    opened_by: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    stage_changed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    version: Mapped[int] = mapped_column(Integer)


class CaseRecord(Base):
    """One procedure step of a case, with its date, people and text."""

    __tablename__ = "case_records"

    tenant_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    id: Mapped[int] = ledger_id()
    case_id: Mapped[int] = mapped_column(BigInteger)
    kind: Mapped[str] = mapped_column(Text)
    occurred_on: Mapped[date] = mapped_column(Date)
    people: Mapped[list[Any]] = mapped_column(JSONB)
    body: Mapped[str] = mapped_column(Text)
    data: Mapped[dict[str, Any]] = mapped_column(JSONB)
    recorded_by: Mapped[int | None] = mapped_column(BigInteger)
    recorded_by_name: Mapped[str] = mapped_column(Text)
    recorded_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class CaseEducator(Base):
    """One of the two full members who educate the member (教育转化联系人)."""

    __tablename__ = "case_educators"

    tenant_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    case_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    member_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    account_id: Mapped[int | None] = mapped_column(BigInteger)
    name: Mapped[str] = mapped_column(Text)
    assigned_on: Mapped[date] = mapped_column(Date)


class EducationSession(Base):
    """One logged education session (帮教记录)."""

    __tablename__ = "education_sessions"

    tenant_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    id: Mapped[int] = ledger_id()
    case_id: Mapped[int] = mapped_column(BigInteger)
    educator_member_id: Mapped[int] = mapped_column(BigInteger)
    held_on: Mapped[date] = mapped_column(Date)
    summary: Mapped[str] = mapped_column(Text)
    recorded_by: Mapped[str] = mapped_column(Text)
    recorded_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
