"""GraphQL of attachments: `uploadAttachment` (a GraphQL multipart request, as the
ledger import: `operations`, `map` and the file part; see service/schema/view.py) and
the `Attachment` type that case steps show. The bytes are not in GraphQL: a client
downloads them from `downloadPath` (`GET /attachments/{id}` with its bearer token)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import strawberry
from strawberry.file_uploads import Upload
from strawberry.types import Info

from service.attachments import repository, service
from service.schema.context import Context
from service.schema.ids import from_global_id, to_global_id


def attachment_gid(attachment_id: int) -> strawberry.ID:
    return strawberry.ID(to_global_id("Attachment", attachment_id))


@strawberry.type(description="附件（文档、照片）：下载须带登录令牌访问 downloadPath")
class Attachment:
    id: strawberry.ID
    filename: str
    content_type: str = strawberry.field(description="按文件内容识别的类型，非上传时声明的类型")
    size_bytes: int
    sha256: str = strawberry.field(description="文件内容的 SHA-256（十六进制）")
    uploaded_at: datetime
    linked: bool = strawberry.field(description="是否已附在案件或案件记录上")
    download_path: str = strawberry.field(description="GET 此路径（带 Authorization: Bearer）下载")

    @classmethod
    def of(cls, row: Any) -> Attachment:
        gid = attachment_gid(row.id)
        return cls(
            id=gid,
            filename=row.filename,
            content_type=row.content_type,
            size_bytes=row.size_bytes,
            sha256=row.sha256,
            uploaded_at=row.uploaded_at,
            linked=row.owner_id is not None,
            download_path=f"/attachments/{gid}",
        )


@strawberry.input(
    description="上传附件（PDF、JPEG、PNG、.docx、.xlsx）；随后在记录案件步骤时引用其 id"
)
class UploadAttachmentInput:
    branch_id: strawberry.ID = strawberry.field(description="案件所在党支部的组织 id")
    file: Upload


@strawberry.type
class UploadAttachmentPayload:
    attachment: Attachment


async def _read_upload(upload: Any, limit: int) -> bytes:
    """At most `limit` + 1 bytes (the service then says ATTACHMENT_TOO_LARGE); a value
    that is no file part reads as nothing (ATTACHMENT_EMPTY)."""
    read = getattr(upload, "read", None)
    if read is None:
        return b""
    return bytes(await read(limit + 1))


@strawberry.type
class AttachmentsMutation:
    @strawberry.mutation(description="上传案件附件（限大小与类型，按内容识别类型，记入审计）")
    async def upload_attachment(
        self, info: Info[Context, None], input: UploadAttachmentInput
    ) -> UploadAttachmentPayload:
        ctx = info.context
        branch_id = from_global_id(input.branch_id, "OrgUnit")[1]
        data = await _read_upload(input.file, ctx.settings.attachment_max_bytes)
        row = await service.upload(
            ctx.tx,
            ctx.principal,
            branch_id=branch_id,
            data=data,
            filename=getattr(input.file, "filename", None),
            settings=ctx.settings,
        )
        return UploadAttachmentPayload(attachment=Attachment.of(row))


async def load_owner_attachments(
    ctx: Context, keys: Sequence[tuple[str, int]]
) -> list[list[Attachment]]:
    """DataLoader batch (`ctx.loader(load_owner_attachments).load(("case", case_id))`):
    each owner's attachments, oldest first, one statement per owner kind in the batch.
    For a field on a type whose row the resolver has already authorized (a case, one of
    its records): reading an attachment follows its owner."""
    by_kind: dict[str, set[int]] = {}
    for kind, owner_id in keys:
        by_kind.setdefault(kind, set()).add(owner_id)
    found: dict[tuple[str, int], list[Attachment]] = {}
    for kind, owners in sorted(by_kind.items()):
        for row in await repository.of_owners(ctx.tx, kind, sorted(owners)):
            found.setdefault((kind, row.owner_id), []).append(Attachment.of(row))
    return [found.get((kind, owner_id), []) for kind, owner_id in keys]
