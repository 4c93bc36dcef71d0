"""Casbin actions on the org tree."""

from __future__ import annotations

from service.authz.actions import Action


class OrgUnitAction(Action):
    READ = "orgunit:read"
    CREATE = "orgunit:create"
    UPDATE = "orgunit:update"
    ARCHIVE = "orgunit:archive"
