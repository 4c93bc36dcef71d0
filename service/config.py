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


def _env_float(name: str, default: float) -> float:
    raw = os.environ.get(name)
    return default if raw is None or raw.strip() == "" else float(raw)


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
    # Sessions and second factor (service/auth): a session with no recorded request for
    # this long is dead, refresh included (activity is recorded about once a minute)
    session_idle_seconds: int = 1800
    # TOTP required for the three administrators and county organizers (off: tests)
    mfa_required: bool = True
    # Days a password lives before it must be changed; 0: no expiry
    password_max_age_days: int = 0
    # Token requests (/auth/token) per minute per client address; 0: no limit
    login_rate_per_minute: int = 30
    # `pingyi serve --demo`: the demo password and the demo administrators' missing
    # second factor are accepted; outside it they must be changed / enrolled first
    demo_mode: bool = False
    # GraphQL hardening
    dev_mode: bool = False
    max_query_depth: int = 10
    max_aliases: int = 10
    max_tokens: int = 2000
    max_body_bytes: int = 100_000
    default_page_size: int = 20
    max_page_size: int = 100
    db_pool_size: int = 10
    # Seconds to wait for a free connection before the request fails (503 UNAVAILABLE):
    # short, so an overloaded service answers fast instead of queueing requests
    db_pool_timeout: float = 3.0
    # A pooled connection idle longer than this (seconds) is pinged before use
    db_pre_ping_after: float = 1.0
    # Milliseconds, per application connection (0 = no limit): a statement running
    # longer is cancelled; a lock waited on longer fails; a transaction left idle that
    # long is ended by the server (its connection closed)
    db_statement_timeout_ms: int = 15_000
    db_lock_timeout_ms: int = 5_000
    db_idle_in_transaction_timeout_ms: int = 30_000
    # Bearer token that /metrics requires; None -> /metrics answers 404
    metrics_token: str | None = None
    # Logs (service/observability): `json` lines or plain `text`; one line per request
    log_format: str = "json"
    access_log: bool = True
    # OpenTelemetry request spans (off by default; needs the `tracing` extra) and where
    # they go: `otlp` (OTEL_EXPORTER_OTLP_* variables) or `console`
    tracing: bool = False
    tracing_exporter: str = "otlp"
    # Seconds a login session's principal (account, grants, scope) is kept per process;
    # changes reach every process at once through LISTEN/NOTIFY whatever this says.
    principal_cache_seconds: int = 60
    # uvicorn worker processes of `pingyi serve`
    workers: int = 1
    # Drain on SIGTERM (service/shutdown.py): /readyz answers 503 at once while requests
    # are still served for this many seconds (the load balancer's time to notice); then
    # uvicorn's graceful shutdown (`graceful_shutdown_seconds`). 0: no drain
    shutdown_drain_seconds: float = 0.0
    # Directory of pg_dump / pg_restore for `pingyi backup` / `restore`; None -> the
    # embedded PostgreSQL's (pgserver) when installed, else PATH
    pg_bin_dir: Path | None = None
    # Seconds `pingyi serve` lets open requests and connections finish after SIGTERM
    # before closing them (uvicorn's graceful shutdown). The Helm chart sizes the pod's
    # grace period from it: preStop sleep + this + a margin (docs/deploy.md).
    graceful_shutdown_seconds: int = 20
    # `pingyi serve` migrates before serving; off where the process holds only the
    # application role's credentials (a Kubernetes pod: a hook Job migrates as owner)
    migrate_on_start: bool = True
    # Member ledger uploads (.xlsx): bytes and data rows at most
    max_upload_bytes: int = 20 * 2**20
    max_import_rows: int = 100_000
    # Case attachments (service/attachments): bytes per file, and the allowed kinds
    # (of pdf, jpeg, png, docx, xlsx; checked by magic bytes, not the declared type)
    attachment_max_bytes: int = 10 * 2**20
    attachment_types: tuple[str, ...] = ("pdf", "jpeg", "png", "docx", "xlsx")
    # WeChat mini-program login (service/auth/wechat.py): the mini-program's app id and
    # secret (unset: /auth/wechat answers WECHAT_NOT_CONFIGURED), code2session's base URL
    # and how long to wait for it
    wechat_app_id: str | None = None
    wechat_app_secret: str | None = None
    wechat_api_base: str = "https://api.weixin.qq.com"
    wechat_timeout_seconds: float = 5.0
    # Persisted queries (service/schema/persisted.py): the automatic (APQ) store's
    # budget in bytes of document text per process (0: APQ off), and a trusted-documents
    # manifest ({sha256: document}, made when the clients are built): when set, only
    # its documents run and nothing is registered
    apq_cache_bytes: int = 8 * 2**20
    # A Redis every process shares for APQ (`redis` extra), e.g. redis://127.0.0.1:6379/0
    apq_redis_url: str | None = None
    trusted_documents_file: Path | None = None
    # Audit checkpoints (signed chain heads, kept outside the database): the Ed25519
    # key file and the JSON-lines file; None -> in data_dir. Interval 0 -> on demand only.
    audit_signing_key_file: Path | None = None
    audit_checkpoint_file: Path | None = None
    audit_checkpoint_interval_seconds: int = 3600

    @classmethod
    def from_env(cls) -> Settings:
        key_file = os.environ.get("PINGYI_JWT_PRIVATE_KEY_FILE")
        field_key_file = os.environ.get("PINGYI_FIELD_KEY_FILE")
        data_dir = os.environ.get("PINGYI_DATA_DIR")
        audit_key_file = os.environ.get("PINGYI_AUDIT_SIGNING_KEY_FILE")
        checkpoint_file = os.environ.get("PINGYI_AUDIT_CHECKPOINT_FILE")
        pg_bin_dir = os.environ.get("PINGYI_PG_BIN_DIR")
        trusted = os.environ.get("PINGYI_TRUSTED_DOCUMENTS")
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
            session_idle_seconds=_env_int("PINGYI_SESSION_IDLE_SECONDS", 1800),
            mfa_required=_env_bool("PINGYI_MFA_REQUIRED", True),
            password_max_age_days=_env_int("PINGYI_PASSWORD_MAX_AGE_DAYS", 0),
            login_rate_per_minute=_env_int("PINGYI_LOGIN_RATE_PER_MINUTE", 30),
            demo_mode=_env_bool("PINGYI_DEMO", False),
            dev_mode=_env_bool("PINGYI_DEV", False),
            max_query_depth=_env_int("PINGYI_MAX_QUERY_DEPTH", 10),
            max_aliases=_env_int("PINGYI_MAX_ALIASES", 10),
            max_tokens=_env_int("PINGYI_MAX_TOKENS", 2000),
            max_body_bytes=_env_int("PINGYI_MAX_BODY_BYTES", 100_000),
            default_page_size=_env_int("PINGYI_DEFAULT_PAGE_SIZE", 20),
            max_page_size=_env_int("PINGYI_MAX_PAGE_SIZE", 100),
            apq_cache_bytes=_env_int("PINGYI_APQ_CACHE_BYTES", 8 * 2**20),
            apq_redis_url=os.environ.get("PINGYI_APQ_REDIS_URL") or None,
            trusted_documents_file=Path(trusted) if trusted else None,
            audit_signing_key_file=Path(audit_key_file) if audit_key_file else None,
            audit_checkpoint_file=Path(checkpoint_file) if checkpoint_file else None,
            audit_checkpoint_interval_seconds=_env_int(
                "PINGYI_AUDIT_CHECKPOINT_INTERVAL_SECONDS", 3600
            ),
            db_pool_size=_env_int("PINGYI_DB_POOL_SIZE", 10),
            db_pool_timeout=_env_float("PINGYI_DB_POOL_TIMEOUT", 3.0),
            db_pre_ping_after=_env_float("PINGYI_DB_PRE_PING_AFTER", 1.0),
            db_statement_timeout_ms=_env_int("PINGYI_DB_STATEMENT_TIMEOUT_MS", 15_000),
            db_lock_timeout_ms=_env_int("PINGYI_DB_LOCK_TIMEOUT_MS", 5_000),
            db_idle_in_transaction_timeout_ms=_env_int(
                "PINGYI_DB_IDLE_IN_TRANSACTION_TIMEOUT_MS", 30_000
            ),
            metrics_token=os.environ.get("PINGYI_METRICS_TOKEN") or None,
            log_format=os.environ.get("PINGYI_LOG_FORMAT", "json"),
            access_log=_env_bool("PINGYI_ACCESS_LOG", True),
            tracing=_env_bool("PINGYI_TRACING", False),
            tracing_exporter=os.environ.get("PINGYI_TRACING_EXPORTER", "otlp"),
            principal_cache_seconds=_env_int("PINGYI_PRINCIPAL_CACHE_SECONDS", 60),
            workers=_env_int("PINGYI_WORKERS", 1),
            shutdown_drain_seconds=_env_float("PINGYI_SHUTDOWN_DRAIN_SECONDS", 0.0),
            pg_bin_dir=Path(pg_bin_dir) if pg_bin_dir else None,
            graceful_shutdown_seconds=_env_int("PINGYI_GRACEFUL_SHUTDOWN_SECONDS", 20),
            migrate_on_start=_env_bool("PINGYI_MIGRATE_ON_START", True),
            max_upload_bytes=_env_int("PINGYI_MAX_UPLOAD_BYTES", 20 * 2**20),
            max_import_rows=_env_int("PINGYI_MAX_IMPORT_ROWS", 100_000),
            wechat_app_id=os.environ.get("PINGYI_WECHAT_APP_ID") or None,
            wechat_app_secret=os.environ.get("PINGYI_WECHAT_APP_SECRET") or None,
            wechat_api_base=os.environ.get("PINGYI_WECHAT_API_BASE", "https://api.weixin.qq.com"),
            wechat_timeout_seconds=_env_float("PINGYI_WECHAT_TIMEOUT_SECONDS", 5.0),
            attachment_max_bytes=_env_int("PINGYI_ATTACHMENT_MAX_BYTES", 10 * 2**20),
            attachment_types=tuple(
                t.strip()
                for t in os.environ.get("PINGYI_ATTACHMENT_TYPES", "pdf,jpeg,png,docx,xlsx").split(
                    ","
                )
                if t.strip()
            ),
        )
