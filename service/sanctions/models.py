"""The sanctions table (migrations/versions/0003 has its constraints and RLS)."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import BigInteger, Date, DateTime, Text
from sqlalchemy.orm import Mapped, mapped_column

from service.db import Base
from service.members.models import ledger_id


class Sanction(Base):
    """A discipline sanction (党纪处分) of a member."""

    __tablename__ = "sanctions"

    tenant_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    id: Mapped[int] = ledger_id()
    member_id: Mapped[int] = mapped_column(BigInteger)
    kind: Mapped[str] = mapped_column(Text)
    decided_on: Mapped[date] = mapped_column(Date)
    probation_ends_on: Mapped[date | None] = mapped_column(Date)
    decided_by: Mapped[str] = mapped_column(Text)
    matter: Mapped[str] = mapped_column(Text)
    recorded_by: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
