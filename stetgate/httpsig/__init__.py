"""HTTP signatures (draft-cavage-http-signatures-12) and ``Digest`` (RFC 3230) as STET uses them.

Sign on the TPP side with :func:`sign_request`; verify on the bank side with
:func:`verify_request`, which pins ``rsa-sha256`` and enforces stetgate's signed-header policy.
"""

from stetgate.httpsig.cavage import (
    ALGORITHM,
    MAX_SIGNATURE_HEADER_LENGTH,
    HeaderInput,
    KeyResolver,
    ResolvedKey,
    SignatureParams,
    VerifiedSignature,
    build_signing_string,
    parse_signature_header,
    required_signed_headers,
    sign_request,
    verify_request,
)
from stetgate.httpsig.digest import compute_digest, verify_digest
from stetgate.httpsig.errors import (
    BadSignature,
    DigestMismatch,
    MalformedDigest,
    MalformedSignature,
    MissingDigest,
    MissingSignature,
    MissingSignedHeader,
    SignatureError,
    StaleDate,
    UnknownKey,
    UnsupportedAlgorithm,
)
from stetgate.httpsig.keyid import KeyIdForm, classify_key_id, parse_sn_ca_key_id

__all__ = [
    "ALGORITHM",
    "MAX_SIGNATURE_HEADER_LENGTH",
    "BadSignature",
    "DigestMismatch",
    "HeaderInput",
    "KeyIdForm",
    "KeyResolver",
    "MalformedDigest",
    "MalformedSignature",
    "MissingDigest",
    "MissingSignature",
    "MissingSignedHeader",
    "ResolvedKey",
    "SignatureError",
    "SignatureParams",
    "StaleDate",
    "UnknownKey",
    "UnsupportedAlgorithm",
    "VerifiedSignature",
    "build_signing_string",
    "classify_key_id",
    "compute_digest",
    "parse_signature_header",
    "parse_sn_ca_key_id",
    "required_signed_headers",
    "sign_request",
    "verify_digest",
    "verify_request",
]
