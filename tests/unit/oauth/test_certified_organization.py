"""`certified_organization`: who a client is by its QWAC, for the consent page."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from stetgate.eidas import parse_certificate
from stetgate.oauth.clients import (
    CertifiedOrganization,
    certified_organization,
    golive_client,
    stored_certificate,
)
from tests.support.pki import TestPki


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> TestPki:
    return TestPki(Path(tmp_path_factory.mktemp("certified-organization")))


def test_the_legal_name_and_identifier_come_from_the_qwac_not_the_chosen_name(
    pki: TestPki,
) -> None:
    certs = pki.issue("PSDFR-ACPR-77001", ("AISP",), "Budget Facile SAS")
    qwac = parse_certificate(certs.qwac_pem.read_bytes())
    seal = parse_certificate(certs.qsealc_pem.read_bytes())
    client = golive_client(
        "PSDFR-ACPR-77001",
        "Bank App",
        ["https://tpp.example/cb"],
        qwac.not_before,
        certificates=[stored_certificate("qsealc", seal), stored_certificate("qwac", qwac)],
    )
    assert certified_organization(client) == CertifiedOrganization(
        "Budget Facile SAS", "PSDFR-ACPR-77001"
    )


def test_the_qwac_that_expires_last_is_shown(pki: TestPki) -> None:
    old = parse_certificate(
        pki.issue("PSDFR-ACPR-77002", ("AISP",), "Old Name SA").qwac_pem.read_bytes()
    )
    start = pki.clock.now()
    renewed = parse_certificate(
        pki.issue(
            "PSDFR-ACPR-77002",
            ("AISP",),
            "New Name SA",
            not_before=start,
            not_after=start + timedelta(days=700),
        ).qwac_pem.read_bytes()
    )
    client = golive_client(
        "PSDFR-ACPR-77002",
        "App",
        ["https://tpp.example/cb"],
        start,
        certificates=[stored_certificate("qwac", renewed), stored_certificate("qwac", old)],
    )
    found = certified_organization(client)
    assert found is not None and found.legal_name == "New Name SA"


def test_a_client_without_qwac_has_no_certified_organization(pki: TestPki) -> None:
    client = golive_client("PSDFR-ACPR-77003", "App", ["https://tpp.example/cb"], pki.clock.now())
    assert certified_organization(client) is None
