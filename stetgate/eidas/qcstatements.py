"""ASN.1 for the qcStatements extension as used by PSD2 certificates.

Neither ``cryptography`` nor ``asn1crypto`` knows these types, so they are declared
here, after ETSI TS 119 495 §5.1, ETSI EN 319 412-5 and RFC 3739 (checked with
``openssl asn1parse`` on test certificates)::

    qcStatements (1.3.6.1.5.5.7.1.3) ::= SEQUENCE OF QCStatement          -- RFC 3739 §3.2.6
    QCStatement ::= SEQUENCE { statementId OBJECT IDENTIFIER,
                               statementInfo ANY DEFINED BY statementId OPTIONAL }
    QcCompliance 0.4.0.1862.1.1 (no info)                                 -- EN 319 412-5 §4.2.1
    QcType       0.4.0.1862.1.6 ::= SEQUENCE OF OBJECT IDENTIFIER         -- EN 319 412-5 §4.2.3
    PSD2         0.4.0.19495.2  ::= PSD2QcType                            -- TS 119 495 §5.1
    PSD2QcType ::= SEQUENCE { rolesOfPSP RolesOfPSP, nCAName NCAName, nCAId NCAId }
    RolesOfPSP ::= SEQUENCE OF RoleOfPSP
    RoleOfPSP  ::= SEQUENCE { roleOfPspOid RoleOfPspOid, roleOfPspName RoleOfPspName }

The types are used on the raw extension bytes; nothing is registered globally in
asn1crypto (no import-time side effects).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from asn1crypto import core

from stetgate.eidas.model import Psd2Role, QcType

QC_STATEMENTS_OID = "1.3.6.1.5.5.7.1.3"
QC_COMPLIANCE_OID = "0.4.0.1862.1.1"
QC_TYPE_OID = "0.4.0.1862.1.6"
PSD2_STATEMENT_OID = "0.4.0.19495.2"


class RoleOfPsp(core.Sequence):  # type: ignore[misc]
    """ETSI TS 119 495 §5.1 RoleOfPSP."""

    _fields = [  # noqa: RUF012
        ("role_of_psp_oid", core.ObjectIdentifier),
        ("role_of_psp_name", core.UTF8String),
    ]


class RolesOfPsp(core.SequenceOf):  # type: ignore[misc]
    """ETSI TS 119 495 §5.1 RolesOfPSP."""

    _child_spec = RoleOfPsp


class Psd2QcType(core.Sequence):  # type: ignore[misc]
    """ETSI TS 119 495 §5.1 PSD2QcType (statementInfo of 0.4.0.19495.2)."""

    _fields = [  # noqa: RUF012
        ("roles_of_psp", RolesOfPsp),
        ("nca_name", core.UTF8String),
        ("nca_id", core.UTF8String),
    ]


class QcTypeOids(core.SequenceOf):  # type: ignore[misc]
    """ETSI EN 319 412-5 §4.2.3 QcType statementInfo: SEQUENCE OF OBJECT IDENTIFIER."""

    _child_spec = core.ObjectIdentifier


class QcStatement(core.Sequence):  # type: ignore[misc]
    """RFC 3739 §3.2.6 QCStatement; statementInfo decoded by statementId (dotted OID)."""

    _fields = [  # noqa: RUF012
        ("statement_id", core.ObjectIdentifier),
        ("statement_info", core.Any, {"optional": True}),
    ]
    _oid_pair = ("statement_id", "statement_info")
    _oid_specs = {QC_TYPE_OID: QcTypeOids, PSD2_STATEMENT_OID: Psd2QcType}  # noqa: RUF012


class QcStatements(core.SequenceOf):  # type: ignore[misc]
    """RFC 3739 §3.2.6 QCStatements."""

    _child_spec = QcStatement


@dataclass(frozen=True, slots=True)
class Psd2Statement:
    """Decoded PSD2QcType. ``role_oids`` keeps every OID, known or not; ``roles`` the
    ones this version understands. ``nca_id`` is the NCA's own id (e.g. ``FR-ACPR``),
    not the TPP's (which is in organizationIdentifier)."""

    role_oids: tuple[str, ...]
    nca_name: str
    nca_id: str

    @property
    def roles(self) -> frozenset[Psd2Role]:
        return frozenset(r for o in self.role_oids if (r := Psd2Role.from_oid(o)) is not None)


@dataclass(frozen=True, slots=True)
class DecodedQcStatements:
    """What the PSD2 checks need from qcStatements."""

    qc_compliance: bool
    qc_types: frozenset[QcType]
    psd2: Psd2Statement | None
    statement_ids: tuple[str, ...]


def decode_qc_statements(der: bytes) -> DecodedQcStatements:
    """Decode the extension value strictly (no trailing bytes, every PSD2/QcType field
    checked). Raises whatever asn1crypto raises on bad input; :mod:`parse` maps it
    to :class:`~stetgate.eidas.errors.MalformedQcStatements`."""
    statements = QcStatements.load(der, strict=True)
    compliance = False
    qc_types: set[QcType] = set()
    psd2: Psd2Statement | None = None
    ids: list[str] = []
    for st in statements:
        sid: str = st["statement_id"].dotted
        ids.append(sid)
        info = st["statement_info"]
        if sid == QC_COMPLIANCE_OID:
            compliance = True
        elif sid == QC_TYPE_OID:
            if not isinstance(info, QcTypeOids):
                raise ValueError("QcType statement has no statementInfo")
            for oid in info:
                t = QcType.from_oid(oid.dotted)
                if t is not None:
                    qc_types.add(t)
        elif sid == PSD2_STATEMENT_OID:
            if psd2 is not None:
                raise ValueError("more than one PSD2 statement")
            if not isinstance(info, Psd2QcType):
                raise ValueError("PSD2 statement has no PSD2QcType statementInfo")
            role_oids = tuple(role["role_of_psp_oid"].dotted for role in info["roles_of_psp"])
            for role in info["roles_of_psp"]:
                _ = role["role_of_psp_name"].native  # force decoding: must be a UTF8String
            nca_name: str = info["nca_name"].native
            nca_id: str = info["nca_id"].native
            if not (1 <= len(nca_name) <= 256 and 1 <= len(nca_id) <= 256):
                raise ValueError("nCAName/nCAId must be 1..256 characters")
            psd2 = Psd2Statement(role_oids=role_oids, nca_name=nca_name, nca_id=nca_id)
    return DecodedQcStatements(
        qc_compliance=compliance,
        qc_types=frozenset(qc_types),
        psd2=psd2,
        statement_ids=tuple(ids),
    )


def encode_psd2_statement(roles: Iterable[Psd2Role], nca_name: str, nca_id: str) -> QcStatement:
    """Build the PSD2 QCStatement (ETSI TS 119 495 §5.1). Roles are emitted in OID order."""
    ordered = sorted(set(roles), key=lambda r: r.oid)
    info = Psd2QcType(
        {
            "roles_of_psp": RolesOfPsp(
                [
                    RoleOfPsp({"role_of_psp_oid": r.oid, "role_of_psp_name": r.etsi_name})
                    for r in ordered
                ]
            ),
            "nca_name": nca_name,
            "nca_id": nca_id,
        }
    )
    return QcStatement({"statement_id": PSD2_STATEMENT_OID, "statement_info": info})


def encode_qc_statements(
    *,
    qc_compliance: bool = True,
    qc_types: Iterable[QcType] = (),
    psd2_roles: Iterable[Psd2Role] | None = None,
    nca_name: str = "",
    nca_id: str = "",
) -> bytes:
    """DER of a qcStatements extension value for the test QTSP.

    ``psd2_roles=None`` omits the PSD2 statement (to build bad certificates);
    an empty iterable emits a PSD2 statement with no role.
    """
    items: list[QcStatement] = []
    if qc_compliance:
        items.append(QcStatement({"statement_id": QC_COMPLIANCE_OID}))
    types = list(qc_types)
    if types:
        items.append(
            QcStatement(
                {
                    "statement_id": QC_TYPE_OID,
                    "statement_info": QcTypeOids([t.value for t in types]),
                }
            )
        )
    if psd2_roles is not None:
        items.append(encode_psd2_statement(psd2_roles, nca_name, nca_id))
    der: bytes = QcStatements(items).dump(force=True)
    return der


__all__ = [
    "PSD2_STATEMENT_OID",
    "QC_COMPLIANCE_OID",
    "QC_STATEMENTS_OID",
    "QC_TYPE_OID",
    "DecodedQcStatements",
    "Psd2QcType",
    "Psd2Statement",
    "QcStatement",
    "QcStatements",
    "QcTypeOids",
    "RoleOfPsp",
    "RolesOfPsp",
    "decode_qc_statements",
    "encode_psd2_statement",
    "encode_qc_statements",
]
