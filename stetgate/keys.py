"""Instance secrets: the key that signs PSU session cookies and encrypts TOTP secrets at rest.

All workers and servers of one bank must share it (workers are stateless), so it comes from
``STETGATE_SECRET_KEY`` or from ``DATA_DIR/secret.key`` (created 0600 on first use). Purpose
keys are derived with HKDF so one leaked purpose key does not expose the others.
"""

from __future__ import annotations

import base64
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from cryptography.fernet import Fernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF


def _derive(master: bytes, purpose: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=purpose).derive(master)


@dataclass(frozen=True)
class InstanceKeys:
    cookie_key: bytes
    totp_fernet: Fernet
    pseudonym_key: bytes

    @classmethod
    def from_master(cls, master: bytes) -> InstanceKeys:
        return cls(
            cookie_key=_derive(master, b"stetgate/psu-session-cookie"),
            totp_fernet=Fernet(base64.urlsafe_b64encode(_derive(master, b"stetgate/totp-at-rest"))),
            pseudonym_key=_derive(master, b"stetgate/pseudonyms"),
        )


def load_master_key(secret_key: str | None, data_dir: Path) -> bytes:
    if secret_key:
        if len(secret_key) < 32:
            raise ValueError("secret_key must be at least 32 characters")
        return secret_key.encode()
    path = data_dir / "secret.key"
    if path.exists():
        return path.read_bytes().strip()
    data_dir.mkdir(parents=True, exist_ok=True)
    value = secrets.token_urlsafe(48).encode()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.write(fd, value)
    finally:
        os.close(fd)
    return value
