"""Casbin actions of discipline sanctions (党纪处分)."""

from __future__ import annotations

from service.authz.actions import Action


class SanctionAction(Action):
    RECORD = "sanction:record"
