"""Tables of the member ledger owned by this package (migrations/versions/0003 has
the constraints and RLS). The dues, meetings, sanctions and registration packages own
theirs."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Date,
    DateTime,
    FetchedValue,
    Integer,
    LargeBinary,
    Text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from service.db import Base


def ledger_id() -> Mapped[int]:
    """The `id` of a ledger table: part of the key, filled by the database from
    ledger_id_seq when not given (every ledger table draws from that sequence, so ids
    are unique across the county and `WHERE id = …` finds one row)."""
    return mapped_column(BigInteger, primary_key=True, server_default=FetchedValue())


class Member(Base):
    """A party member's record in the ledger (党员)."""

    __tablename__ = "members"

    tenant_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    id: Mapped[int] = ledger_id()
    branch_id: Mapped[int] = mapped_column(BigInteger)
    branch_path: Mapped[str] = mapped_column(Text)
    name: Mapped[str] = mapped_column(Text)
    gender: Mapped[str] = mapped_column(Text)
    birth_date: Mapped[date] = mapped_column(Date)
    id_number_enc: Mapped[bytes] = mapped_column(LargeBinary)
    id_number_hmac: Mapped[bytes] = mapped_column(LargeBinary)
    id_number_mask: Mapped[str] = mapped_column(Text)
    phone_enc: Mapped[bytes | None] = mapped_column(LargeBinary)
    phone_mask: Mapped[str | None] = mapped_column(Text)
    joined_on: Mapped[date] = mapped_column(Date)
    confirmed_on: Mapped[date | None] = mapped_column(Date)
    category: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(Text)
    status_changed_on: Mapped[date | None] = mapped_column(Date)
    is_mobile: Mapped[bool] = mapped_column(Boolean)
    mobile_location: Mapped[str | None] = mapped_column(Text)
    mobile_contact_plan: Mapped[str | None] = mapped_column(Text)
    dues_by_family: Mapped[bool] = mapped_column(Boolean)
    tracked_since: Mapped[date] = mapped_column(Date)
    account_id: Mapped[int | None] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    version: Mapped[int] = mapped_column(Integer)


class MemberHistory(Base):
    """What happened to a member's record: created, moved, status and category."""

    __tablename__ = "member_history"

    tenant_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    id: Mapped[int] = ledger_id()
    member_id: Mapped[int] = mapped_column(BigInteger)
    kind: Mapped[str] = mapped_column(Text)
    effective_on: Mapped[date] = mapped_column(Date)
    details: Mapped[dict[str, Any]] = mapped_column(JSONB)
    actor: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class LedgerExcuse(Base):
    """A recorded valid reason (正当理由) for the months it covers."""

    __tablename__ = "ledger_excuses"

    tenant_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    id: Mapped[int] = ledger_id()
    member_id: Mapped[int] = mapped_column(BigInteger)
    kind: Mapped[str] = mapped_column(Text)
    from_month: Mapped[int] = mapped_column(Integer)
    to_month: Mapped[int | None] = mapped_column(Integer)
    reason: Mapped[str] = mapped_column(Text)
    recorded_by: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class MobileContact(Base):
    """One contact with a mobile member (流动党员联系记录)."""

    __tablename__ = "mobile_contacts"

    tenant_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    id: Mapped[int] = ledger_id()
    member_id: Mapped[int] = mapped_column(BigInteger)
    contacted_on: Mapped[date] = mapped_column(Date)
    channel: Mapped[str] = mapped_column(Text)
    contacted_by: Mapped[str] = mapped_column(Text)
    reached: Mapped[bool] = mapped_column(Boolean)
    outcome: Mapped[str] = mapped_column(Text)
    recorded_by: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class MemberImport(Base):
    """An uploaded ledger waiting for confirmation (two-step import)."""

    __tablename__ = "member_imports"

    tenant_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    id: Mapped[int] = ledger_id()
    file_sha256: Mapped[str] = mapped_column(Text)
    report: Mapped[dict[str, Any]] = mapped_column(JSONB)
    sealed_rows: Mapped[bytes] = mapped_column(LargeBinary)
    created_by: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    confirmed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
