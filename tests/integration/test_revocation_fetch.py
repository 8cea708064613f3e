"""A running bank keeps its revocation data fresh by itself (docs/operations.md#revocation-data).

The TPP certificates come from a QTSP of the test's own (`QtspOnline`) whose CRL and OCSP
responder are reachable only over HTTP: the bank's CRL folder starts empty and nothing is ever
copied into it by hand. The bank's clock is frozen, so the tests move it by the refresh interval
while they poll with a deadline.
"""

from __future__ import annotations

import fcntl
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path

import httpx
import pytest

from stetgate.eidas import qtsp
from stetgate.eidas.revocation_fetcher import LOCK_NAME
from tests.support.bank import RunningBank
from tests.support.pki import TestPki
from tests.support.qtsp_http import QtspOnline
from tests.support.servers import free_port
from tests.support.token_side import TOKEN

REFRESH = 2.0


@pytest.fixture
def online(tmp_path: Path) -> Iterator[QtspOnline]:
    server = QtspOnline(tmp_path)
    yield server
    server.close()


def start(
    bank_factory: Callable[..., RunningBank], online: QtspOnline, tmp_path: Path, **kw: object
) -> RunningBank:
    values: dict[str, object] = dict(
        trust_dir=online.trust_dir,
        crl_dir=tmp_path / "bank-crl",
        revocation_fetch=True,
        crl_refresh_seconds=REFRESH,
        crl_refresh_margin_seconds=0,
        revocation_retry_seconds=REFRESH,
        crl_poll_seconds=0.05,
    )
    values.update(kw)
    return bank_factory(**values)


def registration_token(bank: RunningBank, qwac: tuple[Path, Path]) -> httpx.Response:
    with bank.client(cert=qwac) as http:
        return http.post(
            TOKEN,
            data={
                "grant_type": "client_credentials",
                "client_id": "PSD2_TPPRegister",
                "scope": "manageRegistration",
            },
        )


def until(
    bank: RunningBank,
    qwac: tuple[Path, Path],
    done: Callable[[httpx.Response], bool],
    *,
    step: float = REFRESH / 2,
    seconds: float = 20,
) -> httpx.Response:
    """Ask the token endpoint until ``done``; the bank's clock moves ``step`` per attempt."""
    deadline = time.monotonic() + seconds
    while True:
        response = registration_token(bank, qwac)
        if done(response) or time.monotonic() > deadline:
            return response
        bank.clock.advance(step)
        time.sleep(0.1)


def accepted(response: httpx.Response) -> bool:
    return response.status_code == 200


def refused_with(words: str) -> Callable[[httpx.Response], bool]:
    def check(response: httpx.Response) -> bool:
        return response.status_code == 401 and words in response.json()["error_description"]

    return check


@pytest.mark.postgres  # the token endpoint's refusal on PostgreSQL too
def test_revoked_at_the_qtsp_is_refused_within_the_refresh_interval_crl(
    bank_factory: Callable[..., RunningBank], online: QtspOnline, tmp_path: Path
) -> None:
    tpp = online.issue(tmp_path / "tpp", ocsp_url=qtsp.OMIT)
    qwac = (tpp.qwac_pem, tpp.qwac_key)
    bank = start(bank_factory, online, tmp_path)
    response = until(bank, qwac, accepted)
    assert response.status_code == 200, response.text
    online.revoke(tpp.qwac_pem)
    before = bank.clock.now()
    response = until(bank, qwac, refused_with("revoked"))
    assert response.status_code == 401, response.text
    assert response.json()["error"] == "invalid_client"
    assert "revoked" in response.json()["error_description"]
    assert (bank.clock.now() - before).total_seconds() <= REFRESH + 1
    assert any(r.startswith("GET /crl/") for r in online.requests)
    assert not any(r.startswith("POST /ocsp") for r in online.requests)


def test_revoked_at_the_qtsp_is_refused_within_the_refresh_interval_ocsp(
    bank_factory: Callable[..., RunningBank], online: QtspOnline, tmp_path: Path
) -> None:
    tpp = online.issue(tmp_path / "tpp", crl_url=qtsp.OMIT)  # OCSP only
    qwac = (tpp.qwac_pem, tpp.qwac_key)
    bank = start(bank_factory, online, tmp_path)
    response = until(bank, qwac, accepted)
    assert response.status_code == 200, response.text
    online.revoke(tpp.qwac_pem)
    before = bank.clock.now()
    response = until(bank, qwac, refused_with("revoked"))
    assert response.status_code == 401, response.text
    assert "revoked" in response.json()["error_description"]
    assert (bank.clock.now() - before).total_seconds() <= REFRESH + 1
    assert not any(r.startswith("GET /crl/") for r in online.requests)


@pytest.mark.parametrize("only", ["crl", "ocsp"])
def test_the_first_call_with_a_certificate_never_seen_is_not_refused(
    bank_factory: Callable[..., RunningBank], online: QtspOnline, tmp_path: Path, only: str
) -> None:
    """The bank's revocation folder is empty and the certificate new: the worker fetches its
    CRL (or OCSP response) on the miss, the first call succeeds, no retry needed."""
    omit = {"ocsp_url": qtsp.OMIT} if only == "crl" else {"crl_url": qtsp.OMIT}
    tpp = online.issue(tmp_path / "tpp", **omit)  # type: ignore[arg-type]
    bank = start(bank_factory, online, tmp_path, crl_refresh_seconds=3600)
    response = registration_token(bank, (tpp.qwac_pem, tpp.qwac_key))
    assert response.status_code == 200, response.text
    asked = "GET /crl/" if only == "crl" else "POST /ocsp"
    assert any(r.startswith(asked) for r in online.requests)


def test_a_revoked_certificate_never_seen_is_refused_on_its_first_call(
    bank_factory: Callable[..., RunningBank], online: QtspOnline, tmp_path: Path
) -> None:
    tpp = online.issue(tmp_path / "tpp", crl_url=qtsp.OMIT)
    online.revoke(tpp.qwac_pem)
    bank = start(bank_factory, online, tmp_path, crl_refresh_seconds=3600)
    response = registration_token(bank, (tpp.qwac_pem, tpp.qwac_key))
    assert response.status_code == 401, response.text
    assert "revoked" in response.json()["error_description"]


def test_unreachable_crl_url_fails_closed_by_default(
    bank_factory: Callable[..., RunningBank], online: QtspOnline, tmp_path: Path
) -> None:
    tpp = online.issue(tmp_path / "tpp", ocsp_url=qtsp.OMIT)
    qwac = (tpp.qwac_pem, tpp.qwac_key)
    online.down()
    try:
        bank = start(bank_factory, online, tmp_path)
        response = until(bank, qwac, accepted, seconds=3)
    finally:
        online.up()
    assert response.status_code == 401, response.text
    assert response.json()["error"] == "invalid_client"
    assert "no fresh CRL or OCSP" in response.json()["error_description"]


def test_stale_crl_fails_closed_once_next_update_passes(
    bank_factory: Callable[..., RunningBank], online: QtspOnline, tmp_path: Path
) -> None:
    online.publish_crl(validity=timedelta(minutes=10))
    tpp = online.issue(tmp_path / "tpp", ocsp_url=qtsp.OMIT)
    qwac = (tpp.qwac_pem, tpp.qwac_key)
    bank = start(bank_factory, online, tmp_path)
    assert until(bank, qwac, accepted).status_code == 200
    online.down()
    try:
        bank.clock.advance(minutes=11)
        response = registration_token(bank, qwac)
    finally:
        online.up()
    assert response.status_code == 401, response.text
    assert "no fresh CRL or OCSP" in response.json()["error_description"]


def test_grace_accepts_a_stale_crl_until_the_grace_expires(
    bank_factory: Callable[..., RunningBank], online: QtspOnline, tmp_path: Path
) -> None:
    online.publish_crl(validity=timedelta(minutes=10))
    tpp = online.issue(tmp_path / "tpp", ocsp_url=qtsp.OMIT)
    qwac = (tpp.qwac_pem, tpp.qwac_key)
    bank = start(
        bank_factory, online, tmp_path, revocation_policy="grace", revocation_grace_seconds=600
    )
    assert until(bank, qwac, accepted).status_code == 200
    online.down()
    try:
        bank.clock.advance(minutes=15)  # nextUpdate + 5 min: inside the grace
        inside = registration_token(bank, qwac)
        bank.clock.advance(minutes=10)  # nextUpdate + 15 min: past it
        past = registration_token(bank, qwac)
    finally:
        online.up()
    assert inside.status_code == 200, inside.text
    assert past.status_code == 401, past.text
    assert "no fresh CRL or OCSP" in past.json()["error_description"]


def test_serve_with_two_workers_elects_one_fetcher_and_refuses_a_revoked_qwac(
    online: QtspOnline, pki: TestPki, tmp_path: Path
) -> None:
    tpp = online.issue(tmp_path / "tpp", ocsp_url=qtsp.OMIT)
    crl_dir = tmp_path / "crl"
    port = free_port()
    env = dict(os.environ)
    env.update(
        STETGATE_DATA_DIR=str(tmp_path / "data"),
        STETGATE_TLS_CERT_FILE=str(pki.server_pem),
        STETGATE_TLS_KEY_FILE=str(pki.server_key),
        STETGATE_TRUST_DIR=str(online.trust_dir),
        STETGATE_CRL_DIR=str(crl_dir),
        STETGATE_CRL_POLL_SECONDS="0.2",
        STETGATE_CRL_REFRESH_SECONDS="1",
        STETGATE_CRL_REFRESH_MARGIN_SECONDS="0",
        STETGATE_REVOCATION_RETRY_SECONDS="1",
    )
    cli = [sys.executable, "-m", "stetgate.cli"]
    subprocess.run([*cli, "db", "upgrade"], env=env, check=True, capture_output=True)
    proc = subprocess.Popen(
        [*cli, "serve", "--host", "127.0.0.1", "--port", str(port), "--workers", "2"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    ctx = pki.client_ssl_context(cert=(tpp.qwac_pem, tpp.qwac_key))

    def seen() -> dict[str, object]:
        try:
            response = httpx.get(f"https://127.0.0.1:{port}/tpp/certificate", verify=ctx, timeout=5)
        except httpx.HTTPError:
            return {}
        body: dict[str, object] = response.json()
        return body

    def wait_for(check: Callable[[dict[str, object]], bool]) -> dict[str, object]:
        deadline = time.monotonic() + 30
        while True:
            body = seen()
            if check(body) or time.monotonic() > deadline or proc.poll() is not None:
                return body
            time.sleep(0.2)

    try:
        assert wait_for(lambda b: b.get("valid") is True).get("valid") is True
        with open(crl_dir / LOCK_NAME, "a") as fh, pytest.raises(BlockingIOError):
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)  # a worker holds it
        before = sum(r.startswith("GET /crl/") for r in online.requests)
        time.sleep(4)
        fetched = sum(r.startswith("GET /crl/") for r in online.requests) - before
        assert 1 <= fetched <= 6  # one fetcher at ~1/s; two would make ~8
        online.revoke(tpp.qwac_pem)
        revoked_at = time.monotonic()
        body = wait_for(lambda b: b.get("error") == "certificate_revoked")
        assert body.get("error") == "certificate_revoked", body
        assert time.monotonic() - revoked_at < 10
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
