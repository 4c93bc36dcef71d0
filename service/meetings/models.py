"""Tables of organizational life and tasks for Core writes (migrations/versions/0003
has the constraints and RLS): meetings, who attended, tasks and their outcome."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import BigInteger, Date, DateTime, Integer, Text
from sqlalchemy.orm import Mapped, mapped_column

from service.db import Base
from service.members.models import ledger_id


class Meeting(Base):
    """A branch's meeting (三会一课, 主题党日, ...); it stays with the branch."""

    __tablename__ = "meetings"

    tenant_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    id: Mapped[int] = ledger_id()
    branch_id: Mapped[int] = mapped_column(BigInteger)
    branch_path: Mapped[str] = mapped_column(Text)
    kind: Mapped[str] = mapped_column(Text)
    held_on: Mapped[date] = mapped_column(Date)
    month: Mapped[int] = mapped_column(Integer)
    topic: Mapped[str] = mapped_column(Text)
    recorded_by: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class MeetingAttendance(Base):
    """One member's presence at one meeting (attended, excused with reason, absent)."""

    __tablename__ = "meeting_attendance"

    tenant_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    meeting_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    member_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    month: Mapped[int] = mapped_column(Integer)
    presence: Mapped[str] = mapped_column(Text)
    reason: Mapped[str | None] = mapped_column(Text)


class MemberTask(Base):
    """A task the organization gave a member, counted in the month it is due."""

    __tablename__ = "member_tasks"

    tenant_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    id: Mapped[int] = ledger_id()
    member_id: Mapped[int] = mapped_column(BigInteger)
    title: Mapped[str] = mapped_column(Text)
    assigned_on: Mapped[date] = mapped_column(Date)
    due_on: Mapped[date] = mapped_column(Date)
    due_month: Mapped[int] = mapped_column(Integer)
    outcome: Mapped[str] = mapped_column(Text)
    outcome_note: Mapped[str | None] = mapped_column(Text)
    recorded_by: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
