"""Test harness: a real PostgreSQL, migrated once per run; the app over ASGI HTTP.

With PINGYI_TEST_DATABASE_URL (an owner/superuser URL of a running server) each run
creates a fresh database there and drops it at the end; without it an embedded
PostgreSQL (pgserver) is started in a temporary directory.

Tests do not share rows: each builds its own county world with unique codes, so they
can commit through the real app and still not see each other.
"""

from __future__ import annotations

import os
import secrets
import shutil
import tempfile
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
from psycopg import sql
from sqlalchemy.engine import make_url

from service.app import AppState, create_app
from service.config import Settings
from service.db import app_url_for, create_database_if_missing, libpq_url, start_embedded
from service.migrate import migrate
from service.runtime import build_state
from tests.support import PASSWORD, World, build_world

__all__ = ["PASSWORD", "World"]


@dataclass(frozen=True)
class TestDatabase:
    __test__ = False  # not a test class, despite the name

    owner_url: str
    app_url: str


@pytest.fixture(scope="session")
def tmp_data_dir() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="pingyi-test-"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="session")
def settings(tmp_data_dir: Path) -> Settings:
    # The world's administrators log in without a second factor, and every test logs in
    # from one address: tests/auth turn MFA and the token endpoint's rate limit back on.
    return replace(
        Settings(),
        data_dir=tmp_data_dir,
        jwt_private_key_file=tmp_data_dir / "key.pem",
        mfa_required=False,
        login_rate_per_minute=0,
    )


@pytest.fixture(scope="session")
def database(settings: Settings, tmp_data_dir: Path) -> Iterator[TestDatabase]:
    server_url = os.environ.get("PINGYI_TEST_DATABASE_URL")
    name = f"pingyi_test_{os.getpid()}_{secrets.token_hex(3)}"
    if server_url:
        create_database_if_missing(server_url, name)
        owner = make_url(server_url).set(database=name).render_as_string(hide_password=False)
    else:
        owner = start_embedded(tmp_data_dir / "embedded")
    migrate(owner, settings)
    yield TestDatabase(owner_url=owner, app_url=libpq_url(app_url_for(settings, owner)))
    if server_url:
        with psycopg.connect(libpq_url(server_url), autocommit=True) as conn:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )


@pytest.fixture(scope="session")
async def state(settings: Settings, database: TestDatabase) -> AsyncIterator[AppState]:
    app_state = build_state(settings, database.owner_url)
    await app_state.principals.wait_connected()
    yield app_state
    await app_state.principals.stop()
    await app_state.db.dispose()


@pytest.fixture(scope="session")
def app(state: AppState) -> Any:
    return create_app(state)


@pytest.fixture
async def client(app: Any) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://pingyi.test") as c:
        yield c


@pytest.fixture
async def world(state: AppState) -> World:
    """A fresh county with two townships (A, B), branches and one account per role."""
    return await build_world(state)


@pytest.fixture
def owner_conn(database: TestDatabase) -> Iterator[psycopg.Connection[Any]]:
    with psycopg.connect(libpq_url(database.owner_url), autocommit=True) as conn:
        yield conn


@pytest.fixture
def app_conn(database: TestDatabase) -> Iterator[psycopg.Connection[Any]]:
    """A raw connection as the application role: only RLS stands between it and rows."""
    with psycopg.connect(database.app_url) as conn:
        yield conn
