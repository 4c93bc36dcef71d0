"""Tables of the registration drive (migrations/versions/0003 has the constraints and
RLS): a drive is one row per tenant it covers, sharing `batch`."""

from __future__ import annotations

import uuid
from datetime import date, datetime

from sqlalchemy import BigInteger, Boolean, Date, DateTime, Text, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from service.db import Base
from service.members.models import ledger_id


class RegistrationDrive(Base):
    """A drive (党员登记) in one tenant."""

    __tablename__ = "registration_drives"

    tenant_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    id: Mapped[int] = ledger_id()
    batch: Mapped[uuid.UUID] = mapped_column(Uuid)
    title: Mapped[str] = mapped_column(Text)
    opens_on: Mapped[date] = mapped_column(Date)
    closes_on: Mapped[date] = mapped_column(Date)
    opened_by: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class RegistrationApplication(Base):
    """A member's submission (党员登记申请表) and the branch's review."""

    __tablename__ = "registration_applications"

    tenant_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    id: Mapped[int] = ledger_id()
    drive_id: Mapped[int] = mapped_column(BigInteger)
    member_id: Mapped[int] = mapped_column(BigInteger)
    thought: Mapped[str] = mapped_column(Text)
    work: Mapped[str] = mapped_column(Text)
    conduct: Mapped[str] = mapped_column(Text)
    life: Mapped[str] = mapped_column(Text)
    wishes_to_stay: Mapped[bool] = mapped_column(Boolean)
    channel: Mapped[str] = mapped_column(Text)
    submitted_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    is_late: Mapped[bool] = mapped_column(Boolean)
    review: Mapped[str] = mapped_column(Text)
    review_note: Mapped[str | None] = mapped_column(Text)
    reviewed_by: Mapped[str | None] = mapped_column(Text)
    reviewed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
