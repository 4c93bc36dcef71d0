"""Casbin actions of approval chains (审批)."""

from __future__ import annotations

from service.authz.actions import Action


class ApprovalAction(Action):
    READ = "approval:read"  # requests and steps of units below one's own
    DECIDE = "approval:decide"  # approve, reject or return a step held at one's unit
