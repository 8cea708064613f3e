"""parse_certificate: ETSI TS 119 495 fields, and nothing but CertificateError on bad input."""

from __future__ import annotations

import base64
import contextlib
import hashlib
from datetime import UTC
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from stetgate.eidas import (
    CertificateError,
    InvalidOrganizationIdentifier,
    MalformedCertificate,
    MalformedQcStatements,
    MissingOrganizationIdentifier,
    MissingPsd2Statement,
    OrganizationIdentifier,
    Psd2Role,
    QcType,
    RoleAbsent,
    parse_certificate,
    require_role,
)
from stetgate.eidas.parse import parse_certificate_uncached
from stetgate.eidas.qcstatements import (
    PSD2_STATEMENT_OID,
    Psd2QcType,
    QcStatement,
    QcStatements,
    RoleOfPsp,
    RolesOfPsp,
    decode_qc_statements,
    encode_qc_statements,
)
from tests.unit.eidas.conftest import ORG_ID, Issue, load

AI, PI, AS, IC = Psd2Role.PSP_AI, Psd2Role.PSP_PI, Psd2Role.PSP_AS, Psd2Role.PSP_IC


def _der(path: Path) -> bytes:
    return x509.load_pem_x509_certificate(path.read_bytes()).public_bytes(Encoding.DER)


# --------------------------------------------------------------------------- roles


@pytest.mark.parametrize(
    ("roles", "expected"),
    [
        ({"AISP"}, {AI}),
        ({"CBPII"}, {IC}),
        ({"AISP", "CBPII"}, {AI, IC}),
        ({"ASPSP", "PISP", "AISP", "CBPII"}, {AS, PI, AI, IC}),
        (set(), set()),
    ],
    ids=["aisp", "cbpii", "aisp+cbpii", "all-four", "none"],
)
def test_roles_in_psd2_statement_are_read_for_each_combination(
    issue: Issue, roles: set[str], expected: set[Psd2Role]
) -> None:
    tpp = issue(roles)
    assert load(tpp.qwac_pem).roles == frozenset(expected)
    assert load(tpp.qsealc_pem).roles == frozenset(expected)


def _qc_with_roles(pairs: list[tuple[str, str]]) -> bytes:
    info = Psd2QcType(
        {
            "roles_of_psp": RolesOfPsp(
                [RoleOfPsp({"role_of_psp_oid": o, "role_of_psp_name": n}) for o, n in pairs]
            ),
            "nca_name": "ACPR",
            "nca_id": "FR-ACPR",
        }
    )
    items = [QcStatement({"statement_id": PSD2_STATEMENT_OID, "statement_info": info})]
    der: bytes = QcStatements(items).dump(force=True)
    return der


def test_role_is_decided_by_oid_not_by_the_name_string(issue: Issue) -> None:
    tpp = issue(qc_statements_der=_qc_with_roles([(AI.oid, "PSP_IC")]))
    assert load(tpp.qwac_pem).roles == frozenset({AI})


def test_unknown_role_oid_grants_no_role(issue: Issue) -> None:
    tpp = issue(qc_statements_der=_qc_with_roles([("0.4.0.19495.1.99", "PSP_AI")]))
    assert load(tpp.qwac_pem).roles == frozenset()


def test_certificate_without_cbpii_role_is_refused_for_cbpii(issue: Issue) -> None:
    cert = load(issue({"AISP"}).qwac_pem)
    require_role(cert, "AISP")
    with pytest.raises(RoleAbsent, match=r"PSP_IC.*roles present: PSP_AI"):
        require_role(cert, Psd2Role.PSP_IC)


def test_certificate_with_no_role_is_refused_for_every_role(issue: Issue) -> None:
    cert = load(issue(set()).qwac_pem)
    for role in Psd2Role:
        with pytest.raises(RoleAbsent, match="roles present: none"):
            require_role(cert, role)


def test_service_names_map_to_etsi_roles() -> None:
    assert Psd2Role.from_name("AISP") is AI
    assert Psd2Role.from_name("cbpii") is IC
    assert Psd2Role.from_name("PISP") is PI
    assert Psd2Role.from_name("ASPSP") is AS
    assert Psd2Role.from_name("PSP_IC") is IC
    with pytest.raises(ValueError, match="unknown PSD2 role"):
        Psd2Role.from_name("BANK")


# --------------------------------------------------------------------------- qcStatements


def test_qwac_has_qctype_web_and_qsealc_has_qctype_eseal(issue: Issue) -> None:
    tpp = issue()
    qwac, qsealc = load(tpp.qwac_pem), load(tpp.qsealc_pem)
    assert qwac.qc_types == frozenset({QcType.WEB})
    assert qsealc.qc_types == frozenset({QcType.ESEAL})
    assert qwac.qc_compliance and qsealc.qc_compliance


def test_nca_name_and_id_come_from_the_psd2_statement(issue: Issue) -> None:
    cert = load(issue(org_id="PSDBE-NBB-0123456789").qwac_pem)
    assert (cert.nca_name, cert.nca_id) == ("NBB", "BE-NBB")
    assert cert.org_id.country == "BE"
    assert cert.org_id.psp_id == "0123456789"


def test_certificate_without_qc_statements_is_refused(issue: Issue) -> None:
    tpp = issue(include_qc_statements=False)
    with pytest.raises(MissingPsd2Statement, match="no qcStatements extension"):
        load(tpp.qwac_pem)


def test_qc_statements_without_psd2_statement_is_refused(issue: Issue) -> None:
    tpp = issue(include_psd2_statement=False)
    with pytest.raises(MissingPsd2Statement, match=r"no PSD2 statement.*0\.4\.0\.1862\.1\.6"):
        load(tpp.qsealc_pem)


_VALID_QC = encode_qc_statements(
    qc_types=[QcType.WEB], psd2_roles=[AI], nca_name="ACPR", nca_id="FR-ACPR"
)


@pytest.mark.parametrize(
    "garbage",
    [
        b"\xff\xff\xff",
        b"\x30\x03\x02\x01\x00",  # SEQUENCE OF with an INTEGER instead of QCStatement
        b"",
        _VALID_QC[:-3],  # truncated
        _VALID_QC + b"\x00\x00",  # trailing bytes
        b"\x04\x03abc",  # OCTET STRING
        # PSD2 statement whose info is an INTEGER
        b"\x30\x0d\x30\x0b\x06\x06\x04\x00\x81\x98\x27\x02\x02\x01\x05",
    ],
    ids=["ff", "int-in-seq", "empty", "truncated", "trailing", "octets", "psd2-int"],
)
def test_garbage_inside_qc_statements_is_malformed(issue: Issue, garbage: bytes) -> None:
    tpp = issue(qc_statements_der=garbage)
    with pytest.raises(MalformedQcStatements, match="does not decode"):
        load(tpp.qwac_pem)


def test_psd2_statement_with_empty_nca_name_is_malformed() -> None:
    der = encode_qc_statements(psd2_roles=[AI], nca_name="", nca_id="FR-ACPR")
    with pytest.raises(ValueError, match="nCAName"):
        decode_qc_statements(der)


def test_two_psd2_statements_are_malformed(issue: Issue) -> None:
    one = QcStatements.load(_VALID_QC)
    twice = QcStatements([*one, one[-1]]).dump(force=True)
    with pytest.raises(MalformedQcStatements, match="more than one PSD2 statement"):
        load(issue(qc_statements_der=twice).qwac_pem)


# --------------------------------------------------------------------------- organizationIdentifier


def test_certificate_without_organization_identifier_is_refused(issue: Issue) -> None:
    tpp = issue(include_organization_identifier=False)
    with pytest.raises(MissingOrganizationIdentifier, match=r"2\.5\.4\.97"):
        load(tpp.qwac_pem)


@pytest.mark.parametrize(
    "bad",
    [
        "ACPR-12345",
        "PSDFRA-ACPR-1",
        "psdfr-acpr-12345",
        "PSDFR-acpr-12345",
        "PSDfr-ACPR-12345",
        "PSDFR-A-12345",
        "PSDFR-ABCDEFGHI-12345",
        "PSDFR-ACPR-",
        "PSDFR-ACPR-12 345",
        "PSDFRACPR12345",
        "NTRFR-ACPR-12345",
        "PSD-FR-ACPR-12345",
    ],
)
def test_malformed_organization_identifier_is_refused(issue: Issue, bad: str) -> None:
    tpp = issue(org_id=bad)
    with pytest.raises(InvalidOrganizationIdentifier, match=r"ETSI TS 119 495 §5\.2\.1"):
        load(tpp.qwac_pem)


@pytest.mark.parametrize(
    "good", ["PSDFR-ACPR-12345", "PSDBE-NBB-0123456789", "PSDDE-BAFIN-123456", "PSDLU-CSSF-Z1"]
)
def test_well_formed_organization_identifier_is_split(good: str) -> None:
    oid = OrganizationIdentifier.parse(good)
    assert f"PSD{oid.country}-{oid.nca}-{oid.psp_id}" == good


# --------------------------------------------------------------------------- other fields


def test_fields_of_a_qwac(issue: Issue, qtsp_dir: Path) -> None:
    tpp = issue()
    der = _der(tpp.qwac_pem)
    cert = parse_certificate(der)
    assert cert.der == der
    assert cert.organization_identifier == ORG_ID
    assert cert.organization_name == "Test TPP SAS"
    assert cert.common_name == "tpp.example.fr"
    assert cert.dns_names == ("tpp.example.fr",)
    assert cert.serial_hex == tpp.qwac_serial_hex
    assert cert.issuer_dn == "CN=stetgate Test QTSP Root CA,O=stetgate Test QTSP,C=FR"
    assert "organizationIdentifier=PSDFR-ACPR-12345" in cert.subject_dn
    assert cert.crl_urls == ("http://127.0.0.1:8000/crl/qtsp.crl",)
    assert cert.not_before.tzinfo is UTC and cert.not_after > cert.not_before
    assert cert.key_usage == frozenset({"digital_signature", "key_encipherment"})
    assert cert.extended_key_usage == frozenset({"1.3.6.1.5.5.7.3.2", "1.3.6.1.5.5.7.3.1"})


def test_thumbprint_is_rfc8705_x5t_s256_for_pem_and_der(issue: Issue) -> None:
    tpp = issue()
    der = _der(tpp.qwac_pem)
    expected = base64.urlsafe_b64encode(hashlib.sha256(der).digest()).rstrip(b"=").decode()
    assert parse_certificate(der).thumbprint_s256 == expected
    assert parse_certificate(tpp.qwac_pem.read_bytes()).thumbprint_s256 == expected
    assert "=" not in expected


def test_certificate_without_organization_name_is_malformed(issue: Issue, keys: object) -> None:
    from stetgate.eidas.qtsp import build_leaf, load_authority

    tpp = issue()
    authority = load_authority(tpp.qwac_pem.parent.parent / "qtsp-data")
    source = x509.load_pem_x509_certificate(tpp.qwac_pem.read_bytes())
    subject = x509.Name([a for a in source.subject if a.oid != x509.oid.NameOID.ORGANIZATION_NAME])
    cert = build_leaf(
        authority,
        source.public_key(),
        subject,
        profile="qwac",
        not_before=source.not_valid_before_utc,
        not_after=source.not_valid_after_utc,
        qc_statements_der=_VALID_QC,
    )
    with pytest.raises(MalformedCertificate, match="no organizationName"):
        parse_certificate(cert.public_bytes(Encoding.DER))


@pytest.mark.parametrize(
    "data",
    [b"", b"hello", b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n", b"\x30"],
)
def test_garbage_is_a_malformed_certificate(data: bytes) -> None:
    with pytest.raises(MalformedCertificate, match=r"not a well-formed X\.509"):
        parse_certificate(data)


def test_non_bytes_input_is_a_malformed_certificate() -> None:
    with pytest.raises(MalformedCertificate, match="must be bytes"):
        parse_certificate("-----BEGIN CERTIFICATE-----")  # type: ignore[arg-type]


# --------------------------------------------------------------------------- fuzzing

_FUZZ = settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


@_FUZZ
@given(st.binary(max_size=2048))
def test_random_bytes_raise_only_certificate_error(data: bytes) -> None:
    with contextlib.suppress(CertificateError):
        parse_certificate_uncached(data)


@_FUZZ
@given(data=st.data())
def test_mutated_der_raises_only_certificate_error(issue: Issue, data: st.DataObject) -> None:
    der = _mutation_base(issue)
    mutated = bytearray(der)
    for _ in range(data.draw(st.integers(1, 8), label="mutations")):
        kind = data.draw(st.sampled_from(["flip", "cut", "insert", "delete"]), label="kind")
        pos = data.draw(st.integers(0, max(len(mutated) - 1, 0)), label="pos")
        if kind == "flip" and mutated:
            mutated[pos] ^= data.draw(st.integers(1, 255), label="xor")
        elif kind == "cut":
            del mutated[pos:]
        elif kind == "insert":
            mutated[pos:pos] = data.draw(st.binary(min_size=1, max_size=8), label="ins")
        elif mutated:
            del mutated[pos]
    with contextlib.suppress(CertificateError):
        parse_certificate_uncached(bytes(mutated))


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.binary(max_size=200))
def test_certificate_with_random_qc_statements_raises_only_certificate_error(
    issue: Issue, data: bytes
) -> None:
    pem = issue(qc_statements_der=data).qwac_pem.read_bytes()
    with contextlib.suppress(CertificateError):
        parse_certificate_uncached(pem)


_BASE: dict[str, bytes] = {}


def _mutation_base(issue: Issue) -> bytes:
    if "der" not in _BASE:
        _BASE["der"] = _der(issue().qwac_pem)
    return _BASE["der"]
