"""No ID-card or phone number, password, password hash or SQL value in any log line.

Services never log them, and they never reach the database in the clear, but a log
line can still be built from things that carry one: an exception's text (a database
error quotes the failing row and key in its DETAIL), a request's variables, a third
party's debug output. So every log record made in the process is redacted when it is
made, whatever logger or handler later writes it: its message is formatted, its
exception and stack text rendered, and anything shaped like an ID-card number (18
characters, or the old 15 digits) or a mainland phone number is replaced; so are
password hashes (argon2, bcrypt, pbkdf2 shapes), `password=…`-style pairs, and the
values PostgreSQL quotes in an error's DETAIL ("Key (code)=(…)", "Failing row contains
(…)"). No SQL parameters are logged to begin with (no engine echo, psycopg does not log
them); this is the second belt.
"""

from __future__ import annotations

import logging
import re
import traceback
from typing import Any

# 17 digits and a digit or X (GB 11643), or 15 digits (the old cards); mobile numbers
# 1[3-9]xxxxxxxxx; kept from matching inside longer digit runs (ids, hashes).
_ID_NUMBER = re.compile(r"(?<![0-9A-Za-z])(?:\d{17}[\dXx]|\d{15})(?![0-9A-Za-z])")
_PHONE = re.compile(r"(?<!\d)(?:\+?86[- ]?)?1[3-9]\d(?:[- ]?\d{4}){2}(?!\d)")

# $argon2id$v=19$m=65536,t=3,p=4$salt$hash, $2b$12$..., pbkdf2_sha256$...: any
# modular-crypt string, whatever its algorithm.
_HASH = re.compile(
    r"\$(?:argon2(?:id|i|d)|2[abxy]?|pbkdf2[-_][A-Za-z0-9]+|scrypt|[156])\$[^\s'\"()]+"
    r"|\bpbkdf2_[A-Za-z0-9]+\$[^\s'\"()]+"
)
# password=…, "password": "…", passwd: … (also new_password, password_hash, secret, token)
_SECRET_PAIR = re.compile(
    r"(?i)((?:password|passwd|pwd|secret|token)[A-Za-z_]*[\"']?\s*[:=]\s*[\"']?)"
    r"([^\s\"',;&)]+)"
)
# What the database quotes of the failing row: everything after DETAIL on its line.
_DETAIL = re.compile(r"(DETAIL:\s*)(.+)")

ID_PLACEHOLDER = "[身份证号已隐去]"
PHONE_PLACEHOLDER = "[电话已隐去]"
HIDDEN_PLACEHOLDER = "[已隐去]"


def redact(text: str) -> str:
    text = _DETAIL.sub(lambda m: m.group(1) + HIDDEN_PLACEHOLDER, text)
    text = _HASH.sub(HIDDEN_PLACEHOLDER, text)
    text = _SECRET_PAIR.sub(lambda m: m.group(1) + HIDDEN_PLACEHOLDER, text)
    return _PHONE.sub(PHONE_PLACEHOLDER, _ID_NUMBER.sub(ID_PLACEHOLDER, text))


_installed = False


def install_log_redaction() -> None:
    """Wrap the process's log record factory (once)."""
    global _installed
    if _installed:
        return
    previous = logging.getLogRecordFactory()

    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = previous(*args, **kwargs)
        try:
            message = record.getMessage()
        except Exception:  # a bad format string: keep what can be kept
            message = str(record.msg)
        record.msg, record.args = redact(message), None
        if record.exc_info and record.exc_info[0] is not None:
            rendered = "".join(traceback.format_exception(*record.exc_info))
            record.exc_text = redact(rendered.rstrip("\n"))
            record.exc_info = None
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
        return record

    logging.setLogRecordFactory(factory)
    _installed = True
