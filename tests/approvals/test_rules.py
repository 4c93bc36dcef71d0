"""The pure rules of approval chains: the chain from the org tree and the options,
deadlines, what a decision does, digests. Worked examples and hypothesis properties."""

from __future__ import annotations

import doctest
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from service.approvals import rules
from service.approvals.rules import (
    ChainError,
    Decision,
    Outcome,
    RequestState,
    StepSpec,
    StepState,
    UnitRef,
    chain_for,
    transition,
)
from service.authz.roles import Role
from service.tenants.rules import OrgUnitKind as K

ROOT = UnitRef(1, K.ROOT, "/1/")
COUNTY = UnitRef(2, K.COUNTY, "/1/2/")
TOWN = UnitRef(3, K.TOWNSHIP, "/1/2/3/")
GENERAL = UnitRef(4, K.GENERAL_BRANCH, "/1/2/3/4/")
BRANCH = UnitRef(5, K.BRANCH, "/1/2/3/4/5/")


def test_docstring_examples() -> None:
    assert doctest.testmod(rules).failed == 0


def test_chain_to_the_tenant_committee_only() -> None:
    [step] = chain_for([ROOT, COUNTY, TOWN, BRANCH], to_county=False, step_days=10)
    assert step == StepSpec(1, TOWN.id, TOWN.path, Role.COMMITTEE_SECRETARY, 10)


def test_chain_to_the_county_from_a_branch_under_a_general_branch() -> None:
    steps = chain_for([ROOT, COUNTY, TOWN, GENERAL, BRANCH], to_county=True, step_days=7)
    assert [(s.position, s.org_unit_id, s.role) for s in steps] == [
        (1, TOWN.id, Role.COMMITTEE_SECRETARY),
        (2, COUNTY.id, Role.COUNTY_ORGANIZER),
    ]
    assert {s.days for s in steps} == {7}
    # A general branch may submit too (its committee is still the tenant's).
    steps = chain_for([ROOT, COUNTY, TOWN, GENERAL], to_county=False, step_days=7)
    assert [s.org_unit_id for s in steps] == [TOWN.id]


@pytest.mark.parametrize(
    "units",
    [
        [ROOT, COUNTY, TOWN],  # a township is not a branch
        [ROOT, COUNTY],
        [],
        [ROOT, TOWN, BRANCH],  # no county above
        [ROOT, COUNTY, BRANCH],  # no tenant above
        [ROOT, COUNTY, UnitRef(6, K.TOWNSHIP, "/1/2/6/"), BRANCH],  # not on its path
    ],
)
def test_chain_refuses_what_is_not_a_branch_under_a_tenant_and_a_county(
    units: list[UnitRef],
) -> None:
    with pytest.raises(ChainError):
        chain_for(units, to_county=True, step_days=10)


@pytest.mark.parametrize("days", [0, -1, rules.MAX_STEP_DAYS + 1])
def test_step_days_out_of_range(days: int) -> None:
    with pytest.raises(ChainError):
        chain_for([ROOT, COUNTY, TOWN, BRANCH], to_county=False, step_days=days)


def test_deadlines_and_overdue() -> None:
    """Deadlines are business dates in Asia/Shanghai: a step is due when the Beijing day
    `days` days after the day it opened ends, whatever the hour it opened."""
    opened = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)  # 17:00 on 1 March in Beijing
    due = rules.due_at(opened, 15)
    assert due == datetime(2026, 3, 16, 16, 0, tzinfo=UTC)  # the end of 16 March, Beijing
    # 00:30 on 2 March in Beijing (still 1 March in UTC): one day later
    assert rules.due_at(datetime(2026, 3, 1, 16, 30, tzinfo=UTC), 15) == due + timedelta(days=1)
    # 08:00 and 23:30 of one Beijing day: the same deadline
    assert rules.due_at(datetime(2026, 3, 2, 0, 0, tzinfo=UTC), 15) == rules.due_at(
        datetime(2026, 3, 2, 15, 30, tzinfo=UTC), 15
    )
    assert not rules.is_overdue(due, due, StepState.PENDING)  # at the deadline: not yet
    assert rules.is_overdue(due, due + timedelta(seconds=1), StepState.PENDING)
    assert not rules.is_overdue(due, due + timedelta(days=9), StepState.APPROVED)


def test_what_a_step_allows() -> None:
    assert rules.allowed_decisions(StepState.PENDING) == frozenset(Decision)
    for state in (StepState.APPROVED, StepState.REJECTED, StepState.RETURNED):
        assert rules.allowed_decisions(state) == frozenset()
    assert not rules.needs_reason(Decision.APPROVE)
    assert rules.needs_reason(Decision.REJECT) and rules.needs_reason(Decision.RETURN)


def test_transitions_worked_examples() -> None:
    assert transition(Decision.APPROVE, 1, 2) == rules.Transition(
        StepState.APPROVED, RequestState.PENDING, 2, None
    )
    assert transition(Decision.APPROVE, 2, 2) == rules.Transition(
        StepState.APPROVED, RequestState.APPROVED, None, Outcome.APPROVED
    )
    assert transition(Decision.REJECT, 1, 2) == rules.Transition(
        StepState.REJECTED, RequestState.REJECTED, None, Outcome.REJECTED
    )
    assert transition(Decision.RETURN, 2, 2) == rules.Transition(
        StepState.RETURNED, RequestState.RETURNED, None, Outcome.RETURNED
    )
    with pytest.raises(ValueError):
        transition(Decision.APPROVE, 3, 2)


@given(
    decisions=st.lists(st.sampled_from(list(Decision)), min_size=1, max_size=6),
    length=st.integers(min_value=1, max_value=3),
)
def test_a_request_climbs_one_level_at_a_time_and_ends_once(
    decisions: list[Decision], length: int
) -> None:
    """Playing decisions on a chain: each approval opens exactly the next position, the
    request is told an outcome exactly when it stops climbing, and approval needs every
    position approved in order."""
    position = 1
    approved: list[int] = []
    for decision in decisions:
        move = transition(decision, position, length)
        assert move.step_state is rules.STEP_STATE_OF[decision]
        assert (move.outcome is None) == (move.request_state is RequestState.PENDING)
        if move.next_position is not None:
            assert move.next_position == position + 1 and decision is Decision.APPROVE
        if decision is Decision.APPROVE:
            approved.append(position)
        if move.outcome is Outcome.APPROVED:
            assert approved[-length:] == list(range(1, length + 1))
        if move.next_position is None:
            break
        position = move.next_position


@given(
    st.dictionaries(st.text(max_size=5), st.one_of(st.integers(), st.text(max_size=5)), max_size=5)
)
def test_digest_is_stable_and_sensitive(content: dict[str, object]) -> None:
    digest = rules.digest_of(content)
    assert digest == rules.digest_of(dict(reversed(list(content.items()))))
    assert rules.valid_digest(digest)
    changed = {**content, "变更后的内容": 1}  # longer than any generated key
    assert rules.digest_of(changed) != digest


def test_step_spec_round_trips_through_json() -> None:
    for spec in chain_for([ROOT, COUNTY, TOWN, BRANCH], to_county=True, step_days=3):
        assert StepSpec.from_json(spec.to_json()) == spec


def test_path_ids() -> None:
    assert rules.path_ids("/1/2/3/") == [1, 2, 3]
    assert rules.path_ids("/") == []
