"""PKCE (RFC 7636) as stetgate applies it: S256 only, enforced when a challenge was sent.

docs/decisions.md#pkce: BPCE does not use PKCE; stetgate accepts ``code_challenge`` with
``code_challenge_method=S256`` from any client, enforces it at the token endpoint when it was
sent, and refuses ``plain`` (RFC 7636 §4.2 allows it; OAuth 2.1 and RFC 9700 §2.1.1 say S256).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re

S256 = "S256"
_VERIFIER = re.compile(r"[A-Za-z0-9\-._~]{43,128}")
"""RFC 7636 §4.1: code_verifier = 43*128unreserved."""
_CHALLENGE = re.compile(r"[A-Za-z0-9\-_]{43}")
"""RFC 7636 §4.2: BASE64URL(SHA256(verifier)) without padding is exactly 43 characters."""


def is_valid_verifier(verifier: str) -> bool:
    return _VERIFIER.fullmatch(verifier) is not None


def is_valid_s256_challenge(challenge: str) -> bool:
    return _CHALLENGE.fullmatch(challenge) is not None


def s256_challenge(verifier: str) -> str:
    """RFC 7636 §4.2: ``BASE64URL-ENCODE(SHA256(ASCII(code_verifier)))``."""
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def verifier_matches(verifier: str, challenge: str) -> bool:
    """RFC 7636 §4.6, compared in constant time (the challenge is public, the habit is not)."""
    if not is_valid_verifier(verifier):
        return False
    return hmac.compare_digest(s256_challenge(verifier).encode(), challenge.encode())


__all__ = [
    "S256",
    "is_valid_s256_challenge",
    "is_valid_verifier",
    "s256_challenge",
    "verifier_matches",
]
