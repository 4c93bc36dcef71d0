"""Casbin actions on accounts."""

from __future__ import annotations

from service.authz.actions import Action


class AccountAction(Action):
    READ = "account:read"
    CREATE = "account:create"
