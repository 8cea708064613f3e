"""The revocation fetcher: schedule, what it accepts, what it refuses, and who fetches.

Real HTTP on 127.0.0.1 (the test QTSP online, and a misbehaving server for the failures), real
CRLs and OCSP responses signed by the test QTSP, a `FrozenClock` for every date.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from stetgate.clock import FrozenClock
from stetgate.eidas import CertificateRevoked, CertificateValidator, CrlStore, UnknownIssuer
from stetgate.eidas import qtsp as qtsp_ops
from stetgate.eidas.crl_store import revocation_data_age
from stetgate.eidas.parse import parse_certificate
from stetgate.eidas.revocation_fetch import (
    FetchLimits,
    RevocationFetchError,
    allowed_url,
    download,
    ocsp_request,
    verified_crl,
    verified_ocsp,
)
from stetgate.eidas.revocation_fetcher import (
    WANTED_DIR,
    FetchSchedule,
    RevocationFetcher,
    next_fetch,
)
from stetgate.eidas.trust import TrustFolder
from tests.support.qtsp_http import QtspOnline

T0 = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
SCHEDULE = FetchSchedule(
    refresh=timedelta(hours=1), margin=timedelta(minutes=10), retry=timedelta(minutes=1)
)
DER = serialization.Encoding.DER
LIMITS = FetchLimits(timeout_seconds=2.0, max_bytes=64 * 1024)


# --------------------------------------------------------------------------- schedule


def test_next_fetch_is_the_refresh_interval_when_next_update_is_far() -> None:
    assert next_fetch(T0, T0 + timedelta(days=7), SCHEDULE) == T0 + timedelta(hours=1)


def test_next_fetch_comes_before_next_update_when_that_is_sooner() -> None:
    due = next_fetch(T0, T0 + timedelta(minutes=30), SCHEDULE)
    assert due == T0 + timedelta(minutes=20)


def test_data_already_inside_the_margin_is_retried_not_fetched_in_a_loop() -> None:
    assert next_fetch(T0, T0 + timedelta(minutes=5), SCHEDULE) == T0 + timedelta(minutes=1)
    assert next_fetch(T0, T0 - timedelta(days=1), SCHEDULE) == T0 + timedelta(minutes=1)


# --------------------------------------------------------------------------- fixtures


@pytest.fixture
def online(tmp_path: Path) -> Iterator[QtspOnline]:
    server = QtspOnline(tmp_path, FrozenClock(T0))
    yield server
    server.close()


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock(T0)


def make_fetcher(online: QtspOnline, crl_dir: Path, clock: FrozenClock) -> RevocationFetcher:
    return RevocationFetcher(
        crl_dir, TrustFolder(online.trust_dir, poll_seconds=0), clock, SCHEDULE, LIMITS
    )


class Misbehaving:
    """An HTTP server answering each path with a fixed (status, body, headers, delay)."""

    def __init__(self) -> None:
        self.routes: dict[str, tuple[int, bytes, dict[str, str], float]] = {}
        routes = self.routes

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                status, body, headers, delay = routes.get(self.path, (404, b"", {}, 0.0))
                time.sleep(delay)
                self.send_response(status)
                for k, v in headers.items():
                    self.send_header(k, v)
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: object) -> None:
                return

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()
        self.base = f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def misbehaving() -> Iterator[Misbehaving]:
    server = Misbehaving()
    yield server
    server.close()


def ca_of(online: QtspOnline) -> x509.Certificate:
    return x509.load_pem_x509_certificate((online.data_dir / "ca.pem").read_bytes())


def leaf(path: Path) -> x509.Certificate:
    return x509.load_pem_x509_certificate(path.read_bytes())


# --------------------------------------------------------------------------- happy paths


def test_crl_and_ocsp_of_a_seen_certificate_are_fetched_and_stored(
    online: QtspOnline, tmp_path: Path, clock: FrozenClock
) -> None:
    tpp = online.issue(tmp_path / "tpp")
    fetcher = make_fetcher(online, tmp_path / "crl", clock)
    try:
        fetcher.want(leaf(tpp.qwac_pem).public_bytes(DER))
        fetcher.run_once()
    finally:
        fetcher.close()
    stored = sorted(p.name for p in (tmp_path / "crl").iterdir() if not p.name.startswith("."))
    assert [n.split("-")[0] for n in stored] == ["fetched", "ocsp"]
    assert "GET /crl/qtsp.crl" in online.requests and "POST /ocsp" in online.requests
    snapshot = CrlStore(tmp_path / "crl", poll_seconds=0).snapshot()
    assert len(snapshot.crls) == 1 and len(snapshot.ocsps) == 1
    ages = revocation_data_age(snapshot, T0)
    assert all(a.age_seconds == 60 for a in ages)
    assert {s.last_error for s in fetcher.status()} == {None}


def test_revocation_at_the_qtsp_reaches_the_validator_after_the_refresh_interval(
    online: QtspOnline, tmp_path: Path, clock: FrozenClock
) -> None:
    tpp = online.issue(tmp_path / "tpp")
    crl_dir = tmp_path / "crl"
    fetcher = make_fetcher(online, crl_dir, clock)
    validator = CertificateValidator(
        TrustFolder(online.trust_dir, poll_seconds=0),
        CrlStore(crl_dir, poll_seconds=0),
        on_certificate_seen=fetcher.want,
    )
    qwac = parse_certificate(tpp.qwac_pem.read_bytes())
    try:
        with pytest.raises(Exception, match="no fresh CRL or OCSP"):
            validator.validate(qwac, "qwac", T0)
        fetcher.run_once()  # the refusal recorded the certificate; the fetcher gets its data
        assert validator.validate(qwac, "qwac", T0) is qwac
        online.revoke(tpp.qwac_pem)
        assert fetcher.run_once() > 0  # not due yet: nothing fetched, still accepted
        assert validator.validate(qwac, "qwac", T0) is qwac
        clock.advance(hours=1)
        fetcher.run_once()
        with pytest.raises(CertificateRevoked):
            validator.validate(qwac, "qwac", clock.now())
    finally:
        fetcher.close()
        validator.close()


# --------------------------------------------------------------------------- refusals


def test_crl_signed_by_a_look_alike_ca_is_refused(online: QtspOnline, tmp_path: Path) -> None:
    fake = tmp_path / "fake"
    qtsp_ops.issue_foreign_ca(fake, ca_name=qtsp_ops.DEFAULT_CA_NAME, now=T0)
    data = (fake / "crl" / "qtsp.crl").read_bytes()
    with pytest.raises(RevocationFetchError, match="signature does not verify"):
        verified_crl(data, ca_of(online), T0, "http://x/crl")


def test_crl_of_another_issuer_is_refused(online: QtspOnline, tmp_path: Path) -> None:
    other = tmp_path / "other"
    qtsp_ops.issue_foreign_ca(other, now=T0)
    data = (other / "crl" / "qtsp.crl").read_bytes()
    with pytest.raises(RevocationFetchError, match="CRL issued by"):
        verified_crl(data, ca_of(online), T0, "http://x/crl")


def test_crl_from_the_future_is_refused(online: QtspOnline) -> None:
    data = (online.data_dir / "crl" / "qtsp.crl").read_bytes()
    with pytest.raises(RevocationFetchError, match="in the future"):
        verified_crl(data, ca_of(online), T0 - timedelta(hours=1), "http://x/crl")


def test_garbage_is_not_a_crl(online: QtspOnline) -> None:
    with pytest.raises(RevocationFetchError, match="not a CRL"):
        verified_crl(b"<html>", ca_of(online), T0, "http://x/crl")


def test_ocsp_response_for_another_certificate_is_refused(
    online: QtspOnline, tmp_path: Path
) -> None:
    a, b = online.issue(tmp_path / "a"), online.issue(tmp_path / "b")
    with httpx.Client() as client:
        request = ocsp_request(leaf(a.qwac_pem), ca_of(online))
        data = download(client, f"{online.base_url}/ocsp", LIMITS, body=request, content_type="x")
    with pytest.raises(RevocationFetchError, match="another certificate"):
        verified_ocsp(data, leaf(b.qwac_pem), ca_of(online), T0, "u")
    assert verified_ocsp(data, leaf(a.qwac_pem), ca_of(online), T0, "u").serial_number == (
        leaf(a.qwac_pem).serial_number
    )


def test_ocsp_response_signed_by_a_look_alike_ca_is_refused(
    online: QtspOnline, tmp_path: Path
) -> None:
    fake = tmp_path / "fake"
    qtsp_ops.issue_foreign_ca(fake, ca_name=qtsp_ops.DEFAULT_CA_NAME, now=T0)
    tpp = online.issue(tmp_path / "tpp")
    # The look-alike answers for our CA's certificate: the key hash is ours, the key is not.
    request = ocsp_request(leaf(tpp.qwac_pem), ca_of(online))
    forged = qtsp_ops.answer_ocsp(fake, request, now=T0, any_issuer=True)
    with pytest.raises(RevocationFetchError, match="unknown responder"):
        verified_ocsp(forged, leaf(tpp.qwac_pem), ca_of(online), T0, "u")


@pytest.mark.parametrize(
    "url", ["file:///etc/passwd", "ldap://x/cn=crl", "ftp://x/a.crl", "http://user@x/a", "x"]
)
def test_only_plain_http_and_https_urls_are_fetched(url: str) -> None:
    assert not allowed_url(url)
    with httpx.Client() as client, pytest.raises(RevocationFetchError, match="only http"):
        download(client, url, LIMITS)


def test_404_is_a_failure(misbehaving: Misbehaving) -> None:
    with httpx.Client() as client, pytest.raises(RevocationFetchError, match="HTTP 404"):
        download(client, f"{misbehaving.base}/missing.crl", LIMITS)


def test_redirects_are_not_followed(misbehaving: Misbehaving) -> None:
    misbehaving.routes["/moved.crl"] = (302, b"", {"location": "file:///etc/passwd"}, 0.0)
    with httpx.Client() as client, pytest.raises(RevocationFetchError, match="HTTP 302"):
        download(client, f"{misbehaving.base}/moved.crl", LIMITS)


def test_oversize_answer_is_refused(misbehaving: Misbehaving) -> None:
    misbehaving.routes["/big.crl"] = (200, b"x" * (LIMITS.max_bytes + 1), {}, 0.0)
    with httpx.Client() as client, pytest.raises(RevocationFetchError, match="bytes"):
        download(client, f"{misbehaving.base}/big.crl", LIMITS)


def test_slow_answer_times_out(misbehaving: Misbehaving) -> None:
    misbehaving.routes["/slow.crl"] = (200, b"x", {}, 1.5)
    fast = FetchLimits(timeout_seconds=0.3, max_bytes=1024)
    with httpx.Client() as client, pytest.raises(RevocationFetchError, match="timed out"):
        download(client, f"{misbehaving.base}/slow.crl", fast)


def test_unreachable_url_fails_and_is_retried_after_the_retry_delay(
    online: QtspOnline, tmp_path: Path, clock: FrozenClock
) -> None:
    tpp = online.issue(tmp_path / "tpp", ocsp_url=qtsp_ops.OMIT)
    online.down()
    fetcher = make_fetcher(online, tmp_path / "crl", clock)
    try:
        fetcher.want(leaf(tpp.qwac_pem).public_bytes(DER))
        fetcher.run_once()
        (status,) = fetcher.status()
        assert status.last_error is not None and status.last_success is None
        assert status.next_fetch == T0 + SCHEDULE.retry
        assert not list((tmp_path / "crl").glob("fetched-*"))
    finally:
        fetcher.close()
        online.up()


def test_certificate_of_an_untrusted_ca_makes_no_request(
    online: QtspOnline, tmp_path: Path, clock: FrozenClock
) -> None:
    foreign = tmp_path / "foreign"
    qtsp_ops.init_qtsp(
        foreign, (), f"{online.base_url}/crl", ocsp_url=f"{online.base_url}/ocsp", now=T0
    )
    tpp = qtsp_ops.issue_tpp(foreign, "PSDFR-ACPR-1", "X", ["AISP"], tmp_path / "t", now=T0)
    fetcher = make_fetcher(online, tmp_path / "crl", clock)
    try:
        fetcher.want(leaf(tpp.qwac_pem).public_bytes(DER))
        fetcher.run_once()
    finally:
        fetcher.close()
    assert online.requests == []
    assert fetcher.status() == []


def test_an_older_crl_does_not_replace_a_newer_one(
    online: QtspOnline, tmp_path: Path, clock: FrozenClock
) -> None:
    tpp = online.issue(tmp_path / "tpp", ocsp_url=qtsp_ops.OMIT)
    old = (online.data_dir / "crl" / "qtsp.crl").read_bytes()
    online.clock.advance(hours=2)  # type: ignore[attr-defined]
    online.revoke(tpp.qwac_pem)
    clock.advance(hours=2)
    fetcher = make_fetcher(online, tmp_path / "crl", clock)
    try:
        fetcher.want(leaf(tpp.qwac_pem).public_bytes(DER))
        fetcher.run_once()
        (stored,) = (tmp_path / "crl").glob("fetched-*.crl")
        newer = stored.read_bytes()
        (online.data_dir / "crl" / "qtsp.crl").write_bytes(old)  # a lagging mirror
        clock.advance(hours=1)
        fetcher.run_once()
        assert stored.read_bytes() == newer
        (status,) = fetcher.status()
        assert status.last_error is not None and "older" in status.last_error
    finally:
        fetcher.close()


def test_expired_certificates_are_forgotten(
    online: QtspOnline, tmp_path: Path, clock: FrozenClock
) -> None:
    tpp = online.issue(tmp_path / "tpp", days=1)
    fetcher = make_fetcher(online, tmp_path / "crl", clock)
    try:
        fetcher.want(leaf(tpp.qwac_pem).public_bytes(DER))
        clock.advance(days=2)
        fetcher.run_once()
    finally:
        fetcher.close()
    assert list((tmp_path / "crl" / WANTED_DIR).iterdir()) == []
    assert fetcher.status() == []


# --------------------------------------------------------------------------- one fetcher


def test_only_the_lock_holder_fetches_and_the_lock_frees_when_it_stops(
    online: QtspOnline, tmp_path: Path, clock: FrozenClock
) -> None:
    tpp = online.issue(tmp_path / "tpp", ocsp_url=qtsp_ops.OMIT)
    crl_dir = tmp_path / "crl"
    first, second = make_fetcher(online, crl_dir, clock), make_fetcher(online, crl_dir, clock)
    try:
        second.want(leaf(tpp.qwac_pem).public_bytes(DER))  # seen by a worker
        first.run_once()
        second.run_once()
        assert first.lock.held and not second.lock.held
        assert online.requests == ["GET /crl/qtsp.crl"]  # the holder used what the other saw
        first.close()
        second.run_once()
        assert second.lock.held
        assert len(online.requests) == 2
    finally:
        first.close()
        second.close()


# --------------------------------------------------------------------------- trust reload


def test_a_removed_trust_anchor_stops_validating_without_a_restart(
    online: QtspOnline, tmp_path: Path
) -> None:
    tpp = online.issue(tmp_path / "tpp")
    crl_dir = online.data_dir / "crl"
    validator = CertificateValidator(
        TrustFolder(online.trust_dir, poll_seconds=0), CrlStore(crl_dir, poll_seconds=0)
    )
    qwac = parse_certificate(tpp.qwac_pem.read_bytes())
    try:
        assert validator.validate(qwac, "qwac", T0) is qwac
        (online.trust_dir / "ca.pem").rename(online.trust_dir / "ca.pem.removed")
        with pytest.raises(UnknownIssuer):
            validator.validate(qwac, "qwac", T0)
        (online.trust_dir / "ca.pem.removed").rename(online.trust_dir / "ca.pem")
        assert validator.validate(qwac, "qwac", T0) is qwac
    finally:
        validator.close()


# --------------------------------------------------------------------------- helpers
