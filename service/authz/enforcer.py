"""Casbin (RBAC with domains) behind the one `require` entry point.

The role -> action policy is loaded once from policies/casbin. A principal's own grants
(few) come with the principal; Casbin decides with an enforcer that holds just those
grants. Decisions are cached across requests by (grant set, action, org path): the
answer depends on nothing else while the process runs (the policy file is read once),
so a repeated check costs a dictionary lookup, and a revoked grant changes the key.
List queries authorize their scope once (`readable_paths`) and let SQL filter.
"""

from __future__ import annotations

import copy
import threading
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import casbin

from service.auth.principal import Grant, Principal
from service.authz.actions import Action
from service.errors import DomainError, forbidden, not_found
from service.tenants.actions import OrgUnitAction
from service.tenants.rules import is_within

POLICY_DIR = Path(__file__).resolve().parent.parent.parent / "policies" / "casbin"


class _CompiledMatcherEnforcer(casbin.Enforcer):
    """An enforcer that parses its matcher once, not on every `enforce`.

    pycasbin builds a new SimpleEval (which runs `ast.parse`) per call. The functions
    the expression calls (the `g` role-link test) are rebuilt per call around the same
    role manager, which does not change once the enforcer is built, so the first
    expression stays valid.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._expressions: dict[str, Any] = {}

    def _get_expression(self, expr: str, functions: Any = None) -> Any:  # type: ignore[override]
        compiled = self._expressions.get(expr)
        if compiled is None:
            compiled = casbin.Enforcer._get_expression(expr, functions)
            self._expressions[expr] = compiled
        return compiled


class Authorizer:
    """Loads the model and role policy once; decides and remembers decisions."""

    def __init__(
        self,
        policy_dir: Path = POLICY_DIR,
        enforcer_cache_size: int = 4096,
        decision_cache_size: int = 100_000,
    ) -> None:
        self._base = casbin.Enforcer(str(policy_dir / "model.conf"), str(policy_dir / "policy.csv"))
        self._enforcers: OrderedDict[tuple[Grant, ...], casbin.Enforcer] = OrderedDict()
        self._enforcer_cache_size = enforcer_cache_size
        self._scopes: dict[tuple[tuple[Grant, ...], str], tuple[str, ...]] = {}
        self._decision_cache_size = decision_cache_size
        self._lock = threading.Lock()

    def policy_actions(self) -> frozenset[str]:
        """Every action policy.csv names."""
        return frozenset(rule[1] for rule in self._base.get_policy())

    def actions_of(self, role: str) -> frozenset[str]:
        return frozenset(rule[1] for rule in self._base.get_filtered_policy(0, role))

    def _enforcer(self, grants: tuple[Grant, ...]) -> casbin.Enforcer:
        with self._lock:
            cached = self._enforcers.get(grants)
            if cached is not None:
                self._enforcers.move_to_end(grants)
                return cached
        enforcer = _CompiledMatcherEnforcer(copy.deepcopy(self._base.get_model()))
        enforcer.add_named_domain_matching_func("g", is_within)
        for grant in grants:
            enforcer.add_grouping_policy("principal", grant.role, grant.org_path)
        with self._lock:
            self._enforcers[grants] = enforcer
            if len(self._enforcers) > self._enforcer_cache_size:
                self._enforcers.popitem(last=False)
        return enforcer

    def enforce(self, principal: Principal, action: Action | str, org_path: str) -> bool:
        """Casbin's own answer, with nothing remembered: what `allowed` must agree with."""
        if not principal.grants:
            return False
        return bool(self._enforcer(principal.grants).enforce("principal", org_path, str(action)))

    def scope(self, grants: tuple[Grant, ...], action: Action | str) -> tuple[str, ...]:
        """The outermost grant paths at which Casbin allows `action`: the principal may
        do it there and, the model's domains being path prefixes, everywhere below and
        nowhere else. Casbin decides once per grant (few), not once per unit."""
        key = (grants, str(action))
        cached = self._scopes.get(key)
        if cached is None:
            enforcer = self._enforcer(grants)
            cached = tuple(
                _outermost(
                    g.org_path
                    for g in grants
                    if enforcer.enforce("principal", g.org_path, str(action))
                )
            )
            with self._lock:
                if len(self._scopes) >= self._decision_cache_size:
                    self._scopes.clear()
                self._scopes[key] = cached
        return cached

    def allowed(self, principal: Principal, action: Action | str, org_path: str) -> bool:
        """Whether `principal` may do `action` at `org_path`: inside the scope Casbin
        gives the principal's grants for `action` (see `scope`). A batch of 2,000
        branches of one county costs one Casbin call per grant, not 2,000 (each of
        which walks the whole policy: 10 ms); a test holds this to `enforce`."""
        grants = principal.grants
        if not grants:
            return False
        return any(is_within(org_path, outer) for outer in self.scope(grants, action))


_authorizer: Authorizer | None = None


def authorizer() -> Authorizer:
    global _authorizer
    if _authorizer is None:
        _authorizer = Authorizer()
    return _authorizer


def require(
    principal: Principal,
    action: Action,
    org_path: str,
    *,
    what: str = "组织",
    seen_with: Action = OrgUnitAction.READ,
) -> None:
    """Raise unless `principal` may do `action` at the unit with path `org_path`.

    An object the principal may not even see (`seen_with` at its unit: reading the unit
    for the unit itself, reading the ledger for a member) answers NOT_FOUND, like a
    missing one, so that ids reveal nothing; a visible one answers FORBIDDEN.
    """
    auth = authorizer()
    if auth.allowed(principal, action, org_path):
        return
    if action is not seen_with and auth.allowed(principal, seen_with, org_path):
        refused = forbidden()
        raise DeniedAt(refused, action=str(action), org_path=org_path)
    raise not_found(what)


class DeniedAt(DomainError):
    """FORBIDDEN, saying which action was refused at which unit: the request audits it
    after its own transaction (service/schema/view.py)."""

    def __init__(self, refused: DomainError, *, action: str, org_path: str) -> None:
        super().__init__(refused.code, refused.message, http_status=refused.http_status)
        self.action = action
        self.org_path = org_path


@dataclass(frozen=True)
class ReadablePaths:
    """The org paths under which a principal may do one action: a list query's whole
    scope, authorized once. Only `readable_paths` makes one; repositories turn it into
    SQL with `sql()`, the one place the path-prefix filter is written."""

    prefixes: tuple[str, ...]

    def __bool__(self) -> bool:
        return bool(self.prefixes)

    def sql(self, column: str, name: str = "readable") -> tuple[str, dict[str, str]]:
        """`(column LIKE %(readable0)s OR ...)` and its values, each prefix with LIKE's
        wildcards escaped by backslash (PostgreSQL's default LIKE escape): prefix tests
        that a btree index on a "C"-collated path can serve. An empty scope is FALSE."""
        if not column.replace("_", "").replace(".", "").isalnum():
            raise ValueError(f"bad column {column!r}")
        if not self.prefixes:
            return "FALSE", {}
        params = {f"{name}{i}": _like_prefix(p) for i, p in enumerate(self.prefixes)}
        tests = " OR ".join(f"{column} LIKE %({key})s" for key in params)
        return f"({tests})", params


def _like_prefix(path: str) -> str:
    escaped = path.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return escaped + "%"


def readable_paths(principal: Principal, action: Action) -> ReadablePaths:
    """The paths under which `principal` may do `action`, without paths inside others."""
    return ReadablePaths(authorizer().scope(principal.grants, action) if principal.grants else ())


def _outermost(paths: Iterable[str]) -> list[str]:
    kept: list[str] = []
    for path in sorted(paths):
        if not any(is_within(path, outer) for outer in kept):
            kept.append(path)
    return kept
