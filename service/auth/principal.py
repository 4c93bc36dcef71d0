"""Who is making a request: the account, its role grants and its tenant scope."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field


@dataclass(frozen=True, order=True)
class Grant:
    """A role held at an org unit; it covers that unit and every unit below it."""

    role: str
    org_path: str
    org_unit_id: int
    tenant_id: int


@dataclass(frozen=True)
class Principal:
    account_id: int | None
    username: str
    grants: tuple[Grant, ...]
    # The tenants this transaction may see (app.tenant_ids); grows when the principal
    # creates a tenant inside its own domain.
    tenant_ids: set[int] = field(compare=False)
    session_id: uuid.UUID | None = None
    request_id: str = ""
    # Decisions already taken in this request: (action, path) -> allowed.
    decisions: dict[tuple[str, str], bool] = field(default_factory=dict, compare=False)

    @property
    def actor(self) -> str:
        """How the audit log names this principal."""
        return self.username if self.account_id is not None else f"system:{self.username}"

    def roles(self) -> frozenset[str]:
        return frozenset(g.role for g in self.grants)
