"""The test QTSP issues ETSI TS 119 495 profiles and RFC 5280 CRLs."""

from __future__ import annotations

import ipaddress
import json
import stat
from datetime import timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, ExtensionOID

from stetgate.eidas.qcstatements import QC_STATEMENTS_OID
from stetgate.eidas.qtsp import (
    QtspPaths,
    init_qtsp,
    issue_foreign_ca,
    publish_crl,
    revoke,
)
from tests.unit.eidas.conftest import NOW, Issue, Keys


def _cert(path: Path) -> x509.Certificate:
    return x509.load_pem_x509_certificate(path.read_bytes())


def _crl(qtsp_dir: Path) -> x509.CertificateRevocationList:
    return x509.load_der_x509_crl((qtsp_dir / "crl" / "qtsp.crl").read_bytes())


def test_init_creates_ca_trust_copy_crl_and_server_certificate(qtsp_dir: Path) -> None:
    p = QtspPaths(qtsp_dir)
    for path in (p.ca_pem, p.ca_key, p.config, p.crl, p.server_pem, p.server_key):
        assert path.is_file(), path
    assert (p.trust_dir / "ca.pem").read_bytes() == p.ca_pem.read_bytes()
    assert stat.S_IMODE(p.ca_key.stat().st_mode) == 0o600
    assert stat.S_IMODE(p.server_key.stat().st_mode) == 0o600
    ca = _cert(p.ca_pem)
    assert ca.subject.rfc4514_string().startswith("CN=stetgate Test QTSP Root CA")
    assert ca.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    crl = _crl(qtsp_dir)
    assert len(crl) == 0
    assert crl.next_update_utc == NOW + timedelta(days=7)
    assert json.loads(p.config.read_text())["crl_base_url"] == "http://127.0.0.1:8000/crl"


def test_init_is_idempotent_and_never_replaces_the_ca(qtsp_dir: Path) -> None:
    p = QtspPaths(qtsp_dir)
    before = p.ca_pem.read_bytes(), p.ca_key.read_bytes(), p.crl.read_bytes()
    info = init_qtsp(qtsp_dir, ["localhost"], "http://other.example/crl", now=NOW)
    assert not info.created
    assert (p.ca_pem.read_bytes(), p.ca_key.read_bytes(), p.crl.read_bytes()) == before
    assert info.crl_url == "http://127.0.0.1:8000/crl/qtsp.crl"


def test_server_certificate_names_every_hostname_for_server_auth(qtsp_dir: Path) -> None:
    cert = _cert(QtspPaths(qtsp_dir).server_pem)
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == ["localhost"]
    assert san.get_values_for_type(x509.IPAddress) == [ipaddress.ip_address("127.0.0.1")]
    eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(eku) == [ExtendedKeyUsageOID.SERVER_AUTH]
    assert cert.issuer == _cert(QtspPaths(qtsp_dir).ca_pem).subject


def test_qwac_profile(issue: Issue, qtsp_dir: Path) -> None:
    tpp = issue()
    cert = _cert(tpp.qwac_pem)
    ca = _cert(QtspPaths(qtsp_dir).ca_pem)
    ku = cert.extensions.get_extension_for_class(x509.KeyUsage)
    assert ku.critical and ku.value.digital_signature and ku.value.key_encipherment
    assert not ku.value.content_commitment
    eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert set(eku) == {ExtendedKeyUsageOID.CLIENT_AUTH, ExtendedKeyUsageOID.SERVER_AUTH}
    aki = cert.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier).value
    ski = ca.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    assert aki.key_identifier == ski.digest
    cdp = cert.extensions.get_extension_for_class(x509.CRLDistributionPoints).value
    assert cdp[0].full_name == [
        x509.UniformResourceIdentifier("http://127.0.0.1:8000/crl/qtsp.crl")
    ]
    qc = cert.extensions.get_extension_for_oid(x509.ObjectIdentifier(QC_STATEMENTS_OID))
    assert not qc.critical
    cert.verify_directly_issued_by(ca)


def test_qsealc_profile_is_rsa_2048_without_eku(issue: Issue) -> None:
    cert = _cert(issue().qsealc_pem)
    key = cert.public_key()
    assert isinstance(key, rsa.RSAPublicKey) and key.key_size == 2048
    ku = cert.extensions.get_extension_for_class(x509.KeyUsage).value
    assert ku.digital_signature and ku.content_commitment and not ku.key_encipherment
    with pytest.raises(x509.ExtensionNotFound):
        cert.extensions.get_extension_for_oid(ExtensionOID.EXTENDED_KEY_USAGE)


def test_private_keys_are_written_0600(issue: Issue) -> None:
    tpp = issue()
    for path in (tpp.qwac_key, tpp.qsealc_key):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_serials_are_random(issue: Issue) -> None:
    a, b = issue(), issue()
    serials = {a.qwac_serial_hex, a.qsealc_serial_hex, b.qwac_serial_hex, b.qsealc_serial_hex}
    assert len(serials) == 4
    assert all(len(s) >= 30 for s in serials)


def test_revoke_lists_the_serial_with_its_reason_and_bumps_the_crl_number(
    issue: Issue, qtsp_dir: Path
) -> None:
    tpp = issue()
    number_before = _crl(qtsp_dir).extensions.get_extension_for_class(x509.CRLNumber).value
    revoke(qtsp_dir, tpp.qwac_pem, now=NOW + timedelta(hours=2))
    crl = _crl(qtsp_dir)
    entry = crl.get_revoked_certificate_by_serial_number(int(tpp.qwac_serial_hex, 16))
    assert entry is not None
    reason = entry.extensions.get_extension_for_class(x509.CRLReason).value.reason
    assert reason is x509.ReasonFlags.key_compromise
    number = crl.extensions.get_extension_for_class(x509.CRLNumber).value
    assert number.crl_number == number_before.crl_number + 1
    assert crl.last_update_utc == NOW + timedelta(hours=2)
    assert crl.next_update_utc == NOW + timedelta(days=7, hours=2)
    assert crl.is_signature_valid(_cert(QtspPaths(qtsp_dir).ca_pem).public_key())  # type: ignore[arg-type]
    recorded = json.loads(QtspPaths(qtsp_dir).revoked.read_text())
    assert tpp.qwac_serial_hex in recorded


def test_revoking_a_certificate_of_another_ca_is_refused(
    issue: Issue, qtsp_dir: Path, tmp_path: Path, keys: Keys
) -> None:
    foreign = tmp_path / "foreign"
    issue_foreign_ca(foreign, now=NOW, ca_key=keys.foreign_ca)
    tpp = issue(data_dir=foreign)
    with pytest.raises(ValueError, match="not by this QTSP"):
        revoke(qtsp_dir, tpp.qwac_pem, now=NOW)


def test_unknown_revocation_reason_is_refused(issue: Issue, qtsp_dir: Path) -> None:
    with pytest.raises(ValueError, match="unknown CRL reason"):
        revoke(qtsp_dir, issue().qwac_pem, "stolen", now=NOW)


def test_publish_crl_refreshes_next_update_and_keeps_revocations(
    issue: Issue, qtsp_dir: Path
) -> None:
    tpp = issue()
    revoke(qtsp_dir, tpp.qsealc_pem, now=NOW)
    publish_crl(qtsp_dir, now=NOW + timedelta(days=6))
    crl = _crl(qtsp_dir)
    assert crl.next_update_utc == NOW + timedelta(days=13)
    assert crl.get_revoked_certificate_by_serial_number(int(tpp.qsealc_serial_hex, 16))
    assert not list((qtsp_dir / "crl").glob(".*"))  # no temp file left behind
