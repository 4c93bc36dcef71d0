"""Pure rules of the org tree, with worked examples and properties."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from service.tenants.rules import (
    SCOPE_KINDS,
    TENANT_KINDS,
    OrgUnitKind,
    child_path,
    clean_name,
    is_within,
    may_contain,
    opens_tenant,
    valid_code,
)

K = OrgUnitKind


def test_tree_shape_from_domain() -> None:
    assert may_contain(K.ROOT, K.COUNTY)
    assert all(may_contain(K.COUNTY, k) for k in TENANT_KINDS)
    assert may_contain(K.TOWNSHIP, K.GENERAL_BRANCH) and may_contain(K.TOWNSHIP, K.BRANCH)
    assert may_contain(K.GENERAL_BRANCH, K.BRANCH)
    assert not may_contain(K.BRANCH, K.BRANCH)
    assert not may_contain(K.COUNTY, K.BRANCH)
    assert not may_contain(K.GENERAL_BRANCH, K.GENERAL_BRANCH)


def test_four_tenant_kinds_open_tenants_branches_do_not() -> None:
    assert {k.value for k in TENANT_KINDS} == {
        "township",
        "development_zone",
        "new_district",
        "county_department",
    }
    assert opens_tenant(K.COUNTY) and not opens_tenant(K.BRANCH)
    assert not opens_tenant(K.GENERAL_BRANCH)


@given(st.sampled_from(list(K)), st.sampled_from(list(K)))
def test_no_kind_contains_itself_or_an_ancestor_kind(parent: K, child: K) -> None:
    order = list(K)
    if may_contain(parent, child):
        assert order.index(child) > order.index(parent)
        # a tenant scope is only ever opened directly under a scope
        if opens_tenant(child):
            assert parent in SCOPE_KINDS


ids = st.integers(min_value=1, max_value=10**12)


@given(st.lists(ids, min_size=1, max_size=8), ids)
def test_child_path_is_within_parent_and_not_within_siblings(chain: list[int], other: int) -> None:
    parent = "/" + "/".join(map(str, chain)) + "/"
    child = child_path(parent, other)
    assert is_within(child, parent)
    assert not is_within(parent, child)
    sibling = child_path(parent, other + 1)
    assert not is_within(sibling, child) and not is_within(child, sibling)


@given(st.text(max_size=150))
def test_clean_name_is_trimmed_single_spaced_and_bounded(raw: str) -> None:
    cleaned = clean_name(raw)
    if cleaned is not None:
        assert cleaned == cleaned.strip() and "  " not in cleaned
        assert 1 <= len(cleaned) <= 100


def test_codes() -> None:
    assert valid_code("chengguan-01") and valid_code("A_1")
    assert not valid_code("") and not valid_code("城关") and not valid_code("a b")
    assert not valid_code("x" * 33)
