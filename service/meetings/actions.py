"""Casbin actions of organizational life (组织生活) and assigned tasks."""

from __future__ import annotations

from service.authz.actions import Action


class LifeAction(Action):
    RECORD = "life:record"  # meetings, attendance, tasks and their outcome
