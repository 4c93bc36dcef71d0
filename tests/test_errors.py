"""The declared error codes: what clients switch on and what users read.

`extensions.code` is a stable contract (UPPER_SNAKE_CASE, one HTTP status per code,
whatever domain declares it) and `message` is shown to users as it is (Chinese). Every
domain's `errors.py` is found by walking the `service` package, so a new domain is
covered without being listed here.
"""

from __future__ import annotations

import importlib
import importlib.util
import pkgutil
import re
import string
from types import ModuleType

import pytest

import service
import service.errors
from service.errors import DomainError, ErrorCode

UPPER_SNAKE = re.compile(r"^[A-Z][A-Z0-9]*(?:_[A-Z0-9]+)*$")
CJK = re.compile(r"[\u4e00-\u9fff]")


def errors_modules() -> list[ModuleType]:
    """service.errors and every `service.<domain>.errors`, imported."""
    modules = [service.errors]
    for info in pkgutil.iter_modules(service.__path__):
        if not info.ispkg:
            continue
        name = f"service.{info.name}.errors"
        if importlib.util.find_spec(name) is not None:
            modules.append(importlib.import_module(name))
    return modules


def every_declaration() -> list[tuple[str, ErrorCode]]:
    """(module.CONSTANT, code) for every ErrorCode a module holds: also the second
    declarations of a shared code, which `ErrorCode.declared()` keeps only once."""
    return [
        (f"{module.__name__}.{attr}", value)
        for module in errors_modules()
        for attr, value in vars(module).items()
        if isinstance(value, ErrorCode)
    ]


def fields_of(template: str) -> list[str]:
    return [field for _, field, _, _ in string.Formatter().parse(template) if field is not None]


def test_every_domain_declares_its_codes() -> None:
    """Guards the tests below against passing on nothing."""
    names = {module.__name__ for module in errors_modules()}
    assert {"service.auth.errors", "service.authz.errors", "service.tenants.errors"} <= names
    assert {"NOT_FOUND", "UNAUTHENTICATED", "ACCOUNT_DISABLED", "ORG_UNIT_ARCHIVED"} <= set(
        ErrorCode.declared()
    )


def test_codes_are_upper_snake_case() -> None:
    errors_modules()
    declared = ErrorCode.declared()
    bad = [code for code in declared if not UPPER_SNAKE.match(code)]
    assert bad == []
    assert all(entry.code == code for code, entry in declared.items())
    assert list(declared) == sorted(declared)


def test_messages_are_chinese_and_fill_in() -> None:
    declarations = every_declaration()
    assert declarations
    for where, entry in declarations:
        assert entry.message.strip(), where
        assert CJK.search(entry.message), (where, entry.message)
        # The template formats with its own fields and stays Chinese once filled.
        fields = fields_of(entry.message)
        assert all(f.isidentifier() for f in fields), (where, fields)
        error = entry.error(**{f: "某" for f in fields})
        assert isinstance(error, DomainError)
        assert error.code == entry.code and error.http_status == entry.http_status
        assert CJK.search(error.message) and "{" not in error.message, (where, error.message)


def test_a_code_has_one_http_status_wherever_it_is_declared() -> None:
    statuses: dict[str, set[int]] = {}
    for _, entry in every_declaration():
        statuses.setdefault(entry.code, set()).add(entry.http_status)
    assert {code: s for code, s in statuses.items() if len(s) > 1} == {}
    assert all(400 <= entry.http_status <= 599 for _, entry in every_declaration())


def test_redeclaring_a_code_with_another_status_is_refused() -> None:
    errors_modules()
    before = ErrorCode.declared()
    for code, existing in before.items():
        other = 500 if existing.http_status != 500 else 400
        with pytest.raises(ValueError, match=code):
            ErrorCode(code, "另一种说法", other)
    # The same status with a message of its own is allowed (one code, several situations),
    # and neither kind of declaration changes what is registered.
    ErrorCode("NOT_FOUND", "另一种说法", before["NOT_FOUND"].http_status)
    assert ErrorCode.declared() == before


def test_malformed_codes_are_refused() -> None:
    before = ErrorCode.declared()
    for bad in (
        "not_found",
        "Not_Found",
        "NOT-FOUND",
        "NOT FOUND",
        "",
        "_LEADING",
        "DOUBLE__U",
        "TRAILING_",
        "1ABC",
        "ÄRGER",
        "ＡＢＣ",
    ):
        with pytest.raises(ValueError):
            ErrorCode(bad, "格式错误")
    assert ErrorCode.declared() == before
