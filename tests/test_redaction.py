"""No ID-card or phone number in a log line, also when the database raises."""

from __future__ import annotations

import logging

import pytest

from service.app import AppState
from service.redaction import ID_PLACEHOLDER, PHONE_PLACEHOLDER, redact
from tests import factories


def test_numbers_are_replaced_and_other_digits_kept() -> None:
    number = factories.id_number()
    text = redact(f"id {number} x {number[:17]}x phone 13812345678 +86 138-1234-5678 seq 123456")
    assert number not in text and "13812345678" not in text and "1234-5678" not in text
    assert text.count(ID_PLACEHOLDER) == 2 and text.count(PHONE_PLACEHOLDER) == 2
    assert "seq 123456" in text
    # Longer digit runs (hashes, big ids) are not numbers of a person.
    assert redact("a" + "1" * 40) == "a" + "1" * 40


async def test_a_failing_statement_with_a_number_logs_no_number(
    state: AppState, caplog: pytest.LogCaptureFixture
) -> None:
    number = factories.id_number()
    log = logging.getLogger("pingyi.test")
    with caplog.at_level(logging.DEBUG):
        try:
            async with state.db.transaction(write=True) as tx:
                await tx.execute(
                    "INSERT INTO tenants (id, kind, code, path) VALUES (1, 'x', %(n)s, %(p)s)",
                    {"n": number, "p": "13812345678"},
                )
        except Exception as exc:
            # The database quotes the failing row: the number is in the exception.
            assert number in str(exc)
            log.error("statement failed: %s (phone %s)", exc, "13812345678", exc_info=exc)
    assert caplog.records
    for record in caplog.records:
        rendered = caplog.handler.format(record)
        assert number not in rendered, rendered
        assert "13812345678" not in rendered, rendered
