"""GraphQL of the ledger import: upload and see the report, then confirm.

Two mutations so that the user reads the report before anything is written:
`previewMemberImport` takes the .xlsx as an `Upload` (the GraphQL multipart request
spec: `operations`, `map` and the file part; see service/schema/view.py for the
transport rules) and stages the good rows; `confirmMemberImport` writes them.
"""

from __future__ import annotations

from typing import Any

import strawberry
from strawberry.file_uploads import Upload
from strawberry.types import Info

from service.members import imports
from service.schema.context import Context
from service.schema.ids import from_global_id, to_global_id


@strawberry.type(description="导入报告中的一条：某行某列的问题，或已在台账中的党员")
class ImportProblem:
    row: int = strawberry.field(description="Excel 中的行号")
    column: str = strawberry.field(description="列名，如“身份证号”")
    code: str = strawberry.field(description="问题代码，如 ID_NUMBER_INVALID、ALREADY_PRESENT")
    message: str


@strawberry.type(description="导入报告：读到的行数、可导入的行数、已在台账中的行数与逐行问题")
class ImportReport:
    rows: int
    accepted: int
    already_present: int
    rejected: list[ImportProblem] = strawberry.field(
        description="逐行问题（按行、列排序）；ALREADY_PRESENT 表示已在台账中、不再导入"
    )

    @classmethod
    def of(cls, report: imports.ImportReport) -> ImportReport:
        return cls(
            rows=report.rows,
            accepted=report.accepted,
            already_present=report.already_present,
            rejected=[
                ImportProblem(row=p.row, column=p.column, code=p.code, message=p.message)
                for p in report.rejected
            ],
        )


@strawberry.input(description="上传党员台账（.xlsx）并预览导入结果；此时不写入任何党员")
class PreviewMemberImportInput:
    tenant_id: strawberry.ID = strawberry.field(description="乡镇等租户的组织 id")
    file: Upload


@strawberry.type
class PreviewMemberImportPayload:
    import_id: strawberry.ID | None = strawberry.field(description="确认导入时使用；1 小时内有效")
    report: ImportReport


@strawberry.input(description="确认导入预览中的合格行")
class ConfirmMemberImportInput:
    import_id: strawberry.ID


@strawberry.type
class ConfirmMemberImportPayload:
    imported: int = strawberry.field(description="新写入的党员数")
    already_present: int = strawberry.field(description="已在台账中、未重复写入的党员数")


def import_gid(import_id: int) -> strawberry.ID:
    return strawberry.ID(to_global_id("MemberImport", import_id))


async def _read_upload(upload: Any, limit: int) -> bytes:
    """The uploaded bytes, at most `limit` + 1 (the reader then says FILE_TOO_LARGE). A
    value that is no file part (a string sent as JSON) reads as nothing: not a workbook."""
    read = getattr(upload, "read", None)
    if read is None:
        return b""
    data = await read(limit + 1)
    return bytes(data)


@strawberry.type
class ImportMutation:
    @strawberry.mutation(description="上传党员台账（.xlsx）：返回逐行检查报告，暂存合格行待确认")
    async def preview_member_import(
        self, info: Info[Context, None], input: PreviewMemberImportInput
    ) -> PreviewMemberImportPayload:
        ctx = info.context
        tenant_unit_id = from_global_id(input.tenant_id, "OrgUnit")[1]
        data = await _read_upload(input.file, ctx.settings.max_upload_bytes)
        report = await imports.preview_import(
            ctx.tx,
            ctx.principal,
            tenant_unit_id=tenant_unit_id,
            data=data,
            filename=getattr(input.file, "filename", None),
            settings=ctx.settings,
        )
        return PreviewMemberImportPayload(
            import_id=import_gid(report.import_id) if report.import_id is not None else None,
            report=ImportReport.of(report),
        )

    @strawberry.mutation(description="确认导入：写入预览中的合格行（每批只能确认一次）")
    async def confirm_member_import(
        self, info: Info[Context, None], input: ConfirmMemberImportInput
    ) -> ConfirmMemberImportPayload:
        ctx = info.context
        import_id = from_global_id(input.import_id, "MemberImport")[1]
        result = await imports.confirm_import(ctx.tx, ctx.principal, import_id=import_id)
        return ConfirmMemberImportPayload(
            imported=result.imported, already_present=result.already_present
        )
