"""Field encryption of personal data: SM4-GCM sealing and a keyed SM3-HMAC index.

ID-card and phone numbers (and pending imports holding them) are stored only sealed.
Each ciphertext is bound, through GCM's associated data, to the tenant, table, column
and row it belongs to, so a ciphertext copied to another row, column or tenant fails
to open instead of showing someone else's number. Exact search by ID number uses an
HMAC of the number keyed by a separate key and salted by the tenant: equal numbers in
one tenant meet, across tenants they do not.

One master key (32 random bytes, in a file like the token signing key) yields both keys
through HKDF-SM3. A ciphertext starts with a one-byte key version so that a later key
rotation can tell old ciphertexts from new.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes, hmac
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

KEY_VERSION = 1
_NONCE_BYTES = 12
_TAG_BYTES = 16
MASTER_KEY_BYTES = 32


class SealBroken(Exception):
    """A ciphertext that does not open here: wrong row, column, tenant or key, or
    altered. Carries no part of the value."""


def _derive(master: bytes, purpose: bytes, length: int) -> bytes:
    return HKDF(algorithm=hashes.SM3(), length=length, salt=None, info=purpose).derive(master)


def _context(tenant_id: int, table: str, column: str, row_id: int | str) -> bytes:
    return f"pingyi/v{KEY_VERSION}/{int(tenant_id)}/{table}/{column}/{row_id}".encode()


class FieldCipher:
    """Seals and opens values bound to where they are stored."""

    def __init__(self, master_key: bytes) -> None:
        if len(master_key) != MASTER_KEY_BYTES:
            raise ValueError("the field master key must be 32 bytes")
        self._sm4_key = _derive(master_key, b"pingyi field sm4-gcm", 16)
        self._index_key = _derive(master_key, b"pingyi field sm3-hmac index", 32)

    def seal_bytes(
        self, data: bytes, *, tenant_id: int, table: str, column: str, row_id: int | str
    ) -> bytes:
        nonce = secrets.token_bytes(_NONCE_BYTES)
        encryptor = Cipher(algorithms.SM4(self._sm4_key), modes.GCM(nonce)).encryptor()
        encryptor.authenticate_additional_data(_context(tenant_id, table, column, row_id))
        body = encryptor.update(data) + encryptor.finalize()
        return bytes([KEY_VERSION]) + nonce + body + encryptor.tag

    def open_bytes(
        self, sealed: bytes, *, tenant_id: int, table: str, column: str, row_id: int | str
    ) -> bytes:
        sealed = bytes(sealed)
        if len(sealed) < 1 + _NONCE_BYTES + _TAG_BYTES or sealed[0] != KEY_VERSION:
            raise SealBroken("密文格式或密钥版本不符")
        nonce = sealed[1 : 1 + _NONCE_BYTES]
        body, tag = sealed[1 + _NONCE_BYTES : -_TAG_BYTES], sealed[-_TAG_BYTES:]
        decryptor = Cipher(algorithms.SM4(self._sm4_key), modes.GCM(nonce, tag)).decryptor()
        decryptor.authenticate_additional_data(_context(tenant_id, table, column, row_id))
        try:
            return decryptor.update(body) + decryptor.finalize()
        except InvalidTag:
            raise SealBroken("密文与其所在位置不符或已被改动") from None

    def seal(
        self, value: str, *, tenant_id: int, table: str, column: str, row_id: int | str
    ) -> bytes:
        return self.seal_bytes(
            value.encode(), tenant_id=tenant_id, table=table, column=column, row_id=row_id
        )

    def open(
        self, sealed: bytes, *, tenant_id: int, table: str, column: str, row_id: int | str
    ) -> str:
        return self.open_bytes(
            sealed, tenant_id=tenant_id, table=table, column=column, row_id=row_id
        ).decode()

    def index(self, value: str, *, tenant_id: int) -> bytes:
        """The search key of `value` in one tenant (SM3-HMAC)."""
        mac = hmac.HMAC(self._index_key, hashes.SM3())
        mac.update(f"{int(tenant_id)}/{value}".encode())
        return mac.finalize()


def load_or_create_master_key(path: Path) -> bytes:
    """The master key in `path` (hex); generated there (mode 0600) when missing."""
    if path.exists():
        key = bytes.fromhex(path.read_text().strip())
        if len(key) != MASTER_KEY_BYTES:
            raise ValueError(f"{path}: the field master key must be {MASTER_KEY_BYTES} bytes")
        return key
    key = secrets.token_bytes(MASTER_KEY_BYTES)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(key.hex())
    return key


_cipher: FieldCipher | None = None


def install(cipher: FieldCipher) -> None:
    """Make `cipher` the process's field cipher (at start-up, from the settings' key)."""
    global _cipher
    _cipher = cipher


def field_cipher() -> FieldCipher:
    if _cipher is None:
        raise RuntimeError("no field cipher installed (service.runtime.build_state does it)")
    return _cipher
