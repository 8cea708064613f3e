"""Value types for eIDAS PSD2 certificates (ETSI TS 119 495, ETSI EN 319 412-5).

A TPP is known by the organizationIdentifier in its certificate subject and by the
PSD2 roles in its qcStatements (docs/decisions.md#client-identification). Roles are decided
by OID (``roleOfPspOid``), never by the informative ``roleOfPspName`` string, because
ETSI TS 119 495 §5.1 makes the OID normative and the name only descriptive.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from enum import Enum
from typing import Literal

from stetgate.eidas.errors import InvalidOrganizationIdentifier, RoleAbsent

Purpose = Literal["qwac", "qsealc"]
"""How a certificate is used: QWAC for mutual TLS, QSealC for HTTP signatures."""


class Psd2Role(Enum):
    """PSD2 role of a payment service provider, ETSI TS 119 495 §5.1 (id-psd2-role)."""

    PSP_AS = "0.4.0.19495.1.1"  # account servicing (ASPSP)
    PSP_PI = "0.4.0.19495.1.2"  # payment initiation (PISP)
    PSP_AI = "0.4.0.19495.1.3"  # account information (AISP)
    PSP_IC = "0.4.0.19495.1.4"  # card-based payment instrument issuing (CBPII)

    @property
    def oid(self) -> str:
        """Dotted OID (the value that decides the role)."""
        return self.value

    @property
    def etsi_name(self) -> str:
        """The ``roleOfPspName`` string ETSI TS 119 495 §5.1 pairs with the OID."""
        return self.name

    @classmethod
    def from_oid(cls, oid: str) -> Psd2Role | None:
        """The role for a ``roleOfPspOid``, or None for an OID this version does not know."""
        return _ROLE_BY_OID.get(oid)

    @classmethod
    def from_name(cls, name: str) -> Psd2Role:
        """Accept ``AISP``/``CBPII``/``PISP``/``ASPSP`` (STET wording) or
        ``PSP_AI``-style ETSI names, case-insensitively. Raises ``ValueError``."""
        key = name.strip().upper()
        role = ROLE_BY_SERVICE_NAME.get(key)
        if role is not None:
            return role
        try:
            return cls[key]
        except KeyError:
            raise ValueError(f"unknown PSD2 role name {name!r}") from None


_ROLE_BY_OID: dict[str, Psd2Role] = {r.value: r for r in Psd2Role}

ROLE_BY_SERVICE_NAME: dict[str, Psd2Role] = {
    "ASPSP": Psd2Role.PSP_AS,
    "PISP": Psd2Role.PSP_PI,
    "AISP": Psd2Role.PSP_AI,
    "CBPII": Psd2Role.PSP_IC,
}
"""PSD2 service names (as in docs/decisions.md#scopes-and-roles) to ETSI roles."""


class QcType(Enum):
    """ETSI EN 319 412-5 §4.2.3 QcType: what kind of qualified certificate this is."""

    ESIGN = "0.4.0.1862.1.6.1"  # natural person signature; not used by PSD2 TPPs
    ESEAL = "0.4.0.1862.1.6.2"  # legal person seal: QSealC
    WEB = "0.4.0.1862.1.6.3"  # website authentication: QWAC

    @classmethod
    def from_oid(cls, oid: str) -> QcType | None:
        """The QcType for an OID, or None when unknown."""
        return _QC_TYPE_BY_OID.get(oid)


_QC_TYPE_BY_OID: dict[str, QcType] = {t.value: t for t in QcType}

REQUIRED_QC_TYPE: dict[str, QcType] = {"qwac": QcType.WEB, "qsealc": QcType.ESEAL}
"""ETSI TS 119 495 §4/§5: a QWAC is a ``web`` certificate, a QSealC an ``eseal``."""

_ORG_ID = re.compile(r"PSD([A-Z]{2})-([A-Z]{2,8})-([!-~]+)")


@dataclass(frozen=True, slots=True)
class OrganizationIdentifier:
    """ETSI TS 119 495 §5.2.1 semantics identifier: ``PSD`` + ISO 3166 country +
    ``-`` + 2-8 upper-case letters NCA id + ``-`` + PSP id, e.g. ``PSDFR-ACPR-12345``."""

    value: str
    country: str
    nca: str
    psp_id: str

    @property
    def nca_id(self) -> str:
        """The NCA identifier in the form used in the PSD2 statement, e.g. ``FR-ACPR``."""
        return f"{self.country}-{self.nca}"

    @classmethod
    def parse(cls, value: str) -> OrganizationIdentifier:
        """Parse and check the format; raises :class:`InvalidOrganizationIdentifier`."""
        m = _ORG_ID.fullmatch(value)
        if m is None:
            raise InvalidOrganizationIdentifier(
                f"organizationIdentifier {value!r} is not 'PSD' + 2-letter country + '-' + "
                "2-8 upper-case letters NCA id + '-' + PSP id (ETSI TS 119 495 §5.2.1), "
                "e.g. 'PSDFR-ACPR-12345'"
            )
        return cls(value=value, country=m.group(1), nca=m.group(2), psp_id=m.group(3))


@dataclass(frozen=True, slots=True)
class Psd2Certificate:
    """What stetgate needs to know about a parsed QWAC or QSealC.

    Parsing guarantees the PSD2 statement and a well-formed organizationIdentifier;
    it does not say the certificate is trusted — that is
    :meth:`stetgate.eidas.validation.CertificateValidator.validate`'s job.
    """

    der: bytes
    organization_identifier: str
    organization_name: str
    common_name: str | None
    roles: frozenset[Psd2Role]
    nca_name: str
    nca_id: str
    qc_types: frozenset[QcType]
    not_before: datetime
    not_after: datetime
    serial_hex: str
    issuer_dn: str
    subject_dn: str
    thumbprint_s256: str
    crl_urls: tuple[str, ...]
    qc_compliance: bool = False
    key_usage: frozenset[str] = frozenset()
    extended_key_usage: frozenset[str] = frozenset()
    dns_names: tuple[str, ...] = ()

    @property
    def org_id(self) -> OrganizationIdentifier:
        """The organizationIdentifier split into its parts."""
        return OrganizationIdentifier.parse(self.organization_identifier)

    def has_role(self, role: Psd2Role) -> bool:
        """True when the PSD2 statement grants ``role`` (by OID)."""
        return role in self.roles


def require_role(cert: Psd2Certificate, role: Psd2Role | str) -> None:
    """Raise :class:`RoleAbsent` unless ``cert`` carries ``role``
    (docs/decisions.md#scopes-and-roles).

    ``role`` may be a :class:`Psd2Role` or a service name such as ``"AISP"``.
    """
    wanted = role if isinstance(role, Psd2Role) else Psd2Role.from_name(role)
    if wanted not in cert.roles:
        held = ", ".join(sorted(r.name for r in cert.roles)) or "none"
        raise RoleAbsent(
            f"certificate of {cert.organization_identifier} does not carry PSD2 role "
            f"{wanted.name} ({wanted.oid}); roles present: {held}"
        )


__all__ = [
    "REQUIRED_QC_TYPE",
    "ROLE_BY_SERVICE_NAME",
    "OrganizationIdentifier",
    "Psd2Certificate",
    "Psd2Role",
    "Purpose",
    "QcType",
    "require_role",
]
