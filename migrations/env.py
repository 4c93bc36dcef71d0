"""Alembic environment: runs as the owner; serialised by an advisory lock."""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine, text
from sqlalchemy.pool import NullPool

from service.db import sqlalchemy_url

MIGRATION_LOCK_KEY = 7300


def run_migrations_online() -> None:
    url = context.config.attributes.get("owner_url") or context.config.get_main_option(
        "sqlalchemy.url"
    )
    engine = create_engine(sqlalchemy_url(url), poolclass=NullPool)
    with engine.connect() as connection:
        # Two processes migrating at once (two replicas starting) take turns.
        connection.execute(text(f"SELECT pg_advisory_lock({MIGRATION_LOCK_KEY})"))
        connection.commit()
        try:
            context.configure(connection=connection, target_metadata=None)
            with context.begin_transaction():
                context.run_migrations()
        finally:
            connection.execute(text(f"SELECT pg_advisory_unlock({MIGRATION_LOCK_KEY})"))
            connection.commit()
    engine.dispose()


run_migrations_online()
