"""Typed failures of eIDAS PSD2 certificate parsing and validation.

Every failure is a :class:`CertificateError` carrying a stable machine code in
``reason`` (for logs, metrics and the mapping to OAuth/STET errors done by the
HTTP layer) and a human message that says exactly what is wrong with the
certificate. Callers catch ``CertificateError`` once; nothing else escapes the
parser or the validator.
"""

from __future__ import annotations


class CertificateError(Exception):
    """Base class: the certificate cannot be used. ``reason`` is a stable code."""

    reason: str = "certificate_error"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __repr__(self) -> str:
        return f"{type(self).__name__}(reason={self.reason!r}, message={self.message!r})"


class MalformedCertificate(CertificateError):
    """The bytes are not a well-formed X.509 v3 certificate (RFC 5280 §4.1)."""

    reason = "malformed_certificate"


class MissingOrganizationIdentifier(CertificateError):
    """The subject has no organizationIdentifier (2.5.4.97), required by
    ETSI TS 119 495 §5.2.1 to identify the PSP."""

    reason = "missing_organization_identifier"


class InvalidOrganizationIdentifier(CertificateError):
    """organizationIdentifier is not ``PSD`` + country + ``-`` + NCA id + ``-`` + PSP id
    (ETSI TS 119 495 §5.2.1)."""

    reason = "invalid_organization_identifier"


class MissingPsd2Statement(CertificateError):
    """No qcStatements extension, or no PSD2 statement (0.4.0.19495.2) in it
    (ETSI TS 119 495 §5.1)."""

    reason = "missing_psd2_statement"


class MalformedQcStatements(CertificateError):
    """The qcStatements extension does not decode as RFC 3739 §3.2.6 /
    ETSI EN 319 412-5 §4 / ETSI TS 119 495 §5.1 ASN.1."""

    reason = "malformed_qc_statements"


class RoleAbsent(CertificateError):
    """The certificate's PSD2 roles (ETSI TS 119 495 §5.1) do not include the one
    the operation needs."""

    reason = "role_absent"


class CertificateExpired(CertificateError):
    """The validation time is after notAfter (RFC 5280 §4.1.2.5)."""

    reason = "certificate_expired"


class CertificateNotYetValid(CertificateError):
    """The validation time is before notBefore (RFC 5280 §4.1.2.5)."""

    reason = "certificate_not_yet_valid"


class CertificateRevoked(CertificateError):
    """The issuing QTSP's CRL lists the certificate (RFC 5280 §5.3.1)."""

    reason = "certificate_revoked"


class UnknownIssuer(CertificateError):
    """No certification path to a trusted QTSP anchor (RFC 5280 §6.1)."""

    reason = "unknown_issuer"


class InvalidCertificateChain(CertificateError):
    """A path to a trusted anchor exists but fails RFC 5280 §6.1 path validation
    for another reason (constraints, algorithms, ...)."""

    reason = "invalid_certificate_chain"


class InvalidKeyUsage(CertificateError):
    """keyUsage / extendedKeyUsage (RFC 5280 §4.2.1.3, §4.2.1.12) do not allow the
    purpose (TLS client authentication for a QWAC, signing for a QSealC)."""

    reason = "invalid_key_usage"


class RevocationUnavailable(CertificateError):
    """No fresh CRL covers the certificate (missing, or past nextUpdate,
    RFC 5280 §5.1.2.5). PSD2 validation must hard-fail rather than assume good."""

    reason = "revocation_unavailable"


class WrongCertificateType(CertificateError):
    """The ETSI EN 319 412-5 §4.2.3 QcType (or QcCompliance, §4.2.1) does not match
    the use: a QWAC must be ``web``, a QSealC ``eseal``."""

    reason = "wrong_certificate_type"
