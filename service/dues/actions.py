"""Casbin actions of party dues (党费)."""

from __future__ import annotations

from service.authz.actions import Action


class DuesAction(Action):
    RECORD = "dues:record"  # payments, back-payments, quarterly arrangements
