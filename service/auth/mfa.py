"""TOTP second factor (RFC 6238, 30-second steps, 6 digits, SHA-1 as every phone app
expects) and one-time recovery codes. Pure: no I/O; the caller passes the time.

The secret is stored sealed (service/crypto.py, bound to accounts.totp_secret of its
row). A code is accepted for its step and one step either side (clock drift), and only
for a step later than the last one accepted, so an observed code cannot be replayed.
Recovery codes carry 50 random bits each; only their SHA-256 digests are stored.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime

import pyotp

ISSUER = "Pingyi 评议"
STEP_SECONDS = 30
RECOVERY_CODES = 10
_RECOVERY_ALPHABET = "abcdefghjkmnpqrstuvwxyz23456789"  # no 0/o, 1/l/i


def new_secret() -> str:
    return pyotp.random_base32()


def provisioning_uri(secret: str, username: str) -> str:
    """The otpauth:// URI a phone app scans (as a QR code) to add the account."""
    return pyotp.TOTP(secret).provisioning_uri(name=username, issuer_name=ISSUER)


def matching_step(secret: str, code: str, now: datetime, *, after_step: int) -> int | None:
    """The time step `code` is valid for at `now` (±1 step), if later than `after_step`."""
    code = code.strip().replace(" ", "")
    if not (len(code) == 6 and code.isascii() and code.isdigit()):
        return None
    totp = pyotp.TOTP(secret)
    step = int(now.timestamp()) // STEP_SECONDS
    for candidate in (step - 1, step, step + 1):
        if candidate > after_step and secrets.compare_digest(
            totp.at(candidate * STEP_SECONDS), code
        ):
            return candidate
    return None


def code_at(secret: str, now: datetime) -> str:
    """The code a phone app shows at `now` (tests and the CLI)."""
    return pyotp.TOTP(secret).at(now)


def new_recovery_codes() -> list[str]:
    return [
        "-".join("".join(secrets.choice(_RECOVERY_ALPHABET) for _ in range(5)) for _ in range(2))
        for _ in range(RECOVERY_CODES)
    ]


def recovery_code_hash(code: str) -> str:
    normal = code.strip().lower().replace(" ", "")
    return hashlib.sha256(normal.encode()).hexdigest()
