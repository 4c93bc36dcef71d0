"""Casbin actions. Each domain declares its own as members of an `Action` enum; a test
holds every member against policies/casbin/policy.csv and every action there against
the members, so an action is never a string typed in three places."""

from __future__ import annotations

from enum import StrEnum


class Action(StrEnum):
    """Base of every domain's action enum (`orgunit:read`, `role:assign`, ...)."""


class RoleAction(Action):
    READ = "role:read"
    ASSIGN = "role:assign"
    # Granting or revoking one of the three administrator roles (三员分立)
    ASSIGN_ADMIN = "role:assign_admin"
    REVOKE = "role:revoke"
