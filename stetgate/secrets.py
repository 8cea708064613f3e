"""Opaque secrets: tokens, codes, session ids.

docs/decisions.md#opaque-secrets: opaque, at least 256 bits of randomness, stored only as SHA-256
hashes. Lookups go by hash (an index hit), so comparing the presented value happens inside the
database on a digest; where a value is compared in Python, use `same_secret` (constant time).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets


def new_secret() -> str:
    """256 bits from the OS CSPRNG, base64url (43 characters)."""
    return secrets.token_urlsafe(32)


def secret_hash(value: str) -> str:
    return hashlib.sha256(value.encode("utf-8", "surrogatepass")).hexdigest()


def same_secret(a: str, b: str) -> bool:
    return hmac.compare_digest(
        a.encode("utf-8", "surrogatepass"), b.encode("utf-8", "surrogatepass")
    )


def new_id() -> str:
    """Non-secret row identifier (128 bits, hex)."""
    return secrets.token_hex(16)
