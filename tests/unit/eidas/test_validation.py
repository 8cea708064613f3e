"""CertificateValidator: chain, validity, CRL revocation, QcType, key usage, and its cache."""

from __future__ import annotations

import asyncio
import dataclasses
import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from cryptography.x509.oid import ExtendedKeyUsageOID

from stetgate.eidas import (
    CertificateExpired,
    CertificateNotYetValid,
    CertificateRevoked,
    CertificateValidator,
    CrlStore,
    InvalidKeyUsage,
    MalformedCertificate,
    Psd2Certificate,
    Psd2Role,
    QcType,
    RevocationUnavailable,
    TrustStore,
    UnknownIssuer,
    WrongCertificateType,
)
from stetgate.eidas.qtsp import (
    DEFAULT_CA_NAME,
    OMIT,
    issue_foreign_ca,
    publish_crl,
    revoke,
)
from tests.unit.eidas.conftest import NOW, Issue, Keys, load

LATER = NOW + timedelta(hours=1)


# --------------------------------------------------------------------------- happy paths


def test_good_qwac_is_accepted_for_mtls(issue: Issue, validator: CertificateValidator) -> None:
    qwac = load(issue().qwac_pem)
    assert validator.validate(qwac, "qwac", NOW) is qwac


def test_good_qsealc_is_accepted_for_signatures(
    issue: Issue, validator: CertificateValidator
) -> None:
    qsealc = load(issue().qsealc_pem)
    assert validator.validate(qsealc, "qsealc", NOW) is qsealc


# --------------------------------------------------------------------------- wrong use


def test_qsealc_presented_as_qwac_is_refused(issue: Issue, validator: CertificateValidator) -> None:
    with pytest.raises(WrongCertificateType, match=r"QWAC must carry QcType web.*eseal"):
        validator.validate(load(issue().qsealc_pem), "qwac", NOW)


def test_qwac_used_as_qsealc_is_refused(issue: Issue, validator: CertificateValidator) -> None:
    with pytest.raises(WrongCertificateType, match=r"QSealC must carry QcType eseal.*web"):
        validator.validate(load(issue().qwac_pem), "qsealc", NOW)


def test_qsealc_with_web_qctype_still_lacks_client_auth_eku(
    issue: Issue, validator: CertificateValidator
) -> None:
    tpp = issue(qsealc_qc_types=(QcType.WEB,))
    with pytest.raises(InvalidKeyUsage, match="clientAuth"):
        validator.validate(load(tpp.qsealc_pem), "qwac", NOW)


def test_qwac_without_client_auth_eku_is_refused(
    issue: Issue, validator: CertificateValidator
) -> None:
    tpp = issue(qwac_extended_key_usage=[ExtendedKeyUsageOID.SERVER_AUTH])
    with pytest.raises(InvalidKeyUsage, match=r"clientAuth.*1\.3\.6\.1\.5\.5\.7\.3\.1"):
        validator.validate(load(tpp.qwac_pem), "qwac", NOW)


def test_qwac_without_any_eku_is_refused(issue: Issue, validator: CertificateValidator) -> None:
    tpp = issue(qwac_extended_key_usage=None)
    with pytest.raises(InvalidKeyUsage, match="EKU present: none"):
        validator.validate(load(tpp.qwac_pem), "qwac", NOW)


def test_qwac_with_eseal_qctype_is_refused(issue: Issue, validator: CertificateValidator) -> None:
    tpp = issue(qwac_qc_types=(QcType.ESEAL,))
    with pytest.raises(WrongCertificateType, match="QcType web"):
        validator.validate(load(tpp.qwac_pem), "qwac", NOW)


def test_certificate_without_qctype_is_refused(
    issue: Issue, validator: CertificateValidator
) -> None:
    tpp = issue(qwac_qc_types=())
    with pytest.raises(WrongCertificateType, match="QcType: none"):
        validator.validate(load(tpp.qwac_pem), "qwac", NOW)


def test_non_qualified_certificate_is_refused(
    issue: Issue, validator: CertificateValidator
) -> None:
    tpp = issue(qc_compliance=False)
    with pytest.raises(WrongCertificateType, match="no QcCompliance"):
        validator.validate(load(tpp.qwac_pem), "qwac", NOW)


def test_unknown_purpose_is_a_programming_error(
    issue: Issue, validator: CertificateValidator
) -> None:
    with pytest.raises(ValueError, match="purpose"):
        validator.validate(load(issue().qwac_pem), "tls", NOW)  # type: ignore[arg-type]


def test_hand_built_certificate_with_forged_roles_is_refused(
    issue: Issue, validator: CertificateValidator
) -> None:
    real = load(issue({"AISP"}).qwac_pem)
    forged = dataclasses.replace(real, roles=frozenset(Psd2Role))
    with pytest.raises(MalformedCertificate, match="do not match its DER"):
        validator.validate(forged, "qwac", NOW)


def test_naive_validation_time_is_a_programming_error(
    issue: Issue, validator: CertificateValidator
) -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        validator.validate(load(issue().qwac_pem), "qwac", NOW.replace(tzinfo=None))


# --------------------------------------------------------------------------- validity period


def test_expired_qwac_is_refused(issue: Issue, validator: CertificateValidator) -> None:
    tpp = issue(not_before=NOW - timedelta(days=400), not_after=NOW - timedelta(days=1))
    with pytest.raises(CertificateExpired, match="expired"):
        validator.validate(load(tpp.qwac_pem), "qwac", NOW)


def test_not_yet_valid_qwac_is_refused(issue: Issue, validator: CertificateValidator) -> None:
    tpp = issue(not_before=NOW + timedelta(days=1))
    with pytest.raises(CertificateNotYetValid, match="not valid until"):
        validator.validate(load(tpp.qwac_pem), "qwac", NOW)


def test_cached_acceptance_is_not_used_after_not_after(
    issue: Issue, validator: CertificateValidator
) -> None:
    qwac = load(issue(days=1).qwac_pem)
    validator.validate(qwac, "qwac", NOW)
    with pytest.raises(CertificateExpired):
        validator.validate(qwac, "qwac", qwac.not_after + timedelta(seconds=1))


# --------------------------------------------------------------------------- trust


def test_qwac_from_a_foreign_ca_is_refused(
    issue: Issue, validator: CertificateValidator, tmp_path: Path, keys: Keys
) -> None:
    foreign = tmp_path / "foreign"
    issue_foreign_ca(foreign, now=NOW, ca_key=keys.foreign_ca)
    tpp = issue(data_dir=foreign)
    with pytest.raises(UnknownIssuer, match="does not chain to a trusted QTSP"):
        validator.validate(load(tpp.qwac_pem), "qwac", NOW)


def test_qwac_from_a_look_alike_ca_with_the_trusted_name_is_refused(
    issue: Issue, validator: CertificateValidator, tmp_path: Path, keys: Keys
) -> None:
    fake = tmp_path / "look-alike"
    issue_foreign_ca(fake, ca_name=DEFAULT_CA_NAME, now=NOW, ca_key=keys.foreign_ca)
    tpp = issue(data_dir=fake)
    qwac = load(tpp.qwac_pem)
    assert "stetgate Test QTSP Root CA" in qwac.issuer_dn
    with pytest.raises(UnknownIssuer):
        validator.validate(qwac, "qwac", NOW)


def test_trust_store_bundle_holds_the_qtsp_ca(qtsp_dir: Path) -> None:
    store = TrustStore.from_folder(qtsp_dir / "trust")
    assert store.pem_bundle() == (qtsp_dir / "ca.pem").read_bytes()


def test_trust_folder_with_a_leaf_certificate_is_refused(issue: Issue, tmp_path: Path) -> None:
    folder = tmp_path / "bad-trust"
    folder.mkdir()
    (folder / "leaf.pem").write_bytes(issue().qwac_pem.read_bytes())
    with pytest.raises(ValueError, match="not a CA certificate"):
        TrustStore.from_folder(folder)


def test_empty_trust_folder_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"no \*\.pem"):
        TrustStore.from_folder(tmp_path)


# --------------------------------------------------------------------------- revocation


def test_revoked_qwac_is_refused_even_after_a_cached_acceptance(
    issue: Issue, validator: CertificateValidator, qtsp_dir: Path
) -> None:
    tpp = issue()
    qwac = load(tpp.qwac_pem)
    validator.validate(qwac, "qwac", NOW)
    revoke(qtsp_dir, tpp.qwac_pem, now=NOW)
    with pytest.raises(CertificateRevoked, match="compromised key"):
        validator.validate(qwac, "qwac", LATER)


def test_revoking_the_qsealc_leaves_the_qwac_valid(
    issue: Issue, validator: CertificateValidator, qtsp_dir: Path
) -> None:
    tpp = issue()
    revoke(qtsp_dir, tpp.qsealc_pem, "superseded", now=NOW)
    validator.validate(load(tpp.qwac_pem), "qwac", LATER)
    with pytest.raises(CertificateRevoked, match="supersession"):
        validator.validate(load(tpp.qsealc_pem), "qsealc", LATER)


def test_revoked_certificate_without_crl_distribution_point_is_still_refused(
    issue: Issue, validator: CertificateValidator, qtsp_dir: Path
) -> None:
    """revocation_mode='hard-fail' would accept this one
    (docs/decisions.md#revocation-checking-fails-closed)."""
    tpp = issue(crl_url=OMIT)
    qwac = load(tpp.qwac_pem)
    assert qwac.crl_urls == ()
    revoke(qtsp_dir, tpp.qwac_pem, now=NOW)
    with pytest.raises(CertificateRevoked):
        validator.validate(qwac, "qwac", LATER)


def test_stale_crl_makes_validation_fail_closed(
    issue: Issue, validator: CertificateValidator
) -> None:
    qwac = load(issue().qwac_pem)
    validator.validate(qwac, "qwac", NOW)  # cached until the CRL's nextUpdate
    with pytest.raises(RevocationUnavailable, match="not recent enough"):
        validator.validate(qwac, "qwac", NOW + timedelta(days=8))


def test_refreshed_crl_makes_validation_succeed_again(
    issue: Issue, validator: CertificateValidator, qtsp_dir: Path
) -> None:
    qwac = load(issue().qwac_pem)
    later = NOW + timedelta(days=8)
    with pytest.raises(RevocationUnavailable):
        validator.validate(qwac, "qwac", later)
    publish_crl(qtsp_dir, now=later)
    assert validator.validate(qwac, "qwac", later) is qwac


def test_missing_crl_makes_validation_fail_closed(
    issue: Issue, validator: CertificateValidator, qtsp_dir: Path
) -> None:
    (qtsp_dir / "crl" / "qtsp.crl").unlink()
    with pytest.raises(RevocationUnavailable, match="fails closed"):
        validator.validate(load(issue().qwac_pem), "qwac", NOW)


def test_unreadable_crl_file_makes_validation_fail_closed_and_says_why(
    issue: Issue, validator: CertificateValidator, qtsp_dir: Path
) -> None:
    (qtsp_dir / "crl" / "qtsp.crl").write_bytes(b"not a crl")
    with pytest.raises(RevocationUnavailable, match=r"unreadable CRL files: .*qtsp\.crl"):
        validator.validate(load(issue().qwac_pem), "qwac", NOW)


def test_crl_of_a_foreign_ca_does_not_cover_our_certificates(
    issue: Issue, validator: CertificateValidator, qtsp_dir: Path, tmp_path: Path, keys: Keys
) -> None:
    foreign = tmp_path / "foreign"
    issue_foreign_ca(foreign, now=NOW, ca_key=keys.foreign_ca)
    (qtsp_dir / "crl" / "qtsp.crl").unlink()
    os.replace(foreign / "crl" / "qtsp.crl", qtsp_dir / "crl" / "foreign.crl")
    with pytest.raises(RevocationUnavailable):
        validator.validate(load(issue().qwac_pem), "qwac", NOW)


def test_crl_folder_is_not_reread_before_poll_interval(issue: Issue, qtsp_dir: Path) -> None:
    clock = [0.0]
    validator = CertificateValidator(
        TrustStore.from_folder(qtsp_dir / "trust"),
        CrlStore(qtsp_dir / "crl", poll_seconds=2.0, monotonic=lambda: clock[0]),
    )
    tpp = issue()
    qwac = load(tpp.qwac_pem)
    validator.validate(qwac, "qwac", NOW)
    revoke(qtsp_dir, tpp.qwac_pem, now=NOW)
    clock[0] = 1.0
    validator.validate(qwac, "qwac", LATER)  # within the poll interval: old CRL
    clock[0] = 2.5
    with pytest.raises(CertificateRevoked):
        validator.validate(qwac, "qwac", LATER)
    validator.close()


def test_threads_validating_at_start_up_all_see_the_crls(
    issue: Issue, qtsp_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Handlers validate on a pool of threads: while the first one reads the CRL folder, the
    others must wait for it, not validate against the empty snapshot of before (which fails
    closed: "no revocation information")."""
    store = CrlStore(qtsp_dir / "crl", poll_seconds=2.0)
    slow_load = store._load

    def load_slowly(*args: Any) -> Any:
        time.sleep(0.05)
        return slow_load(*args)

    monkeypatch.setattr(store, "_load", load_slowly)
    validator = CertificateValidator(TrustStore.from_folder(qtsp_dir / "trust"), store)
    qwac = load(issue().qwac_pem)
    start = threading.Barrier(8)

    def validate() -> Psd2Certificate:
        start.wait()
        return validator.validate(qwac, "qwac", NOW)

    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(lambda _: validate(), range(8)))
    assert all(result is qwac or result == qwac for result in results)
    validator.close()


# --------------------------------------------------------------------------- cache


def test_cache_hit_does_not_run_path_validation(
    issue: Issue, validator: CertificateValidator, monkeypatch: pytest.MonkeyPatch
) -> None:
    qwac = load(issue().qwac_pem)
    validator.validate(qwac, "qwac", NOW)
    assert validator.path_validations == 1

    def boom(*args: object, **kwargs: object) -> None:
        raise AssertionError("pyhanko must not run on a cache hit")

    monkeypatch.setattr("stetgate.eidas.validation.ValidationContext", boom)
    for _ in range(3):
        assert validator.validate(qwac, "qwac", LATER) is qwac
    assert validator.path_validations == 1


def test_cache_is_per_purpose(issue: Issue, validator: CertificateValidator) -> None:
    qsealc = load(issue().qsealc_pem)
    validator.validate(qsealc, "qsealc", NOW)
    with pytest.raises(WrongCertificateType):
        validator.validate(qsealc, "qwac", NOW)


def test_cache_entry_is_not_used_before_it_was_known_valid(
    issue: Issue, validator: CertificateValidator
) -> None:
    qwac = load(issue(not_before=NOW).qwac_pem)
    validator.validate(qwac, "qwac", LATER)
    with pytest.raises(CertificateNotYetValid):
        validator.validate(qwac, "qwac", NOW - timedelta(seconds=1))


def test_cache_is_dropped_when_the_crl_changes(
    issue: Issue, validator: CertificateValidator, qtsp_dir: Path
) -> None:
    qwac = load(issue().qwac_pem)
    validator.validate(qwac, "qwac", NOW)
    validator.validate(qwac, "qwac", NOW)
    assert validator.path_validations == 1
    publish_crl(qtsp_dir, now=NOW)
    validator.validate(qwac, "qwac", LATER)
    assert validator.path_validations == 2


def test_failures_are_not_cached_as_acceptances(
    issue: Issue, validator: CertificateValidator
) -> None:
    qwac = load(issue(not_before=NOW + timedelta(days=1)).qwac_pem)
    for _ in range(2):
        with pytest.raises(CertificateNotYetValid):
            validator.validate(qwac, "qwac", NOW)


# --------------------------------------------------------------------------- async callers


def test_sync_validate_works_inside_a_running_event_loop(
    issue: Issue, validator: CertificateValidator
) -> None:
    qwac = load(issue().qwac_pem)

    async def handler() -> str:
        return validator.validate(qwac, "qwac", NOW).organization_identifier

    assert asyncio.run(handler()) == "PSDFR-ACPR-12345"


def test_concurrent_first_validations_of_one_certificate_run_pyhanko_once(
    issue: Issue, validator: CertificateValidator
) -> None:
    """Misses run one at a time (asn1crypto is not thread-safe) and a waiting miss re-checks
    the cache: a burst of threads with a new certificate validates it once."""
    qwac = load(issue().qwac_pem)
    start = threading.Barrier(8)

    def validate() -> Psd2Certificate:
        start.wait()
        return validator.validate(qwac, "qwac", NOW)

    for _ in range(3):
        validator.clear_cache()
        before = validator.path_validations
        with ThreadPoolExecutor(8) as pool:
            results = list(pool.map(lambda _: validate(), range(8)))
        assert all(result == qwac for result in results)
        assert validator.path_validations == before + 1


def test_validate_pem_parses_then_validates(issue: Issue, validator: CertificateValidator) -> None:
    tpp = issue()
    cert = validator.validate_pem(tpp.qwac_pem.read_bytes(), "qwac", NOW)
    assert cert.roles == frozenset({Psd2Role.PSP_AI, Psd2Role.PSP_IC})
    with pytest.raises(MalformedCertificate):
        validator.validate_pem(b"garbage", "qwac", NOW)


def test_refusal_is_remembered_without_running_path_validation_again(
    issue: Issue, validator: CertificateValidator, qtsp_dir: Path
) -> None:
    tpp = issue()
    qwac = load(tpp.qwac_pem)
    revoke(qtsp_dir, tpp.qwac_pem, now=NOW)
    with pytest.raises(CertificateRevoked):
        validator.validate(qwac, "qwac", LATER)
    runs = validator.path_validations
    for _ in range(3):
        with pytest.raises(CertificateRevoked, match="compromised key"):
            validator.validate(qwac, "qwac", LATER + timedelta(seconds=30))
    assert validator.path_validations == runs


def test_remembered_refusal_expires_and_is_checked_again(
    issue: Issue, validator: CertificateValidator, qtsp_dir: Path
) -> None:
    tpp = issue()
    qwac = load(tpp.qwac_pem)
    revoke(qtsp_dir, tpp.qwac_pem, now=NOW)
    with pytest.raises(CertificateRevoked):
        validator.validate(qwac, "qwac", LATER)
    runs = validator.path_validations
    with pytest.raises(CertificateRevoked):
        validator.validate(qwac, "qwac", LATER + timedelta(seconds=61))
    assert validator.path_validations == runs + 1


def test_remembered_refusal_is_dropped_when_the_crl_changes(
    issue: Issue, validator: CertificateValidator, qtsp_dir: Path
) -> None:
    qwac = load(issue(not_before=LATER).qwac_pem)
    with pytest.raises(CertificateNotYetValid):
        validator.validate(qwac, "qwac", NOW)
    publish_crl(qtsp_dir, now=NOW)
    runs = validator.path_validations
    with pytest.raises(CertificateNotYetValid):
        validator.validate(qwac, "qwac", NOW + timedelta(seconds=1))
    assert validator.path_validations == runs + 1
