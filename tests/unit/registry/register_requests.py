"""Builders for register-API requests, shared by the registry unit and integration tests.

They play the TPP: a JSON body in RFC 7591 form whose ``jwks.keys[0]`` carries the QSealC, and
the headers of a request signed with the QSealC key (draft-cavage-12, as STET banks expect).
"""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey, RSAPublicKey

from stetgate.httpsig import compute_digest, sign_request

REGISTER_TARGET = "/stet/setting/v1/register"
SIGNED = ("(request-target)", "digest", "x-request-id")


def b64url_uint(value: int) -> str:
    raw = value.to_bytes((value.bit_length() + 7) // 8, "big")
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def load_certificate(pem: Path) -> x509.Certificate:
    return x509.load_pem_x509_certificate(pem.read_bytes())


def load_key(path: Path) -> RSAPrivateKey:
    key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    assert isinstance(key, RSAPrivateKey)
    return key


def seal_jwk(qsealc_pem: Path, *, kid: str | None = "qsealc-1", **extra: Any) -> dict[str, Any]:
    """RFC 7517 JWK of a QSealC: kty RSA, use sig, alg RS256, n/e of the key, x5c = [cert]."""
    cert = load_certificate(qsealc_pem)
    key = cert.public_key()
    assert isinstance(key, RSAPublicKey)
    numbers = key.public_numbers()
    jwk: dict[str, Any] = {
        "kty": "RSA",
        "use": "sig",
        "alg": "RS256",
        "n": b64url_uint(numbers.n),
        "e": b64url_uint(numbers.e),
        "x5c": [base64.b64encode(cert.public_bytes(serialization.Encoding.DER)).decode()],
    }
    if kid is not None:
        jwk["kid"] = kid
    jwk.update(extra)
    return jwk


def registration_document(
    qsealc_pem: Path,
    *,
    client_name: str | None = "Budget Insight Test",
    redirect_uris: Sequence[str] | None = ("https://tpp.example/callback",),
    kid: str | None = "qsealc-1",
    **overrides: Any,
) -> dict[str, Any]:
    """A valid RFC 7591 registration body as a BPCE TPP sends it; ``overrides`` replace or
    add fields (``None`` removes one)."""
    document: dict[str, Any] = {
        "redirect_uris": None if redirect_uris is None else list(redirect_uris),
        "token_endpoint_auth_method": "tls_client_auth",
        "grant_types": ["authorization_code", "refresh_token"],
        "response_types": ["code"],
        "client_name": client_name,
        "contacts": ["psd2@tpp.example"],
        "jwks": {"keys": [seal_jwk(qsealc_pem, kid=kid)]},
    }
    document.update(overrides)
    return {name: value for name, value in document.items() if value is not None}


def encode(document: Any) -> bytes:
    return json.dumps(document, separators=(",", ":")).encode()


def signed_headers(
    method: str,
    target: str,
    body: bytes,
    key: RSAPrivateKey,
    key_id: str = "qsealc-1",
    *,
    request_id: str | None = None,
    signed: Sequence[str] = SIGNED,
    bearer: str | None = None,
    content_type: str = "application/json",
) -> dict[str, str]:
    """Headers of a register request signed with ``key`` (STET form)."""
    headers = {"X-Request-ID": request_id or str(uuid.uuid4()), "Content-Type": content_type}
    if body:
        headers["Digest"] = compute_digest(body)
    if bearer is not None:
        headers["Authorization"] = f"Bearer {bearer}"
    headers["Signature"] = sign_request(method, target, headers, key, key_id, signed)
    return headers
