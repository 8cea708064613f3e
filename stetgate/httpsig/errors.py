"""Errors raised while checking an HTTP signature or a ``Digest`` header.

Every failure is a :class:`SignatureError` with a stable machine ``reason`` (for logs, metrics and
tests) and a human message (safe to return to the TPP: it never contains key material). The HTTP
layer answers any of them with 401 (docs/decisions.md#http-signatures); it does not need to
tell the subclasses apart.
"""

from __future__ import annotations

from typing import ClassVar


class SignatureError(Exception):
    """Base class: the request's signature, or its digest, is not acceptable."""

    reason: ClassVar[str] = "invalid_signature"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __repr__(self) -> str:
        return f"{type(self).__name__}(reason={self.reason!r}, message={self.message!r})"


class MissingSignature(SignatureError):
    """No ``Signature`` header on a request that must be signed."""

    reason = "missing_signature"


class MalformedSignature(SignatureError):
    """The ``Signature`` header does not parse (draft-cavage-12 §2.1, §2.2, §4.1)."""

    reason = "malformed_signature"


class UnsupportedAlgorithm(SignatureError):
    """Algorithm other than ``rsa-sha256``, or the key bound to ``keyId`` is not RSA-2048+."""

    reason = "unsupported_algorithm"


class MissingSignedHeader(SignatureError):
    """A header our policy requires is not signed, or a signed header is absent.

    ``header`` names it (lower case), so the TPP can fix its signer.
    """

    reason = "missing_signed_header"

    def __init__(self, header: str, message: str | None = None) -> None:
        super().__init__(message or f"header {header!r} must be present and signed")
        self.header = header


class MissingDigest(SignatureError):
    """The request has a body but no ``Digest`` header (RFC 3230 §4.3.2)."""

    reason = "missing_digest"


class MalformedDigest(SignatureError):
    """The ``Digest`` header is garbage, or lacks the ``SHA-256`` instance digest."""

    reason = "malformed_digest"


class DigestMismatch(SignatureError):
    """The ``SHA-256`` instance digest does not match the body received."""

    reason = "digest_mismatch"


class StaleDate(SignatureError):
    """Signed ``Date`` is not an HTTP-date or is outside the clock skew; or ``created`` is in
    the future / ``expires`` in the past (draft-cavage-12 §2.1.4-5)."""

    reason = "stale_date"


class UnknownKey(SignatureError):
    """``keyId`` matches none of the TPP's registered QSealC certificates."""

    reason = "unknown_key"


class BadSignature(SignatureError):
    """The RSASSA-PKCS1-v1_5 / SHA-256 signature does not verify over the signing string."""

    reason = "bad_signature"
