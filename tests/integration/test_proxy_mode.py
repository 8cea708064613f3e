"""Behind a TLS-terminating proxy, the certificate arrives in a header — only from trusted peers."""

from __future__ import annotations

import base64
import ssl
from collections.abc import Callable

import pytest

from tests.support.bank import RunningBank
from tests.support.pki import TestPki


def _header(pki: TestPki, org: str) -> str:
    der = ssl.PEM_cert_to_DER_cert(pki.issue(org).qwac_pem.read_text())
    return ":" + base64.b64encode(der).decode() + ":"


def test_certificate_in_header_from_trusted_proxy_is_seen(
    bank_factory: Callable[..., RunningBank], pki: TestPki
) -> None:
    bank = bank_factory(trusted_proxies=["127.0.0.1/32"])
    with bank.client() as client:
        body = client.get(
            "/tpp/certificate", headers={"Client-Cert": _header(pki, "PSDFR-ACPR-31313")}
        ).json()
    assert body["presented"] is True
    assert body["organization_identifier"] == "PSDFR-ACPR-31313"


def test_certificate_header_is_ignored_without_trusted_proxies(
    bank: RunningBank, pki: TestPki
) -> None:
    with bank.client() as client:
        body = client.get(
            "/tpp/certificate", headers={"Client-Cert": _header(pki, "PSDFR-ACPR-31313")}
        ).json()
    assert body == {"presented": False, "valid": False}


def test_header_cannot_override_the_tls_certificate(
    bank_factory: Callable[..., RunningBank], pki: TestPki
) -> None:
    bank = bank_factory(trusted_proxies=["127.0.0.1/32"])
    with bank.client(pki.issue("PSDFR-ACPR-12121")) as client:
        body = client.get(
            "/tpp/certificate", headers={"Client-Cert": _header(pki, "PSDFR-ACPR-31313")}
        ).json()
    assert body["organization_identifier"] == "PSDFR-ACPR-12121"


@pytest.mark.postgres  # PostgreSQL smoke test of /health/ready
def test_health_ready_checks_the_database(bank: RunningBank) -> None:
    with bank.client() as client:
        assert client.get("/health/ready").json() == {"status": "ok", "database": "ok"}
        assert client.get("/health/live").status_code == 200
