"""Attachments (附件) of disposal cases: upload, link to a case step, download.

`link(tx, principal, attachment_ids, owner_kind, owner_id)` is what a case step calls
with the `attachmentIds` its mutation took (see service.py)."""

from service.attachments.service import (
    Download,
    download,
    link,
    may_read,
    register_owner_kind,
    upload,
)

__all__ = [
    "Download",
    "download",
    "link",
    "may_read",
    "register_owner_kind",
    "upload",
]
