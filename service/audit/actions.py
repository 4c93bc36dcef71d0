"""Casbin actions on the audit log."""

from __future__ import annotations

from service.authz.actions import Action


class AuditAction(Action):
    READ = "audit:read"
