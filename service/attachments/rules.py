"""Pure rules of attachments: what a file is, told by its first bytes (magic numbers),
and a filename fit to store and to send back in a Content-Disposition header.

The declared content type of an upload is whatever the client says; a file is accepted
only when its bytes are one of the allowed kinds, and it is stored (and served) with
the content type of the kind its bytes show, never the declared one.
"""

from __future__ import annotations

import io
import unicodedata
import zipfile
from enum import StrEnum
from typing import Final


class FileKind(StrEnum):
    PDF = "pdf"
    JPEG = "jpeg"
    PNG = "png"
    DOCX = "docx"
    XLSX = "xlsx"


CONTENT_TYPES: Final[dict[FileKind, str]] = {
    FileKind.PDF: "application/pdf",
    FileKind.JPEG: "image/jpeg",
    FileKind.PNG: "image/png",
    FileKind.DOCX: "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    FileKind.XLSX: "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
}
EXTENSIONS: Final[dict[FileKind, str]] = {
    FileKind.PDF: ".pdf",
    FileKind.JPEG: ".jpg",
    FileKind.PNG: ".png",
    FileKind.DOCX: ".docx",
    FileKind.XLSX: ".xlsx",
}
KIND_LABELS: Final[dict[FileKind, str]] = {
    FileKind.PDF: "PDF",
    FileKind.JPEG: "JPEG 图片",
    FileKind.PNG: "PNG 图片",
    FileKind.DOCX: "Word 文档（.docx）",
    FileKind.XLSX: "Excel 表格（.xlsx）",
}
FILENAME_MAX: Final = 200
# An Office file is a zip; more members than this is no document we accept (and a
# bound on the work of reading its directory).
_ZIP_MAX_MEMBERS: Final = 5000


def sniff(data: bytes) -> FileKind | None:
    """The kind the bytes are, or None. PDF, JPEG and PNG by their signatures; .docx
    and .xlsx are zip packages (OOXML) told apart by their main part."""
    if data.startswith(b"%PDF-"):
        return FileKind.PDF
    if data.startswith(b"\xff\xd8\xff"):
        return FileKind.JPEG
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return FileKind.PNG
    if data.startswith(b"PK\x03\x04"):
        return _sniff_ooxml(data)
    return None


def _sniff_ooxml(data: bytes) -> FileKind | None:
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as package:
            infos = package.infolist()
            if len(infos) > _ZIP_MAX_MEMBERS:
                return None
            names = {info.filename for info in infos}
    except (zipfile.BadZipFile, ValueError, OSError):
        return None
    if "[Content_Types].xml" not in names:
        return None
    if "word/document.xml" in names:
        return FileKind.DOCX
    if "xl/workbook.xml" in names:
        return FileKind.XLSX
    return None


def clean_filename(name: str | None, kind: FileKind) -> str | None:
    """The filename to keep: the last path component, control characters and quotes
    dropped, NFC, at most FILENAME_MAX characters, ending in the kind's extension
    (a photo named `a.pdf` is stored as `a.pdf.jpg`). None when nothing is left."""
    base = (name or "").replace("\\", "/").rsplit("/", 1)[-1]
    base = unicodedata.normalize("NFC", base)
    base = "".join(
        c for c in base if unicodedata.category(c)[0] != "C" and c not in '"<>|:*?'
    ).strip(" .")
    if not base:
        return None
    extension = EXTENSIONS[kind]
    aliases = {extension, ".jpeg"} if kind is FileKind.JPEG else {extension}
    if not any(base.lower().endswith(a) for a in aliases):
        base += extension
    if len(base) > FILENAME_MAX:
        stem, dot, ext = base.rpartition(".")
        base = stem[: FILENAME_MAX - len(ext) - 1] + dot + ext
    return base
