"""`pingyi serve` on the embedded PostgreSQL stops that server when it stops.

The CLI in a subprocess, as an operator runs it: no PINGYI_DATABASE_URL, a fresh data
directory, then SIGTERM (what systemd, Docker and Kubernetes send).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import psutil

from tests.support import free_port


def _wait_until(ready: object, what: str, limit: float = 180.0) -> None:
    """Poll (start-up of initdb and migrations takes a while); no timing is asserted."""
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        if ready():  # type: ignore[operator]
            return
        time.sleep(0.2)
    raise AssertionError(f"gave up waiting for {what}")


def _healthy(port: int) -> bool:
    try:
        return httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


def test_sigterm_stops_the_embedded_postgres_it_started(tmp_path: Path) -> None:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("PINGYI_")}
    env.update(PINGYI_DATA_DIR=str(tmp_path), PINGYI_PORT=str(port))
    serve = subprocess.Popen(
        [sys.executable, "-m", "service.cli", "serve"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        _wait_until(lambda: _healthy(port) or serve.poll() is not None, "the service")
        assert serve.poll() is None, "pingyi serve exited early"
        postmaster = tmp_path / "pgdata" / "postmaster.pid"
        pg_pid = int(postmaster.read_text().splitlines()[0])
        assert psutil.pid_exists(pg_pid)
        serve.send_signal(signal.SIGTERM)
        serve.wait(timeout=120)
    finally:
        if serve.poll() is None:
            serve.kill()
            serve.wait()
    try:
        assert serve.returncode == 0
        # The server it started is gone (and its pid file with it), not left running.
        _wait_until(lambda: not _alive(pg_pid), "postgres to stop", limit=30)
        assert not postmaster.exists()
    finally:
        if _alive(pg_pid):  # the failure case: do not leave it behind
            os.kill(pg_pid, signal.SIGTERM)


def _alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False
