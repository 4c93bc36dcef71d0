"""Putting the pieces together: database, migrations, keys, app state."""

from __future__ import annotations

from starlette.applications import Starlette

from service.app import AppState, create_app
from service.auth.cache import PrincipalCache
from service.auth.tokens import TokenService, load_or_create_key
from service.config import Settings
from service.crypto import FieldCipher, install, load_or_create_master_key
from service.db import Database, app_url_for, libpq_url, start_embedded
from service.migrate import migrate
from service.redaction import install_log_redaction


def owner_url(settings: Settings) -> str:
    """The owner URL: the configured one, or the embedded server's (started if needed)."""
    if settings.database_url:
        return settings.database_url
    return start_embedded(settings.data_dir)


def connection_base(settings: Settings) -> str:
    """The URL the application connection is derived from (`app_url_for`). A process
    given only the application role's URL (a Kubernetes API pod: the owner's credentials
    stay with the migration Job) needs no owner URL, and must not start an embedded
    server for want of one; otherwise the owner URL as before."""
    if settings.app_database_url and not settings.database_url:
        return settings.app_database_url
    return owner_url(settings)


def prepare_database(settings: Settings) -> str:
    url = owner_url(settings)
    migrate(url, settings)
    return url


def install_field_cipher(settings: Settings) -> None:
    """Open the personal-data master key (generated into the data directory when the
    settings name no file and none is there yet) and make it the process's cipher."""
    key_file = settings.field_key_file or settings.data_dir / "field-master-key"
    install(FieldCipher(load_or_create_master_key(key_file)))


def build_state(settings: Settings, owner: str) -> AppState:
    install_log_redaction()
    install_field_cipher(settings)
    key_file = settings.jwt_private_key_file or settings.data_dir / "jwt-signing-key.pem"
    tokens = TokenService(
        load_or_create_key(key_file),
        issuer=settings.jwt_issuer,
        audience=settings.jwt_audience,
        access_ttl=settings.access_token_ttl,
    )
    app_url = libpq_url(app_url_for(settings, owner))
    db = Database(
        app_url,
        pool_size=settings.db_pool_size,
        pool_timeout=settings.db_pool_timeout,
        statement_timeout_ms=settings.db_statement_timeout_ms,
        lock_timeout_ms=settings.db_lock_timeout_ms,
        idle_in_transaction_timeout_ms=settings.db_idle_in_transaction_timeout_ms,
        pre_ping_after=settings.db_pre_ping_after,
    )
    principals = PrincipalCache(app_url, ttl_seconds=settings.principal_cache_seconds)
    db.after_auth_change.append(principals.apply)
    return AppState(settings=settings, db=db, tokens=tokens, principals=principals)


def app_from_env() -> Starlette:
    """The ASGI app of one `pingyi serve` worker: settings and database from the
    environment (the serving command has migrated the database already)."""
    settings = Settings.from_env()
    return create_app(build_state(settings, connection_base(settings)))
