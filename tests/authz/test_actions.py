"""Every Casbin action is an enum member, and every member is in the policy.

Services pass `Action` members to `require`; policies/casbin/policy.csv grants roles
plain strings. A member missing from the policy is an action nobody may ever do; an
action in the policy that no enum declares is a typo or a leftover that grants nothing
(or, worse, something a later member will silently pick up). Two enums declaring the
same string would make two domains' permissions one.
"""

from __future__ import annotations

import csv
from collections import Counter

# Importing each domain's actions module registers its enum as a subclass of Action.
import service.approvals.actions
import service.attachments.actions
import service.audit.actions
import service.auth.actions
import service.authz.actions
import service.cases.actions
import service.cases.export
import service.dues.actions
import service.evaluations.actions
import service.meetings.actions
import service.members.actions
import service.registration.actions
import service.sanctions.actions
import service.tenants.actions
from service.authz import authorizer
from service.authz.actions import Action
from service.authz.enforcer import POLICY_DIR

DOMAIN_MODULES = (
    service.approvals.actions,
    service.attachments.actions,
    service.audit.actions,
    service.cases.export,
    service.cases.actions,
    service.auth.actions,
    service.authz.actions,
    service.dues.actions,
    service.evaluations.actions,
    service.meetings.actions,
    service.members.actions,
    service.registration.actions,
    service.sanctions.actions,
    service.tenants.actions,
)


def action_enums() -> list[type[Action]]:
    """Every subclass of Action, however deep (a domain may refine another's enum)."""
    found: list[type[Action]] = []
    pending = list(Action.__subclasses__())
    while pending:
        enum = pending.pop()
        found.append(enum)
        pending.extend(enum.__subclasses__())
    return sorted(found, key=lambda e: e.__qualname__)


def declared() -> list[tuple[str, str]]:
    """(enum.member, action string) for every member of every action enum, aliases
    included (a second name for the same string within one enum counts too)."""
    return [
        (f"{enum.__name__}.{name}", member.value)
        for enum in action_enums()
        for name, member in enum.__members__.items()
    ]


def test_the_domains_enums_are_found() -> None:
    """Guards the two tests below against passing on nothing."""
    names = {enum.__name__ for enum in action_enums()}
    assert {"AuditAction", "AccountAction", "RoleAction", "OrgUnitAction"} <= names
    for module in DOMAIN_MODULES:
        assert any(enum.__module__ == module.__name__ for enum in action_enums()), module


def test_every_member_is_granted_by_the_policy() -> None:
    in_policy = authorizer().policy_actions()
    assert in_policy
    missing = [(member, value) for member, value in declared() if value not in in_policy]
    assert missing == [], f"actions no role in policy.csv holds: {missing}"


def test_every_policy_action_is_a_member() -> None:
    members = {value for _, value in declared()}
    unknown = sorted(authorizer().policy_actions() - members)
    assert unknown == [], f"policy.csv names actions no Action enum declares: {unknown}"


def test_casbin_loaded_every_action_the_file_names() -> None:
    """What the check above reads (Casbin's loaded policy) is what the file says."""
    with (POLICY_DIR / "policy.csv").open(newline="") as fh:
        rows = [
            [cell.strip() for cell in row]
            for row in csv.reader(fh)
            if row and not row[0].lstrip().startswith("#")
        ]
    in_file = {row[2] for row in rows if row[0] == "p"}
    assert in_file == authorizer().policy_actions()


def test_no_two_enums_declare_the_same_action() -> None:
    counts = Counter(value for _, value in declared())
    twice = {
        value: [member for member, v in declared() if v == value]
        for value, n in counts.items()
        if n > 1
    }
    assert twice == {}, f"action strings declared more than once: {twice}"
