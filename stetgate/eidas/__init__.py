"""eIDAS PSD2 certificates: model, parser, offline validator and a test QTSP.

ETSI TS 119 495 profiles of QWACs (mutual TLS) and QSealCs (HTTP signatures):
:func:`parse_certificate` reads one into a :class:`Psd2Certificate`;
:class:`CertificateValidator` checks chain, validity, CRL revocation, QcType and
key usage; :mod:`stetgate.eidas.qtsp` issues test certificates and CRLs.
"""

from stetgate.eidas.crl_store import CrlSnapshot, CrlStore
from stetgate.eidas.errors import (
    CertificateError,
    CertificateExpired,
    CertificateNotYetValid,
    CertificateRevoked,
    InvalidCertificateChain,
    InvalidKeyUsage,
    InvalidOrganizationIdentifier,
    MalformedCertificate,
    MalformedQcStatements,
    MissingOrganizationIdentifier,
    MissingPsd2Statement,
    RevocationUnavailable,
    RoleAbsent,
    UnknownIssuer,
    WrongCertificateType,
)
from stetgate.eidas.model import (
    ROLE_BY_SERVICE_NAME,
    OrganizationIdentifier,
    Psd2Certificate,
    Psd2Role,
    Purpose,
    QcType,
    require_role,
)
from stetgate.eidas.parse import parse_certificate, thumbprint_s256
from stetgate.eidas.trust import TrustStore
from stetgate.eidas.validation import CertificateValidator, check_purpose

__all__ = [
    "ROLE_BY_SERVICE_NAME",
    "CertificateError",
    "CertificateExpired",
    "CertificateNotYetValid",
    "CertificateRevoked",
    "CertificateValidator",
    "CrlSnapshot",
    "CrlStore",
    "InvalidCertificateChain",
    "InvalidKeyUsage",
    "InvalidOrganizationIdentifier",
    "MalformedCertificate",
    "MalformedQcStatements",
    "MissingOrganizationIdentifier",
    "MissingPsd2Statement",
    "OrganizationIdentifier",
    "Psd2Certificate",
    "Psd2Role",
    "Purpose",
    "QcType",
    "RevocationUnavailable",
    "RoleAbsent",
    "TrustStore",
    "UnknownIssuer",
    "WrongCertificateType",
    "check_purpose",
    "parse_certificate",
    "require_role",
    "thumbprint_s256",
]
