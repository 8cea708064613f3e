"""Builders for signed STET requests shared by the httpsig tests."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from email.utils import format_datetime

from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey

from stetgate.httpsig import compute_digest, sign_request

NOW = datetime(2026, 3, 2, 10, 0, 0, tzinfo=UTC)
KEY_ID = "SN=1A2B3C,CA=CN=Test QTSP CA,O=Test QTSP,C=FR"
TARGET = "/stet/psd2/v1.4.2/accounts/FR7612345/transactions?dateFrom=2026-01-01&limit=50"
BODY = b'{"consents":{"balances":[{"iban":"FR7612345987650123456789014"}]}}'
SIGNED_WITH_BODY = ("(request-target)", "date", "digest", "x-request-id", "psu-ip-address")
SIGNED_WITHOUT_BODY = ("(request-target)", "date", "x-request-id", "psu-ip-address")


def base_headers(body: bytes, when: datetime = NOW) -> dict[str, str]:
    """The headers a TPP sends: X-Request-ID, Date, a PSU header, and Digest with a body."""
    headers = {
        "Host": "api.bank.example",
        "Date": format_datetime(when, usegmt=True),
        "X-Request-ID": "6e1b2d2c-2b8f-4c9b-9a7e-0f0c0a9b1c11",
        "PSU-IP-Address": "192.0.2.10",
        "Authorization": "Bearer opaque-token",
    }
    if body:
        headers["Content-Type"] = "application/json"
        headers["Digest"] = compute_digest(body)
    return headers


def signed_request(
    key: RSAPrivateKey,
    *,
    method: str = "PUT",
    target: str = TARGET,
    body: bytes = BODY,
    headers: dict[str, str] | None = None,
    signed: Sequence[str] | None = None,
    key_id: str = KEY_ID,
) -> dict[str, str]:
    """Headers of a correctly signed request (the Signature header included)."""
    out = base_headers(body) if headers is None else dict(headers)
    if signed is None:
        signed = SIGNED_WITH_BODY if body else SIGNED_WITHOUT_BODY
    out["Signature"] = sign_request(method, target, out, key, key_id, signed)
    return out
