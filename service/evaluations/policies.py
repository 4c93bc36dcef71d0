"""Grading policies (评议办法): versioned, set by the county organizer (县委组织部) for
the county or for one tenant, read by whoever runs or oversees evaluations under it.

A policy belongs to a unit that opens a tenant scope (the county unit, or a tenant's
top unit); its row lives in that unit's tenant (migration 0008). Setting one writes a
new version (the old ones stay: a round records the version it used); the policy that
governs a branch is its tenant's latest version, else its county's latest, else
DOMAIN.md's default (`rules.DEFAULT_POLICY`), saved as the county's version 1 the first
time a writing transaction asks (a query gets it unsaved, as version 0).

Who may do what:
- set: `evaluation:set_policy` at the unit (the county organizer, for the county or any
  of its tenants); the policy is validated (`rules.validate_policy`) and audited.
- read: policies are not secret within their scope. A version of the county is
  readable by any principal with `evaluation:read` at some unit of the county (a branch
  secretary learns the rules their round runs by); a version of a tenant by one with
  `evaluation:read` within that tenant, or above it. Naming a unit by id
  (`gradingPolicy(orgUnitId:)`, `gradingPolicies(orgUnitId:)`) follows the house rule
  instead: the unit must be seen (NOT_FOUND before FORBIDDEN) and `evaluation:read`
  held at it. The county's rows are read by widening the transaction's scope to the
  county's tenant (`tx.widen`), since a township's principals are scoped to their own.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from psycopg.types.json import Jsonb

from service.audit.service import record
from service.auth.principal import Principal
from service.authz import authorizer, readable_paths, require
from service.db import Transaction
from service.errors import VERSION_CONFLICT, forbidden, not_found
from service.evaluations import rules
from service.evaluations.actions import EvaluationAction
from service.evaluations.errors import (
    POLICY,
    POLICY_INVALID,
    POLICY_NOTE_TOO_LONG,
    POLICY_UNIT_INVALID,
)
from service.pagination import Page, PageRequest, keyset
from service.tenants import repository as units
from service.tenants.rules import TENANT_KINDS, OrgUnitKind, is_within
from service.tenants.service import ensure_active

MAX_NOTE = 500
UNIT = "组织"

# Who the audit log names when the default policy is saved on first use.
SYSTEM = Principal(account_id=None, username="pingyi", grants=(), tenant_ids=frozenset())


@dataclass(frozen=True)
class PolicyVersion:
    """One version of a county's or a tenant's policy. `id` 0 and `version` 0: the
    built-in default, not saved yet (a county that never had a policy, read in a query)."""

    id: int
    scope_unit_id: int
    version: int
    policy: rules.GradingPolicy
    tenant_id: int
    note: str | None = None
    created_by: str | None = None
    created_at: datetime | None = None
    scope_path: str = ""
    scope_kind: str = ""

    @property
    def saved(self) -> bool:
        return self.id != 0

    @classmethod
    def of(cls, row: Any) -> PolicyVersion:
        return cls(
            id=row.id,
            scope_unit_id=row.scope_unit_id,
            version=row.version,
            policy=rules.GradingPolicy.from_json(row.policy),
            tenant_id=row.tenant_id,
            note=row.note,
            created_by=row.created_by,
            created_at=row.created_at,
            scope_path=row.scope_path,
            scope_kind=row.scope_kind,
        )


_SELECT = (
    "SELECT p.tenant_id, p.id, p.scope_unit_id, p.version, p.policy, p.note, p.created_by,"
    " p.created_at, u.path AS scope_path, u.kind AS scope_kind FROM grading_policies p"
    " JOIN org_units u ON u.tenant_id = p.tenant_id AND u.id = p.scope_unit_id"
)


# --- scopes ---------------------------------------------------------------------------


def county_id_of(path: str) -> int | None:
    """The county unit above (or at) the unit with `path` ("/root/county/…"); None for
    the platform root."""
    parts = [p for p in path.split("/") if p]
    return int(parts[1]) if len(parts) >= 2 else None


def _scopes_of(unit: Any) -> tuple[int | None, int]:
    """(the tenant whose policy governs the unit first or None, its county)."""
    county = county_id_of(unit.path)
    if county is None:
        raise POLICY_UNIT_INVALID.error()
    tenant = None if unit.tenant_id == county else int(unit.tenant_id)
    return tenant, county


def _widen_to(tx: Transaction, tenant_ids: Sequence[int]) -> None:
    missing = [t for t in tenant_ids if t not in tx.scope.tenant_ids]
    if missing:
        tx.widen(missing)


def _readers_within(principal: Principal, path: str) -> bool:
    """Whether the principal reads evaluations at some unit at or under `path`, or at
    the unit itself through a grant above it."""
    auth = authorizer()
    if auth.allowed(principal, EvaluationAction.READ, path):
        return True
    return any(
        is_within(g.org_path, path) and auth.allowed(principal, EvaluationAction.READ, g.org_path)
        for g in principal.grants
    )


def may_read(principal: Principal, version: PolicyVersion) -> bool:
    """The read rule of the module text (the same for the county and a tenant: a reader
    within the scope unit's subtree, or above it)."""
    return _readers_within(principal, version.scope_path)


def principal_counties(principal: Principal) -> list[int]:
    """The counties where the principal reads evaluations, in grant order."""
    auth = authorizer()
    out: list[int] = []
    for g in principal.grants:
        county = county_id_of(g.org_path)
        if (
            county is not None
            and county not in out
            and auth.allowed(principal, EvaluationAction.READ, g.org_path)
        ):
            out.append(county)
    return out


# --- reading --------------------------------------------------------------------------


async def _latest(tx: Transaction, scopes: Sequence[int]) -> dict[int, Any]:
    """The latest version of each scope unit in `scopes` (one statement)."""
    rows = await tx.rows(
        f"""
        SELECT DISTINCT ON (p.scope_unit_id) {_SELECT.removeprefix("SELECT ")}
        WHERE p.tenant_id = ANY(%(scopes)s::bigint[]) AND p.scope_unit_id = p.tenant_id
        ORDER BY p.scope_unit_id, p.version DESC
        """,
        {"scopes": list(scopes)},
    )
    return {row.scope_unit_id: row for row in rows}


async def effective_policy(
    tx: Transaction, unit_row: Any, *, principal: Principal | None = None
) -> PolicyVersion:
    """The policy that governs `unit_row` (a branch, a general branch, a tenant or the
    county): its tenant's latest version, else its county's, else the default saved as
    the county's version 1 (in a writing transaction, audited as `principal` or the
    system; in a read-only one returned unsaved as version 0). No authorization: the
    caller has authorized its own action on the unit."""
    tenant, county = _scopes_of(unit_row)
    scopes = [county] if tenant is None else [tenant, county]
    _widen_to(tx, [county])
    found = await _latest(tx, scopes)
    for scope in scopes:
        if scope in found:
            return PolicyVersion.of(found[scope])
    county_path = unit_row.path.split(f"/{county}/")[0] + f"/{county}/"
    if not tx.write:
        return PolicyVersion(
            id=0,
            scope_unit_id=county,
            version=0,
            policy=rules.DEFAULT_POLICY,
            tenant_id=county,
            scope_path=county_path,
            scope_kind=OrgUnitKind.COUNTY.value,
        )
    saved = await _insert_version(
        tx,
        scope=county,
        policy=rules.DEFAULT_POLICY,
        note="默认评议办法",
        actor=(principal or SYSTEM).actor,
        only_first=True,
    )
    if saved is None:  # another transaction saved it first
        return PolicyVersion.of((await _latest(tx, [county]))[county])
    version = PolicyVersion.of(saved)
    await _audit(tx, principal or SYSTEM, version, default=True)
    return version


async def get_policy_version(
    tx: Transaction, principal: Principal, policy_id: int
) -> PolicyVersion:
    """A saved version the principal may read; NOT_FOUND otherwise."""
    _widen_to(tx, principal_counties(principal))
    row = await tx.first(f"{_SELECT} WHERE p.id = %(id)s", {"id": policy_id})
    if row is None:
        raise not_found(POLICY)
    version = PolicyVersion.of(row)
    if not may_read(principal, version):
        raise not_found(POLICY)
    return version


async def _named_unit(tx: Transaction, principal: Principal, org_unit_id: int) -> Any:
    unit = await units.get_unit(tx, org_unit_id)
    if unit is None:
        raise not_found(UNIT)
    require(principal, EvaluationAction.READ, unit.path, what=UNIT)
    return unit


async def current_policy(
    tx: Transaction, principal: Principal, *, org_unit_id: int | None
) -> PolicyVersion:
    """The policy governing the unit (authorized as the module says), or with no unit
    the current policy of the principal's county."""
    if org_unit_id is not None:
        unit = await _named_unit(tx, principal, org_unit_id)
        return await effective_policy(tx, unit, principal=principal)
    counties = principal_counties(principal)
    if not counties:
        raise forbidden()
    county = counties[0]
    _widen_to(tx, [county])
    unit = await units.get_unit(tx, county)
    if unit is None:
        raise not_found(UNIT)
    return await effective_policy(tx, unit, principal=principal)


async def list_versions(
    tx: Transaction, principal: Principal, *, org_unit_id: int, page: PageRequest
) -> Page[Any]:
    """The saved versions of the county's or a tenant's own policy, oldest first."""
    unit = await _named_unit(tx, principal, org_unit_id)
    _check_scope_unit(unit)
    rows = await tx.rows(
        f"{_SELECT} WHERE p.tenant_id = %(unit)s AND p.scope_unit_id = %(unit)s"
        f" AND {keyset('p.id')}",
        {"unit": unit.id, **page.params},
    )
    return Page.of([PolicyVersion.of(r) for r in rows], page)


async def load_versions(
    tx: Transaction, principal: Principal, ids: Sequence[int]
) -> list[PolicyVersion | None]:
    _widen_to(tx, principal_counties(principal))
    rows = await tx.rows(
        f"{_SELECT} WHERE p.id = ANY(%(ids)s::bigint[])", {"ids": sorted(set(ids))}
    )
    by_id = {r.id: PolicyVersion.of(r) for r in rows}
    return [
        v if v is not None and may_read(principal, v) else None for v in (by_id.get(i) for i in ids)
    ]


def preview_readers(principal: Principal) -> None:
    """Trying a policy out needs `evaluation:read` somewhere (no tenant data is read)."""
    if not readable_paths(principal, EvaluationAction.READ):
        raise forbidden()


# --- setting --------------------------------------------------------------------------


def _check_scope_unit(unit: Any) -> None:
    kind = OrgUnitKind(unit.kind)
    if kind is not OrgUnitKind.COUNTY and kind not in TENANT_KINDS:
        raise POLICY_UNIT_INVALID.error()


async def _insert_version(
    tx: Transaction,
    *,
    scope: int,
    policy: rules.GradingPolicy,
    note: str | None,
    actor: str,
    only_first: bool = False,
) -> Any | None:
    """The next version of `scope`'s policy; None when another transaction took that
    version number first (or, with `only_first`, when a version exists)."""
    return await tx.first(
        f"""
        WITH inserted AS (
          INSERT INTO grading_policies (tenant_id, scope_unit_id, version, policy, note,
            created_by)
          SELECT %(scope)s, %(scope)s, coalesce(max(version), 0) + 1, %(policy)s, %(note)s,
            %(actor)s
          FROM grading_policies WHERE tenant_id = %(scope)s AND scope_unit_id = %(scope)s
          HAVING %(any)s OR count(*) = 0
          ON CONFLICT ON CONSTRAINT uq_grading_policies_version DO NOTHING
          RETURNING *
        )
        {_SELECT.replace("grading_policies p", "inserted p")}
        """,
        {
            "scope": scope,
            "policy": Jsonb(policy.to_json()),
            "note": note,
            "actor": actor,
            "any": not only_first,
        },
    )


async def _audit(
    tx: Transaction, principal: Principal, version: PolicyVersion, *, default: bool = False
) -> None:
    await record(
        tx,
        principal,
        tenant_id=version.tenant_id,
        action="evaluation.policy_default" if default else "evaluation.set_policy",
        object_type="GradingPolicyVersion",
        object_id=version.id,
        details={
            "org_unit_id": version.scope_unit_id,
            "version": version.version,
            "policy": version.policy.to_json(),
            "note": version.note,
        },
    )


async def set_policy(
    tx: Transaction,
    principal: Principal,
    *,
    org_unit_id: int,
    policy: rules.GradingPolicy | dict[str, Any],
    note: str | None = None,
) -> PolicyVersion:
    """A new version of the county's or a tenant's policy. `policy` is a whole policy,
    or a mapping of the values to change (`GradingPolicy.from_json` keys and forms) on
    top of the policy that governs the unit now."""
    unit = await units.get_unit(tx, org_unit_id)
    if unit is None:
        raise not_found(UNIT)
    require(principal, EvaluationAction.SET_POLICY, unit.path, what=UNIT)
    _check_scope_unit(unit)
    ensure_active(unit, "制定评议办法")
    if isinstance(policy, dict):
        base = (await effective_policy(tx, unit, principal=principal)).policy
        try:
            policy = rules.GradingPolicy.from_json(base.to_json() | policy)
        except (ValueError, TypeError) as exc:
            raise POLICY_INVALID.error(problems=_form_problem(exc)) from exc
    problems = rules.validate_policy(policy)
    if problems:
        raise POLICY_INVALID.error(problems="；".join(problems))
    said = (note or "").strip() or None
    if said is not None and len(said) > MAX_NOTE:
        raise POLICY_NOTE_TOO_LONG.error(limit=MAX_NOTE)
    row = await _insert_version(tx, scope=unit.id, policy=policy, note=said, actor=principal.actor)
    if row is None:
        raise VERSION_CONFLICT.error(what=POLICY)
    version = PolicyVersion.of(row)
    await _audit(tx, principal, version)
    return version


def _form_problem(exc: Exception) -> str:
    text = str(exc)
    for name, label in rules.FIELD_LABELS.items():
        if text.startswith(f"{name}:"):
            return f"{label}的写法不对（比例写作 2/3、0.6 或 60%）"
    return "比例应写作 2/3、0.6 或 60%"
