"""Settings from the environment (PINGYI_*), read once into one immutable object."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path


def _env_bool(name: str, default: bool) -> bool:
    raw = os.environ.get(name)
    if raw is None:
        return default
    return raw.strip().lower() in {"1", "true", "yes", "on"}


def _env_int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    return default if raw is None or raw.strip() == "" else int(raw)


def _default_data_dir() -> Path:
    return Path(os.environ.get("XDG_DATA_HOME", Path.home() / ".local" / "share")) / "pingyi"


@dataclass(frozen=True)
class Settings:
    """Every setting the service reads. The README lists them with their meaning."""

    # Owner connection: runs migrations and owns the tables. None -> embedded PostgreSQL.
    database_url: str | None = None
    # Application connection: a role that is neither superuser nor owner, so RLS applies.
    # None -> the owner URL with the user replaced by `app_db_role`.
    app_database_url: str | None = None
    app_db_role: str = "pingyi_app"
    app_db_password: str | None = None
    data_dir: Path = field(default_factory=_default_data_dir)
    host: str = "127.0.0.1"
    port: int = 8000
    # Tokens
    jwt_private_key_file: Path | None = None
    # Master key of the personal-data field encryption (SM4-GCM, SM3-HMAC); None -> a
    # key generated into data_dir on first start
    field_key_file: Path | None = None
    jwt_issuer: str = "pingyi"
    jwt_audience: str = "pingyi-api"
    access_token_ttl: int = 900
    refresh_token_ttl: int = 14 * 24 * 3600
    login_max_failures: int = 5
    login_window_seconds: int = 900
    # GraphQL hardening
    dev_mode: bool = False
    max_query_depth: int = 10
    max_aliases: int = 10
    max_tokens: int = 2000
    max_body_bytes: int = 100_000
    default_page_size: int = 20
    max_page_size: int = 100
    db_pool_size: int = 10
    # Seconds to wait for a free connection before the request fails
    db_pool_timeout: float = 10.0
    # Seconds a login session's principal (account, grants, scope) is kept per process;
    # changes reach every process at once through LISTEN/NOTIFY whatever this says.
    principal_cache_seconds: int = 60
    # uvicorn worker processes of `pingyi serve`
    workers: int = 1
    # Member ledger uploads (.xlsx): bytes and data rows at most
    max_upload_bytes: int = 20 * 2**20
    max_import_rows: int = 100_000

    @classmethod
    def from_env(cls) -> Settings:
        key_file = os.environ.get("PINGYI_JWT_PRIVATE_KEY_FILE")
        field_key_file = os.environ.get("PINGYI_FIELD_KEY_FILE")
        data_dir = os.environ.get("PINGYI_DATA_DIR")
        return cls(
            database_url=os.environ.get("PINGYI_DATABASE_URL") or None,
            app_database_url=os.environ.get("PINGYI_APP_DATABASE_URL") or None,
            app_db_role=os.environ.get("PINGYI_APP_DB_ROLE", "pingyi_app"),
            app_db_password=os.environ.get("PINGYI_APP_DB_PASSWORD") or None,
            data_dir=Path(data_dir) if data_dir else _default_data_dir(),
            host=os.environ.get("PINGYI_HOST", "127.0.0.1"),
            port=_env_int("PINGYI_PORT", 8000),
            jwt_private_key_file=Path(key_file) if key_file else None,
            field_key_file=Path(field_key_file) if field_key_file else None,
            jwt_issuer=os.environ.get("PINGYI_JWT_ISSUER", "pingyi"),
            jwt_audience=os.environ.get("PINGYI_JWT_AUDIENCE", "pingyi-api"),
            access_token_ttl=_env_int("PINGYI_ACCESS_TOKEN_TTL", 900),
            refresh_token_ttl=_env_int("PINGYI_REFRESH_TOKEN_TTL", 14 * 24 * 3600),
            login_max_failures=_env_int("PINGYI_LOGIN_MAX_FAILURES", 5),
            login_window_seconds=_env_int("PINGYI_LOGIN_WINDOW_SECONDS", 900),
            dev_mode=_env_bool("PINGYI_DEV", False),
            max_query_depth=_env_int("PINGYI_MAX_QUERY_DEPTH", 10),
            max_aliases=_env_int("PINGYI_MAX_ALIASES", 10),
            max_tokens=_env_int("PINGYI_MAX_TOKENS", 2000),
            max_body_bytes=_env_int("PINGYI_MAX_BODY_BYTES", 100_000),
            default_page_size=_env_int("PINGYI_DEFAULT_PAGE_SIZE", 20),
            max_page_size=_env_int("PINGYI_MAX_PAGE_SIZE", 100),
            db_pool_size=_env_int("PINGYI_DB_POOL_SIZE", 10),
            db_pool_timeout=float(_env_int("PINGYI_DB_POOL_TIMEOUT", 10)),
            principal_cache_seconds=_env_int("PINGYI_PRINCIPAL_CACHE_SECONDS", 60),
            workers=_env_int("PINGYI_WORKERS", 1),
            max_upload_bytes=_env_int("PINGYI_MAX_UPLOAD_BYTES", 20 * 2**20),
            max_import_rows=_env_int("PINGYI_MAX_IMPORT_ROWS", 100_000),
        )
