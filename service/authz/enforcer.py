"""Casbin (RBAC with domains) behind the one `require` entry point.

The role -> action policy is loaded once from policies/casbin. A principal's own grants
(few) are loaded per request with its scope; Casbin then decides with an enforcer that
holds just those grants. Enforcers are cached by the set of grants, and decisions are
cached per request, so a check costs microseconds and stays off the per-row path: list
queries authorize their scope once (`readable_paths`) and let SQL filter.
"""

from __future__ import annotations

import copy
import threading
from collections import OrderedDict
from pathlib import Path

import casbin

from service.auth.principal import Grant, Principal
from service.errors import forbidden, not_found
from service.tenants.rules import is_within

POLICY_DIR = Path(__file__).resolve().parent.parent.parent / "policies" / "casbin"


class Authorizer:
    """Loads the model and role policy once; builds small per-grant-set enforcers."""

    def __init__(self, policy_dir: Path = POLICY_DIR, cache_size: int = 4096) -> None:
        self._base = casbin.Enforcer(str(policy_dir / "model.conf"), str(policy_dir / "policy.csv"))
        self._cache: OrderedDict[tuple[Grant, ...], casbin.Enforcer] = OrderedDict()
        self._cache_size = cache_size
        self._lock = threading.Lock()

    def actions_of(self, role: str) -> frozenset[str]:
        return frozenset(rule[1] for rule in self._base.get_filtered_policy(0, role))

    def _enforcer(self, grants: tuple[Grant, ...]) -> casbin.Enforcer:
        with self._lock:
            cached = self._cache.get(grants)
            if cached is not None:
                self._cache.move_to_end(grants)
                return cached
        enforcer = casbin.Enforcer(copy.deepcopy(self._base.get_model()))
        enforcer.add_named_domain_matching_func("g", is_within)
        for grant in grants:
            enforcer.add_grouping_policy("principal", grant.role, grant.org_path)
        with self._lock:
            self._cache[grants] = enforcer
            if len(self._cache) > self._cache_size:
                self._cache.popitem(last=False)
        return enforcer

    def allowed(self, principal: Principal, action: str, org_path: str) -> bool:
        key = (action, org_path)
        decided = principal.decisions.get(key)
        if decided is None:
            decided = bool(
                principal.grants
                and self._enforcer(principal.grants).enforce("principal", org_path, action)
            )
            principal.decisions[key] = decided
        return decided


_authorizer: Authorizer | None = None


def authorizer() -> Authorizer:
    global _authorizer
    if _authorizer is None:
        _authorizer = Authorizer()
    return _authorizer


def require(principal: Principal, action: str, org_path: str, *, what: str = "组织") -> None:
    """Raise unless `principal` may do `action` at the unit with path `org_path`.

    A unit the principal may not even read answers NOT_FOUND, like a missing one, so
    that ids reveal nothing; a readable unit answers FORBIDDEN.
    """
    auth = authorizer()
    if auth.allowed(principal, action, org_path):
        return
    if action != "orgunit:read" and auth.allowed(principal, "orgunit:read", org_path):
        raise forbidden()
    raise not_found(what)


def readable_paths(principal: Principal, action: str) -> list[str]:
    """The paths under which `principal` may do `action`: a list query's whole scope,
    authorized once and then applied in SQL as path prefixes."""
    auth = authorizer()
    return sorted(
        {g.org_path for g in principal.grants if auth.allowed(principal, action, g.org_path)}
    )
