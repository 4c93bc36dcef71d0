"""`pingyi serve` as the chart runs it in an API pod: the application role's URL only,
no migration at start (the hook Job did it as the owner), a bounded graceful shutdown.

A subprocess with exactly the pod's PINGYI_* environment (deployment.yaml): it must be
ready at the migration head, connect as nothing but the application role, start no
embedded PostgreSQL for want of an owner URL, and exit cleanly on SIGTERM.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import psycopg

from service.migrate import head_revision
from tests.conftest import TestDatabase
from tests.support import free_port


def _ready(port: int) -> httpx.Response | None:
    try:
        return httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=1)
    except httpx.HTTPError:
        return None


def test_serves_with_the_application_role_only(
    database: TestDatabase, owner_conn: psycopg.Connection[Any], tmp_path: Path
) -> None:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("PINGYI_")}
    env.update(
        PINGYI_APP_DATABASE_URL=database.app_url,
        PINGYI_MIGRATE_ON_START="0",
        PINGYI_HOST="127.0.0.1",
        PINGYI_PORT=str(port),
        PINGYI_WORKERS="1",
        PINGYI_GRACEFUL_SHUTDOWN_SECONDS="3",
        PINGYI_AUDIT_CHECKPOINT_INTERVAL_SECONDS="0",
        PINGYI_DATA_DIR=str(tmp_path),
        PYTHONDONTWRITEBYTECODE="1",
        # libpq's application_name: tells this process's connections from the suite's
        PGAPPNAME="pingyi-pod-under-test",
    )
    log = tmp_path / "serve.log"
    with log.open("wb") as out:
        serve = subprocess.Popen(
            [sys.executable, "-m", "service.cli", "serve"],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        # As the kubelet does: probe until ready (a first answer may be 503 while the
        # pool's first connection is still being made on a busy machine).
        deadline = time.monotonic() + 60
        answer = None
        while time.monotonic() < deadline and serve.poll() is None:
            answer = _ready(port)
            if answer is not None and answer.status_code == 200:
                break
            time.sleep(0.2)
        assert serve.poll() is None, log.read_text()
        assert answer is not None, "never answered"
        assert answer.status_code == 200, answer.text
        assert answer.json() == {"status": "ready", "revision": head_revision()}
        # No owner URL and no embedded server started in its place.
        assert not (tmp_path / "pgdata").exists()
        roles = {
            row[0]
            for row in owner_conn.execute(
                "SELECT usename FROM pg_stat_activity"
                " WHERE datname = current_database()"
                " AND application_name = 'pingyi-pod-under-test'"
            )
        }
        assert roles == {"pingyi_app"}
        serve.send_signal(signal.SIGTERM)
        # Idle: it stops at once, well inside the chart's grace period.
        assert serve.wait(timeout=15) == 0
    finally:
        if serve.poll() is None:
            serve.kill()
            serve.wait()
