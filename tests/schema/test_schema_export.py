"""schema.graphql is the contract web and mini-program clients build against."""

from __future__ import annotations

from service.schema.root import SCHEMA_FILE, export_sdl


def test_exported_schema_is_current() -> None:
    assert SCHEMA_FILE.exists(), "run `pingyi export-schema`"
    assert SCHEMA_FILE.read_text(encoding="utf-8") == export_sdl(), (
        "schema.graphql is stale: run `pingyi export-schema` and commit it"
    )
