"""Who is making a request: the account, its role grants and the tenants they reach.

A `Principal` is immutable and may be shared by concurrent requests of the same login
session (it is cached per session). What one request learns while it runs lives in
its `Transaction` (the scope actually set, which may widen) and in the request's
GraphQL context, never in fields of the principal.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime

from service.db import Scope


@dataclass(frozen=True, order=True)
class Grant:
    """A role held at an org unit; it covers that unit and every unit below it."""

    role: str
    org_path: str
    org_unit_id: int
    tenant_id: int


@dataclass(frozen=True)
class AccountSummary:
    """The principal's own account as `me` shows it (no password hash)."""

    id: int
    username: str
    display_name: str
    home_tenant_id: int
    home_org_unit_id: int
    is_active: bool
    created_at: datetime


@dataclass(frozen=True)
class Principal:
    account_id: int | None
    username: str
    grants: tuple[Grant, ...]
    # The tenants the grants reach: the scope (app.tenant_ids) a request starts with.
    tenant_ids: frozenset[int]
    session_id: uuid.UUID | None = None
    request_id: str = ""
    account: AccountSummary | None = None
    # What the principal was read at: accounts.auth_version and auth_epoch.n
    auth_version: int = 0
    auth_epoch: int = 0
    # When (epoch seconds, by the service's clock) it was read, which recorded the
    # session's activity: a cached principal older than a minute is read again
    loaded_at: float = field(default=0.0, compare=False)

    @property
    def actor(self) -> str:
        """How the audit log names this principal."""
        return self.username if self.account_id is not None else f"system:{self.username}"

    @property
    def scope(self) -> Scope:
        return Scope(self.account_id, self.tenant_ids)

    def roles(self) -> frozenset[str]:
        return frozenset(g.role for g in self.grants)
