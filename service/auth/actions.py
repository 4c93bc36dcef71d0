"""Casbin actions on accounts."""

from __future__ import annotations

from service.authz.actions import Action


class AccountAction(Action):
    READ = "account:read"
    CREATE = "account:create"
    # Accounts as system resources (系统管理员)
    DISABLE = "account:disable"
    ENABLE = "account:enable"
    RESET_PASSWORD = "account:reset_password"  # noqa: S105 (an action name, not a secret)
    UNLOCK = "account:unlock"
