"""The roles of DOMAIN.md and where each may be held (pure rules)."""

from __future__ import annotations

from enum import StrEnum

from service.tenants.rules import TENANT_KINDS, OrgUnitKind


class Role(StrEnum):
    SYSTEM_ADMIN = "system_admin"  # 系统管理员
    SECURITY_ADMIN = "security_admin"  # 安全管理员
    AUDITOR = "auditor"  # 审计管理员
    COUNTY_ORGANIZER = "county_organizer"  # 县委组织部
    COMMITTEE_SECRETARY = "committee_secretary"  # 党(工)委书记
    COMMITTEE_ORGANIZER = "committee_organizer"  # 组织委员
    BRANCH_SECRETARY = "branch_secretary"  # 支部书记
    BRANCH_COMMITTEE_MEMBER = "branch_committee_member"  # 支部委员
    MEMBER = "member"  # 党员
    # The CLI's own identity (demo loading, create-admin); never assignable.
    PLATFORM_OPERATOR = "platform_operator"


# 三员分立: no account holds two of these (also a unique index in the database).
ADMIN_ROLES = frozenset({Role.SYSTEM_ADMIN, Role.SECURITY_ADMIN, Role.AUDITOR})

_BRANCH_LEVEL = frozenset({OrgUnitKind.GENERAL_BRANCH, OrgUnitKind.BRANCH})

HELD_AT: dict[Role, frozenset[OrgUnitKind]] = {
    Role.SYSTEM_ADMIN: frozenset({OrgUnitKind.ROOT, OrgUnitKind.COUNTY}),
    Role.SECURITY_ADMIN: frozenset({OrgUnitKind.ROOT, OrgUnitKind.COUNTY}),
    Role.AUDITOR: frozenset({OrgUnitKind.ROOT, OrgUnitKind.COUNTY}),
    Role.COUNTY_ORGANIZER: frozenset({OrgUnitKind.COUNTY}),
    Role.COMMITTEE_SECRETARY: TENANT_KINDS,
    Role.COMMITTEE_ORGANIZER: TENANT_KINDS,
    Role.BRANCH_SECRETARY: _BRANCH_LEVEL,
    Role.BRANCH_COMMITTEE_MEMBER: _BRANCH_LEVEL,
    Role.MEMBER: frozenset({OrgUnitKind.BRANCH}),
    Role.PLATFORM_OPERATOR: frozenset(),
}

ROLE_LABELS: dict[Role, str] = {
    Role.SYSTEM_ADMIN: "系统管理员",
    Role.SECURITY_ADMIN: "安全管理员",
    Role.AUDITOR: "审计管理员",
    Role.COUNTY_ORGANIZER: "县委组织部",
    Role.COMMITTEE_SECRETARY: "党(工)委书记",
    Role.COMMITTEE_ORGANIZER: "组织委员",
    Role.BRANCH_SECRETARY: "支部书记",
    Role.BRANCH_COMMITTEE_MEMBER: "支部委员",
    Role.MEMBER: "党员",
    Role.PLATFORM_OPERATOR: "平台运维",
}


def may_hold_at(role: Role, kind: OrgUnitKind) -> bool:
    return kind in HELD_AT[role]


def conflicting_admin_role(role: Role, held: frozenset[str]) -> str | None:
    """The admin role already held that forbids taking `role` (三员分立), if any."""
    if role not in ADMIN_ROLES:
        return None
    for other in held:
        if other in ADMIN_ROLES:
            return other
    return None
