"""Pure rules of the org tree: which kind may sit under which, and paths."""

from __future__ import annotations

from enum import StrEnum


class OrgUnitKind(StrEnum):
    """The kinds of org unit, top to bottom."""

    ROOT = "root"  # 平台
    COUNTY = "county"  # 县 (县委组织部)
    TOWNSHIP = "township"  # 乡镇
    DEVELOPMENT_ZONE = "development_zone"  # 开发区
    NEW_DISTRICT = "new_district"  # 新区
    COUNTY_DEPARTMENT = "county_department"  # 县直部门
    GENERAL_BRANCH = "general_branch"  # 党总支
    BRANCH = "branch"  # 党支部


TENANT_KINDS = frozenset(
    {
        OrgUnitKind.TOWNSHIP,
        OrgUnitKind.DEVELOPMENT_ZONE,
        OrgUnitKind.NEW_DISTRICT,
        OrgUnitKind.COUNTY_DEPARTMENT,
    }
)

# Units that open a tenant scope of their own (a row in the `tenants` registry).
SCOPE_KINDS = TENANT_KINDS | {OrgUnitKind.ROOT, OrgUnitKind.COUNTY}

ALLOWED_CHILDREN: dict[OrgUnitKind, frozenset[OrgUnitKind]] = {
    OrgUnitKind.ROOT: frozenset({OrgUnitKind.COUNTY}),
    OrgUnitKind.COUNTY: TENANT_KINDS,
    **{k: frozenset({OrgUnitKind.GENERAL_BRANCH, OrgUnitKind.BRANCH}) for k in TENANT_KINDS},
    OrgUnitKind.GENERAL_BRANCH: frozenset({OrgUnitKind.BRANCH}),
    OrgUnitKind.BRANCH: frozenset(),
}

KIND_LABELS: dict[OrgUnitKind, str] = {
    OrgUnitKind.ROOT: "平台",
    OrgUnitKind.COUNTY: "县",
    OrgUnitKind.TOWNSHIP: "乡镇",
    OrgUnitKind.DEVELOPMENT_ZONE: "开发区",
    OrgUnitKind.NEW_DISTRICT: "新区",
    OrgUnitKind.COUNTY_DEPARTMENT: "县直部门",
    OrgUnitKind.GENERAL_BRANCH: "党总支",
    OrgUnitKind.BRANCH: "党支部",
}


def may_contain(parent: OrgUnitKind, child: OrgUnitKind) -> bool:
    return child in ALLOWED_CHILDREN[parent]


def opens_tenant(kind: OrgUnitKind) -> bool:
    """A unit of this kind is the top of a tenant scope (its own `tenant_id`)."""
    return kind in SCOPE_KINDS


def child_path(parent_path: str, child_id: int) -> str:
    """Materialised path: ids joined by '/', with a trailing '/' so that '/1/2/'
    is a prefix of '/1/2/7/' but not of '/1/22/'."""
    return f"{parent_path}{int(child_id)}/"


def is_within(path: str, ancestor_path: str) -> bool:
    """True when `path` is `ancestor_path` or below it."""
    return path.startswith(ancestor_path)


def clean_name(name: str) -> str | None:
    """The name as stored, or None if it is not acceptable (empty or over 100 chars)."""
    cleaned = " ".join(name.split())
    return cleaned if 1 <= len(cleaned) <= 100 else None


def valid_code(code: str) -> bool:
    return 1 <= len(code) <= 32 and all(c.isascii() and (c.isalnum() or c in "_-") for c in code)
