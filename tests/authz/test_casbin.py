"""Casbin with the shipped model and policy: the domain hierarchy of org paths."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from service.auth.principal import Grant, Principal
from service.authz.enforcer import authorizer

COUNTY, TOWN, BRANCH, SIBLING, OTHER_TOWN = "/1/2/", "/1/2/3/", "/1/2/3/4/", "/1/2/3/5/", "/1/2/30/"


def principal(*grants: tuple[str, str]) -> Principal:
    return Principal(
        account_id=99,
        username="u",
        grants=tuple(Grant(role, path, 0, 0) for role, path in grants),
        tenant_ids=frozenset(),
    )


def allowed(p: Principal, action: str, path: str) -> bool:
    return authorizer().allowed(p, action, path)


def test_role_at_tenant_covers_its_branches() -> None:
    organizer = principal(("committee_organizer", TOWN))
    assert allowed(organizer, "orgunit:update", TOWN)
    assert allowed(organizer, "orgunit:update", BRANCH)
    assert allowed(organizer, "orgunit:update", SIBLING)
    assert not allowed(organizer, "orgunit:update", COUNTY)
    assert not allowed(organizer, "orgunit:read", OTHER_TOWN)


def test_role_at_branch_does_not_reach_sibling_or_parent() -> None:
    secretary = principal(("branch_secretary", BRANCH))
    assert allowed(secretary, "orgunit:read", BRANCH)
    assert not allowed(secretary, "orgunit:read", SIBLING)
    assert not allowed(secretary, "orgunit:read", TOWN)


def test_branch_roles_cannot_assign_roles() -> None:
    for role in ("branch_secretary", "branch_committee_member", "member"):
        p = principal((role, BRANCH))
        assert not allowed(p, "role:assign", BRANCH), role
        assert not allowed(p, "role:revoke", BRANCH), role


def test_prefix_is_by_whole_path_segment() -> None:
    # /1/2/3/ must not cover /1/2/30/ (a string prefix, not a tree ancestor).
    assert not allowed(principal(("committee_secretary", TOWN)), "orgunit:read", OTHER_TOWN)


def test_admin_roles_are_separate_powers() -> None:
    auditor = principal(("auditor", COUNTY))
    assert allowed(auditor, "audit:read", BRANCH)
    assert not allowed(auditor, "orgunit:read", TOWN)
    assert not allowed(principal(("system_admin", COUNTY)), "role:assign", TOWN)
    assert allowed(principal(("security_admin", COUNTY)), "role:assign_admin", COUNTY)
    assert not allowed(principal(("county_organizer", COUNTY)), "role:assign_admin", COUNTY)


def test_no_grants_no_access() -> None:
    assert not allowed(principal(), "orgunit:read", COUNTY)


segments = st.lists(st.integers(min_value=1, max_value=10_000), min_size=1, max_size=6)


@given(held=segments, target=segments)
def test_grant_covers_exactly_its_subtree(held: list[int], target: list[int]) -> None:
    held_path = "/" + "/".join(map(str, held)) + "/"
    target_path = "/" + "/".join(map(str, target)) + "/"
    p = principal(("committee_organizer", held_path))
    is_descendant = target[: len(held)] == held
    assert allowed(p, "orgunit:read", target_path) == is_descendant


ROLES = sorted({rule[0] for rule in authorizer()._base.get_policy()})
ACTIONS = sorted(authorizer().policy_actions())
# A small tree, so that grants and requests often meet: /1/, /1/2/, /1/2/3/, ...
tree_paths = st.lists(st.integers(min_value=1, max_value=3), min_size=1, max_size=4).map(
    lambda segments: "/" + "/".join(map(str, segments)) + "/"
)


@given(
    grants=st.lists(st.tuples(st.sampled_from(ROLES), tree_paths), max_size=4),
    action=st.sampled_from(ACTIONS),
    path=tree_paths,
)
def test_every_decision_is_casbins_own(
    grants: list[tuple[str, str]], action: str, path: str
) -> None:
    """`allowed` answers from the scope Casbin gives the grants (one Casbin call per
    grant) and a path-prefix test: for any grants, action and unit it says what a full
    Casbin enforce with those grants says."""
    p = principal(*grants)
    assert authorizer().allowed(p, action, path) == authorizer().enforce(p, action, path)
