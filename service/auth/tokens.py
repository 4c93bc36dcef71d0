"""Signing and validating access tokens (RFC 9068 JWT profile), and refresh tokens.

Tokens are signed with joserfc (ES256). Incoming tokens are validated by Authlib's
RFC 9068 `JWTBearerTokenValidator`, which itself verifies with joserfc.
"""

from __future__ import annotations

import hashlib
import os
import secrets
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from authlib.oauth2.rfc6750.errors import InvalidTokenError
from authlib.oauth2.rfc9068 import JWTBearerTokenValidator
from joserfc import jwt
from joserfc.jwk import ECKey, KeySet

from service.auth.cache import TokenCache

CLIENT_ID = "pingyi"


def load_or_create_key(path: Path) -> ECKey:
    """The signing key in `path` (PEM); generated there (mode 0600) when missing."""
    if path.exists():
        return ECKey.import_key(path.read_bytes())
    key = ECKey.generate_key("P-256", private=True)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(key.as_pem(private=True))
    return key


@dataclass(frozen=True)
class AccessClaims:
    account_id: int
    session_id: uuid.UUID
    token_id: str
    expires_at: int


class _Validator(JWTBearerTokenValidator):
    def __init__(self, keys: KeySet, issuer: str, audience: str) -> None:
        super().__init__(issuer=issuer, resource_server=audience)
        self._keys = keys

    def get_jwks(self) -> KeySet:
        return self._keys


class TokenService:
    def __init__(self, key: ECKey, *, issuer: str, audience: str, access_ttl: int) -> None:
        self.key = key
        self.kid = key.thumbprint()
        self.issuer = issuer
        self.audience = audience
        self.access_ttl = access_ttl
        public = key.as_dict(private=False)
        public.update({"kid": self.kid, "use": "sig", "alg": "ES256"})
        self.jwks: dict[str, Any] = {"keys": [public]}
        self._validator = _Validator(KeySet.import_key_set(self.jwks), issuer, audience)
        self._verified = TokenCache()

    def issue_access_token(self, account_id: int, session_id: uuid.UUID) -> tuple[str, int]:
        now = int(time.time())
        claims = {
            "iss": self.issuer,
            "sub": str(account_id),
            "aud": self.audience,
            "client_id": CLIENT_ID,
            "iat": now,
            "exp": now + self.access_ttl,
            "jti": secrets.token_urlsafe(16),
            "sid": str(session_id),
        }
        header = {"alg": "ES256", "typ": "at+jwt", "kid": self.kid}
        return jwt.encode(header, claims, self.key), self.access_ttl

    def validate_access_token(self, token: str) -> AccessClaims | None:
        """The token's claims if it is ours, well-formed, unexpired and unaltered."""
        known = self._verified.get(token)
        if known is not None:
            return known  # type: ignore[no-any-return]
        try:
            claims = self._validator.authenticate_token(token)
            self._validator.validate_token(claims, scopes=None, request=None)
            if claims.header.get("typ", "").lower() not in {"at+jwt", "application/at+jwt"}:
                return None
            verified = AccessClaims(
                account_id=int(claims["sub"]),
                session_id=uuid.UUID(str(claims["sid"])),
                token_id=str(claims["jti"]),
                expires_at=int(claims["exp"]),
            )
        except (InvalidTokenError, KeyError, ValueError, TypeError):
            return None
        self._verified.put(token, verified)
        return verified

    def issue_enrollment_token(self, account_id: int, *, ttl: int = 600) -> str:
        """A short-lived token that can do one thing: enrol the account's second factor.
        Its `typ` is not `at+jwt`, so it is never accepted as an access token."""
        now = int(time.time())
        claims = {
            "iss": self.issuer,
            "sub": str(account_id),
            "aud": f"{self.audience}/mfa-enroll",
            "iat": now,
            "exp": now + ttl,
            "jti": secrets.token_urlsafe(16),
        }
        header = {"alg": "ES256", "typ": ENROLLMENT_TYP, "kid": self.kid}
        return jwt.encode(header, claims, self.key)

    def validate_enrollment_token(self, token: str) -> int | None:
        """The account an enrolment token is for, if it is ours, unaltered and unexpired."""
        try:
            decoded = jwt.decode(token, self.key, algorithms=["ES256"])
            claims = decoded.claims
            if decoded.header.get("typ") != ENROLLMENT_TYP:
                return None
            if claims.get("iss") != self.issuer:
                return None
            if claims.get("aud") != f"{self.audience}/mfa-enroll":
                return None
            if int(claims["exp"]) <= time.time():
                return None
            return int(claims["sub"])
        except Exception:  # any malformed or forged token is simply not one
            return None


ENROLLMENT_TYP = "mfa-enroll+jwt"


def new_refresh_token() -> str:
    return secrets.token_urlsafe(32)


def refresh_token_hash(token: str) -> str:
    """Refresh tokens are stored hashed: a database read does not yield a usable token."""
    return hashlib.sha256(token.encode()).hexdigest()
