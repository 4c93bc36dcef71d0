"""GraphQL of the case archive: `exportCaseArchive` returns the zip bundle as the other
exports do (base64 in the answer; service/cases/archive.py says what it holds)."""

from __future__ import annotations

import base64

import strawberry
from strawberry.types import Info

from service.cases import archive
from service.schema.context import Context
from service.schema.ids import from_global_id


@strawberry.input(description="导出案件材料（立卷归档）")
class ExportCaseArchiveInput:
    case_id: strawberry.ID


@strawberry.type(description="案件材料包（.zip：manifest.json、summary.html 与全部附件）")
class CaseArchiveExport:
    filename: str
    content_base64: str
    sha256: str = strawberry.field(description="整个 .zip 的 SHA-256（十六进制）")
    file_count: int = strawberry.field(description="材料包中除 manifest.json 外的文件数")
    final: bool = strawberry.field(description="案件已结案（否则为阶段性材料）")
    archived_now: bool = strawberry.field(
        description="本次导出完成立卷归档（写入归档记录并将处理决定存入本人档案）"
    )


@strawberry.type
class CaseArchiveMutation:
    @strawberry.mutation(description="导出案件材料包；已结案案件首次导出时立卷归档（记入审计）")
    async def export_case_archive(
        self, info: Info[Context, None], input: ExportCaseArchiveInput
    ) -> CaseArchiveExport:
        ctx = info.context
        made = await archive.export_case_archive(
            ctx.tx, ctx.principal, case_id=from_global_id(input.case_id, "DisposalCase")[1]
        )
        return CaseArchiveExport(
            filename=made.filename,
            content_base64=base64.b64encode(made.content).decode(),
            sha256=made.sha256,
            file_count=len(made.manifest["files"]),
            final=bool(made.manifest["final"]),
            archived_now=made.archived_now,
        )
