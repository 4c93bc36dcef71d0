"""Password policy (pure) and hashing (argon2id)."""

from __future__ import annotations

import string

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

MIN_LENGTH = 10
MAX_LENGTH = 128
MIN_CLASSES = 3

_hasher = PasswordHasher()
# A hash to verify against when the username is unknown, so both cases cost the same.
_DUMMY_HASH = _hasher.hash("pingyi-dummy-password-Aa1!")


def password_problems(password: str, *, username: str = "") -> list[str]:
    """What is wrong with `password` under the policy, in Chinese; empty when it is fine.

    Policy: 10 to 128 characters, at least three of the four classes (lower case,
    upper case, digits, other characters), and not containing the username.
    """
    problems: list[str] = []
    if len(password) < MIN_LENGTH:
        problems.append(f"长度至少 {MIN_LENGTH} 位")
    if len(password) > MAX_LENGTH:
        problems.append(f"长度不超过 {MAX_LENGTH} 位")
    classes = sum(
        [
            any(c in string.ascii_lowercase for c in password),
            any(c in string.ascii_uppercase for c in password),
            any(c.isdigit() for c in password),
            any(not c.isalnum() for c in password),
        ]
    )
    if classes < MIN_CLASSES:
        problems.append("须包含小写字母、大写字母、数字、符号中的至少三类")
    if username and username.lower() in password.lower():
        problems.append("不能包含用户名")
    return problems


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password_hash: str | None, password: str) -> bool:
    try:
        return _hasher.verify(password_hash or _DUMMY_HASH, password) and password_hash is not None
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False
