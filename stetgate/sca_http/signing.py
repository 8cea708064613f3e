"""The HMAC-SHA256 signature on every message of the SCA-service contract, both directions.

Why a shared-secret HMAC rather than a JWS with the bank's key: the two parties are one bank's
own systems on its internal network, already configured together (URL, callback); one secret
in each configuration is the whole key management, any language signs it in three lines, and
no key-rotation, algorithm-choice (``alg``) or JOSE-library pitfalls come with it. The
trade-off — both sides can sign, so a signature proves "one of us", not "the bank" — does not
matter between two systems of the same bank; a non-repudiable answer would call for a JWS.

The header (``Stetgate-Signature``) carries a Unix timestamp and the MAC::

    Stetgate-Signature: t=1764470000,v1=<hex HMAC-SHA256(secret, "{t}.{METHOD} {path}." + body)>

The method and path are signed so a signed ``GET /challenges/A`` cannot be replayed as another
request. A receiver refuses a timestamp further than ``max_skew`` from its clock (an old
message cannot be replayed later) and compares MACs in constant time
(`hmac.compare_digest`). Replays within the window are harmless by construction: an answer is
recorded at most once (`stetgate.psu.decoupled.answer_service_challenge`).
"""

from __future__ import annotations

import hashlib
import hmac
from datetime import datetime

SIGNATURE_HEADER = "Stetgate-Signature"
VERSION = "v1"


class SignatureError(Exception):
    """The signature is missing, malformed, wrong or out of its time window (never says which
    to the sender: all are 401)."""


def _mac(secret: str, timestamp: int, method: str, path: str, body: bytes) -> str:
    message = f"{timestamp}.{method.upper()} {path}.".encode() + body
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def sign(secret: str, now: datetime, method: str, path: str, body: bytes = b"") -> str:
    """The ``Stetgate-Signature`` header value for a message sent at `now`."""
    timestamp = int(now.timestamp())
    return f"t={timestamp},{VERSION}={_mac(secret, timestamp, method, path, body)}"


def verify(
    secret: str,
    header: str | None,
    method: str,
    path: str,
    body: bytes,
    *,
    now: datetime,
    max_skew_seconds: int,
) -> None:
    """Raise `SignatureError` unless `header` signs this message within `max_skew_seconds` of
    `now` (the receiver's injected clock)."""
    if not header or len(header) > 200:
        raise SignatureError("missing signature")
    parts: dict[str, str] = {}
    for item in header.split(","):
        key, sep, value = item.strip().partition("=")
        if not sep or key in parts:
            raise SignatureError("malformed signature")
        parts[key] = value
    stamp, mac = parts.get("t", ""), parts.get(VERSION, "")
    if not stamp.isascii() or not stamp.isdigit() or len(stamp) > 12 or not mac:
        raise SignatureError("malformed signature")
    timestamp = int(stamp)
    if abs(now.timestamp() - timestamp) > max_skew_seconds:
        raise SignatureError("timestamp outside the accepted window")
    expected = _mac(secret, timestamp, method, path, body)
    if not hmac.compare_digest(expected.encode(), mac.encode()):
        raise SignatureError("bad signature")
