"""Client metadata rules for the register API: pure functions from the JSON body to values.

RFC 7591 §2 defines the fields; BPCE's register API ("API register" pages) fixes what a PSD2 TPP
sends: ``redirect_uris`` (required), ``token_endpoint_auth_method`` = ``tls_client_auth``
(RFC 8705 §2.1), ``grant_types``, ``response_types``, ``jwks`` whose first key carries the
QSealC (``kty`` RSA, ``use`` sig, ``x5c``), ``client_name`` (required, unique, shown to PSUs),
``contacts``, and stetgate's optional ``require_pkce`` (docs/decisions.md#pkce). Unknown fields
are ignored (RFC 7591 §2: "the authorization server MUST ignore any client metadata sent by
the client that it does not understand"); a JSON ``null`` counts as absent (RFC 7592 §2.2).

Nothing here touches the database or the trust store: trust (chain, CRL, organization) is
checked by :mod:`stetgate.registry.signed_requests` once the signature is known good.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicKey

from stetgate.eidas import CertificateError, Psd2Certificate, parse_certificate
from stetgate.registry.client_metadata_policy import client_name_of, redirect_uris_of
from stetgate.registry.errors import InvalidClientMetadata, InvalidRequest

TLS_CLIENT_AUTH = "tls_client_auth"
AUTHORIZATION_CODE = "authorization_code"
REFRESH_TOKEN = "refresh_token"  # noqa: S105 - a grant type name, not a secret
CLIENT_CREDENTIALS = "client_credentials"
ALLOWED_GRANT_TYPES = frozenset({AUTHORIZATION_CODE, REFRESH_TOKEN, CLIENT_CREDENTIALS})
ALLOWED_RESPONSE_TYPES = frozenset({"code"})

MAX_CONTACTS = 10
MAX_KID_LENGTH = 200
"""``client_certificates.kid`` is String(200)."""
MAX_X5U_LENGTH = 500
"""``client_certificates.url`` is String(500)."""
MAX_JWKS_KEYS = 10
MAX_X5C_CERTIFICATES = 5
MAX_CERTIFICATE_B64 = 16_000

_EMAIL = re.compile(r"[^@\s\x00-\x1f\x7f]{1,64}@[^@\s\x00-\x1f\x7f]{1,189}")
_VISIBLE_ASCII = re.compile(r"[!#-~]+")
"""Printable ASCII without space or double quote (an ``x5u`` URL)."""
_KID = re.compile(r"[ !#-\[\]-~]+")
"""A ``kid`` ends up inside ``keyId="..."`` (a quoted string without escapes): printable ASCII,
spaces included, without ``"`` and ``\\``. RFC 7517 §4.5 allows any string, and TPPs commonly
reuse their Signature keyId as kid — ``SN=<hex>,CA=<issuer DN>`` (with the DN's spaces), the
form some STET banks require, or a URL; refusing those (found by an outside attack run) broke
real registrations. A keyId is resolved by exact kid first, then by its form
(`stetgate.registry.signed_requests.seal_key_resolver`, `stetgate.psd2.signatures`)."""


@dataclass(frozen=True, slots=True)
class SealKey:
    """``jwks.keys[0]``: the QSealC that signs this request and, later, the TPP's PSD2 calls.

    ``kid`` is what the TPP named the key (``None``: stetgate uses the certificate's
    ``x5t#S256``); ``x5u`` the certificate URL it published, matched byte for byte when a
    ``keyId`` is a URL and never fetched (no SSRF, docs/decisions.md#http-signatures).
    """

    certificate: Psd2Certificate
    x509: x509.Certificate
    kid: str | None
    x5u: str | None
    alg: str | None

    @property
    def effective_kid(self) -> str:
        return self.kid or self.certificate.thumbprint_s256


@dataclass(frozen=True, slots=True)
class ClientMetadata:
    """The registered metadata, normalised (RFC 7591 §2 defaults applied)."""

    client_name: str
    redirect_uris: tuple[str, ...]
    grant_types: tuple[str, ...]
    response_types: tuple[str, ...]
    contacts: tuple[str, ...]
    require_pkce: bool
    token_endpoint_auth_method: str = TLS_CLIENT_AUTH


def parse_json_object(body: bytes) -> dict[str, Any]:
    """The body as a JSON object, or :class:`InvalidRequest`.

    Refused: invalid UTF-8 or JSON (RFC 8259), ``NaN``/``Infinity`` (not JSON), a key given
    twice (RFC 8259 §4 leaves the meaning undefined, so two readers could disagree on what
    was signed), nesting too deep for the parser, and anything but an object at the top.
    """
    try:
        document = json.loads(
            body.decode("utf-8"),
            object_pairs_hook=_no_duplicate_keys,
            parse_constant=_no_constants,
        )
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise InvalidRequest(
            f"the body is not valid JSON: {_short(exc)}", reason="malformed_json"
        ) from None
    if not isinstance(document, dict):
        raise InvalidRequest(
            "the body must be a JSON object (RFC 7591 §3.1)", reason="malformed_json"
        )
    return document


def seal_key_of(document: Mapping[str, Any]) -> SealKey:
    """Read ``jwks.keys[0]``: an RSA signing key whose ``x5c[0]`` is a parsable PSD2
    certificate with the same public key (RFC 7517 §4.7: x5c[0] "MUST" hold the key).

    ``alg``, when given, must be ``RS256`` (STET HTTP signatures are rsa-sha256). Further keys
    (BPCE TPPs sometimes add their QWAC) and ``x5c[1:]`` (chain) are accepted and not used:
    the chain is built from the trusted QTSPs, never from the request.
    """
    jwks = document.get("jwks")
    if not isinstance(jwks, dict):
        raise InvalidClientMetadata(
            "jwks is required: a JWK Set holding the QSealC (RFC 7591 §2, RFC 7517 §5)",
            reason="jwks_missing",
        )
    keys = jwks.get("keys")
    if not isinstance(keys, list) or not keys or len(keys) > MAX_JWKS_KEYS:
        raise InvalidClientMetadata(
            f"jwks.keys must be a list of 1 to {MAX_JWKS_KEYS} keys", reason="jwks_invalid"
        )
    jwk = keys[0]
    if not isinstance(jwk, dict):
        raise InvalidClientMetadata("jwks.keys[0] must be a JSON object", reason="jwks_invalid")
    if jwk.get("kty") != "RSA":
        raise InvalidClientMetadata(
            'jwks.keys[0].kty must be "RSA" (STET signatures are rsa-sha256)', reason="jwks_invalid"
        )
    if jwk.get("use") != "sig":
        raise InvalidClientMetadata('jwks.keys[0].use must be "sig"', reason="jwks_invalid")
    alg = jwk.get("alg")
    if alg is not None and alg != "RS256":
        raise InvalidClientMetadata(
            'jwks.keys[0].alg, when given, must be "RS256"', reason="jwks_invalid"
        )
    chain = jwk.get("x5c")
    if (
        not isinstance(chain, list)
        or not chain
        or len(chain) > MAX_X5C_CERTIFICATES
        or not all(isinstance(c, str) for c in chain)
    ):
        raise InvalidClientMetadata(
            "jwks.keys[0].x5c must list the QSealC certificate (base64 DER) first (RFC 7517 §4.7)",
            reason="jwks_invalid",
        )
    der = _certificate_der(chain[0])
    try:
        certificate = parse_certificate(der)
    except CertificateError as exc:
        raise InvalidClientMetadata(
            f"jwks.keys[0].x5c[0] is not a PSD2 certificate: {exc.message}", reason=exc.reason
        ) from None
    loaded = x509.load_der_x509_certificate(certificate.der)
    _require_same_rsa_key(jwk, loaded)
    return SealKey(
        certificate=certificate,
        x509=loaded,
        kid=_kid(jwk.get("kid")),
        x5u=_x5u(jwk.get("x5u")),
        alg=alg,
    )


def client_metadata_of(document: Mapping[str, Any]) -> ClientMetadata:
    """Validate every field but ``jwks``; raises InvalidRedirectUri / InvalidClientMetadata."""
    method = document.get("token_endpoint_auth_method")
    if method != TLS_CLIENT_AUTH:
        raise InvalidClientMetadata(
            'token_endpoint_auth_method must be "tls_client_auth": the token endpoint '
            "authenticates clients by their QWAC only (RFC 8705 §2.1)",
            reason="auth_method_not_tls",
        )
    redirect_uris = redirect_uris_of(document.get("redirect_uris"))
    grant_types = _string_set(document, "grant_types", ALLOWED_GRANT_TYPES, (AUTHORIZATION_CODE,))
    response_types = _string_set(document, "response_types", ALLOWED_RESPONSE_TYPES, ("code",))
    if ("code" in response_types) != (AUTHORIZATION_CODE in grant_types):
        raise InvalidClientMetadata(
            'response_types "code" and grant_types "authorization_code" go together '
            "(RFC 7591 §2.1)",
            reason="grant_response_mismatch",
        )
    require_pkce = document.get("require_pkce")
    if require_pkce is None:
        require_pkce = False
    if not isinstance(require_pkce, bool):
        raise InvalidClientMetadata("require_pkce must be true or false", reason="bad_type")
    return ClientMetadata(
        client_name=client_name_of(document.get("client_name")),
        redirect_uris=redirect_uris,
        grant_types=grant_types,
        response_types=response_types,
        contacts=contacts_of(document.get("contacts")),
        require_pkce=require_pkce,
    )


def contacts_of(value: Any) -> tuple[str, ...]:
    """Optional list of e-mail addresses (RFC 7591 §2 ``contacts``)."""
    if value is None:
        return ()
    if not isinstance(value, list) or len(value) > MAX_CONTACTS:
        raise InvalidClientMetadata(
            f"contacts must be a list of at most {MAX_CONTACTS} e-mail addresses",
            reason="contacts_invalid",
        )
    for item in value:
        if not isinstance(item, str) or _EMAIL.fullmatch(item) is None:
            raise InvalidClientMetadata(
                "every contact must be an e-mail address", reason="contacts_invalid"
            )
    return tuple(dict.fromkeys(value))


def _string_set(
    document: Mapping[str, Any], name: str, allowed: frozenset[str], default: tuple[str, ...]
) -> tuple[str, ...]:
    value = document.get(name)
    if value is None:
        return default
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise InvalidClientMetadata(f"{name} must be a list of strings", reason="bad_type")
    unknown = sorted(set(value) - allowed)
    if unknown:
        raise InvalidClientMetadata(
            f"{name} {unknown[0]!r} is not supported (allowed: {', '.join(sorted(allowed))})",
            reason=f"{name}_unsupported",
        )
    return tuple(dict.fromkeys(value))


def _certificate_der(value: str) -> bytes:
    if len(value) > MAX_CERTIFICATE_B64:
        raise InvalidClientMetadata("jwks.keys[0].x5c[0] is too large", reason="jwks_invalid")
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise InvalidClientMetadata(
            "jwks.keys[0].x5c[0] must be standard base64 of the DER certificate (RFC 7517 §4.7)",
            reason="jwks_invalid",
        ) from None


def _require_same_rsa_key(jwk: Mapping[str, Any], cert: x509.Certificate) -> None:
    """RFC 7517 §4.7: the key in x5c[0] "MUST match the public key represented by other
    members of the JWK"; RFC 7518 §6.3.1 makes ``n`` and ``e`` required for RSA keys."""
    key = cert.public_key()
    if not isinstance(key, RSAPublicKey):
        raise InvalidClientMetadata(
            "the QSealC in jwks.keys[0].x5c[0] must hold an RSA key", reason="jwks_key_not_rsa"
        )
    numbers = key.public_numbers()
    if _b64url_int(jwk.get("n")) != numbers.n or _b64url_int(jwk.get("e")) != numbers.e:
        raise InvalidClientMetadata(
            "jwks.keys[0] n/e must be the public key of the certificate in x5c[0]",
            reason="jwks_key_mismatch",
        )


def _b64url_int(value: Any) -> int | None:
    if not isinstance(value, str) or not value or len(value) > 2048:
        return None
    try:
        raw = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))
    except (binascii.Error, ValueError):
        return None
    return int.from_bytes(raw, "big") if raw else None


def _kid(value: Any) -> str | None:
    if value is None:
        return None
    if (
        not isinstance(value, str)
        or len(value) > MAX_KID_LENGTH
        or _KID.fullmatch(value) is None
        or value != value.strip()
    ):
        raise InvalidClientMetadata(
            f"jwks.keys[0].kid must be 1-{MAX_KID_LENGTH} printable ASCII characters without "
            "'\"' or '\\', and without leading or trailing spaces",
            reason="jwks_kid_invalid",
        )
    return value


def _x5u(value: Any) -> str | None:
    if value is None:
        return None
    if (
        not isinstance(value, str)
        or len(value) > MAX_X5U_LENGTH
        or not value.startswith("https://")
        or _VISIBLE_ASCII.fullmatch(value) is None
    ):
        raise InvalidClientMetadata(
            f"jwks.keys[0].x5u must be an https URL of at most {MAX_X5U_LENGTH} characters",
            reason="jwks_x5u_invalid",
        )
    return value


def _no_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise ValueError(f"key {key[:40]!r} appears twice")
        result[key] = value
    return result


def _no_constants(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _short(exc: BaseException) -> str:
    if isinstance(exc, RecursionError):
        return "nested too deeply"
    return str(exc)[:120]
