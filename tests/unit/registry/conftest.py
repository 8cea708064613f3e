"""A session-wide test PKI for the registry rules: TPPs of two organizations and certificates
the register API must refuse (expired, revoked, foreign CA, no PSD2 role)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from stetgate.eidas import Psd2Certificate, parse_certificate
from stetgate.eidas.qtsp import generate_rsa_key
from stetgate.eidas.validation import CertificateValidator
from tests.support.pki import TestPki, TppCerts

ORG_A = "PSDFR-ACPR-12345"
ORG_B = "PSDBE-NBB-0999888777"


@dataclass(frozen=True)
class RegistryPki:
    pki: TestPki
    tpp_a: TppCerts
    tpp_b: TppCerts
    expired: TppCerts
    revoked: TppCerts
    foreign: TppCerts
    roleless: TppCerts


@pytest.fixture(scope="session")
def registry_pki(tmp_path_factory: pytest.TempPathFactory) -> RegistryPki:
    pki = TestPki(tmp_path_factory.mktemp("registry-pki"))
    keys: dict[str, Any] = {"qwac_key": generate_rsa_key(), "qsealc_key": generate_rsa_key()}
    past = pki.clock.now() - timedelta(days=400)
    revoked = pki.issue(ORG_A, fresh=True, **keys)
    pki.revoke(revoked.qsealc_pem)
    return RegistryPki(
        pki=pki,
        tpp_a=pki.issue(ORG_A, ("AISP", "CBPII"), "Budget Insight Test"),
        tpp_b=pki.issue(ORG_B, ("AISP",), "Other PSP"),
        expired=pki.issue(ORG_A, not_before=past, not_after=past + timedelta(days=30), **keys),
        revoked=revoked,
        foreign=pki.issue(ORG_A, foreign=True, **keys),
        roleless=pki.issue(ORG_A, roles=(), **keys),
    )


@pytest.fixture(scope="session")
def validator(registry_pki: RegistryPki) -> Iterator[CertificateValidator]:
    pki = registry_pki.pki
    validator = CertificateValidator.from_folders(pki.trust_dir, pki.crl_dir, poll_seconds=0)
    yield validator
    validator.close()


def psd2(pem: Path) -> Psd2Certificate:
    return parse_certificate(pem.read_bytes())
