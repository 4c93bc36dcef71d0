"""The client guide's error-code table cannot go stale (docs/clients.md).

The table is generated from the declarations (`service/error_table.py`); this fails
when the guide's copy differs, when a code is declared outside an `errors.py` module
(the table would miss it), or when the service answers a code written as a bare string
that no `ErrorCode` declares. (The guide's examples run in tests/e2e/test_served_demo.py.)
"""

from __future__ import annotations

import re
from pathlib import Path

import service.app  # noqa: F401 (imports every domain, so every declaration is made)
from service.error_table import BEGIN, END, GUIDE, declarations, render, replace_table
from service.errors import ErrorCode

SERVICE = Path(__file__).resolve().parents[1] / "service"
# A code written as a string where an answer is made: `"code": "X"`, `code = "X"`,
# `DomainError("X", …)`, `… else "X"` in a line about codes.
_LITERAL = re.compile(r'"([A-Z][A-Z0-9]*(?:_[A-Z0-9]+)+)"')


def test_the_guides_table_is_current() -> None:
    text = GUIDE.read_text(encoding="utf-8")
    assert BEGIN in text and END in text
    assert replace_table(text, render()) == text, (
        "docs/clients.md's error codes are stale: run `python -m service.error_table --write`"
    )


def test_every_declared_code_is_in_the_table() -> None:
    tabled = set(declarations())
    assert set(ErrorCode.declared()) <= tabled, (
        "declared outside an errors.py module (move it there): "
        f"{sorted(set(ErrorCode.declared()) - tabled)}"
    )


def test_codes_written_as_strings_are_declared() -> None:
    declared = set(declarations())
    undeclared: dict[str, str] = {}
    for path in SERVICE.rglob("*.py"):
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if "code" not in line.lower() or "ErrorCode(" in line:
                continue
            for code in _LITERAL.findall(line):
                if code not in declared:
                    undeclared[code] = f"{path.relative_to(SERVICE.parent)}:{number}"
    assert undeclared == {}


def test_the_table_names_every_code_once() -> None:
    rows = [line for line in render().splitlines() if line.startswith("| `")]
    codes = [row.split("`")[1] for row in rows]
    assert len(codes) == len(set(codes)) == len(declarations())
    assert "PERSISTED_QUERY_NOT_FOUND" in codes and "NOT_FOUND" in codes


def test_every_code_the_guide_names_exists() -> None:
    """Codes named in the prose (outside the generated table) are real codes."""
    text = GUIDE.read_text(encoding="utf-8")
    prose = text.split(BEGIN)[0] + text.split(END)[-1]
    named = set(re.findall(r"`([A-Z][A-Z0-9]*(?:_[A-Z0-9]+)+)`", prose))
    named = {code for code in named if not code.startswith("PINGYI_")}
    assert len(named) > 20
    assert named - set(declarations()) == set()
