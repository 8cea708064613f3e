"""Fetching one CRL or one OCSP response, and checking it before anyone relies on it.

* Where: only URLs written in a certificate that a trusted CA issued (the CRL distribution
  point, RFC 5280 §4.2.1.13, and the AIA ``id-ad-ocsp`` access location, §4.2.2.1), and only
  ``http``/``https`` — the certificate's bytes choose the URL, so anything else (``file:``,
  ``ldap:``, userinfo) is refused, and redirects are not followed (a 3xx is a failure).
* How much: a byte limit read as a stream, and one timeout for connect and read.
* What: a CRL must name its issuer and carry that issuer's valid signature and a nextUpdate
  (RFC 5280 §5.1.2.3-5); an OCSP response must be ``successful``, answer for this very
  certificate (CertID: issuer key hash and serial, RFC 6960 §4.1.1) and be signed by the issuer
  or by a responder certificate the issuer gave ``id-kp-OCSPSigning`` (§4.2.2.2).

Path validation checks the signatures again (pyhanko-certvalidator); checking them here keeps
junk and forgeries out of the folder every worker reads.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime, timedelta
from urllib.parse import urlsplit

import httpx
from asn1crypto import keys
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.x509 import ocsp
from cryptography.x509.oid import AuthorityInformationAccessOID, ExtendedKeyUsageOID

CLOCK_SKEW = timedelta(minutes=5)
"""How far in the future a thisUpdate may be (the QTSP's clock against ours)."""


class RevocationFetchError(Exception):
    """A CRL or OCSP response could not be fetched or was not acceptable; the message says
    which URL and why (never the body)."""


@dataclass(frozen=True, slots=True)
class FetchLimits:
    timeout_seconds: float
    max_bytes: int


def crl_urls(cert: x509.Certificate) -> list[str]:
    """The ``http(s)`` full names of the certificate's CRL distribution points."""
    try:
        dps = cert.extensions.get_extension_for_class(x509.CRLDistributionPoints).value
    except x509.ExtensionNotFound:
        return []
    out: list[str] = []
    for dp in dps:
        for name in dp.full_name or ():
            if isinstance(name, x509.UniformResourceIdentifier) and allowed_url(name.value):
                out.append(name.value)
    return out


def ocsp_urls(cert: x509.Certificate) -> list[str]:
    """The ``http(s)`` OCSP responders named in the certificate's AIA extension."""
    try:
        aia = cert.extensions.get_extension_for_class(x509.AuthorityInformationAccess).value
    except x509.ExtensionNotFound:
        return []
    return [
        d.access_location.value
        for d in aia
        if d.access_method == AuthorityInformationAccessOID.OCSP
        and isinstance(d.access_location, x509.UniformResourceIdentifier)
        and allowed_url(d.access_location.value)
    ]


def allowed_url(url: str) -> bool:
    """``http``/``https`` with a host, no userinfo, no fragment."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return False
    return (
        parts.scheme in ("http", "https")
        and bool(parts.hostname)
        and "@" not in parts.netloc
        and not parts.fragment
    )


def download(
    client: httpx.Client,
    url: str,
    limits: FetchLimits,
    *,
    body: bytes | None = None,
    content_type: str | None = None,
) -> bytes:
    """GET ``url`` (POST ``body`` when given), at most ``limits.max_bytes``, no redirects."""
    if not allowed_url(url):
        raise RevocationFetchError(f"{url!r}: only http and https URLs are fetched")
    headers = {"content-type": content_type} if content_type else {}
    try:
        with client.stream(
            "POST" if body is not None else "GET",
            url,
            content=body,
            headers=headers,
            timeout=limits.timeout_seconds,
            follow_redirects=False,
        ) as response:
            if response.status_code != 200:
                raise RevocationFetchError(f"{url}: HTTP {response.status_code}")
            declared = response.headers.get("content-length")
            if declared is not None and declared.isdigit() and int(declared) > limits.max_bytes:
                raise RevocationFetchError(
                    f"{url}: {declared} bytes announced, more than {limits.max_bytes}"
                )
            chunks: list[bytes] = []
            size = 0
            for chunk in response.iter_bytes():
                size += len(chunk)
                if size > limits.max_bytes:
                    raise RevocationFetchError(f"{url}: more than {limits.max_bytes} bytes")
                chunks.append(chunk)
    except httpx.TimeoutException as exc:
        raise RevocationFetchError(f"{url}: timed out ({type(exc).__name__})") from exc
    except httpx.HTTPError as exc:
        raise RevocationFetchError(f"{url}: {type(exc).__name__}: {exc}") from exc
    return b"".join(chunks)


def verified_crl(
    data: bytes, issuer: x509.Certificate, now: datetime, url: str
) -> x509.CertificateRevocationList:
    """The CRL in ``data`` if ``issuer`` signed it and it is current enough to store."""
    try:
        crl = (
            x509.load_pem_x509_crl(data)
            if data.lstrip().startswith(b"-----BEGIN")
            else x509.load_der_x509_crl(data)
        )
    except ValueError as exc:
        raise RevocationFetchError(f"{url}: not a CRL ({exc})") from exc
    if crl.issuer != issuer.subject:
        raise RevocationFetchError(
            f"{url}: CRL issued by {crl.issuer.rfc4514_string()}, expected "
            f"{issuer.subject.rfc4514_string()}"
        )
    if not crl.is_signature_valid(issuer.public_key()):  # type: ignore[arg-type]
        raise RevocationFetchError(f"{url}: CRL signature does not verify with the issuer's key")
    if crl.next_update_utc is None:
        raise RevocationFetchError(f"{url}: CRL without nextUpdate (RFC 5280 §5.1.2.5)")
    if crl.last_update_utc > now + CLOCK_SKEW:
        raise RevocationFetchError(f"{url}: CRL thisUpdate {crl.last_update_utc} is in the future")
    return crl


def ocsp_request(cert: x509.Certificate, issuer: x509.Certificate) -> bytes:
    """A DER OCSP request for ``cert`` (SHA-1 CertID, what RFC 5019 §2.1.1 responders expect)."""
    builder = ocsp.OCSPRequestBuilder().add_certificate(cert, issuer, hashes.SHA1())  # noqa: S303
    return builder.build().public_bytes(serialization.Encoding.DER)


def verified_ocsp(
    data: bytes,
    cert: x509.Certificate,
    issuer: x509.Certificate,
    now: datetime,
    url: str,
) -> ocsp.OCSPResponse:
    """The OCSP response in ``data`` if it answers for ``cert`` and is signed as RFC 6960
    §4.2.2.2 requires."""
    try:
        response = ocsp.load_der_ocsp_response(data)
    except ValueError as exc:
        raise RevocationFetchError(f"{url}: not an OCSP response ({exc})") from exc
    if response.response_status != ocsp.OCSPResponseStatus.SUCCESSFUL:
        raise RevocationFetchError(f"{url}: OCSP status {response.response_status.name}")
    if response.serial_number != cert.serial_number or response.issuer_key_hash != _key_hash(
        issuer, response.hash_algorithm
    ):
        raise RevocationFetchError(f"{url}: OCSP response is for another certificate")
    signer = _ocsp_signer(response, issuer, now, url)
    try:
        _verify_signature(
            signer.public_key(),
            response.signature,
            response.tbs_response_bytes,
            response.signature_hash_algorithm,
        )
    except InvalidSignature as exc:
        raise RevocationFetchError(f"{url}: OCSP signature does not verify") from exc
    if response.this_update_utc > now + CLOCK_SKEW:
        raise RevocationFetchError(f"{url}: OCSP thisUpdate is in the future")
    if response.next_update_utc is None:
        raise RevocationFetchError(f"{url}: OCSP response without nextUpdate")
    return response


def _ocsp_signer(
    response: ocsp.OCSPResponse, issuer: x509.Certificate, now: datetime, url: str
) -> x509.Certificate:
    if _responder_is(response, issuer):
        return issuer
    for candidate in response.certificates:
        if not _responder_is(response, candidate):
            continue
        try:
            candidate.verify_directly_issued_by(issuer)
        except (ValueError, TypeError, InvalidSignature) as exc:
            raise RevocationFetchError(
                f"{url}: OCSP responder certificate not issued by the certificate's issuer"
            ) from exc
        try:
            eku = candidate.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
        except x509.ExtensionNotFound:
            eku = x509.ExtendedKeyUsage([])
        if ExtendedKeyUsageOID.OCSP_SIGNING not in eku:
            raise RevocationFetchError(f"{url}: OCSP responder certificate lacks id-kp-OCSPSigning")
        if not candidate.not_valid_before_utc <= now <= candidate.not_valid_after_utc:
            raise RevocationFetchError(f"{url}: OCSP responder certificate is not valid now")
        return candidate
    raise RevocationFetchError(f"{url}: OCSP response signed by an unknown responder")


def _responder_is(response: ocsp.OCSPResponse, cert: x509.Certificate) -> bool:
    if response.responder_name is not None:
        return response.responder_name == cert.subject
    key = cert.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    spki = _subject_public_key_bits(key)
    return response.responder_key_hash == hashlib.sha1(spki).digest()  # noqa: S324


def _key_hash(issuer: x509.Certificate, algorithm: hashes.HashAlgorithm) -> bytes:
    spki = issuer.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    digest = hashes.Hash(algorithm)
    digest.update(_subject_public_key_bits(spki))
    return digest.finalize()


def _subject_public_key_bits(spki_der: bytes) -> bytes:
    """The BIT STRING contents of a SubjectPublicKeyInfo (what RFC 6960 §4.1.1 hashes)."""
    info = keys.PublicKeyInfo.load(spki_der)
    return bytes(info["public_key"].contents[1:])  # drop the unused-bits byte


def _verify_signature(
    key: object, signature: bytes, data: bytes, algorithm: hashes.HashAlgorithm | None
) -> None:
    if algorithm is None:
        raise InvalidSignature("no hash algorithm")
    if isinstance(key, rsa.RSAPublicKey):
        key.verify(signature, data, padding.PKCS1v15(), algorithm)
    elif isinstance(key, ec.EllipticCurvePublicKey):
        key.verify(signature, data, ec.ECDSA(algorithm))
    else:
        raise InvalidSignature(f"unsupported key type {type(key).__name__}")


__all__ = [
    "CLOCK_SKEW",
    "FetchLimits",
    "RevocationFetchError",
    "allowed_url",
    "crl_urls",
    "download",
    "ocsp_request",
    "ocsp_urls",
    "verified_crl",
    "verified_ocsp",
]
