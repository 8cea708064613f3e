"""A real nginx running the shipped deploy/nginx/stetgate.conf in front of stetgate started as
`stetgate serve --plain-http` is (`connection_options`): trusted_proxies = 127.0.0.1, the
certificate in nginx's ``X-SSL-Client-Cert`` (``$ssl_client_escaped_cert``, format ``nginx``).

The TPP and the PSU connect from 127.0.0.2, so nginx's ``X-Forwarded-For`` names an address that
is *not* a trusted proxy: the trust decision must be taken on the TCP peer (nginx, 127.0.0.1),
not on the forwarded address uvicorn puts in ``scope["client"]`` — with the decision on the
forwarded address every TPP call through nginx failed. Attackers connect from 127.0.0.2 too:
straight to stetgate's port, or through nginx with forged headers.

Skips with a reason without nginx; ``STETGATE_REQUIRE_NGINX=1`` (CI) makes that an error.
"""

from __future__ import annotations

import json
import ssl
from collections.abc import Callable, Iterator
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

import httpx
import pytest

from stetgate.demo.seed import seed_demo_bank
from stetgate.demo.totp import decode_totp_secret, totp_at
from stetgate.tpp.client import StetBankClient, TppCredentials
from stetgate.tpp.doctor import stet_schemas as schemas
from stetgate.tpp.psu_robot import PsuRobot
from tests.integration.psd2_support import cheap_directory, register_client
from tests.support.bank import RunningBank
from tests.support.nginx import RunningNginx, require_nginx, start_nginx
from tests.support.pki import TestPki, TppCerts
from tests.support.servers import free_port
from tests.support.token_side import TOKEN

require_nginx()

OUTSIDE = "127.0.0.2"
"""Where TPPs, PSUs and attackers connect from: not in trusted_proxies."""
CALLBACK = "https://tpp.example/cb"
PSU_IP = {"PSU-IP-Address": "198.51.100.23"}
ORG = "PSDFR-ACPR-47101"
OTHER_ORG = "PSDFR-ACPR-47102"


@dataclass
class Deployment:
    """stetgate (plain HTTP, 127.0.0.1) behind nginx (TLS, 127.0.0.1)."""

    bank: RunningBank
    nginx: RunningNginx
    pki: TestPki

    def through_nginx(self, tpp: TppCerts | None = None, **kwargs: Any) -> httpx.Client:
        """A client of nginx from `OUTSIDE`, presenting ``tpp``'s QWAC if given."""
        transport = httpx.HTTPTransport(
            verify=self.pki.client_ssl_context(tpp), local_address=OUTSIDE
        )
        return httpx.Client(base_url=self.nginx.url, transport=transport, timeout=10, **kwargs)

    def straight_to_stetgate(self) -> httpx.Client:
        """A client of stetgate's own port from `OUTSIDE`: what the firewall should stop."""
        transport = httpx.HTTPTransport(local_address=OUTSIDE)
        return httpx.Client(base_url=self.bank.base_url, transport=transport, timeout=10)


@dataclass
class _ProxiedBank(RunningBank):
    """The bank as seen through nginx: `PsuRobot`'s browser connects from `OUTSIDE`."""

    def client(
        self, tpp: TppCerts | None = None, *, cert: tuple[Path, Path] | None = None, **kwargs: Any
    ) -> httpx.Client:
        transport = httpx.HTTPTransport(
            verify=self.pki.client_ssl_context(tpp, cert), local_address=OUTSIDE
        )
        return httpx.Client(base_url=self.base_url, transport=transport, timeout=10, **kwargs)


@pytest.fixture
def deployment(
    bank_factory: Callable[..., RunningBank], pki: TestPki, tmp_path: Path
) -> Iterator[Deployment]:
    port = free_port()
    bank = bank_factory(
        plain_http=True,
        issuer=f"https://127.0.0.1:{port}",
        trusted_proxies=["127.0.0.1/32"],
        client_cert_header="x-ssl-client-cert",
        client_cert_header_format="nginx",
    )
    upstream = urlsplit(bank.base_url).netloc
    nginx = start_nginx(
        tmp_path / "nginx", port=port, upstream=upstream, cert=pki.server_pem, key=pki.server_key
    )
    try:
        yield Deployment(bank, nginx, pki)
    finally:
        nginx.stop()


def _nginx_header(tpp: TppCerts) -> str:
    """What nginx would send for ``tpp``: ``$ssl_client_escaped_cert``."""
    return quote(tpp.qwac_pem.read_text(), safe="")


def _rfc9440_header(tpp: TppCerts) -> str:
    import base64

    der = ssl.PEM_cert_to_DER_cert(tpp.qwac_pem.read_text())
    return ":" + base64.b64encode(der).decode() + ":"


def _token_attempt(http: httpx.Client) -> httpx.Response:
    return http.post(
        TOKEN, data={"grant_type": "refresh_token", "refresh_token": "x" * 43, "client_id": ORG}
    )


# --- the happy path -------------------------------------------------------------------------


def test_cinematic_refresh_and_signed_accounts_call_through_nginx(
    deployment: Deployment, pki: TestPki
) -> None:
    bank = deployment.bank
    seed_demo_bank(bank.settings, 2, now=bank.clock.now(), directory_factory=cheap_directory)
    people = json.loads((bank.settings.data_dir / "demo-psus.json").read_text())
    marie = next(p for p in people if p["id"] == "mdupont")
    certs = pki.issue(ORG, ("AISP", "CBPII"))
    register_client(bank.services.engine, certs, bank.clock.now())
    secret = decode_totp_secret(marie["totp_secret"])
    robot = PsuRobot(
        marie["id"], marie["password"], otp=lambda: totp_at(secret, bank.clock.now()), method="totp"
    )
    tpp_transport = httpx.HTTPTransport(verify=pki.client_ssl_context(certs), local_address=OUTSIDE)
    proxied = _ProxiedBank(
        **{f.name: getattr(bank, f.name) for f in fields(bank)} | {"base_url": deployment.nginx.url}
    )
    with (
        StetBankClient(
            deployment.nginx.url,
            TppCredentials.from_directory(certs.directory),
            certs.org_id,
            ca_file=pki.ca_pem,
            clock=bank.clock,
            transport=tpp_transport,
        ) as tpp,
        proxied.client() as browser,
    ):
        request = tpp.authorization_request("aisp", CALLBACK)
        callback = robot.walk(browser, request.url, CALLBACK)
        tokens = tpp.exchange_code(request, callback, expected_issuer=deployment.nginx.url)

        bank.clock.advance(600)
        refreshed = tpp.refresh(tokens)
        assert refreshed.access_token != tokens.access_token

        accounts = tpp.api("GET", "accounts", refreshed, psu_headers=PSU_IP)
        schemas.check(accounts, schemas.ACCOUNTS)
        ibans = [a["accountId"]["iban"] for a in accounts["accounts"] if "iban" in a["accountId"]]
        assert ibans == marie["accounts"]

        # The old access token was replaced by the refresh; the new one is bound to the QWAC
        # nginx forwarded (RFC 8705 §3): the same TPP's calls keep working.
        again = tpp.signed_request("GET", "accounts", refreshed.access_token, psu_headers=PSU_IP)
        assert again.status_code == 200, again.text

    # nginx logged the TPP's X-Request-ID, passed through unchanged.
    assert deployment.nginx.logged(f'rid="{again.headers["x-request-id"]}"')


def test_the_tls_certificate_reaches_stetgate_through_nginx(
    deployment: Deployment, pki: TestPki
) -> None:
    certs = pki.issue(ORG, ("AISP", "CBPII"))
    with deployment.through_nginx(certs) as http:
        body = http.get("/tpp/certificate").json()
    assert body["presented"] is True and body["organization_identifier"] == ORG


# --- straight to stetgate's port, not through nginx ------------------------------------------


def test_forged_certificate_header_straight_to_stetgate_is_ignored(
    deployment: Deployment, pki: TestPki
) -> None:
    certs = pki.issue(ORG, ("AISP", "CBPII"))
    register_client(deployment.bank.services.engine, certs, deployment.bank.clock.now())
    forged = {"X-SSL-Client-Cert": _nginx_header(certs)}
    with deployment.straight_to_stetgate() as http:
        assert http.get("/tpp/certificate", headers=forged).json() == {
            "presented": False,
            "valid": False,
        }
        refused = http.post(
            TOKEN,
            headers=forged,
            data={"grant_type": "refresh_token", "refresh_token": "x" * 43, "client_id": ORG},
        )
    assert refused.status_code == 401 and refused.json()["error"] == "invalid_client"


@pytest.mark.parametrize(
    "claims",
    [
        {"X-Forwarded-For": "127.0.0.1"},
        {"X-Forwarded-For": "127.0.0.1", "X-Forwarded-Proto": "https"},
        {"X-Forwarded-For": "198.51.100.7, 127.0.0.1"},
        {"Forwarded": "for=127.0.0.1;proto=https"},
        {"X-Real-IP": "127.0.0.1"},
    ],
)
def test_forwarded_headers_claiming_the_proxy_do_not_make_a_direct_client_trusted(
    deployment: Deployment, pki: TestPki, claims: dict[str, str]
) -> None:
    certs = pki.issue(ORG, ("AISP", "CBPII"))
    with deployment.straight_to_stetgate() as http:
        body = http.get(
            "/tpp/certificate", headers={**claims, "X-SSL-Client-Cert": _nginx_header(certs)}
        ).json()
        refused = _token_attempt(http)
    assert body == {"presented": False, "valid": False}
    assert refused.status_code == 401 and refused.json()["error"] == "invalid_client"


# --- through nginx, with forged headers -------------------------------------------------------


@pytest.mark.parametrize("name", ["X-SSL-Client-Cert", "x-ssl-client-cert", "X-Ssl-Client-Cert"])
def test_forged_certificate_header_through_nginx_without_a_tls_certificate_is_dropped(
    deployment: Deployment, pki: TestPki, name: str
) -> None:
    certs = pki.issue(ORG, ("AISP", "CBPII"))
    register_client(deployment.bank.services.engine, certs, deployment.bank.clock.now())
    with deployment.through_nginx() as http:
        body = http.get("/tpp/certificate", headers={name: _nginx_header(certs)}).json()
        refused = http.post(
            TOKEN,
            headers={name: _nginx_header(certs)},
            data={"grant_type": "refresh_token", "refresh_token": "x" * 43, "client_id": ORG},
        )
    assert body == {"presented": False, "valid": False}
    assert refused.status_code == 401 and refused.json()["error"] == "invalid_client"


def test_forged_certificate_header_through_nginx_does_not_replace_the_tls_certificate(
    deployment: Deployment, pki: TestPki
) -> None:
    mine, theirs = pki.issue(ORG, ("AISP", "CBPII")), pki.issue(OTHER_ORG, ("AISP", "CBPII"))
    with deployment.through_nginx(mine) as http:
        body = http.get(
            "/tpp/certificate",
            headers={
                "X-SSL-Client-Cert": _nginx_header(theirs),
                "Client-Cert": _rfc9440_header(theirs),
            },
        ).json()
    assert body["organization_identifier"] == ORG


def test_forwarded_for_sent_through_nginx_does_not_make_the_client_trusted(
    deployment: Deployment, pki: TestPki
) -> None:
    certs = pki.issue(ORG, ("AISP", "CBPII"))
    with deployment.through_nginx() as http:
        body = http.get(
            "/tpp/certificate",
            headers={
                "X-Forwarded-For": "127.0.0.1",
                "Forwarded": "for=127.0.0.1",
                "X-SSL-Client-Cert": _nginx_header(certs),
            },
        ).json()
        refused = _token_attempt(http)
    assert body == {"presented": False, "valid": False}
    assert refused.status_code == 401 and refused.json()["error"] == "invalid_client"


def test_a_tpp_without_certificate_is_refused_on_the_resource_api_through_nginx(
    deployment: Deployment, pki: TestPki
) -> None:
    certs = pki.issue(ORG, ("AISP", "CBPII"))
    with deployment.through_nginx() as http:
        answer = http.get(
            "/stet/psd2/v1.4.2/accounts",
            headers={
                "Authorization": "Bearer " + "x" * 43,
                "X-Request-ID": "req-1",
                "X-SSL-Client-Cert": _nginx_header(certs),
                **PSU_IP,
            },
        )
    assert answer.status_code == 401, answer.text
