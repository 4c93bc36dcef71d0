"""Tables of approval chains (migrations/versions/0009 has the constraints, the RLS and
the trigger that keeps a decision final). Rows live in the tenant of the branch the
request comes from, whatever unit decides a step (the county's step too), so a branch,
its committee and the county all read one tenant's rows.

A request (`approval_requests`) is one matter climbing; its steps (`approval_steps`)
are made one at a time, as each becomes pending: step rows are the decisions' history
(a returned request, resubmitted, gets a new row for the same position, `attempt` + 1).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, Boolean, DateTime, Integer, Text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from service.db import Base
from service.members.models import ledger_id


class ApprovalRequest(Base):
    """A matter submitted for approval (审批事项)."""

    __tablename__ = "approval_requests"

    tenant_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    id: Mapped[int] = ledger_id()
    kind: Mapped[str] = mapped_column(Text)
    subject_type: Mapped[str] = mapped_column(Text)
    subject_id: Mapped[int] = mapped_column(BigInteger)
    branch_id: Mapped[int] = mapped_column(BigInteger)
    branch_path: Mapped[str] = mapped_column(Text)
    digest: Mapped[str] = mapped_column(Text)
    summary: Mapped[dict[str, Any]] = mapped_column(JSONB)
    chain: Mapped[list[dict[str, Any]]] = mapped_column(JSONB)
    to_county: Mapped[bool] = mapped_column(Boolean)
    step_days: Mapped[int] = mapped_column(Integer)
    state: Mapped[str] = mapped_column(Text)
    current_position: Mapped[int] = mapped_column(Integer)
    attempt: Mapped[int] = mapped_column(Integer)
    submitted_by: Mapped[int | None] = mapped_column(BigInteger)
    submitted_by_name: Mapped[str] = mapped_column(Text)
    submitted_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    resubmitted_by: Mapped[int | None] = mapped_column(BigInteger)
    resubmitted_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    decided_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    version: Mapped[int] = mapped_column(Integer)


class ApprovalStep(Base):
    """One step of a request's chain and its one decision."""

    __tablename__ = "approval_steps"

    tenant_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    id: Mapped[int] = ledger_id()
    request_id: Mapped[int] = mapped_column(BigInteger)
    attempt: Mapped[int] = mapped_column(Integer)
    position: Mapped[int] = mapped_column(Integer)
    org_unit_id: Mapped[int] = mapped_column(BigInteger)
    org_path: Mapped[str] = mapped_column(Text)
    role: Mapped[str] = mapped_column(Text)
    opened_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    due_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    state: Mapped[str] = mapped_column(Text)
    decision: Mapped[str | None] = mapped_column(Text)
    reason: Mapped[str | None] = mapped_column(Text)
    decided_by: Mapped[int | None] = mapped_column(BigInteger)
    decided_by_name: Mapped[str | None] = mapped_column(Text)
    decided_role: Mapped[str | None] = mapped_column(Text)
    decided_unit_id: Mapped[int | None] = mapped_column(BigInteger)
    decided_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    digest: Mapped[str | None] = mapped_column(Text)
    version: Mapped[int] = mapped_column(Integer)
