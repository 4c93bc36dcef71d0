"""What a file is, by its bytes; the filename kept. Worked examples and properties."""

from __future__ import annotations

import io
import zipfile

from hypothesis import given
from hypothesis import strategies as st

from service.attachments.rules import FILENAME_MAX, FileKind, clean_filename, sniff
from tests.support import PDF

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00\x00\x00\rIHDR" + b"\x00" * 17
JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + b"\x00" * 20


def ooxml(main_part: str) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as package:
        package.writestr("[Content_Types].xml", "<Types/>")
        package.writestr(main_part, "<x/>")
    return buffer.getvalue()


DOCX = ooxml("word/document.xml")
XLSX = ooxml("xl/workbook.xml")
SIGNATURES = (b"%PDF-", b"\xff\xd8\xff", b"\x89PNG\r\n\x1a\n", b"PK\x03\x04")


def test_each_kind_is_told_by_its_bytes() -> None:
    assert sniff(PDF) is FileKind.PDF
    assert sniff(PNG) is FileKind.PNG
    assert sniff(JPEG) is FileKind.JPEG
    assert sniff(DOCX) is FileKind.DOCX
    assert sniff(XLSX) is FileKind.XLSX


def test_other_bytes_are_no_kind() -> None:
    assert sniff(b"") is None
    assert sniff(b"<html><script>alert(1)</script>") is None
    assert sniff(b"GIF89a....") is None
    assert sniff(b"MZ\x90\x00") is None  # an .exe named .pdf
    # a zip that is no Office document, and a broken zip
    assert sniff(ooxml("payload.sh")) is None
    assert sniff(b"PK\x03\x04garbage") is None
    # the PDF signature must open the file
    assert sniff(b" " + PDF) is None


@given(st.binary(max_size=200))
def test_bytes_without_a_signature_are_refused(data: bytes) -> None:
    if not data.startswith(SIGNATURES):
        assert sniff(data) is None


def test_filenames_worked_examples() -> None:
    assert clean_filename("谈话记录.pdf", FileKind.PDF) == "谈话记录.pdf"
    assert clean_filename("C:\\Users\\a\\调查材料.PDF", FileKind.PDF) == "调查材料.PDF"
    assert clean_filename("../../etc/passwd", FileKind.PDF) == "passwd.pdf"
    assert clean_filename("会议记录.pdf", FileKind.JPEG) == "会议记录.pdf.jpg"
    assert clean_filename("photo.jpeg", FileKind.JPEG) == "photo.jpeg"
    assert clean_filename('a"b\r\n.png', FileKind.PNG) == "ab.png"
    assert clean_filename("", FileKind.PNG) is None
    assert clean_filename(None, FileKind.PNG) is None
    assert clean_filename(" ... ", FileKind.PNG) is None


@given(st.text(max_size=400), st.sampled_from(list(FileKind)))
def test_a_kept_filename_is_safe(name: str, kind: FileKind) -> None:
    kept = clean_filename(name, kind)
    if kept is None:
        return
    assert 1 <= len(kept) <= FILENAME_MAX
    assert "/" not in kept and "\\" not in kept and '"' not in kept
    assert not any(ord(c) < 32 or ord(c) == 127 for c in kept)
    assert kept.lower().endswith((".pdf", ".jpg", ".jpeg", ".png", ".docx", ".xlsx"))
