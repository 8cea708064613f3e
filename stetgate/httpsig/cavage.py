"""HTTP signatures as STET v1.4.2 uses them: the draft-cavage-http-signatures-12 header.

Only the subset STET needs is implemented: RSASSA-PKCS1-v1_5 with SHA-256 (``rsa-sha256``) on the
request, keyed by the TPP's QSealC. The verifier pins the algorithm and the key type itself and
never lets the request choose them — the hole in the ``httpsig`` package, where
``algorithm="hmac-sha256"`` turns the TPP's *public* key into an HMAC secret
(docs/decisions.md#own-http-signature-verifier). Policy (docs/decisions.md#http-signatures):
``(request-target)`` and ``x-request-id`` always signed, ``digest`` with a body, every
``psu-*`` header present signed, ``Digest`` checked against the body, signed ``Date`` within skew.

Signing string (draft-cavage-12 §2.3), one line per entry of ``headers="..."``, joined by ``\\n``
with no trailing newline, encoded as ISO-8859-1 (the octets ASGI servers decoded the headers from)::

    (request-target): <lowercased method> <path>[?<query>]
    <lowercased header name>: <value, OWS trimmed; repeated headers joined by ", ">
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Generic, TypeVar

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey, RSAPublicKey
from cryptography.hazmat.primitives.asymmetric.types import PublicKeyTypes

from stetgate.httpsig.digest import verify_digest
from stetgate.httpsig.errors import (
    BadSignature,
    MalformedSignature,
    MissingSignature,
    MissingSignedHeader,
    SignatureError,
    StaleDate,
    UnknownKey,
    UnsupportedAlgorithm,
)

T = TypeVar("T")

HeaderInput = Mapping[str, str] | Iterable[tuple[str, str]]
"""Request headers: a mapping, or (name, value) pairs when a header may repeat.

Starlette's ``Headers`` fits as is: its ``items()`` keeps repeated headers, decoded ISO-8859-1.
"""

ALGORITHM = "rsa-sha256"
REQUEST_TARGET = "(request-target)"
MAX_SIGNATURE_HEADER_LENGTH = 8192
MAX_SIGNATURE_BYTES = 1024
"""An RSA-8192 signature; anything longer cannot be ours and is not worth decoding."""
DEFAULT_MIN_RSA_BITS = 2048
"""ETSI TS 119 312 floor for RSA; QSealCs are RSA-2048 or larger."""

_PARAM_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_-]*")
_UNQUOTED_VALUE = re.compile(r"[^\s,\"]+")
_UNIX_TIME = re.compile(r"[0-9]{1,15}(?:\.[0-9]{1,9})?")
_HEADER_NAME = re.compile(r"[!#$%&'*+.^_`|~0-9a-z-]+|\((?:request-target|created|expires)\)")
_METHOD = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")


@dataclass(frozen=True, slots=True)
class SignatureParams:
    """The parameters of one ``Signature`` header (draft-cavage-12 §2.1).

    ``headers`` is lower-cased and, when the parameter is absent, ``("(created)",)`` as
    draft-cavage-12 §2.1.6 requires (drafts up to -10 said ``("date",)``); our policy refuses
    both, since neither covers ``(request-target)``. ``created`` and ``expires`` are Unix times.
    """

    key_id: str
    algorithm: str | None
    headers: tuple[str, ...]
    signature: bytes
    created: float | None = None
    expires: float | None = None


@dataclass(frozen=True, slots=True)
class ResolvedKey(Generic[T]):
    """What a ``keyId`` resolver returns: the key to verify with and the caller's context.

    ``context`` is carried through to :class:`VerifiedSignature` untouched — typically the
    registered QSealC certificate, so the caller can then check its role and organization.
    ``public_key`` may be any key type: the verifier refuses anything but RSA itself.
    """

    public_key: PublicKeyTypes
    context: T

    @staticmethod
    def from_certificate(certificate: x509.Certificate) -> ResolvedKey[x509.Certificate]:
        """Key of a registered QSealC, with the certificate as context."""
        return ResolvedKey(certificate.public_key(), certificate)


KeyResolver = Callable[[str], ResolvedKey[T] | None]
"""Maps ``keyId`` to a registered key; returns None or raises UnknownKey/LookupError if none."""


@dataclass(frozen=True, slots=True)
class VerifiedSignature(Generic[T]):
    """A signature that passed every check, with what the resolver bound ``keyId`` to."""

    key_id: str
    signed_headers: tuple[str, ...]
    public_key: RSAPublicKey
    context: T
    algorithm: str = ALGORITHM


def parse_signature_header(value: str) -> SignatureParams:
    """Parse a ``Signature`` header value (draft-cavage-12 §4.1) or raise MalformedSignature.

    Grammar: ``name=value`` pairs separated by commas, optional whitespace around ``,`` and
    ``=``; string parameters double-quoted (a quoted value runs to the next ``"``: no escapes,
    so commas or backslashes in an issuer DN stay as sent); ``created``/``expires`` may be
    bare numbers (draft-cavage-12 §2.1.4-5). Parameter names are matched case-insensitively; a
    parameter given twice makes the header unusable (§2.2 "Ambiguous Parameters"); unknown
    well-formed parameters are ignored (§2.2). ``keyId`` and ``signature`` are required
    (§2.1.1, §2.1.2); an empty ``headers`` is refused (§2.1.6 note 2). The scanner is linear and
    the header is capped at 8 KiB, so no input is expensive to reject.
    """
    if len(value) > MAX_SIGNATURE_HEADER_LENGTH:
        raise MalformedSignature("Signature header is too long")
    if _CONTROL.search(value):
        raise MalformedSignature("Signature header contains control characters")
    raw = _scan_parameters(value)

    key_id = _required_string(raw, "keyid")
    signature_b64 = _required_string(raw, "signature")
    algorithm = _optional_string(raw, "algorithm")
    headers_value = _optional_string(raw, "headers")
    if headers_value is None:
        headers: tuple[str, ...] = ("(created)",)
    else:
        headers = _parse_header_list(headers_value)
    return SignatureParams(
        key_id=key_id,
        algorithm=algorithm,
        headers=headers,
        signature=_decode_signature(signature_b64),
        created=_time_param(raw, "created"),
        expires=_time_param(raw, "expires"),
    )


def build_signing_string(
    method: str, target: str, headers: HeaderInput, signed: Sequence[str]
) -> bytes:
    """Build the draft-cavage-12 §2.3 signing string over ``signed`` (in that order).

    ``target`` is the path and query exactly as received (``/accounts?limit=10``, not
    re-encoded): §2.3 item 1 lower-cases only the method. Header lookup is case-insensitive;
    repeated headers are joined with ``", "`` and values trimmed of OWS (§2.3 item 4). A line
    break inside a value is refused, so two different header sets can never produce the same
    string. ``(created)``/``(expires)`` are refused: §2.3 items 2-3 forbid them with ``rsa-*``.

    Raises:
        MissingSignedHeader: a name in ``signed`` is not among ``headers``.
        MalformedSignature: bad method/target/value, or a pseudo-header other than
            ``(request-target)``.
    """
    return _signing_string(method, target, _collect_headers(headers), signed)


def required_signed_headers(
    headers: HeaderInput, body: bytes, required_extra: Sequence[str] = ()
) -> tuple[str, ...]:
    """The headers our policy requires in ``headers="..."`` for this request.

    docs/decisions.md#http-signatures: ``(request-target)``, ``x-request-id``, ``digest`` when
    there is a body, every ``psu-*`` header present (they carry the PSU context the TPP vouches
    for), plus ``required_extra``. TPP clients use it to pick what to sign; the verifier to
    check.
    """
    return _required(_collect_headers(headers), body, required_extra)


def sign_request(
    method: str,
    target: str,
    headers: HeaderInput,
    private_key: RSAPrivateKey,
    key_id: str,
    signed_headers: Sequence[str],
) -> str:
    """Return the ``Signature`` header value for a request (draft-cavage-12 §4.1).

    ``algorithm="rsa-sha256"`` (§2.1.3): RSASSA-PKCS1-v1_5 over SHA-256 (RFC 8017 §8.2). Add a
    ``Digest`` (``compute_digest``) to ``headers`` before signing a request with a body, and use
    :func:`required_signed_headers` for the list a STET bank will insist on.
    """
    if not isinstance(private_key, RSAPrivateKey):
        raise TypeError("STET HTTP signatures use an RSA private key (rsa-sha256)")
    if not key_id or '"' in key_id or _CONTROL.search(key_id):
        raise ValueError("keyId must be non-empty, without double quotes or control characters")
    names = [h.lower() for h in signed_headers]
    data = build_signing_string(method, target, headers, names)
    signature = private_key.sign(data, padding.PKCS1v15(), hashes.SHA256())
    return (
        f'keyId="{key_id}",algorithm="{ALGORITHM}",headers="{" ".join(names)}",'
        f'signature="{base64.b64encode(signature).decode("ascii")}"'
    )


def verify_request(
    method: str,
    target: str,
    headers: HeaderInput,
    body: bytes,
    resolve_key: KeyResolver[T],
    *,
    now: datetime,
    max_skew_seconds: int = 300,
    required_extra: Sequence[str] = (),
    min_rsa_bits: int = DEFAULT_MIN_RSA_BITS,
) -> VerifiedSignature[T]:
    """Verify a STET request's HTTP signature; validate everything first, then do the RSA check.

    Order: parse the header, pin the algorithm (absent or ``rsa-sha256``; ``hs2019`` is refused
    because it means "whatever the key's metadata says", §2.1.3, which is exactly the choice we
    never leave to a request), check the signed-header policy, the ``Digest`` against ``body``
    (RFC 3230), ``created``/``expires`` (§2.1.4-5) and a signed ``Date`` against ``now`` ±
    ``max_skew_seconds``, build the signing string, resolve ``keyId``, require an RSA key of at
    least ``min_rsa_bits``, and verify PKCS#1 v1.5 / SHA-256.

    ``resolve_key`` must only look at registered certificates (never fetch a URL); it returns
    None or raises UnknownKey/LookupError when nothing matches. Its other exceptions (database
    down) propagate: they are not the TPP's fault and must not become a 401.
    """
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    collected = _collect_headers(headers)
    signature_values = collected.get("signature")
    if not signature_values:
        raise MissingSignature("the request has no Signature header")
    if len(signature_values) > 1:
        raise MalformedSignature("the request has more than one Signature header")
    params = parse_signature_header(signature_values[0])

    if params.algorithm is not None and params.algorithm.lower() != ALGORITHM:
        raise UnsupportedAlgorithm(f"algorithm must be {ALGORITHM}")
    signed = set(params.headers)
    for name in _required(collected, body, required_extra):
        if name not in signed:
            raise MissingSignedHeader(name)
    _check_signature_times(params, now, max_skew_seconds)
    digest_values = collected.get("digest")
    if body or digest_values is not None:
        verify_digest(None if digest_values is None else ", ".join(digest_values), body)
    if "date" in signed and "date" in collected:
        _check_date(", ".join(collected["date"]), now, max_skew_seconds)
    data = _signing_string(method, target, collected, params.headers)

    resolved = _resolve(resolve_key, params.key_id)
    public_key = resolved.public_key
    if not isinstance(public_key, RSAPublicKey):
        raise UnsupportedAlgorithm(f"the key bound to this keyId is not an RSA key ({ALGORITHM})")
    if public_key.key_size < min_rsa_bits:
        raise UnsupportedAlgorithm(f"the RSA key bound to this keyId is under {min_rsa_bits} bits")
    try:
        public_key.verify(params.signature, data, padding.PKCS1v15(), hashes.SHA256())
    except InvalidSignature:
        raise BadSignature("the signature does not verify") from None
    return VerifiedSignature(
        key_id=params.key_id,
        signed_headers=params.headers,
        public_key=public_key,
        context=resolved.context,
    )


def _required(
    collected: dict[str, list[str]], body: bytes, required_extra: Sequence[str]
) -> tuple[str, ...]:
    names = [REQUEST_TARGET, "x-request-id"]
    if body:
        names.append("digest")
    names.extend(h.lower() for h in required_extra)
    names.extend(sorted(n for n in collected if n.startswith("psu-")))
    return tuple(dict.fromkeys(names))


def _signing_string(
    method: str, target: str, collected: dict[str, list[str]], signed: Sequence[str]
) -> bytes:
    if not signed:
        raise MalformedSignature("the list of signed headers is empty")
    lines: list[str] = []
    for raw_name in signed:
        name = raw_name.lower()
        if name == REQUEST_TARGET:
            lines.append(f"{REQUEST_TARGET}: {_request_target(method, target)}")
        elif name.startswith("("):
            raise MalformedSignature(f"{name} is not allowed with algorithm {ALGORITHM}")
        else:
            values = collected.get(name)
            if values is None:
                raise MissingSignedHeader(name, f"signed header {name!r} is not in the request")
            lines.append(f"{name}: {_header_value(name, values)}")
    try:
        return "\n".join(lines).encode("latin-1")
    except UnicodeEncodeError:
        raise MalformedSignature("header values must be ISO-8859-1 octets") from None


def _scan_parameters(value: str) -> dict[str, tuple[str, bool]]:
    """Split ``a="x", b=1`` into ``{"a": ("x", True), "b": ("1", False)}`` (names lower-cased)."""
    params: dict[str, tuple[str, bool]] = {}
    pos, end = _skip_ows(value, 0), len(value)
    if pos == end:
        raise MalformedSignature("Signature header is empty")
    while True:
        match = _PARAM_NAME.match(value, pos)
        if match is None:
            raise MalformedSignature("expected a parameter name in the Signature header")
        name = match.group().lower()
        pos = _skip_ows(value, match.end())
        if pos == end or value[pos] != "=":
            raise MalformedSignature(f"parameter {name!r} has no value")
        pos = _skip_ows(value, pos + 1)
        if pos < end and value[pos] == '"':
            close = value.find('"', pos + 1)
            if close < 0:
                raise MalformedSignature(f"parameter {name!r} has an unterminated quoted value")
            item, quoted, pos = value[pos + 1 : close], True, close + 1
        else:
            match = _UNQUOTED_VALUE.match(value, pos)
            if match is None:
                raise MalformedSignature(f"parameter {name!r} has no value")
            item, quoted, pos = match.group(), False, match.end()
        if name in params:
            raise MalformedSignature(f"parameter {name!r} appears twice")
        params[name] = (item, quoted)
        pos = _skip_ows(value, pos)
        if pos == end:
            return params
        if value[pos] != ",":
            raise MalformedSignature("parameters must be separated by commas")
        pos = _skip_ows(value, pos + 1)


def _skip_ows(value: str, pos: int) -> int:
    end = len(value)
    while pos < end and value[pos] in " \t":
        pos += 1
    return pos


def _required_string(raw: dict[str, tuple[str, bool]], name: str) -> str:
    value = _optional_string(raw, name)
    if value is None:
        raise MalformedSignature(f"the {name} parameter is required")
    return value


def _optional_string(raw: dict[str, tuple[str, bool]], name: str) -> str | None:
    entry = raw.get(name)
    if entry is None:
        return None
    item, quoted = entry
    if not quoted:
        raise MalformedSignature(f"the {name} parameter must be a quoted string")
    if not item:
        raise MalformedSignature(f"the {name} parameter is empty")
    return item


def _time_param(raw: dict[str, tuple[str, bool]], name: str) -> float | None:
    entry = raw.get(name)
    if entry is None:
        return None
    if _UNIX_TIME.fullmatch(entry[0]) is None:
        raise MalformedSignature(f"the {name} parameter must be a Unix time")
    return float(entry[0])


def _parse_header_list(value: str) -> tuple[str, ...]:
    names = tuple(value.lower().split())
    if not names:
        raise MalformedSignature("the headers parameter is empty")
    if len(set(names)) != len(names):
        raise MalformedSignature("the headers parameter lists a header twice")
    for name in names:
        if _HEADER_NAME.fullmatch(name) is None:
            raise MalformedSignature("the headers parameter lists an invalid header name")
    return names


def _decode_signature(value: str) -> bytes:
    try:
        signature = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise MalformedSignature("the signature parameter is not base64") from None
    if not signature or len(signature) > MAX_SIGNATURE_BYTES:
        raise MalformedSignature("the signature parameter has an impossible length")
    return signature


def _collect_headers(headers: HeaderInput) -> dict[str, list[str]]:
    items = headers.items() if isinstance(headers, Mapping) else headers
    collected: dict[str, list[str]] = {}
    for name, value in items:
        collected.setdefault(name.lower(), []).append(value)
    return collected


def _header_value(name: str, values: list[str]) -> str:
    if any("\n" in v or "\r" in v for v in values):
        raise MalformedSignature(f"header {name!r} contains a line break")
    return ", ".join(v.strip(" \t") for v in values)


def _request_target(method: str, target: str) -> str:
    if _METHOD.fullmatch(method) is None:
        raise MalformedSignature("invalid request method")
    if not target or any(c in target for c in " \t\r\n"):
        raise MalformedSignature("invalid request target")
    return f"{method.lower()} {target}"


def _check_signature_times(params: SignatureParams, now: datetime, skew: int) -> None:
    """draft-cavage-12 §2.1.4-5: refuse a future ``created`` and a past ``expires`` (± skew)."""
    instant = now.timestamp()
    if params.created is not None and params.created > instant + skew:
        raise StaleDate("the signature's created time is in the future")
    if params.expires is not None and params.expires < instant - skew:
        raise StaleDate("the signature has expired")


def _check_date(value: str, now: datetime, skew: int) -> None:
    """A signed ``Date`` (RFC 9110 §5.6.7 HTTP-date) must be within ``skew`` of ``now``."""
    try:
        sent = parsedate_to_datetime(value) if len(value) <= 64 else None
    except (TypeError, ValueError, IndexError, OverflowError):
        sent = None
    if sent is None:
        raise StaleDate("the Date header is not an HTTP-date")
    if sent.tzinfo is None:
        sent = sent.replace(tzinfo=UTC)
    if abs(sent - now) > timedelta(seconds=skew):
        raise StaleDate(f"the Date header is more than {skew} s away from the server's clock")


def _resolve(resolve_key: KeyResolver[T], key_id: str) -> ResolvedKey[T]:
    try:
        resolved = resolve_key(key_id)
    except SignatureError:
        raise
    except LookupError:
        raise UnknownKey("keyId matches no registered certificate") from None
    if resolved is None:
        raise UnknownKey("keyId matches no registered certificate")
    return resolved
