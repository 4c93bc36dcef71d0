"""Bring a database to the current schema: `pingyi migrate`, and on every `serve`."""

from __future__ import annotations

from pathlib import Path

import psycopg
from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory
from psycopg import sql

from service.config import Settings
from service.db import libpq_url

MIGRATIONS_DIR = Path(__file__).resolve().parent.parent / "migrations"


def alembic_config(owner_url: str, app_role: str) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.attributes["owner_url"] = owner_url
    cfg.attributes["app_role"] = app_role
    return cfg


def head_revision() -> str:
    script = ScriptDirectory.from_config(alembic_config("", "pingyi_app"))
    head = script.get_current_head()
    assert head is not None
    return head


def migrate(owner_url: str, settings: Settings) -> None:
    """Upgrade to head (idempotent) and make sure the application role can log in."""
    command.upgrade(alembic_config(owner_url, settings.app_db_role), "head")
    if settings.app_db_password:
        with psycopg.connect(libpq_url(owner_url), autocommit=True) as conn:
            conn.execute(
                sql.SQL("ALTER ROLE {} PASSWORD {}").format(
                    sql.Identifier(settings.app_db_role), sql.Literal(settings.app_db_password)
                )
            )
