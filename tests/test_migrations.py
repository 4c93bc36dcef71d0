"""`pingyi migrate` is idempotent and keeps the data of an existing database."""

from __future__ import annotations

import psycopg

from service.config import Settings
from service.migrate import head_revision, migrate
from tests.conftest import TestDatabase
from tests.support import World


def test_migrate_again_is_a_no_op_that_keeps_rows(
    world: World, database: TestDatabase, settings: Settings, owner_conn: psycopg.Connection
) -> None:
    before = owner_conn.execute("SELECT count(*) FROM org_units").fetchone()
    migrate(database.owner_url, settings)
    migrate(database.owner_url, settings)
    after = owner_conn.execute("SELECT count(*) FROM org_units").fetchone()
    assert before == after and before is not None and before[0] > 0
    version = owner_conn.execute("SELECT version_num FROM alembic_version").fetchone()
    assert version == (head_revision(),)
