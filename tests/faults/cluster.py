"""A throwaway PostgreSQL cluster for the fault tests, and `pingyi serve` against it.

The suite's own database may be the machine's shared server, which a test must never
restart; these tests initdb a cluster of their own into a temporary directory, on a
free port of 127.0.0.1, with the Debian packages' binaries or the embedded server's
(pgserver), and restart or stop it as they please. PostgreSQL refuses to run as root:
as root the cluster belongs to, and its commands run as, the `postgres` user (or
pgserver's `pgserver` user).
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from tests.support import free_port

REPO = Path(__file__).resolve().parents[2]


def _bin_dir() -> Path:
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/pg_ctl"), reverse=True)
    if found:
        return found[0].parent
    import pgserver

    return Path(pgserver.__file__).parent / "pginstall" / "bin"


def _system_user() -> str | None:
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "pgserver"):
        with contextlib.suppress(KeyError):
            pwd.getpwnam(name)
            return name
    subprocess.run(["useradd", "-s", "/bin/sh", "pgserver"], check=True)  # noqa: S607
    return "pgserver"


@dataclass
class Cluster:
    """One initdb'ed cluster: `url(db)` as the `postgres` superuser over TCP."""

    root: Path
    port: int
    bin_dir: Path
    user: str | None
    log: Path = field(init=False)

    def __post_init__(self) -> None:
        self.log = self.root / "server.log"

    @property
    def data(self) -> Path:
        return self.root / "data"

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def _run(self, *args: str) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(  # noqa: S603 (our own binaries and arguments)
            [str(self.bin_dir / args[0]), *args[1:]],
            user=self.user,
            capture_output=True,
            text=True,
            check=False,
            timeout=60,
        )
        if done.returncode != 0:  # say why: its output and the server's log
            log = self.log.read_text(errors="replace")[-3000:] if self.log.exists() else ""
            raise AssertionError(
                f"{args[0]} failed ({done.returncode}):\n{done.stdout}{done.stderr}\n{log}"
            )
        return done

    def init(self) -> None:
        self.data.mkdir(parents=True)
        if self.user is not None:
            entry = pwd.getpwnam(self.user)
            for path in (self.root, self.data):
                os.chown(path, entry.pw_uid, entry.pw_gid)
        self._run(
            "initdb", "-D", str(self.data), "-U", "postgres", "--auth=trust", "-E", "UTF8",
            "--no-sync",
        )  # fmt: skip
        options = [
            f"port = {self.port}",
            "listen_addresses = '127.0.0.1'",
            f"unix_socket_directories = '{self.root}'",
            "fsync = off",  # a throwaway cluster: crash safety of the disk is not tested
            "max_connections = 60",
            "shared_buffers = 32MB",
        ]
        with (self.data / "postgresql.conf").open("a") as conf:
            conf.write("\n".join(options) + "\n")

    def pg_ctl(self, *args: str) -> None:
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.log), "-w", "-t", "60", *args)

    def start(self) -> None:
        self.pg_ctl("start")

    def stop(self, mode: str = "fast") -> None:
        self.pg_ctl("stop", "-m", mode)

    def restart(self, mode: str) -> None:
        """`pg_ctl restart -m fast|immediate`: sessions ended at once, server back up."""
        self.pg_ctl("restart", "-m", mode)


@contextlib.contextmanager
def throwaway_cluster() -> Iterator[Cluster]:
    root = Path(tempfile.mkdtemp(prefix="pingyi-faults-"))
    cluster = Cluster(root, free_port(), _bin_dir(), _system_user())
    try:
        cluster.init()
        cluster.start()
        yield cluster
    finally:
        with contextlib.suppress(Exception):
            cluster.stop("immediate")
        shutil.rmtree(root, ignore_errors=True)


@dataclass
class Served:
    """One `pingyi serve` process (the CLI, as an operator runs it)."""

    process: subprocess.Popen[bytes]
    port: int
    log: Path

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def output(self) -> str:
        return self.log.read_text(errors="replace")[-6000:]

    def wait_ready(self, limit: float = 60.0) -> None:
        deadline = time.monotonic() + limit
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"pingyi serve exited:\n{self.output()}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{self.base}/readyz", timeout=2).status_code == 200:
                    return
            time.sleep(0.1)
        raise AssertionError(f"pingyi serve not ready in {limit} s:\n{self.output()}")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def serve(owner_url: str, data_dir: Path, log: Path, **env: str) -> Served:
    """Start `pingyi serve` against `owner_url` with the test world's keys in `data_dir`
    (migrations already ran, so the start is quick)."""
    port = free_port()
    environment = {k: v for k, v in os.environ.items() if not k.startswith("PINGYI_")}
    environment.update(
        PINGYI_DATABASE_URL=owner_url,
        PINGYI_DATA_DIR=str(data_dir),
        PINGYI_JWT_PRIVATE_KEY_FILE=str(data_dir / "key.pem"),
        PINGYI_PORT=str(port),
        PINGYI_MFA_REQUIRED="0",
        PINGYI_LOGIN_RATE_PER_MINUTE="0",
        PINGYI_AUDIT_CHECKPOINT_INTERVAL_SECONDS="0",
        # The fixture migrated the database already: start faster
        PINGYI_MIGRATE_ON_START="0",
        # Fail fast while the database is down; ping connections idle for 0.2 s
        PINGYI_DB_POOL_TIMEOUT="1",
        PINGYI_DB_PRE_PING_AFTER="0.2",
    )
    environment.update(env)
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "service.cli", "serve"],
            env=environment,
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=REPO,
        )
    return Served(process, port, log)
