"""Tables of party dues (党费) for Core writes (migrations/versions/0003 has the
constraints and RLS): payments, the months each covers, schedule arrangements."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import BigInteger, Boolean, Date, DateTime, Integer, Text
from sqlalchemy.orm import Mapped, mapped_column

from service.db import Base
from service.members.models import ledger_id


class DuesPayment(Base):
    """One payment (a member's or a relative's), naming the months it pays for."""

    __tablename__ = "dues_payments"

    tenant_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    id: Mapped[int] = ledger_id()
    member_id: Mapped[int] = mapped_column(BigInteger)
    paid_on: Mapped[date] = mapped_column(Date)
    amount_fen: Mapped[int] = mapped_column(Integer)
    paid_by: Mapped[str] = mapped_column(Text)
    is_back_payment: Mapped[bool] = mapped_column(Boolean)
    note: Mapped[str | None] = mapped_column(Text)
    recorded_by: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class DuesMonth(Base):
    """A month paid for (ordinal, see service.dues.rules.Month): paid once."""

    __tablename__ = "dues_months"

    tenant_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    member_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    month: Mapped[int] = mapped_column(Integer, primary_key=True)
    payment_id: Mapped[int] = mapped_column(BigInteger)
    paid_by: Mapped[str] = mapped_column(Text)


class DuesArrangement(Base):
    """The schedule a member pays on from `from_month` to `to_month` (open: NULL)."""

    __tablename__ = "dues_arrangements"

    tenant_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    id: Mapped[int] = ledger_id()
    member_id: Mapped[int] = mapped_column(BigInteger)
    schedule: Mapped[str] = mapped_column(Text)
    from_month: Mapped[int] = mapped_column(Integer)
    to_month: Mapped[int | None] = mapped_column(Integer)
    agreed_on: Mapped[date] = mapped_column(Date)
    note: Mapped[str | None] = mapped_column(Text)
    recorded_by: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
