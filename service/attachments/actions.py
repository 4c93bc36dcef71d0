"""Casbin actions of attachments (附件). Reading one is not an action of its own: it
follows its owner (a case's reader reads the case's materials; service.py)."""

from __future__ import annotations

from service.authz.actions import Action


class AttachmentAction(Action):
    # Upload a document or photo under a branch, to be linked by a case step
    UPLOAD = "attachment:upload"
