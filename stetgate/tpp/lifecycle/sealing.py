"""Tokens encrypted at rest: AES-256-GCM (NIST SP 800-38D) with rotating keys.

A sealed value is ``sg1.<key id>.<base64url(nonce ‖ ciphertext ‖ tag)>``. The associated data
is the format, the key id and the **store key**, so a ciphertext copied under another PSU's key
(or relabelled with another key id) fails authentication instead of handing PSU A's tokens to
whoever reads PSU B. Nonces are 96 random bits; SP 800-38D §8.3 allows 2³² messages per key
this way, far more than an aggregator writes before rotating.

Keys rotate by key id: the keyring's first key seals, every listed key opens
(`EncryptedTokens.reseal_all` rewrites old values). The keyring comes from
``STETGATE_TPP_TOKEN_KEYS`` or a file readable by its owner only, one ``<key id>=<base64url of
32 bytes>`` per line, newest first. A key is never logged nor part of an error message.
"""

from __future__ import annotations

import base64
import os
import re
import secrets
import stat
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from stetgate.tpp.lifecycle.errors import UndecryptableToken

FORMAT = "sg1"
KEY_BYTES = 32
NONCE_BYTES = 12
KEYS_ENV = "STETGATE_TPP_TOKEN_KEYS"
_KEY_ID = re.compile(r"[A-Za-z0-9_-]{1,32}")


def _b64decode(text: str) -> bytes:
    """Strict base64url: a character outside the alphabet is an error, not skipped."""
    padded = text + "=" * (-len(text) % 4)
    return base64.b64decode(padded, altchars=b"-_", validate=True)


def _b64encode(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def new_key_line(key_id: str) -> str:
    """A keyring line with a fresh 256-bit key from the OS CSPRNG."""
    if not _KEY_ID.fullmatch(key_id):
        raise ValueError("a key id is 1-32 letters, digits, '_' or '-'")
    return f"{key_id}={_b64encode(secrets.token_bytes(KEY_BYTES))}"


@dataclass(frozen=True)
class Keyring:
    """Key ids to AES-256 keys; ``current`` seals, all of them open."""

    current: str
    keys: Mapping[str, bytes] = field(repr=False)

    def __post_init__(self) -> None:
        if self.current not in self.keys:
            raise ValueError("the current key id is not in the keyring")
        for key_id, key in self.keys.items():
            if not _KEY_ID.fullmatch(key_id):
                raise ValueError(f"invalid key id {key_id!r}")
            if len(key) != KEY_BYTES:
                raise ValueError(f"key {key_id!r} is not {KEY_BYTES} bytes (AES-256)")

    @classmethod
    def parse(cls, text: str) -> Keyring:
        """Lines ``<key id>=<base64url key>`` (or separated by ``,``), newest first; ``#``
        starts a comment."""
        keys: dict[str, bytes] = {}
        order: list[str] = []
        for raw in re.split(r"[\n,]", text):
            line = raw.split("#", 1)[0].strip()
            if not line:
                continue
            key_id, sep, encoded = line.partition("=")
            key_id = key_id.strip()
            if not sep or key_id in keys:
                raise ValueError(f"keyring line for {key_id!r} is malformed or repeated")
            try:
                keys[key_id] = _b64decode(encoded.strip())
            except ValueError:
                raise ValueError(f"key {key_id!r} is not base64url") from None
            order.append(key_id)
        if not order:
            raise ValueError("the keyring holds no key")
        return cls(order[0], keys)

    @classmethod
    def from_file(cls, path: Path) -> Keyring:
        """Refuses a file that group or others may read: the keys open every stored token."""
        mode = path.stat().st_mode
        if mode & (stat.S_IRWXG | stat.S_IRWXO):
            raise PermissionError(f"{path}: keyring readable by others (mode {mode & 0o777:o})")
        return cls.parse(path.read_text())

    @classmethod
    def from_environment(cls, environ: Mapping[str, str] | None = None) -> Keyring:
        value = (os.environ if environ is None else environ).get(KEYS_ENV, "")
        if not value:
            raise LookupError(f"{KEYS_ENV} is not set")
        return cls.parse(value)


class TokenSealer:
    """Seals and opens values bound to their store key."""

    def __init__(self, keyring: Keyring) -> None:
        self._keyring = keyring
        self._ciphers = {kid: AESGCM(key) for kid, key in keyring.keys.items()}

    @property
    def current_key_id(self) -> str:
        return self._keyring.current

    @staticmethod
    def _associated(key_id: str, store_key: str) -> bytes:
        return f"{FORMAT}\x00{key_id}\x00{store_key}".encode("utf-8", "surrogatepass")

    def seal(self, store_key: str, plaintext: bytes) -> str:
        kid = self._keyring.current
        nonce = secrets.token_bytes(NONCE_BYTES)
        sealed = self._ciphers[kid].encrypt(nonce, plaintext, self._associated(kid, store_key))
        return f"{FORMAT}.{kid}.{_b64encode(nonce + sealed)}"

    @staticmethod
    def key_id_of(value: str) -> str:
        parts = value.split(".")
        if len(parts) != 3 or parts[0] != FORMAT:
            raise UndecryptableToken("not a sealed token value")
        return parts[1]

    def open(self, store_key: str, value: str) -> bytes:
        kid = self.key_id_of(value)
        cipher = self._ciphers.get(kid)
        if cipher is None:
            raise UndecryptableToken(f"sealed with key id {kid!r}, which the keyring lacks")
        try:
            raw = _b64decode(value.split(".")[2])
            return cipher.decrypt(
                raw[:NONCE_BYTES], raw[NONCE_BYTES:], self._associated(kid, store_key)
            )
        except (InvalidTag, ValueError):
            raise UndecryptableToken(
                f"the value stored under {store_key!r} does not authenticate (tampered, or "
                "moved from another key)"
            ) from None
