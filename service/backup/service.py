"""`pingyi backup PATH` and `pingyi restore PATH`: pg_dump / pg_restore, done right.

A backup is one `pg_dump --format=custom` archive of the whole database (schema, data,
grants, row-level security policies, the audit chain), taken with the owner URL in
one snapshot. What it does not hold, and must be kept beside it (docs/operations.md):
the personal-data master key (`PINGYI_FIELD_KEY_FILE`: without it the ID-card and
phone numbers in the archive cannot be read, which is the point), the token signing
key, and the audit checkpoint file with its signing key (kept away from the database's
backups on purpose).

Restoring goes into an *empty* database only (a restore over live data would mix two
histories): the application role is created first if the cluster lacks it (grants in
the archive name it), the archive is loaded in one transaction (all or nothing), the
schema is brought to the current revision (an older backup into a newer release), and
the planner statistics are rebuilt.

The client tools are found per server: `PINGYI_PG_BIN_DIR` if set, else the oldest
pg_dump/pg_restore on this machine whose major version is at least the server's (the
Debian packages' /usr/lib/postgresql/N/bin, PATH, the embedded server's). The password
goes through the environment (`PGPASSWORD`), never on a command line others can read.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import psycopg
from psycopg import sql

from service.backup.errors import (
    BACKUP_FAILED,
    PG_TOOL_MISSING,
    RESTORE_FAILED,
    RESTORE_TARGET_NOT_EMPTY,
)
from service.config import Settings
from service.db import libpq_url


@dataclass(frozen=True)
class BackupResult:
    path: Path
    size_bytes: int
    revision: str | None
    server_major: int
    tool: Path


@dataclass(frozen=True)
class RestoreResult:
    revision: str | None
    tables: int


def _server_major(url: str) -> int:
    with psycopg.connect(libpq_url(url), autocommit=True) as conn:
        return int(conn.info.server_version) // 10000


_VERSION = re.compile(r"\(PostgreSQL\)\s+(\d+)")


def _tool_major(path: Path) -> int | None:
    try:
        out = subprocess.run(  # noqa: S603 (a tool path we found, fixed arguments)
            [str(path), "--version"], capture_output=True, text=True, timeout=10, check=True
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    found = _VERSION.search(out)
    return int(found.group(1)) if found else None


def _candidates(tool: str) -> list[Path]:
    found: list[Path] = []
    on_path = shutil.which(tool)
    if on_path:
        found.append(Path(on_path))
    found.extend(sorted(Path("/usr/lib/postgresql").glob(f"*/bin/{tool}")))
    # The embedded server's binaries, when pgserver is installed (else the others).
    with contextlib.suppress(Exception):
        import pgserver

        found.append(Path(pgserver.__file__).parent / "pginstall" / "bin" / tool)
    return [p for p in found if p.is_file()]


def find_tool(settings: Settings, tool: str, server_major: int) -> Path:
    """The client tool to use against a server of `server_major`: the configured
    directory's, else the lowest major >= the server's (pg_dump refuses newer servers;
    an archive from a much newer pg_dump may use syntax an older server lacks)."""
    if settings.pg_bin_dir is not None:
        path = settings.pg_bin_dir / tool
        if path.is_file():
            return path
        raise PG_TOOL_MISSING.error(tool=tool, major=server_major)
    usable = [
        (major, path)
        for path in _candidates(tool)
        if (major := _tool_major(path)) is not None and major >= server_major
    ]
    if not usable:
        raise PG_TOOL_MISSING.error(tool=tool, major=server_major)
    return min(usable, key=lambda item: item[0])[1]


def _conninfo_and_env(url: str) -> tuple[str, dict[str, str]]:
    """The URL as conninfo without its password, and an environment carrying it."""
    params = psycopg.conninfo.conninfo_to_dict(libpq_url(url))
    password = params.pop("password", None)
    # The URL's own parameters win over PG* variables; the others (PGSSLROOTCERT,
    # PGPASSFILE, ...) still apply, as they would for psql.
    env = dict(os.environ)
    if password is not None:
        env["PGPASSWORD"] = str(password)
    return psycopg.conninfo.make_conninfo(**{k: str(v) for k, v in params.items()}), env


def _revision(url: str) -> str | None:
    with psycopg.connect(libpq_url(url), autocommit=True) as conn:
        try:
            row = conn.execute("SELECT version_num FROM alembic_version").fetchone()
        except psycopg.errors.UndefinedTable:
            return None
        return None if row is None else str(row[0])


def _last_line(text: str) -> str:
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return lines[-1][:300] if lines else "未知错误"


def backup(settings: Settings, owner_url: str, path: Path) -> BackupResult:
    """Dump the database at `owner_url` into `path` (custom format), written to a
    temporary file first and renamed, so a failed dump never leaves a plausible-looking
    archive behind."""
    major = _server_major(owner_url)
    tool = find_tool(settings, "pg_dump", major)
    conninfo, env = _conninfo_and_env(owner_url)
    partial = path.with_name(path.name + ".partial")
    # Readable by its owner only (the dump holds every tenant's data): made empty with
    # mode 600 before pg_dump opens it, since opening an existing file keeps its mode.
    os.close(os.open(partial, os.O_CREAT | os.O_WRONLY | os.O_TRUNC, 0o600))
    os.chmod(partial, 0o600)
    done = subprocess.run(  # noqa: S603 (a tool path we found, our arguments)
        [
            str(tool),
            "--format=custom",
            "--no-password",
            # Row-level security is forced even for the owner: a role subject to it
            # fails here (pg_dump's row_security=off) instead of dumping a partial view.
            f"--file={partial}",
            f"--dbname={conninfo}",
        ],
        env=env,
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        partial.unlink(missing_ok=True)
        reason = _last_line(done.stderr)
        if "row-level security" in done.stderr:
            reason = "备份所用角色受行级安全策略约束，须具有 BYPASSRLS（见 docs/operations.md）"
        raise BACKUP_FAILED.error(reason=reason)
    # The archive must be readable before it counts as a backup.
    listed = subprocess.run(  # noqa: S603 (a tool path we found, our arguments)
        [str(find_tool(settings, "pg_restore", major)), "--list", str(partial)],
        capture_output=True,
        text=True,
    )
    if listed.returncode != 0:
        partial.unlink(missing_ok=True)
        raise BACKUP_FAILED.error(reason=_last_line(listed.stderr))
    os.replace(partial, path)
    return BackupResult(path, path.stat().st_size, _revision(owner_url), major, tool)


def _tables(url: str) -> int:
    with psycopg.connect(libpq_url(url), autocommit=True) as conn:
        row = conn.execute(
            "SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
            " WHERE c.relkind IN ('r', 'p') AND n.nspname NOT IN ('pg_catalog',"
            " 'information_schema') AND n.nspname NOT LIKE 'pg_toast%%'"
        ).fetchone()
        return int(row[0]) if row else 0


def _ensure_app_role(url: str, settings: Settings) -> None:
    """The application role the archive's grants name (cluster-wide, so a new cluster
    lacks it), created as the first migration would."""
    with psycopg.connect(libpq_url(url), autocommit=True) as conn:
        exists = conn.execute(
            "SELECT 1 FROM pg_roles WHERE rolname = %s", (settings.app_db_role,)
        ).fetchone()
        if not exists:
            conn.execute(
                sql.SQL(
                    "CREATE ROLE {} LOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE"
                ).format(sql.Identifier(settings.app_db_role))
            )


def restore(settings: Settings, owner_url: str, path: Path) -> RestoreResult:
    """Load the archive at `path` into the empty database at `owner_url`, then migrate."""
    from service.migrate import migrate

    if not path.is_file():
        raise RESTORE_FAILED.error(reason=f"备份文件 {path} 不存在")
    existing = _tables(owner_url)
    if existing:
        raise RESTORE_TARGET_NOT_EMPTY.error(tables=existing)
    _ensure_app_role(owner_url, settings)
    tool = find_tool(settings, "pg_restore", _server_major(owner_url))
    conninfo, env = _conninfo_and_env(owner_url)
    done = subprocess.run(  # noqa: S603 (a tool path we found, our arguments)
        [
            str(tool),
            "--no-password",
            # Objects belong to whoever restores (the owner URL), whatever the source's
            # owner was called; the grants to the application role are kept.
            "--no-owner",
            "--exit-on-error",
            "--single-transaction",
            f"--dbname={conninfo}",
            str(path),
        ],
        env=env,
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        raise RESTORE_FAILED.error(reason=_last_line(done.stderr))
    migrate(owner_url, settings)
    with psycopg.connect(libpq_url(owner_url), autocommit=True) as conn:
        conn.execute("ANALYZE")
    return RestoreResult(_revision(owner_url), _tables(owner_url))
