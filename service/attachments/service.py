"""Attachments: upload under a branch, link to the case step that uses them, read.

Why it is shaped this way:
- Upload and link are two steps because a GraphQL mutation that records a case step
  (cases-core's `recordInvestigation` …) takes `attachmentIds`: the files go up first
  through `uploadAttachment` (the multipart path), the step then links them with
  `link(tx, principal, attachment_ids, owner_kind, owner_id)` in its own transaction.
  Only the uploader may link their upload, and only once: a file cannot be moved from
  one case to another, nor someone else's upload pulled into one's case.
- Who may READ an attachment follows its owner: each owner kind registers a check
  (`register_owner_kind`): disposal cases register `case` and `case_record`
  (`service.cases.service.install`). An unlinked upload is readable by its uploader
  only.
  A refused read and a missing or other tenant's id give the same NOT_FOUND.
- The bytes are stored in the tenant's row (forced RLS, lock 2) and served only with
  the content type their magic bytes showed at upload (`rules.sniff`).
"""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

from service.attachments import repository, rules
from service.attachments.actions import AttachmentAction
from service.attachments.errors import (
    ATTACHMENT,
    ATTACHMENT_ALREADY_LINKED,
    ATTACHMENT_EMPTY,
    ATTACHMENT_FILENAME_INVALID,
    ATTACHMENT_NOT_YOURS,
    ATTACHMENT_OWNER_KIND_UNKNOWN,
    ATTACHMENT_TOO_LARGE,
    ATTACHMENT_TYPE_NOT_ALLOWED,
)
from service.audit.service import record
from service.auth.principal import Principal
from service.authz import require
from service.config import Settings
from service.db import Transaction
from service.errors import not_found
from service.tenants import repository as units

MayRead = Callable[[Transaction, Principal, Any], Awaitable[bool]]
_READERS: dict[str, MayRead] = {}


def register_owner_kind(kind: str, may_read: MayRead) -> None:
    """Say who may read the attachments of owners of `kind`: `may_read(tx, principal,
    attachment_row)` (the row has `owner_id`, `tenant_id`, `branch_path`)."""
    _READERS[kind] = may_read


# --- upload -------------------------------------------------------------------------


async def upload(
    tx: Transaction,
    principal: Principal,
    *,
    branch_id: int,
    data: bytes,
    filename: str | None,
    settings: Settings,
) -> Any:
    """Store one file under a branch, unlinked; its metadata row."""
    unit = await units.get_unit(tx, branch_id)
    if unit is None:
        raise not_found("党支部")
    require(principal, AttachmentAction.UPLOAD, unit.path, what="党支部")
    if not data:
        raise ATTACHMENT_EMPTY.error()
    if len(data) > settings.attachment_max_bytes:
        raise ATTACHMENT_TOO_LARGE.error(limit=settings.attachment_max_bytes)
    kind = rules.sniff(data)
    if kind is None or kind.value not in settings.attachment_types:
        allowed = "、".join(
            rules.KIND_LABELS[k] for k in rules.FileKind if k.value in settings.attachment_types
        )
        raise ATTACHMENT_TYPE_NOT_ALLOWED.error(allowed=allowed)
    name = rules.clean_filename(filename, kind)
    if name is None:
        raise ATTACHMENT_FILENAME_INVALID.error()
    digest = hashlib.sha256(data).hexdigest()
    row = await repository.insert(
        tx,
        tenant_id=unit.tenant_id,
        branch_id=unit.id,
        branch_path=unit.path,
        filename=name,
        content_type=rules.CONTENT_TYPES[kind],
        size_bytes=len(data),
        sha256=digest,
        content=data,
        uploaded_by=principal.account_id,
    )
    await record(
        tx,
        principal,
        tenant_id=row.tenant_id,
        action="attachment.upload",
        object_type="Attachment",
        object_id=row.id,
        details={"branch_id": unit.id, "kind": kind.value, "size": len(data), "sha256": digest},
    )
    return row


# --- link (called by cases-core's step mutations) ------------------------------------


async def link(
    tx: Transaction,
    principal: Principal,
    attachment_ids: Sequence[int],
    owner_kind: str,
    owner_id: int,
    *,
    tenant_id: int | None = None,
) -> list[Any]:
    """Attach uploaded files to their owner (`owner_kind` 'case' or 'case_record'), in
    the caller's transaction, which has already authorized writing the owner.

    Each id must be visible (else NOT_FOUND), uploaded by `principal`, and unlinked or
    already linked to this very owner (a retried step links again harmlessly). With
    `tenant_id` the files must also belong to that tenant (the owner's). Returns the
    metadata rows in the order of `attachment_ids` (duplicates once). One audit event
    per tenant touched."""
    wanted = list(dict.fromkeys(int(i) for i in attachment_ids))
    if not wanted:
        return []
    if owner_kind not in _READERS:
        raise ATTACHMENT_OWNER_KIND_UNKNOWN.error(kind=owner_kind)
    found = await repository.get_many(tx, wanted)
    to_link: list[int] = []
    for attachment_id in wanted:
        row = found.get(attachment_id)
        if row is None or (tenant_id is not None and row.tenant_id != tenant_id):
            raise not_found(ATTACHMENT)
        if row.owner_id is not None:
            if (row.owner_kind, row.owner_id) != (owner_kind, owner_id):
                raise ATTACHMENT_ALREADY_LINKED.error(filename=row.filename)
            continue
        if row.uploaded_by != principal.account_id:
            raise ATTACHMENT_NOT_YOURS.error(filename=row.filename)
        to_link.append(attachment_id)
    if to_link:
        linked = await repository.set_owner(
            tx, to_link, owner_kind=owner_kind, owner_id=owner_id, linked_by=principal.account_id
        )
        if len(linked) != len(to_link):  # linked meanwhile (rows are locked: not expected)
            raise ATTACHMENT_ALREADY_LINKED.error(filename="")
        by_tenant: dict[int, list[int]] = {}
        for row in linked:
            found[row.id] = row
            by_tenant.setdefault(row.tenant_id, []).append(row.id)
        for tenant, ids in sorted(by_tenant.items()):
            await record(
                tx,
                principal,
                tenant_id=tenant,
                action="attachment.link",
                object_type="Attachment",
                object_id=ids[0],
                details={"ids": ids, "owner_kind": owner_kind, "owner_id": owner_id},
            )
    return [found[i] for i in wanted]


# --- read -----------------------------------------------------------------------------


async def may_read(tx: Transaction, principal: Principal, row: Any) -> bool:
    """Whether `principal` may read the attachment `row` (its owner decides)."""
    if row.owner_kind is None:
        return principal.account_id is not None and row.uploaded_by == principal.account_id
    check = _READERS.get(row.owner_kind)
    return check is not None and await check(tx, principal, row)


@dataclass(frozen=True)
class Download:
    filename: str
    content_type: str
    content: bytes
    sha256: str


async def download(tx: Transaction, principal: Principal, *, attachment_id: int) -> Download:
    """The file, if `principal` may read its owner; audited (`tx` must write)."""
    row = await repository.get_with_content(tx, attachment_id)
    if row is None or not await may_read(tx, principal, row):
        raise not_found(ATTACHMENT)
    await record(
        tx,
        principal,
        tenant_id=row.tenant_id,
        action="attachment.download",
        object_type="Attachment",
        object_id=row.id,
        details={"owner_kind": row.owner_kind, "owner_id": row.owner_id},
    )
    return Download(
        filename=row.filename,
        content_type=row.content_type,
        content=bytes(row.content),
        sha256=row.sha256,
    )
