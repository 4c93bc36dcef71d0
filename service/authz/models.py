"""Role assignments (account, role, org unit): the data half of the Casbin policy."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, DateTime, Text
from sqlalchemy.orm import Mapped, mapped_column

from service.db import Base


class RoleAssignment(Base):
    """A role held by an account at an org unit (任职). The org path is copied so that a
    principal's grants and scope are read before any tenant row is visible."""

    __tablename__ = "role_assignments"

    tenant_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    account_id: Mapped[int] = mapped_column(BigInteger)
    role: Mapped[str] = mapped_column(Text)
    org_unit_id: Mapped[int] = mapped_column(BigInteger)
    org_path: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    created_by: Mapped[int | None] = mapped_column(BigInteger)
