"""Parse a QWAC/QSealC into a :class:`~stetgate.eidas.model.Psd2Certificate`.

``cryptography`` reads the X.509 structure (RFC 5280 §4.1) and the subject's
organizationIdentifier (ETSI TS 119 495 §5.2.1); the small asn1crypto types in
:mod:`stetgate.eidas.qcstatements` read the qcStatements extension (RFC 3739 §3.2.6,
ETSI EN 319 412-5 §4, ETSI TS 119 495 §5.1). Parsing does not establish trust: see
:mod:`stetgate.eidas.validation`.

Certificates arrive from the network (mTLS proxy header, registration API), so any
input either parses or raises a :class:`~stetgate.eidas.errors.CertificateError`
subclass — never another exception type.
"""

from __future__ import annotations

import base64
import functools
import hashlib

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import NameOID, ObjectIdentifier

from stetgate.eidas.errors import (
    CertificateError,
    InvalidOrganizationIdentifier,
    MalformedCertificate,
    MalformedQcStatements,
    MissingOrganizationIdentifier,
    MissingPsd2Statement,
)
from stetgate.eidas.model import OrganizationIdentifier, Psd2Certificate
from stetgate.eidas.qcstatements import (
    QC_STATEMENTS_OID,
    DecodedQcStatements,
    decode_qc_statements,
)

_QC_STATEMENTS = ObjectIdentifier(QC_STATEMENTS_OID)
_DN_NAMES = {NameOID.ORGANIZATION_IDENTIFIER: "organizationIdentifier"}
_PEM_MARK = b"-----BEGIN"

_KU_FLAGS = (
    ("digital_signature", "digital_signature"),
    ("content_commitment", "non_repudiation"),
    ("key_encipherment", "key_encipherment"),
    ("data_encipherment", "data_encipherment"),
    ("key_agreement", "key_agreement"),
    ("key_cert_sign", "key_cert_sign"),
    ("crl_sign", "crl_sign"),
)
"""cryptography KeyUsage attribute -> asn1crypto/pyhanko name (RFC 5280 §4.2.1.3)."""


def thumbprint_s256(der: bytes) -> str:
    """RFC 8705 §3.1 ``x5t#S256``: base64url (no padding) SHA-256 of the DER certificate."""
    return base64.urlsafe_b64encode(hashlib.sha256(der).digest()).rstrip(b"=").decode("ascii")


def load_x509(pem_or_der: bytes) -> x509.Certificate:
    """Load one certificate from PEM (first block) or DER; raises :class:`MalformedCertificate`."""
    if not isinstance(pem_or_der, bytes | bytearray | memoryview):
        raise MalformedCertificate(f"certificate must be bytes, not {type(pem_or_der).__name__}")
    data = bytes(pem_or_der)
    try:
        if _PEM_MARK in data[:256]:
            return x509.load_pem_x509_certificate(data)
        return x509.load_der_x509_certificate(data)
    except Exception as exc:  # cryptography raises ValueError and friends on garbage
        raise MalformedCertificate(f"not a well-formed X.509 certificate: {exc}") from exc


def parse_certificate(pem_or_der: bytes) -> Psd2Certificate:
    """Parse a PSD2 QWAC or QSealC (PEM or DER).

    Raises :class:`MalformedCertificate`, :class:`MissingOrganizationIdentifier`,
    :class:`InvalidOrganizationIdentifier`, :class:`MissingPsd2Statement` or
    :class:`MalformedQcStatements` — and nothing else.

    A TPP presents the same certificate on every request, so successful results are
    kept in a bounded LRU keyed by the input bytes (the result is immutable); only
    the first sight of a certificate pays the full parse.
    """
    if not isinstance(pem_or_der, bytes):
        if not isinstance(pem_or_der, bytearray | memoryview):
            raise MalformedCertificate(
                f"certificate must be bytes, not {type(pem_or_der).__name__}"
            )
        pem_or_der = bytes(pem_or_der)
    return _parse_cached(pem_or_der)


def parse_certificate_uncached(pem_or_der: bytes) -> Psd2Certificate:
    """:func:`parse_certificate` without the LRU (benchmarks, tests)."""
    cert = load_x509(pem_or_der)
    der = None if _PEM_MARK in pem_or_der[:256] else bytes(pem_or_der)
    try:
        return _extract(cert, der)
    except CertificateError:
        raise
    except Exception as exc:  # lazily-decoded fields of a hostile certificate
        raise MalformedCertificate(f"certificate fields cannot be decoded: {exc}") from exc


_parse_cached = functools.lru_cache(maxsize=4096)(parse_certificate_uncached)


@functools.lru_cache(maxsize=1024)
def _decode_qc_cached(raw: bytes) -> DecodedQcStatements:
    """qcStatements bytes repeat across certificates (same roles, same NCA): decoding
    them once saves most of the parse time."""
    return decode_qc_statements(raw)


def _extract(cert: x509.Certificate, der: bytes | None) -> Psd2Certificate:
    if der is None:
        der = cert.public_bytes(Encoding.DER)
    subject = cert.subject
    org_id = _single_string(subject, NameOID.ORGANIZATION_IDENTIFIER, "organizationIdentifier")
    if org_id is None:
        raise MissingOrganizationIdentifier(
            "certificate subject has no organizationIdentifier (2.5.4.97); "
            "ETSI TS 119 495 §5.2.1 requires it to identify the PSP"
        )
    OrganizationIdentifier.parse(org_id)
    org_name = _single_string(subject, NameOID.ORGANIZATION_NAME, "organizationName")
    if not org_name:
        raise MalformedCertificate(
            "certificate subject has no organizationName (O); a legal-person certificate "
            "must name the PSP (ETSI EN 319 412-3 §4.2.1)"
        )
    common_name = _single_string(subject, NameOID.COMMON_NAME, "commonName")

    extensions = cert.extensions
    try:
        qc_ext = extensions.get_extension_for_oid(_QC_STATEMENTS)
    except x509.ExtensionNotFound:
        raise MissingPsd2Statement(
            "certificate has no qcStatements extension (1.3.6.1.5.5.7.1.3), so no PSD2 "
            "statement (ETSI TS 119 495 §5.1)"
        ) from None
    raw = qc_ext.value.value if isinstance(qc_ext.value, x509.UnrecognizedExtension) else None
    if raw is None:
        raise MalformedQcStatements("qcStatements extension value is not raw DER")
    try:
        qc = _decode_qc_cached(raw)
    except Exception as exc:
        raise MalformedQcStatements(
            f"qcStatements extension does not decode as RFC 3739 / ETSI TS 119 495 §5.1 "
            f"ASN.1: {exc}"
        ) from exc
    if qc.psd2 is None:
        raise MissingPsd2Statement(
            "qcStatements has no PSD2 statement (0.4.0.19495.2, ETSI TS 119 495 §5.1); "
            f"statements present: {', '.join(qc.statement_ids) or 'none'}"
        )

    key_usage: frozenset[str] = frozenset()
    eku: frozenset[str] = frozenset()
    crl_urls: list[str] = []
    dns_names: tuple[str, ...] = ()
    for ext in extensions:
        value = ext.value
        if isinstance(value, x509.KeyUsage):
            key_usage = frozenset(name for attr, name in _KU_FLAGS if getattr(value, attr))
        elif isinstance(value, x509.ExtendedKeyUsage):
            eku = frozenset(oid.dotted_string for oid in value)
        elif isinstance(value, x509.CRLDistributionPoints):
            for dp in value:
                for gn in dp.full_name or ():
                    if isinstance(gn, x509.UniformResourceIdentifier):
                        crl_urls.append(gn.value)
        elif isinstance(value, x509.SubjectAlternativeName):
            dns_names = tuple(value.get_values_for_type(x509.DNSName))

    return Psd2Certificate(
        der=der,
        organization_identifier=org_id,
        organization_name=org_name,
        common_name=common_name,
        roles=qc.psd2.roles,
        nca_name=qc.psd2.nca_name,
        nca_id=qc.psd2.nca_id,
        qc_types=qc.qc_types,
        not_before=cert.not_valid_before_utc,
        not_after=cert.not_valid_after_utc,
        serial_hex=format(cert.serial_number, "x"),
        issuer_dn=cert.issuer.rfc4514_string(_DN_NAMES),
        subject_dn=subject.rfc4514_string(_DN_NAMES),
        thumbprint_s256=thumbprint_s256(der),
        crl_urls=tuple(crl_urls),
        qc_compliance=qc.qc_compliance,
        key_usage=key_usage,
        extended_key_usage=eku,
        dns_names=dns_names,
    )


def _single_string(name: x509.Name, oid: ObjectIdentifier, label: str) -> str | None:
    attrs = name.get_attributes_for_oid(oid)
    if not attrs:
        return None
    if len(attrs) > 1:
        if oid == NameOID.ORGANIZATION_IDENTIFIER:
            raise InvalidOrganizationIdentifier(
                f"certificate subject has {len(attrs)} organizationIdentifier attributes; "
                "exactly one is allowed"
            )
        raise MalformedCertificate(f"certificate subject has {len(attrs)} {label} attributes")
    value = attrs[0].value
    if not isinstance(value, str):
        raise MalformedCertificate(f"subject {label} is not a character string")
    return value


__all__ = ["load_x509", "parse_certificate", "parse_certificate_uncached", "thumbprint_s256"]
