"""Fixtures of the fault suite: one throwaway cluster per run, migrated once, with
a test world in it, and `pingyi serve` processes against it (tests/faults/cluster.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

from service.config import Settings
from service.db import create_database_if_missing
from service.migrate import migrate
from service.runtime import build_state
from tests.faults.cluster import Cluster, Served, serve, throwaway_cluster
from tests.support import World, build_world


@pytest.fixture(scope="session")
def cluster() -> Iterator[Cluster]:
    with throwaway_cluster() as made:
        yield made


@pytest.fixture(scope="session")
def fault_db(cluster: Cluster, settings: Settings) -> str:
    """The owner URL of a migrated database in the throwaway cluster."""
    create_database_if_missing(cluster.url(), "pingyi")
    owner = cluster.url("pingyi")
    migrate(owner, settings)
    return owner


@pytest.fixture(scope="session")
async def fault_world(fault_db: str, settings: Settings) -> AsyncIterator[World]:
    state = build_state(settings, fault_db)
    try:
        yield await build_world(state)
    finally:
        await state.principals.stop()
        await state.db.dispose()


@pytest.fixture(scope="session")
def served(
    fault_db: str, settings: Settings, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Any]:
    """A factory of `pingyi serve` processes on the fault database; all stopped at the
    end of the run (a test may share one across faults: it must survive them all)."""
    started: list[Served] = []
    logs = tmp_path_factory.mktemp("serve-logs")

    def start(name: str = "serve", *, wait: bool = True, **env: str) -> Served:
        process = serve(fault_db, settings.data_dir, logs / f"{name}.log", **env)
        started.append(process)
        if wait:
            process.wait_ready()
        return process

    yield start
    for process in started:
        process.stop()
