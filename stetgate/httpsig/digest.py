"""The ``Digest`` header (RFC 3230) that binds a request body to its HTTP signature.

STET signs the ``Digest`` header, not the body (docs/decisions.md#http-signatures): the
signature only protects the body if we recompute ``SHA-256=<base64>`` over the exact bytes
received and compare.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac

from stetgate.httpsig.errors import DigestMismatch, MalformedDigest, MissingDigest

MAX_DIGEST_HEADER_LENGTH = 1024
"""A header listing every registered algorithm fits easily; anything longer is an attack."""

_VERIFIED_ALGORITHMS = {"sha-256": hashlib.sha256, "sha-512": hashlib.sha512}
"""Algorithms we recompute. SHA-256 is mandatory; SHA-512, when also sent, must match too."""

_IGNORED_ALGORITHMS = frozenset(
    {"md5", "sha", "unixsum", "unixcksum", "adler32", "crc32c", "id-sha-256", "id-sha-512"}
)
"""The rest of the IANA "HTTP Digest Algorithm Values" registry: tolerated, never trusted."""


def compute_digest(body: bytes) -> str:
    """Return the ``Digest`` header value for ``body``: ``SHA-256=<base64 of sha256(body)>``.

    RFC 3230 §4.3.2 instance-digest with the RFC 5843 ``SHA-256`` algorithm and standard
    base64 (RFC 4648 §4), which is what STET banks expect.
    """
    return "SHA-256=" + base64.b64encode(hashlib.sha256(body).digest()).decode("ascii")


def verify_digest(header: str | None, body: bytes) -> None:
    """Check the ``Digest`` header against the body as received, or raise.

    RFC 3230 §4.3.2 allows several comma-separated instance digests; algorithm names are
    case-insensitive (§4.1.1). We require exactly one ``SHA-256`` entry and compare it in constant
    time; a ``SHA-512`` entry must match as well; other registered algorithms are ignored; anything
    unregistered or unparsable is refused rather than skipped, so a garbled header is never
    mistaken for a good one.

    Raises:
        MissingDigest: ``header`` is None or blank.
        MalformedDigest: garbage, unknown algorithm, duplicate algorithm, or no ``SHA-256``.
        DigestMismatch: a verified digest differs from the body's.
    """
    if header is None or not header.strip():
        raise MissingDigest("a Digest header (SHA-256=<base64>) is required with a request body")
    if len(header) > MAX_DIGEST_HEADER_LENGTH:
        raise MalformedDigest("Digest header is too long")
    provided: dict[str, bytes] = {}
    for item in header.split(","):
        name, sep, value = item.strip(" \t").partition("=")
        algorithm = name.lower()
        if not sep or not name or not value:
            raise MalformedDigest("Digest header entries must read <algorithm>=<value>")
        if algorithm in _IGNORED_ALGORITHMS:
            continue
        if algorithm not in _VERIFIED_ALGORITHMS:
            raise MalformedDigest("Digest header names an unknown algorithm")
        if algorithm in provided:
            raise MalformedDigest(f"Digest header lists {name} twice")
        try:
            provided[algorithm] = base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError):
            raise MalformedDigest(f"Digest {name} value is not base64") from None
    if "sha-256" not in provided:
        raise MalformedDigest("Digest header must contain SHA-256=<base64>")
    for algorithm, expected in provided.items():
        actual = _VERIFIED_ALGORITHMS[algorithm](body).digest()
        if not hmac.compare_digest(actual, expected):
            raise DigestMismatch("Digest header does not match the request body")
