"""Putting the pieces together: database, migrations, keys, app state."""

from __future__ import annotations

from service.app import AppState
from service.auth.tokens import TokenService, load_or_create_key
from service.config import Settings
from service.db import Database, app_url_for, make_app_engine, start_embedded
from service.migrate import migrate


def owner_url(settings: Settings) -> str:
    """The owner URL: the configured one, or the embedded server's (started if needed)."""
    if settings.database_url:
        return settings.database_url
    return start_embedded(settings.data_dir)


def prepare_database(settings: Settings) -> str:
    url = owner_url(settings)
    migrate(url, settings)
    return url


def build_state(settings: Settings, owner: str) -> AppState:
    key_file = settings.jwt_private_key_file or settings.data_dir / "jwt-signing-key.pem"
    tokens = TokenService(
        load_or_create_key(key_file),
        issuer=settings.jwt_issuer,
        audience=settings.jwt_audience,
        access_ttl=settings.access_token_ttl,
    )
    engine = make_app_engine(app_url_for(settings, owner), pool_size=settings.db_pool_size)
    return AppState(settings=settings, db=Database(engine), tokens=tokens)
