"""The roles of DOMAIN.md, where each may be held, and who has authority over whom.

Pure rules, in one place: the rank order (`RANK`), the duty classes of 三员分立
(`duty_of`), and the authority rule (`has_authority`) that assigning and revoking
both apply. The database holds the duty classes too (migration 0004), so two racing
grants cannot both pass.
"""

from __future__ import annotations

from enum import StrEnum

from service.tenants.rules import TENANT_KINDS, OrgUnitKind, is_within


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


# 三员分立: no account holds two of these, nor one of these and any business role (also
# in the database: a unique index for two admin grants, the `account_duties` trigger
# of migration 0004 for an admin role beside anything else).
ADMIN_ROLES = frozenset({Role.SYSTEM_ADMIN, Role.SECURITY_ADMIN, Role.AUDITOR})

# The one business duty class: every role that is not an administrator's.
BUSINESS = "business"

# Rank order, highest first; roles in one set share a rank. Authority over a role at
# one's own unit needs a strictly higher rank (see `has_authority`). The platform
# operator (the CLI) outranks everyone; the security administrator grants the other two
# administrators and every business role at the county; the administrators outrank
# the business roles only so that the security administrator may grant them.
RANK: tuple[frozenset[Role], ...] = (
    frozenset({Role.PLATFORM_OPERATOR}),
    frozenset({Role.SECURITY_ADMIN}),
    frozenset({Role.SYSTEM_ADMIN, Role.AUDITOR}),
    frozenset({Role.COUNTY_ORGANIZER}),
    frozenset({Role.COMMITTEE_SECRETARY}),
    frozenset({Role.COMMITTEE_ORGANIZER}),
    frozenset({Role.BRANCH_SECRETARY}),
    frozenset({Role.BRANCH_COMMITTEE_MEMBER}),
    frozenset({Role.MEMBER}),
)
_RANK_OF: dict[Role, int] = {role: level for level, roles in enumerate(RANK) for role in roles}

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


def duty_of(role: str) -> str:
    """The duty class of a role: the admin role itself, or `BUSINESS`. An account's
    grants all have one duty class (三员分立); the database computes the same classes."""
    return role if role in ADMIN_ROLES else BUSINESS


def conflicting_duty(role: Role, held: frozenset[str]) -> str | None:
    """The duty class already held that forbids taking `role`, if any: an administrator
    role beside any other role, or a business role beside an administrator role."""
    wanted = duty_of(role)
    for duty in held:
        if duty != wanted:
            return duty
    return None


def outranks(holder: str, role: str) -> bool:
    """Whether `holder` ranks strictly above `role` in `RANK`."""
    return _RANK_OF[Role(holder)] < _RANK_OF[Role(role)]


def has_authority(holder: str, holder_path: str, role: str, target_path: str) -> bool:
    """Whether a grant of `holder` at `holder_path` has authority over `role` at
    `target_path`: the target unit lies strictly below the holder's unit, or it is the
    holder's own unit and `role` ranks lower. A township organizer may not touch the
    township secretary; the county organization department may. Whether the holder's
    role may assign at all is Casbin's to say; this is the rank half."""
    if target_path == holder_path:
        return outranks(holder, role)
    return is_within(target_path, holder_path)
