"""Decoupled SCA over HTTP (`stetgate.sca_http`): a real bank server and the demo SCA service
as a real HTTP server, both modes (callback, poll), the happy endings and the many ways an
answer must be refused without changing anything."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from stetgate.clock import FrozenClock
from stetgate.sca_http.contract import CALLBACK_PATH
from stetgate.sca_http.demo_service import DemoScaService
from stetgate.sca_http.signing import SIGNATURE_HEADER, sign
from stetgate.store.audit_events import (
    DECOUPLED_SCA_APPROVED,
    DECOUPLED_SCA_EXPIRED,
    DECOUPLED_SCA_REJECTED,
)
from stetgate.store.schema import authorization_codes
from tests.support.bank import RunningBank, start_bank
from tests.support.pki import TestPki
from tests.support.psu_flow import (
    PsuBrowser,
    add_psu,
    callback_params,
    callback_query,
    expired_return,
    journey_rows,
)
from tests.support.sca_service import SECRET, RunningScaService, start_sca_service
from tests.support.servers import free_port
from tests.support.token_side import add_client, audit_trail

ORG = "PSDFR-ACPR-40002"
IDLE = 300
BankMaker = Callable[..., RunningBank]


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock()


@pytest.fixture
def service(pki: TestPki, clock: FrozenClock) -> Iterator[RunningScaService]:
    demo = DemoScaService(SECRET, clock=clock, callback_verify=pki.client_ssl_context())
    running = start_sca_service(demo)
    yield running
    running.stop()


@pytest.fixture
def make_bank(pki: TestPki, db_url: str, tmp_path: Path, clock: FrozenClock) -> Iterator[BankMaker]:
    started: list[RunningBank] = []

    def make(url: str, mode: str = "callback", **overrides: Any) -> RunningBank:
        bank = start_bank(
            pki,
            db_url,
            tmp_path / f"bank{len(started)}",
            clock,
            sca_http_url=url,
            sca_http_secret=SECRET,
            sca_http_mode=mode,
            sca_http_timeout_seconds=0.5,
            **overrides,
        )
        started.append(bank)
        add_client(
            bank.services.engine,
            pki.issue(ORG, ("AISP", "CBPII")),
            clock.now(),
            name="Budget Facile",
        )
        add_psu(bank, "alice")
        return bank

    yield make
    for bank in started:
        bank.stop()


@pytest.fixture(params=["callback", "poll"])
def mode(request: pytest.FixtureRequest) -> str:
    value: str = request.param
    return value


@pytest.fixture
def bank(make_bank: BankMaker, service: RunningScaService, mode: str) -> RunningBank:
    return make_bank(service.url, mode)


@pytest.fixture
def callback_bank(make_bank: BankMaker, service: RunningScaService) -> RunningBank:
    return make_bank(service.url, "callback")


# --- helpers ---------------------------------------------------------------------------------
def _to_method_page(browser: PsuBrowser) -> None:
    browser.start(ORG)
    browser.follow(browser.login())


def _to_app_page(browser: PsuBrowser) -> str:
    _to_method_page(browser)
    page = browser.follow(browser.choose("app"))
    assert 'id="app-confirm-form"' in page.text
    return browser.challenge_reference()


def _status(browser: PsuBrowser) -> str:
    status: str = browser.http.get("/psu/sca/status").json()["status"]
    return status


def _challenge(service: RunningScaService, reference: str) -> dict[str, Any]:
    (found,) = [c for c in service.pending() if c["reference"] == reference]
    return found


def _answer(service: RunningScaService, reference: str, decision: str, mode: str) -> str:
    challenge_id: str = _challenge(service, reference)["challenge_id"]
    answered = service.answer(challenge_id, decision)
    assert answered.status_code == 200, answered.text
    expected_callback = 204 if mode == "callback" else None
    assert answered.json()["callback_status"] == expected_callback
    return challenge_id


def _expect_denied(bank: RunningBank, location: str, description: str) -> None:
    query = callback_params(location)
    assert query["error"] == "access_denied" and query["error_description"] == description
    assert query["state"] == "st-123"


def _codes(bank: RunningBank) -> int:
    with bank.services.engine.connect() as conn:
        return len(conn.execute(select(authorization_codes)).all())


def _events(bank: RunningBank) -> list[str]:
    return [e["event"] for e in audit_trail(bank.services.engine)]


def _callback(
    bank: RunningBank,
    body: dict[str, Any] | bytes,
    *,
    secret: str = SECRET,
    at: timedelta = timedelta(0),
    header: str | None = None,
    version: str | None = "1",
) -> httpx.Response:
    """POST a callback as the bank's SCA service would, signed with `secret` at clock + `at`."""
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    if header is None:
        header = sign(secret, bank.clock.now() + at, "POST", CALLBACK_PATH, content)
    headers = {SIGNATURE_HEADER: header, "Content-Type": "application/json"}
    if version is not None:
        headers["Sca-Contract-Version"] = version
    with bank.client() as http:
        return http.post(CALLBACK_PATH, content=content, headers=headers)


def _journey(bank: RunningBank) -> dict[str, Any]:
    (row,) = journey_rows(bank)
    return row


# --- the three endings, both modes ----------------------------------------------------------
@pytest.mark.postgres  # PostgreSQL smoke test of the SCA-service journey
def test_approved_in_the_app_issues_a_code(
    bank: RunningBank, service: RunningScaService, mode: str
) -> None:
    with PsuBrowser(bank) as browser:
        browser.http.headers["X-Request-ID"] = "req-sca-http-1"
        reference = _to_app_page(browser)
        challenge = _challenge(service, reference)
        assert challenge["tpp_name"] == "Budget Facile" and challenge["access"] == "aisp"
        assert "req-sca-http-1" in service.service.requests_seen
        stored = service.service.challenges[challenge["challenge_id"]]
        assert (stored.callback_url is not None) == (mode == "callback")
        assert _status(browser) == "pending"
        not_yet = browser.submit("/psu/sca", {})
        assert not_yet.status_code == 200 and "pas encore" in not_yet.text
        _answer(service, reference, "approve", mode)
        assert _status(browser) == "approved"
        assert browser.submit("/psu/sca", {}).headers["location"] == "/psu/consent"
        browser.get("/psu/consent")
        assert set(callback_query(browser.consent("authorize"))) == {"code", "state", "iss"}
    assert DECOUPLED_SCA_APPROVED in _events(bank)
    assert _codes(bank) == 1


def test_rejected_in_the_app_returns_authentication_failed(
    bank: RunningBank, service: RunningScaService, mode: str
) -> None:
    with PsuBrowser(bank) as browser:
        reference = _to_app_page(browser)
        _answer(service, reference, "reject", mode)
        assert _status(browser) == "rejected"
        location = browser.submit("/psu/sca", {}).headers["location"]
        _expect_denied(bank, location, "authentication_failed")
    assert _journey(bank)["outcome"] == "sca_rejected"
    assert DECOUPLED_SCA_REJECTED in _events(bank)
    assert _codes(bank) == 0


def test_expired_by_the_service_returns_timeout(
    bank: RunningBank, service: RunningScaService, mode: str
) -> None:
    with PsuBrowser(bank) as browser:
        reference = _to_app_page(browser)
        _answer(service, reference, "expire", mode)
        assert _status(browser) == "expired"
        _expect_denied(bank, expired_return(browser.submit("/psu/sca", {})), "timeout")
    assert _journey(bank)["outcome"] == "timeout"
    assert DECOUPLED_SCA_EXPIRED in _events(bank)
    assert _codes(bank) == 0


def test_poll_mode_reads_expiry_of_an_unanswered_challenge(
    make_bank: BankMaker, service: RunningScaService, clock: FrozenClock
) -> None:
    bank = make_bank(service.url, "poll", psu_idle_timeout_seconds=600)
    with PsuBrowser(bank) as browser:
        _to_app_page(browser)
        (stored,) = service.service.challenges.values()
        stored.expires_at = clock.now() + timedelta(seconds=60)  # the service's own, shorter
        clock.advance(61)
        assert _status(browser) == "expired"
        _expect_denied(bank, expired_return(browser.submit("/psu/sca", {})), "timeout")


def test_connected_apps_sign_in_sends_no_tpp_and_reaches_the_apps_page(
    callback_bank: RunningBank, service: RunningScaService
) -> None:
    bank = callback_bank
    with PsuBrowser(bank) as browser:
        assert browser.http.get("/psu/connected-apps").headers["location"] == "/psu/login"
        browser.get("/psu/login")
        browser.follow(browser.login())
        browser.follow(browser.choose("app"))
        reference = browser.challenge_reference()
        challenge = _challenge(service, reference)
        assert (challenge["tpp_name"], challenge["access"]) == (None, None)
        _answer(service, reference, "approve", "callback")
        answer = browser.submit("/psu/sca", {})
        assert answer.headers["location"] == "/psu/connected-apps"


def test_cbpii_access_is_named_to_the_service(
    callback_bank: RunningBank, service: RunningScaService
) -> None:
    with PsuBrowser(callback_bank) as browser:
        browser.start(ORG, scope="cbpii")
        browser.follow(browser.login())
        browser.follow(browser.choose("app"))
        assert _challenge(service, browser.challenge_reference())["access"] == "cbpii"


# --- callbacks that must change nothing ------------------------------------------------------
@pytest.mark.parametrize(
    "tamper",
    ["wrong_secret", "old_timestamp", "future_timestamp", "no_header", "garbage_header"],
)
def test_a_badly_signed_callback_is_refused_and_changes_nothing(
    callback_bank: RunningBank, service: RunningScaService, tamper: str
) -> None:
    bank = callback_bank
    with PsuBrowser(bank) as browser:
        reference = _to_app_page(browser)
        challenge_id = _challenge(service, reference)["challenge_id"]
        body = {"challenge_id": challenge_id, "status": "approved"}
        if tamper == "wrong_secret":
            response = _callback(bank, body, secret="x" * 40)
        elif tamper == "old_timestamp":
            response = _callback(bank, body, at=timedelta(seconds=-301))
        elif tamper == "future_timestamp":
            response = _callback(bank, body, at=timedelta(seconds=301))
        elif tamper == "no_header":
            response = _callback(bank, body, header="")
        else:
            response = _callback(bank, body, header="t=abc,v1=00")
        assert response.status_code == 401
        assert response.json() == {"error": "invalid_signature"}
        assert _status(browser) == "pending"
    assert _journey(bank)["app_challenge_status"] == "pending"
    assert DECOUPLED_SCA_APPROVED not in _events(bank)


def test_a_signature_over_another_body_is_refused(
    callback_bank: RunningBank, service: RunningScaService
) -> None:
    bank = callback_bank
    with PsuBrowser(bank) as browser:
        reference = _to_app_page(browser)
        challenge_id = _challenge(service, reference)["challenge_id"]
        rejected = json.dumps({"challenge_id": challenge_id, "status": "rejected"}).encode()
        header = sign(SECRET, bank.clock.now(), "POST", CALLBACK_PATH, rejected)
        approved = {"challenge_id": challenge_id, "status": "approved"}
        assert _callback(bank, approved, header=header).status_code == 401
        assert _status(browser) == "pending"


@pytest.mark.postgres  # the service answer's compare-and-set
def test_a_replayed_or_second_callback_is_refused_and_changes_nothing(
    callback_bank: RunningBank, service: RunningScaService
) -> None:
    bank = callback_bank
    with PsuBrowser(bank) as browser:
        reference = _to_app_page(browser)
        challenge_id = _challenge(service, reference)["challenge_id"]
        body = json.dumps({"challenge_id": challenge_id, "status": "rejected"}).encode()
        header = sign(SECRET, bank.clock.now(), "POST", CALLBACK_PATH, body)
        assert _callback(bank, body, header=header).status_code == 204
        assert _status(browser) == "rejected"
        events = _events(bank)
        assert _callback(bank, body, header=header).status_code == 409  # the same, replayed
        approve = {"challenge_id": challenge_id, "status": "approved"}
        assert _callback(bank, approve).status_code == 409  # a second, different answer
        assert _status(browser) == "rejected"
        assert _events(bank) == events
        # the service's own second answer is refused there too
        assert service.answer(challenge_id, "approve").status_code == 200  # first there
        assert service.answer(challenge_id, "approve").status_code == 409


@pytest.mark.postgres  # the compare-and-set under concurrent answers
def test_concurrent_contradictory_callbacks_record_exactly_one(
    callback_bank: RunningBank, service: RunningScaService
) -> None:
    from concurrent.futures import ThreadPoolExecutor

    bank = callback_bank
    with PsuBrowser(bank) as browser:
        reference = _to_app_page(browser)
        challenge_id = _challenge(service, reference)["challenge_id"]
        answers = ["approved", "rejected"] * 4
        with ThreadPoolExecutor(len(answers)) as pool:
            codes = list(
                pool.map(
                    lambda status: (
                        _callback(
                            bank, {"challenge_id": challenge_id, "status": status}
                        ).status_code
                    ),
                    answers,
                )
            )
        assert sorted(codes) == [204] + [409] * (len(answers) - 1)
        winner = answers[codes.index(204)]
        assert _status(browser) == winner
    decided = [e for e in _events(bank) if e in (DECOUPLED_SCA_APPROVED, DECOUPLED_SCA_REJECTED)]
    assert len(decided) == 1


def test_a_callback_for_an_unknown_challenge_is_404(
    callback_bank: RunningBank, service: RunningScaService
) -> None:
    bank = callback_bank
    with PsuBrowser(bank) as browser:
        _to_app_page(browser)
        response = _callback(bank, {"challenge_id": "no-such-challenge", "status": "approved"})
        assert response.status_code == 404
        assert _status(browser) == "pending"


@pytest.mark.parametrize(
    "body",
    [
        b"not json",
        b"[]",
        json.dumps({"challenge_id": "x", "status": "pending"}).encode(),
        json.dumps({"challenge_id": "x", "status": "APPROVED"}).encode(),
        json.dumps({"challenge_id": "a/b", "status": "approved"}).encode(),
        json.dumps({"challenge_id": 12, "status": "approved"}).encode(),
        json.dumps({"status": "approved"}).encode(),
    ],
)
def test_a_signed_callback_outside_the_contract_is_400(
    callback_bank: RunningBank, service: RunningScaService, body: bytes
) -> None:
    with PsuBrowser(callback_bank) as browser:
        _to_app_page(browser)
        assert _callback(callback_bank, body).status_code == 400
        assert _status(browser) == "pending"


@pytest.mark.parametrize("version", [None, "2", "1.0"])
def test_a_callback_of_another_contract_version_is_400(
    callback_bank: RunningBank, service: RunningScaService, version: str | None
) -> None:
    with PsuBrowser(callback_bank) as browser:
        reference = _to_app_page(browser)
        challenge_id = _challenge(service, reference)["challenge_id"]
        body = {"challenge_id": challenge_id, "status": "approved"}
        response = _callback(callback_bank, body, version=version)
        assert response.status_code == 400
        assert response.json() == {"error": "unsupported_version"}
        assert _status(browser) == "pending"


def test_a_callback_after_the_journey_timed_out_is_refused(
    callback_bank: RunningBank, service: RunningScaService, clock: FrozenClock
) -> None:
    bank = callback_bank
    with PsuBrowser(bank) as browser:
        reference = _to_app_page(browser)
        challenge_id = _challenge(service, reference)["challenge_id"]
        clock.advance(IDLE)
        response = _callback(bank, {"challenge_id": challenge_id, "status": "approved"})
        assert response.status_code == 409
        assert _journey(bank)["app_challenge_status"] == "pending"
        _expect_denied(bank, expired_return(browser.submit("/psu/sca", {})), "timeout")
    assert _codes(bank) == 0


def test_a_callback_after_the_psu_cancelled_is_refused(
    callback_bank: RunningBank, service: RunningScaService
) -> None:
    bank = callback_bank
    with PsuBrowser(bank) as browser:
        reference = _to_app_page(browser)
        challenge_id = _challenge(service, reference)["challenge_id"]
        _expect_denied(bank, browser.submit("/psu/cancel", {}).headers["location"], "cancelled")
        events = _events(bank)
        response = _callback(bank, {"challenge_id": challenge_id, "status": "approved"})
        assert response.status_code == 409
        assert _journey(bank)["outcome"] == "consent_refused"
        assert _events(bank) == events


def test_the_in_process_demo_phone_cannot_answer_a_challenge_of_the_sca_service(
    make_bank: BankMaker, service: RunningScaService
) -> None:
    from stetgate.psu.decoupled import answer_challenge, pending_for

    bank = make_bank(service.url, "callback")
    with PsuBrowser(bank) as browser:
        reference = _to_app_page(browser)
        now = bank.clock.now()
        assert pending_for(bank.services.engine, bank.settings, "alice", now) == []
        assert not answer_challenge(
            bank.services.engine, bank.settings, reference, approve=True, now=now
        )
        assert _status(browser) == "pending"


def test_the_callback_route_exists_only_in_callback_mode(
    make_bank: BankMaker, service: RunningScaService, bank_factory: BankMaker
) -> None:
    for running in (make_bank(service.url, "poll"), bank_factory()):
        with running.client() as http:
            assert http.post(CALLBACK_PATH, content=b"{}").status_code in (404, 405)


# --- the SCA service not answering -----------------------------------------------------------
def _unavailable(response: httpx.Response) -> None:
    assert response.status_code == 503, response.text[:300]
    assert response.headers["retry-after"] == "1"
    assert "Traceback" not in response.text


def test_service_down_at_challenge_time_shows_503_and_keeps_the_journey(
    make_bank: BankMaker, service: RunningScaService
) -> None:
    bank = make_bank(f"http://127.0.0.1:{free_port()}", "callback")  # nothing listens there
    with PsuBrowser(bank) as browser:
        _to_method_page(browser)
        csrf = browser.csrf
        _unavailable(browser.choose("app"))
        row = _journey(bank)
        assert (row["stage"], row["app_challenge_id"], row["outcome"]) == ("method", None, None)
        # the journey goes on: the PSU picks the other method
        browser.follow(browser.submit("/psu/sca/method", {"method": "totp"}, csrf=csrf))
        assert browser.otp(browser.current_code()).headers["location"] == "/psu/consent"


@pytest.mark.parametrize("failure", ["slow", "maintenance", "unsigned_answer"])
def test_service_failing_at_challenge_time_shows_503_then_a_retry_works(
    callback_bank: RunningBank, service: RunningScaService, failure: str
) -> None:
    bank = callback_bank
    demo = service.service
    if failure == "slow":
        demo.delay_seconds = 1.0  # past sca_http_timeout_seconds (0.5)
    elif failure == "maintenance":
        demo.down = True
    else:
        demo.secret = "y" * 40  # the service refuses stetgate's signature: 401
    with PsuBrowser(bank) as browser:
        _to_method_page(browser)
        csrf = browser.csrf
        _unavailable(browser.choose("app"))
        assert _journey(bank)["stage"] == "method"
        demo.delay_seconds, demo.down, demo.secret = 0.0, False, SECRET
        again = browser.submit("/psu/sca/method", {"method": "app"}, csrf=csrf)
        assert again.headers["location"] == "/psu/sca"
        assert _journey(bank)["stage"] == "sca"


def test_poll_mode_service_down_while_waiting_keeps_the_journey(
    make_bank: BankMaker, service: RunningScaService
) -> None:
    bank = make_bank(service.url, "poll")
    with PsuBrowser(bank) as browser:
        reference = _to_app_page(browser)
        csrf = browser.csrf
        service.service.down = True
        assert _status(browser) == "pending"  # the page keeps waiting
        _unavailable(browser.submit("/psu/sca", {}))
        row = _journey(bank)
        assert (row["stage"], row["app_challenge_status"]) == ("sca", "pending")
        service.service.down = False
        _answer(service, reference, "approve", "poll")
        assert browser.submit("/psu/sca", {}, csrf=csrf).headers["location"] == "/psu/consent"


def test_poll_mode_slow_service_while_waiting_keeps_the_journey(
    make_bank: BankMaker, service: RunningScaService
) -> None:
    bank = make_bank(service.url, "poll")
    with PsuBrowser(bank) as browser:
        _to_app_page(browser)
        service.service.delay_seconds = 1.0
        _unavailable(browser.submit("/psu/sca", {}))
        assert _journey(bank)["app_challenge_status"] == "pending"


def test_the_service_refuses_unsigned_or_stale_requests(
    service: RunningScaService, clock: FrozenClock
) -> None:
    body = json.dumps({"psu_id": "alice"}).encode()
    with httpx.Client(base_url=service.url, timeout=10) as http:
        assert http.post("/challenges", content=body).status_code == 401
        stale = sign(SECRET, clock.now() - timedelta(seconds=301), "POST", "/challenges", body)
        assert (
            http.post("/challenges", content=body, headers={SIGNATURE_HEADER: stale}).status_code
            == 401
        )
        other_path = sign(SECRET, clock.now(), "GET", "/challenges/a", b"")
        assert http.get("/challenges/b", headers={SIGNATURE_HEADER: other_path}).status_code == 401
    assert service.service.challenges == {}


# --- the demo: a separate service process, the CLI and the phone page as the banking app -----
@pytest.fixture
def service_process(pki: TestPki, tmp_path: Path) -> Iterator[str]:
    """``stetgate demo-sca serve`` as its own process (system clock, like a real service)."""
    import os
    import subprocess
    import sys
    import time

    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = dict(
        os.environ,
        STETGATE_SCA_HTTP_URL=url,
        STETGATE_SCA_HTTP_SECRET=SECRET,
        STETGATE_DATA_DIR=str(tmp_path / "sca-service"),
    )
    command = (sys.executable, "-m", "stetgate.cli", "demo-sca", "serve")
    proc = subprocess.Popen(
        (*command, "--callback-ca", str(pki.ca_pem)),
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                httpx.get(f"{url}/app/challenges", timeout=1)
                break
            except httpx.HTTPError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise RuntimeError("demo-sca serve did not start") from None
                time.sleep(0.1)
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        assert proc.stderr is not None
        proc.stderr.close()


def _cli(bank: RunningBank, *args: str) -> Any:
    from click.testing import CliRunner

    from stetgate.cli import main

    env = {
        "STETGATE_SCA_HTTP_URL": bank.settings.sca_http_url or "",
        "STETGATE_SCA_HTTP_SECRET": SECRET,
        "STETGATE_DATABASE_URL": bank.settings.resolved_database_url,
    }
    return CliRunner().invoke(
        main, ["--data-dir", str(bank.settings.data_dir), *args], env=env, catch_exceptions=False
    )


def test_cli_approves_through_a_separate_service_process_then_a_code_is_issued(
    make_bank: BankMaker, service_process: str
) -> None:
    bank = make_bank(service_process, "callback")
    with PsuBrowser(bank) as browser:
        reference = _to_app_page(browser)
        listed = _cli(bank, "psu", "challenges", "alice")
        assert listed.exit_code == 0 and f"{reference}\tBudget Facile" in listed.output
        assert _cli(bank, "psu", "approve", reference.lower()).exit_code == 0
        assert _status(browser) == "approved"
        again = _cli(bank, "psu", "reject", reference)
        assert again.exit_code != 0 and "no pending challenge" in again.output
        assert _status(browser) == "approved"
        assert browser.submit("/psu/sca", {}).headers["location"] == "/psu/consent"
        browser.get("/psu/consent")
        assert set(callback_query(browser.consent("authorize"))) == {"code", "state", "iss"}


def test_poll_mode_with_a_separate_service_process_reads_a_rejection(
    make_bank: BankMaker, service_process: str
) -> None:
    bank = make_bank(service_process, "poll")
    with PsuBrowser(bank) as browser:
        reference = _to_app_page(browser)
        assert _cli(bank, "psu", "reject", reference).exit_code == 0
        assert _status(browser) == "rejected"
        _expect_denied(
            bank, browser.submit("/psu/sca", {}).headers["location"], "authentication_failed"
        )


def test_cli_says_so_when_the_service_is_down(
    make_bank: BankMaker, service: RunningScaService
) -> None:
    bank = make_bank(f"http://127.0.0.1:{free_port()}", "callback")
    result = _cli(bank, "psu", "approve", "ABCDE-FGHJK")
    assert result.exit_code != 0 and "demo SCA service" in result.output


def _phone_csrf(http: httpx.Client) -> str:
    import re

    page = http.get("/demo/phone")
    found = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert found
    return found.group(1)


def test_the_demo_phone_answers_through_the_sca_service(
    make_bank: BankMaker, service: RunningScaService, mode: str
) -> None:
    bank = make_bank(service.url, mode, enable_demo_pages=True)
    add_psu(bank, "bob")
    with PsuBrowser(bank) as browser:
        reference = _to_app_page(browser)
        with bank.client() as phone:
            csrf = _phone_csrf(phone)
            shown = phone.post("/demo/phone", data={"psu_id": "alice", "csrf_token": csrf})
            assert reference in shown.text and "Budget Facile" in shown.text
            form = {"challenge_id": reference.replace("-", ""), "csrf_token": csrf}
            # bob's phone cannot answer alice's challenge
            wrong = phone.post(
                "/demo/phone/challenge", data={**form, "psu_id": "bob", "action": "approve"}
            )
            assert "plus en attente" in wrong.text
            assert _status(browser) == "pending"
            done = phone.post(
                "/demo/phone/challenge", data={**form, "psu_id": "alice", "action": "approve"}
            )
            assert done.status_code == 200 and "plus en attente" not in done.text
            assert _status(browser) == "approved"
            twice = phone.post(
                "/demo/phone/challenge", data={**form, "psu_id": "alice", "action": "reject"}
            )
            assert "plus en attente" in twice.text
        assert _status(browser) == "approved"


def test_the_demo_phone_shows_503_when_the_service_is_down(
    make_bank: BankMaker, service: RunningScaService
) -> None:
    bank = make_bank(f"http://127.0.0.1:{free_port()}", "callback", enable_demo_pages=True)
    with bank.client() as phone:
        csrf = _phone_csrf(phone)
        _unavailable(phone.post("/demo/phone", data={"psu_id": "alice", "csrf_token": csrf}))
