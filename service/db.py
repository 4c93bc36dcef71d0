"""Engines, sessions and the per-transaction tenant scope (lock 2 of tenant isolation).

Two connections matter:
- the *owner* URL runs migrations and owns the tables;
- the *application* URL connects as a role that is neither superuser nor owner, so the
  forced row-level security policies apply to every query the service makes.

With no `PINGYI_DATABASE_URL` an embedded PostgreSQL (pgserver) is started in the data
directory; it survives restarts.
"""

from __future__ import annotations

import asyncio
import logging
import warnings
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, TypeVar

import psycopg
from psycopg import sql
from sqlalchemy import MetaData, text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.orm import DeclarativeBase

from service.config import Settings

log = logging.getLogger(__name__)

EMBEDDED_DB_NAME = "pingyi"

T = TypeVar("T")


class Base(DeclarativeBase):
    metadata = MetaData(
        naming_convention={
            "ix": "ix_%(table_name)s_%(column_0_N_name)s",
            "uq": "uq_%(table_name)s_%(column_0_N_name)s",
            "ck": "ck_%(table_name)s_%(constraint_name)s",
            "fk": "fk_%(table_name)s_%(column_0_N_name)s",
            "pk": "pk_%(table_name)s",
        }
    )


def sqlalchemy_url(url: str | URL) -> URL:
    """Any postgres URL -> the SQLAlchemy psycopg 3 dialect URL."""
    parsed = make_url(str(url)) if isinstance(url, str) else url
    return parsed.set(drivername="postgresql+psycopg")


def libpq_url(url: str | URL) -> str:
    """Any postgres URL -> a plain libpq conninfo URL that psycopg.connect accepts."""
    parsed = make_url(str(url)) if isinstance(url, str) else url
    return parsed.set(drivername="postgresql").render_as_string(hide_password=False)


def start_embedded(data_dir: Path) -> str:
    """Start (or reuse) the embedded PostgreSQL; return the owner URL of the pingyi database."""
    with warnings.catch_warnings():
        # platformdirs warns when XDG_RUNTIME_DIR is unset (containers, CI): harmless.
        warnings.simplefilter("ignore")
        import pgserver  # imported lazily: only the embedded path needs it

    pgdata = data_dir / "pgdata"
    pgdata.mkdir(parents=True, exist_ok=True)
    server = pgserver.get_server(pgdata, cleanup_mode="stop")
    admin_url = server.get_uri()
    create_database_if_missing(admin_url, EMBEDDED_DB_NAME)
    return server.get_uri(EMBEDDED_DB_NAME)


def create_database_if_missing(admin_url: str, name: str) -> None:
    with psycopg.connect(libpq_url(admin_url), autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
        if not exists:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))


def app_url_for(settings: Settings, owner_url: str) -> URL:
    if settings.app_database_url:
        return sqlalchemy_url(settings.app_database_url)
    return sqlalchemy_url(owner_url).set(
        username=settings.app_db_role, password=settings.app_db_password
    )


def make_app_engine(url: URL, *, pool_size: int = 10) -> AsyncEngine:
    return create_async_engine(
        url, pool_size=pool_size, max_overflow=pool_size, pool_pre_ping=False
    )


def format_scope(tenant_ids: Iterable[int]) -> str:
    """The value of app.tenant_ids: integers only, so it is safe to inline into SET LOCAL."""
    return ",".join(str(int(t)) for t in sorted(set(tenant_ids)))


async def set_scope(
    session: AsyncSession, *, account_id: int | None, tenant_ids: Iterable[int]
) -> None:
    """Scope this transaction to the principal's tenants.

    `SET LOCAL` (not set_config) because Citus forwards it to the workers; it takes no
    bind parameters, so the values are formatted from integers only.
    """
    account = "" if account_id is None else str(int(account_id))
    await session.execute(
        text(
            f"SET LOCAL app.account_id = '{account}'; "
            f"SET LOCAL app.tenant_ids = '{format_scope(tenant_ids)}'"
        )
    )


class RequestSession(AsyncSession):
    """An AsyncSession that several resolvers of one request may share.

    GraphQL resolves sibling fields concurrently, but a connection runs one statement
    at a time: statements take turns on a lock instead of failing. Each turn is
    shielded from cancellation: when a non-null field fails, graphql-core cancels its
    siblings, and a statement cut off half-way would leave the connection broken for
    the rollback that follows. Commit and rollback wait their turn like statements.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._turn = asyncio.Lock()

    async def _take_turn(
        self, operation: Callable[..., Awaitable[T]], *args: Any, **kwargs: Any
    ) -> T:
        async def whole() -> T:
            async with self._turn:
                return await operation(*args, **kwargs)

        return await asyncio.shield(whole())

    async def execute(self, *args: Any, **kwargs: Any) -> Any:  # type: ignore[override]
        return await self._take_turn(super().execute, *args, **kwargs)

    async def scalar(self, *args: Any, **kwargs: Any) -> Any:  # type: ignore[override]
        return await self._take_turn(super().scalar, *args, **kwargs)

    async def get(self, *args: Any, **kwargs: Any) -> Any:  # type: ignore[override]
        return await self._take_turn(super().get, *args, **kwargs)

    async def flush(self, *args: Any, **kwargs: Any) -> None:
        await self._take_turn(super().flush, *args, **kwargs)

    async def refresh(self, *args: Any, **kwargs: Any) -> None:  # type: ignore[override]
        await self._take_turn(super().refresh, *args, **kwargs)

    async def commit(self) -> None:
        await self._take_turn(super().commit)

    async def rollback(self) -> None:
        await self._take_turn(super().rollback)


class Database:
    """The application's handle on PostgreSQL: an engine for the app role and sessions."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self.sessionmaker = async_sessionmaker(
            engine, class_=RequestSession, expire_on_commit=False
        )

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncSession]:
        """One transaction; committed when the block ends cleanly, rolled back otherwise."""
        async with self.sessionmaker() as session, session.begin():
            yield session

    async def dispose(self) -> None:
        await self.engine.dispose()
