"""Digest header (RFC 3230 §4.3.2, SHA-256 from RFC 5843) against the body received."""

from __future__ import annotations

import base64
import hashlib

import pytest

from stetgate.httpsig import (
    DigestMismatch,
    MalformedDigest,
    MissingDigest,
    compute_digest,
    verify_digest,
)
from stetgate.httpsig.digest import MAX_DIGEST_HEADER_LENGTH

BODY = b'{"hello": "world"}'
SHA256 = "SHA-256=X48E9qOokqqrvdts8nOJRJN3OWDUoyWxBf7kbu9DBPE="
"""The Digest of draft-cavage-12 Appendix C's request body, as published there."""
SHA512 = "SHA-512=" + base64.b64encode(hashlib.sha512(BODY).digest()).decode()


def test_digest_of_the_draft_appendix_body_is_the_published_value() -> None:
    assert compute_digest(BODY) == SHA256


def test_digest_of_an_empty_body_is_sha256_of_nothing() -> None:
    assert compute_digest(b"") == "SHA-256=47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU="


@pytest.mark.parametrize(
    "header",
    [
        SHA256,
        SHA256.replace("SHA-256", "sha-256"),
        f"{SHA256}, {SHA512}",
        f"{SHA512},{SHA256}",
        f"MD5=Sd/dVLAcvNLSq16eXua5uQ==, {SHA256}",
        f"  {SHA256}\t",
    ],
)
def test_digest_listing_sha256_that_matches_is_accepted(header: str) -> None:
    verify_digest(header, BODY)


def test_body_changed_by_one_byte_is_a_mismatch() -> None:
    with pytest.raises(DigestMismatch) as caught:
        verify_digest(SHA256, BODY.replace(b"world", b"World"))

    assert caught.value.reason == "digest_mismatch"


def test_wrong_sha512_beside_a_right_sha256_is_a_mismatch() -> None:
    wrong = "SHA-512=" + base64.b64encode(hashlib.sha512(b"other").digest()).decode()

    with pytest.raises(DigestMismatch):
        verify_digest(f"{SHA256}, {wrong}", BODY)


def test_digest_of_a_truncated_hash_is_a_mismatch() -> None:
    with pytest.raises(DigestMismatch):
        verify_digest(
            "SHA-256=" + base64.b64encode(hashlib.sha256(BODY).digest()[:16]).decode(), BODY
        )


@pytest.mark.parametrize("header", [None, "", "   "])
def test_absent_digest_is_refused(header: str | None) -> None:
    with pytest.raises(MissingDigest):
        verify_digest(header, BODY)


@pytest.mark.parametrize(
    "header",
    [
        pytest.param("MD5=Sd/dVLAcvNLSq16eXua5uQ==", id="only-md5"),
        pytest.param(SHA512, id="only-sha512"),
        pytest.param("SHA-257=" + SHA256[8:], id="unknown-algorithm"),
        pytest.param("SHA256=" + SHA256[8:], id="misspelled-algorithm"),
        pytest.param(f"{SHA256}, {SHA256}", id="sha256-twice"),
        pytest.param("SHA-256", id="no-value"),
        pytest.param("SHA-256=", id="empty-value"),
        pytest.param("=abc", id="no-algorithm"),
        pytest.param("SHA-256=not base64!", id="bad-base64"),
        pytest.param("SHA-256=X48E9qOokqqrvdts8nOJRJN3OWDUoyWxBf7kbu9DBPE", id="bad-padding"),
        pytest.param("SHA-256=é", id="non-ascii"),
        pytest.param(f"{SHA256},", id="trailing-comma"),
        pytest.param(f"{SHA256}; q=1", id="parameters"),
        pytest.param(SHA256 + ", x=" + "a" * MAX_DIGEST_HEADER_LENGTH, id="too-long"),
    ],
)
def test_garbage_or_incomplete_digest_is_refused(header: str) -> None:
    with pytest.raises(MalformedDigest):
        verify_digest(header, BODY)
