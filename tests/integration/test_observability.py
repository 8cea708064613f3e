"""Metrics and logs of `stetgate serve` with two workers, after a scripted run of the cinematic
and the resource API (docs/operations.md#metrics and #logs).

One run per database, as a real process (`stetgate serve --workers 2`, its output captured, the
core-banking service over HTTP beside it): three PSUs and an unknown one walk the PSU pages
(authorized, refused, blocked, failed), the TPP redeems the code with PKCE, introspects,
reads accounts with and without the PSU (the fifth unattended call is refused), refreshes
three times, replays its code and an old refresh token, calls /token without a certificate,
loses the core-banking service, revokes. Then:

- the metrics listener (plain HTTP, loopback) shows exactly those counts, and each worker's
  own files add up to the totals it serves; the TLS port answers 404 to ``/metrics``;
- every line the server wrote is a JSON object with the documented fields, one access line
  per request and one line per audit event, and none contains any secret the run used (tokens,
  code, PKCE verifier and challenge, state, password, one-time codes, cookies, CSRF tokens,
  Authorization and Signature header values).
"""

from __future__ import annotations

import json
import os
import re
import signal
import ssl
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import httpx
import pytest
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import create_engine, select

from stetgate.clock import SystemClock
from stetgate.demo.seed import seed_demo_bank
from stetgate.demo.totp import decode_totp_secret, totp_at
from stetgate.eidas.crl_store import parse_crl_file
from stetgate.serving.access import ACCESS_FIELDS
from stetgate.settings import Settings
from stetgate.store.schema import audit_events
from stetgate.tpp.client import BankError, StetBankClient, TokenSet, TppCredentials
from stetgate.tpp.psu_robot import PsuJourneyError, PsuRobot
from tests.integration.psd2_support import cheap_directory, register_client
from tests.support.core_banking import start_demo_bank_service
from tests.support.pki import TestPki
from tests.support.servers import free_port

pytestmark = pytest.mark.postgres  # the audit trail and grants on both dialects

ORG = "PSDFR-ACPR-48001"
CALLBACK = "https://tpp.example/cb"
TOKEN = "/stet/psd2/oauth/token"
INTROSPECT = "/stet/psd2/oauth/introspect"
PSU_PRESENT = {"PSU-IP-Address": "198.51.100.23"}
SPREAD_REQUESTS = 48
_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
LIVE_COUNT = (
    "stetgate_http_request_duration_seconds_count",
    (("endpoint", "/health/live"), ("method", "GET"), ("status", "200")),
)


@dataclass
class Run:
    """What the scripted run did, saw and left behind."""

    database_url: str
    metrics: dict[tuple[str, tuple[tuple[str, str], ...]], float]
    metrics_text: str
    per_worker: list[dict[tuple[str, tuple[tuple[str, str], ...]], float]]
    crl_this_updates: dict[str, datetime]
    scraped_between: tuple[datetime, datetime]
    main_port_metrics: list[int]
    lines: list[str]
    secrets: set[str] = field(default_factory=set)
    otps: list[str] = field(default_factory=list)
    accounts_ok: int = 0
    live_requests: int = 0
    requests_sent: Counter[str] = field(default_factory=Counter)

    def value(self, name: str, **labels: str) -> float:
        return self.metrics.get((name, tuple(sorted(labels.items()))), 0.0)


def _samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    found: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


def _worker_samples(directory: Path) -> list[dict[tuple[str, tuple[tuple[str, str], ...]], float]]:
    """Each worker's own counts, from its files alone (the pid is in the file name)."""
    by_pid: dict[str, list[str]] = {}
    for path in directory.glob("*.db"):
        by_pid.setdefault(path.stem.rsplit("_", 1)[1], []).append(str(path))
    workers = []
    for files in by_pid.values():
        merged: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {}
        for metric in MultiProcessCollector.merge(files, accumulate=True):
            for sample in metric.samples:
                merged[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
        workers.append(merged)
    return workers


class _Served:
    """`stetgate serve --workers 2` as a process; its stdout and stderr go to one file."""

    def __init__(self, env: dict[str, str], log: Path, port: int) -> None:
        self.log = log
        with log.open("wb") as output:
            self.process = subprocess.Popen(
                [
                    *(sys.executable, "-m", "stetgate.cli", "serve", "--host", "127.0.0.1"),
                    *("--port", str(port), "--workers", "2"),
                ],
                env=env,
                stdout=output,
                stderr=subprocess.STDOUT,
            )

    def wait_ready(self, url: str, context: ssl.SSLContext) -> None:
        """Until it answers and both workers said their app is started (a worker still
        importing the app accepts no connection)."""
        deadline = time.monotonic() + 60
        while True:
            try:
                started = self.log.read_text().count("Application startup complete")
                if started == 2 and httpx.get(url, verify=context, timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.process.kill()
                pytest.fail(f"stetgate serve did not start:\n{self.log.read_text()[-3000:]}")
            time.sleep(0.2)

    def stop(self) -> list[str]:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        return self.log.read_text().splitlines()


def _browser(base_url: str, context: ssl.SSLContext, run: Run) -> httpx.Client:
    """A PSU's browser that remembers every cookie and CSRF token the bank gave it."""

    def remember(response: httpx.Response) -> None:
        response.read()
        for header in response.headers.get_list("set-cookie"):
            value = header.split(";", 1)[0].split("=", 1)[1]
            if value:
                run.secrets.add(value)
        run.secrets.update(_CSRF.findall(response.text))
        run.requests_sent["psu"] += 1

    return httpx.Client(
        base_url=base_url, verify=context, timeout=15, event_hooks={"response": [remember]}
    )


class _RememberingTransport(httpx.HTTPTransport):
    """The TPP's transport (its QWAC on the TLS session): the Authorization and Signature
    values it sends are secrets too."""

    def __init__(self, run: Run, context: ssl.SSLContext) -> None:
        super().__init__(verify=context)
        self._run = run

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        for name in ("authorization", "signature"):
            value = request.headers.get(name)
            if value:
                self._run.secrets.add(value)
                self._run.secrets.add(value.removeprefix("Bearer "))
        return super().handle_request(request)


def _remember_tokens(run: Run, tokens: TokenSet) -> TokenSet:
    run.secrets.add(tokens.access_token)
    if tokens.refresh_token:
        run.secrets.add(tokens.refresh_token)
    return tokens


def _walk(robot: PsuRobot, browser: httpx.Client, tpp: StetBankClient, run: Run) -> tuple[Any, str]:
    request = tpp.authorization_request("aisp", CALLBACK)
    run.secrets.update({request.state, request.code_verifier or ""} - {""})
    challenge = dict(parse_qsl(urlsplit(request.url).query))["code_challenge"]
    run.secrets.add(challenge)
    return request, robot.walk(browser, request.url, CALLBACK)


@pytest.fixture(scope="module")
def run(
    request: pytest.FixtureRequest,
    pki: TestPki,
    database: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Run]:
    from tests.conftest import fresh_database_url

    root = tmp_path_factory.mktemp(f"observability-{database}")
    url = fresh_database_url(request, database, root)
    data_dir = root / "bank"
    port, metrics_port = free_port(), free_port()
    issuer = f"https://127.0.0.1:{port}"
    settings = Settings(data_dir=data_dir, database_url=url)
    clock = SystemClock()
    seed_demo_bank(settings, 2, now=clock.now(), directory_factory=cheap_directory)
    people = json.loads((data_dir / "demo-psus.json").read_text())
    certs = pki.issue(ORG, ("AISP", "CBPII"))
    engine = create_engine(url)
    register_client(engine, certs, clock.now())
    core = start_demo_bank_service(url, root / "core")
    env = dict(
        os.environ,
        STETGATE_DATA_DIR=str(data_dir),
        STETGATE_DATABASE_URL=url,
        STETGATE_ISSUER=issuer,
        STETGATE_TLS_CERT_FILE=str(pki.server_pem),
        STETGATE_TLS_KEY_FILE=str(pki.server_key),
        STETGATE_TRUST_DIR=str(pki.trust_dir),
        STETGATE_CRL_DIR=str(pki.crl_dir),
        STETGATE_CRL_POLL_SECONDS="0",
        # The session QTSP's CRL is in crl_dir already (fetching: test_revocation_fetch.py).
        STETGATE_REVOCATION_FETCH="false",
        STETGATE_METRICS_PORT=str(metrics_port),
        STETGATE_BANK_URL=core.url,
        STETGATE_BANK_AUTH="none",
    )
    env.pop("STETGATE_LOG_FORMAT", None)  # the default: json
    served = _Served(env, root / "serve.log", port)
    context = ssl.create_default_context(cafile=str(pki.ca_pem))
    try:
        served.wait_ready(f"{issuer}/health/live", context)
        result = Run(url, {}, "", [], {}, (clock.now(), clock.now()), [], [])
        _script(result, issuer, context, people, certs, pki, core, data_dir / "run" / "prometheus")
        # The TLS port has no /metrics, with or without a client certificate.
        tls_context = pki.client_ssl_context(certs)
        result.main_port_metrics = [
            httpx.get(f"{issuer}/metrics", verify=context, timeout=5).status_code,
            httpx.get(f"{issuer}/metrics", verify=tls_context, timeout=5).status_code,
        ]
        time.sleep(1.5)  # request observations reach the files within a second
        before = clock.now()
        scraped = httpx.get(f"http://127.0.0.1:{metrics_port}/metrics", timeout=10)
        after = clock.now()
        assert scraped.status_code == 200, scraped.text
        result.metrics_text = scraped.text
        result.metrics = _samples(scraped.text)
        result.scraped_between = (before, after)
        result.crl_this_updates = {
            path.name: info.this_update
            for path in pki.crl_dir.iterdir()
            if path.suffix in (".crl", ".der", ".pem")
            for info in parse_crl_file(path.read_bytes())
        }
        result.per_worker = _worker_samples(data_dir / "run" / "prometheus")
    finally:
        result_lines = served.stop()
        core.stop()
        engine.dispose()
    result.lines = result_lines
    yield result


def _script(
    run: Run,
    issuer: str,
    context: ssl.SSLContext,
    people: list[dict[str, Any]],
    certs: Any,
    pki: TestPki,
    core: Any,
    metrics_dir: Path,
) -> None:
    alice, bob, carol = people[0], people[1], people[2]
    for person in (alice, bob, carol):
        run.secrets.add(person["password"])
        run.secrets.add(person["totp_secret"])

    def otp_of(person: dict[str, Any]) -> Any:
        secret = decode_totp_secret(person["totp_secret"])

        def current() -> str:
            code = totp_at(secret, SystemClock().now())
            run.otps.append(code)
            return code

        return current

    credentials = TppCredentials.from_directory(certs.directory)
    qwac_context = pki.client_ssl_context(certs)
    tpp = StetBankClient(
        issuer,
        credentials,
        ORG,
        ca_file=pki.ca_pem,
        transport=_RememberingTransport(run, qwac_context),
    )
    with (
        tpp,
        _browser(issuer, context, run) as browser,
        httpx.Client(base_url=issuer, verify=qwac_context, timeout=10) as tpp_http,
    ):
        # 1. authorized: code (PKCE) → token pair
        robot = PsuRobot(alice["id"], alice["password"], otp=otp_of(alice), method="totp")
        auth_request, callback = _walk(robot, browser, tpp, run)
        code = dict(parse_qsl(urlsplit(callback).query))["code"]
        run.secrets.add(code)
        first = _remember_tokens(
            run, tpp.exchange_code(auth_request, callback, expected_issuer=issuer)
        )
        # 2. introspection of the access token
        introspected = tpp_http.post(INTROSPECT, data={"token": first.access_token})
        assert introspected.status_code == 200 and introspected.json()["active"] is True
        # 3. accounts: once with the PSU, five times without (the fifth is refused)
        tpp.api("GET", "accounts", first, psu_headers=PSU_PRESENT)
        run.accounts_ok += 1
        for _ in range(4):
            tpp.api("GET", "accounts", first)
            run.accounts_ok += 1
        with pytest.raises(BankError) as refused:
            tpp.api("GET", "accounts", first)
        assert refused.value.status == 429
        # 4. three refreshes (rotation: each returns a new refresh token)
        tokens = first
        for _ in range(3):
            tokens = _remember_tokens(run, tpp.refresh(tokens))
        # 5. the core-banking service goes away: one failed backend call
        core.stop()
        with pytest.raises(BankError) as unavailable:
            tpp.api("GET", "accounts", tokens, psu_headers=PSU_PRESENT)
        assert unavailable.value.status in (502, 503, 504)
        # 6. replays: the code (invalid_grant), then a replaced refresh token (invalid_grant)
        replay = tpp_http.post(
            TOKEN,
            data={
                "grant_type": "authorization_code",
                "code": code,
                "redirect_uri": CALLBACK,
                "client_id": ORG,
                "code_verifier": auth_request.code_verifier or "",
            },
        )
        assert replay.status_code == 400 and replay.json()["error"] == "invalid_grant"
        with pytest.raises(BankError) as reused:
            tpp.refresh(first)
        assert reused.value.oauth_error == "invalid_grant"
        # 7. /token without a client certificate: invalid_client, certificate failure
        anonymous = httpx.post(
            f"{issuer}{TOKEN}",
            data={"grant_type": "authorization_code", "code": code, "client_id": ORG},
            verify=context,
            timeout=10,
        )
        assert anonymous.status_code == 401 and anonymous.json()["error"] == "invalid_client"
        # 8. revocation
        tpp.revoke(tokens.access_token)
    # 9. the other journeys: refused, blocked (five wrong passwords), failed (unknown id)
    with _browser(issuer, context, run) as browser:
        refusing = PsuRobot(
            bob["id"], bob["password"], otp=otp_of(bob), method="totp", decision="refuse"
        )
        _, callback = _walk(refusing, browser, tpp_for(issuer, credentials, pki), run)
        assert dict(parse_qsl(urlsplit(callback).query))["error"] == "access_denied"
    for who in (carol["id"], "nobody-at-all"):
        with _browser(issuer, context, run) as browser:
            wrong = PsuRobot(who, "not the password")
            # The robot stops on the "access blocked" page: it has no form to submit.
            with pytest.raises(PsuJourneyError, match="no form"):
                _walk(wrong, browser, tpp_for(issuer, credentials, pki), run)

    # 10. requests on new connections, in rounds until both workers have answered some (the
    # kernel gives each connection to whichever worker accepts first)
    def live(_: int) -> int:
        return httpx.get(f"{issuer}/health/live", verify=context, timeout=10).status_code

    for _ in range(6):
        with ThreadPoolExecutor(8) as pool:
            assert set(pool.map(live, range(SPREAD_REQUESTS))) == {200}
        run.live_requests += SPREAD_REQUESTS
        time.sleep(1.2)  # flushed to the workers' files within a second
        parts = [worker.get(LIVE_COUNT, 0.0) for worker in _worker_samples(metrics_dir)]
        if len(parts) == 2 and all(parts):
            break


def tpp_for(issuer: str, credentials: TppCredentials, pki: TestPki) -> StetBankClient:
    """A TPP client used only to build authorization requests (no connection is made)."""
    return StetBankClient(issuer, credentials, ORG, ca_file=pki.ca_pem)


# --- metrics ---------------------------------------------------------------------------------
def test_grants_are_counted_by_type_and_refusals_by_error(run: Run) -> None:
    assert run.value("stetgate_grants_issued_total", grant_type="authorization_code") == 1
    assert run.value("stetgate_grants_issued_total", grant_type="refresh_token") == 3
    assert (
        run.value(
            "stetgate_grants_refused_total", grant_type="authorization_code", error="invalid_grant"
        )
        == 1
    )
    assert (
        run.value(
            "stetgate_grants_refused_total", grant_type="refresh_token", error="invalid_grant"
        )
        == 1
    )
    assert (
        run.value(
            "stetgate_grants_refused_total",
            grant_type="authorization_code",
            error="invalid_client",
        )
        == 1
    )
    refused = [
        (labels, value)
        for (name, labels), value in run.metrics.items()
        if name == "stetgate_grants_refused_total"
    ]
    assert sum(value for _, value in refused) == 3, refused


def test_journeys_are_counted_by_outcome(run: Run) -> None:
    counts = {
        outcome: run.value("stetgate_psu_journeys_total", outcome=outcome)
        for outcome in ("authorized", "refused", "failed", "timeout", "blocked")
    }
    assert counts == {"authorized": 1, "refused": 1, "failed": 1, "timeout": 0, "blocked": 1}


def test_the_fifth_unattended_call_is_counted_as_refused(run: Run) -> None:
    assert run.value("stetgate_unattended_refusals_total", endpoint="accounts") == 1


def test_certificate_failures_are_counted_by_reason(run: Run) -> None:
    assert run.value("stetgate_certificate_failures_total", reason="no_client_certificate") == 1
    failures = [k for k in run.metrics if k[0] == "stetgate_certificate_failures_total"]
    assert len(failures) == 1, failures


def test_backend_calls_are_timed_and_the_failure_counted(run: Run) -> None:
    ok = run.value(
        "stetgate_backend_call_duration_seconds_count", operation="accounts", outcome="ok"
    )
    # The API's five reads, and the consent page of the authorized journey, which lists the
    # PSU's accounts (`stetgate.psu.pages._consent_context`).
    assert run.accounts_ok == 5
    assert ok == run.accounts_ok + 1
    errors = {
        labels: value
        for (name, labels), value in run.metrics.items()
        if name == "stetgate_backend_call_errors_total"
    }
    # Step 5's call with the service stopped, and the refused journey's consent page, read
    # while it is still stopped (the page falls back to the generic wording).
    assert sum(errors.values()) == 2, errors
    for labels in errors:
        assert dict(labels)["operation"] == "accounts"
        assert dict(labels)["error"] in {"BankUnavailable", "BankTimeout"}


def test_requests_are_counted_by_route_template_and_status(run: Run) -> None:
    def count(method: str, endpoint: str, status: str) -> float:
        return run.value(
            "stetgate_http_request_duration_seconds_count",
            method=method,
            endpoint=endpoint,
            status=status,
        )

    assert count("GET", "/stet/psd2/v1.4.2/accounts", "200") == 5
    assert count("GET", "/stet/psd2/v1.4.2/accounts", "429") == 1
    assert count("GET", "/health/live", "200") == run.live_requests + 1
    assert count("POST", TOKEN, "200") == 4
    assert count("GET", "unmatched", "404") >= 2  # /metrics on the TLS port: no such route
    endpoints = {
        dict(labels)["endpoint"]
        for (name, labels) in run.metrics
        if name == "stetgate_http_request_duration_seconds_count"
    }
    assert "unmatched" in endpoints
    assert not any("?" in e or "code=" in e for e in endpoints), endpoints


def test_every_worker_counted_part_and_the_parts_add_up(run: Run) -> None:
    assert len(run.per_worker) == 2, "both workers must have served requests"
    parts = [worker.get(LIVE_COUNT, 0.0) for worker in run.per_worker]
    assert all(part > 0 for part in parts), parts
    assert sum(parts) == run.metrics[LIVE_COUNT] == run.live_requests + 1  # + wait_ready's
    for name in ("stetgate_grants_issued_total", "stetgate_psu_journeys_total"):
        for sample_key, total in run.metrics.items():
            if sample_key[0] == name:
                assert sum(w.get(sample_key, 0.0) for w in run.per_worker) == total


def test_revocation_data_age_is_the_time_since_each_crl_this_update(run: Run) -> None:
    before, after = run.scraped_between
    assert run.crl_this_updates
    for name, this_update in run.crl_this_updates.items():
        age = run.value("stetgate_revocation_data_age_seconds", crl=name)
        low = (before - this_update).total_seconds()
        high = (after - this_update).total_seconds()
        assert low - 1 <= age <= high + 1, (name, age, low, high)


def test_metrics_are_not_served_on_the_tls_port(run: Run) -> None:
    assert run.main_port_metrics == [404, 404]
    assert "stetgate_grants_issued_total" in run.metrics_text


# --- logs ------------------------------------------------------------------------------------
def _records(run: Run) -> list[dict[str, Any]]:
    return [json.loads(line) for line in run.lines]


def test_every_line_is_one_json_object_with_time_level_and_logger(run: Run) -> None:
    assert run.lines
    for line in run.lines:
        record = json.loads(line)
        assert isinstance(record, dict), line
        assert {"ts", "level", "logger"} <= record.keys(), line


def test_one_access_line_per_request_with_the_documented_fields(run: Run) -> None:
    access = [r for r in _records(run) if r.get("event") == "request"]
    for record in access:
        assert record.keys() == ACCESS_FIELDS | {"ts", "level", "logger"}, record
        assert record["duration_ms"] >= 0
        assert "?" not in record["endpoint"]
    api = [r for r in access if r["endpoint"] == "/stet/psd2/v1.4.2/accounts"]
    assert [r["status"] for r in api].count(200) == 5
    assert all(r["request_id"] and r["client_id"] == ORG and r["org_id"] == ORG for r in api)
    tokens = [r for r in access if r["endpoint"] == TOKEN and r["status"] == 200]
    assert len(tokens) == 4 and all(r["client_id"] == ORG for r in tokens)
    anonymous = [r for r in access if r["endpoint"] == TOKEN and r["status"] == 401]
    assert len(anonymous) == 1 and anonymous[0]["org_id"] is None
    assert anonymous[0]["client_id"] is None  # claimed in the form, never authenticated
    live = [r for r in access if r["endpoint"] == "/health/live"]
    assert len(live) == run.live_requests + 1


def test_one_line_per_audit_event(run: Run) -> None:
    engine = create_engine(run.database_url)
    try:
        with engine.connect() as conn:
            rows = Counter(conn.execute(select(audit_events.c.event)).scalars())
    finally:
        engine.dispose()
    logged = Counter(r["audit_event"] for r in _records(run) if r.get("event") == "audit")
    assert logged == rows
    assert logged["token_refreshed"] == 3 and logged["authorization_granted"] == 1


def test_no_secret_the_run_used_is_in_any_line(run: Run) -> None:
    secrets = {s for s in run.secrets if len(s) >= 8}
    assert len(secrets) >= 20, "the run must have collected its secrets"
    leaks = [(s, line) for line in run.lines for s in secrets if s in line]
    assert not leaks, leaks[:3]
    assert run.otps
    for otp in run.otps:
        pattern = re.compile(rf"(?<![0-9A-Za-z]){otp}(?![0-9A-Za-z])")
        assert not any(pattern.search(line) for line in run.lines), otp
