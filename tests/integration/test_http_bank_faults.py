"""A core-banking backend that misbehaves, behind a real gateway: whatever it does, the TPP
gets a STET error (503, or 504 for a timeout) with its own ``X-Request-ID`` and no backend
detail, the failure is audited with that id, nothing else is written, and the worker keeps
serving. Each fault is its own test; the backend is a small threaded HTTP server on 127.0.0.1
(`tests.support.core_banking.FaultyBackend`) switched between behaviours.
"""

from __future__ import annotations

import ssl
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from stetgate.bank_http import CircuitBreaker, HttpBank, PooledTransport, http_bank
from stetgate.settings import Settings
from stetgate.store.audit_events import PSD2_BANK_UNAVAILABLE
from stetgate.store.schema import audit_events, psd2_consents
from tests.integration.psd2_support import ApiWorld, Tpp, build_world
from tests.integration.test_psd2_api import assert_error
from tests.support.core_banking import FaultyBackend, faulty_backend, refused_url
from tests.support.pki import TestPki

IBAN = "FR7630006000011234567890189"
TIMEOUT_MS = 500


@pytest.fixture(scope="module")
def backend() -> Iterator[FaultyBackend]:
    with faulty_backend() as server:
        yield server


@pytest.fixture(scope="module")
def faulty_world(
    request: pytest.FixtureRequest,
    pki: TestPki,
    tmp_path_factory: pytest.TempPathFactory,
    backend: FaultyBackend,
) -> Iterator[ApiWorld]:
    yield from build_world(
        request,
        pki,
        tmp_path_factory.mktemp("http-bank-faults"),
        "sqlite",
        bank_url=backend.url,
        bank_auth="none",
        bank_timeout_ms=TIMEOUT_MS,
        bank_retries=2,
        bank_retry_backoff_ms=10,
        bank_breaker_failures=1000,  # the breaker has its own test
    )


@pytest.fixture
def gateway_bank(faulty_world: ApiWorld) -> Iterator[HttpBank]:
    bank = faulty_world.bank.services.bank
    assert isinstance(bank, HttpBank)
    transport, breaker, timeout = bank.transport, bank.breaker, bank.timeout
    yield bank
    bank.transport, bank.breaker, bank.timeout = transport, breaker, timeout
    breaker.reset()


@pytest.fixture
def world(faulty_world: ApiWorld, backend: FaultyBackend, gateway_bank: HttpBank) -> ApiWorld:
    faulty_world.reset()
    backend.mode, backend.delay = "ok", 0.0
    backend.requests.clear()
    return faulty_world


@pytest.fixture
def tpp(world: ApiWorld) -> Tpp:
    return world.tpp()


def _audited(world: ApiWorld) -> list[tuple[str, str | None, str | None]]:
    with world.engine.connect() as conn:
        rows = conn.execute(
            select(audit_events.c.event, audit_events.c.request_id, audit_events.c.reason)
        ).all()
    return [tuple(row) for row in rows]  # type: ignore[misc]


def _consents(world: ApiWorld) -> list[Any]:
    with world.engine.connect() as conn:
        return list(conn.execute(select(psd2_consents)).all())


def _refused(world: ApiWorld, response: httpx.Response, status: int, reason: str) -> dict[str, Any]:
    """The STET error with the request's id, no backend detail; audited with that id."""
    body = assert_error(response, status)
    assert response.headers["retry-after"] == "1"
    assert "10.0.0.7" not in response.text and "internal" not in body["message"]
    request_id = response.request.headers["x-request-id"]
    events = [e for e in _audited(world) if e[0] == PSD2_BANK_UNAVAILABLE]
    assert len(events) == 1 and events[0][1] == request_id, events
    assert reason in (events[0][2] or ""), events
    return body


def test_the_happy_backend_serves_and_receives_the_request_id(
    world: ApiWorld, tpp: Tpp, backend: FaultyBackend
) -> None:
    response = tpp.get("accounts", token=world.token("jdupont"))
    assert response.status_code == 200, response.text
    assert [a["resourceId"] for a in response.json()["accounts"]] == ["acc-1"]
    assert [r[2] for r in backend.requests] == [response.request.headers["x-request-id"]]


def test_backend_down_connection_refused_is_a_503(
    world: ApiWorld, tpp: Tpp, gateway_bank: HttpBank
) -> None:
    gateway_bank.transport = PooledTransport(refused_url(), max_connections=2)
    started = time.monotonic()
    response = tpp.get("accounts", token=world.token("jdupont"))
    _refused(world, response, 503, "connection refused")
    assert time.monotonic() - started < TIMEOUT_MS / 1000 + 1


def test_a_backend_slower_than_the_timeout_is_a_504_in_time(
    world: ApiWorld, tpp: Tpp, backend: FaultyBackend
) -> None:
    backend.mode, backend.delay = "slow", 3.0
    started = time.monotonic()
    response = tpp.get("accounts", token=world.token("jdupont"))
    elapsed = time.monotonic() - started
    _refused(world, response, 504, "BankTimeout")
    assert elapsed < TIMEOUT_MS / 1000 + 1, elapsed
    assert len(backend.requests) == 1  # the budget is spent: no retry


def test_a_500_is_a_503_and_is_not_retried(
    world: ApiWorld, tpp: Tpp, backend: FaultyBackend
) -> None:
    backend.mode = "error_500"
    response = tpp.get("accounts", token=world.token("jdupont"))
    _refused(world, response, 503, "HTTP 500")
    assert len(backend.requests) == 1


def test_a_503_is_retried_for_a_get_with_the_same_request_id(
    world: ApiWorld, tpp: Tpp, backend: FaultyBackend
) -> None:
    backend.mode = "unavailable_503"
    response = tpp.get("accounts", token=world.token("jdupont"))
    _refused(world, response, 503, "HTTP 503")
    sent = response.request.headers["x-request-id"]
    assert [r[2] for r in backend.requests] == [sent] * 3  # 1 + bank_retries


def test_a_funds_check_is_never_retried(world: ApiWorld, tpp: Tpp, backend: FaultyBackend) -> None:
    token = world.token("jdupont", "cbpii")
    backend.mode = "unavailable_503"

    def first_call_lists_accounts(path: str) -> tuple[int, str, bytes]:
        if path.endswith("/accounts"):
            return FaultyBackend.answer(FaultyBackend(mode="ok"), path)
        return 503, "application/json", b'{"error":"internal"}'

    backend.answer = first_call_lists_accounts  # type: ignore[method-assign]
    try:
        response = tpp.call(
            "POST",
            "funds-confirmations",
            token=token,
            json_body={
                "paymentCoverageRequestId": "c1",
                "instructedAmount": {"currency": "EUR", "amount": "1.00"},
                "accountId": {"iban": IBAN},
            },
        )
    finally:
        del backend.answer
    _refused(world, response, 503, "HTTP 503")
    assert [r[0] for r in backend.requests] == ["GET", "POST"]


def test_malformed_json_is_a_503(world: ApiWorld, tpp: Tpp, backend: FaultyBackend) -> None:
    backend.mode = "malformed_json"
    response = tpp.get("accounts", token=world.token("jdupont"))
    _refused(world, response, 503, "invalid answer")


def test_a_wrong_content_type_is_a_503(world: ApiWorld, tpp: Tpp, backend: FaultyBackend) -> None:
    backend.mode = "wrong_content_type"
    response = tpp.get("accounts", token=world.token("jdupont"))
    _refused(world, response, 503, "not application/json")


def test_a_missing_member_is_a_503(world: ApiWorld, tpp: Tpp, backend: FaultyBackend) -> None:
    backend.mode = "missing_field"
    response = tpp.get("accounts", token=world.token("jdupont"))
    _refused(world, response, 503, "accounts.0.currency")


def test_an_amount_with_too_many_digits_is_a_503(
    world: ApiWorld, tpp: Tpp, backend: FaultyBackend
) -> None:
    backend.mode = "bad_amount"
    token = world.token("jdupont")
    consent = tpp.call("PUT", "consents", token=token, json_body={"balances": [{"iban": IBAN}]})
    assert consent.status_code == 201, consent.text
    response = tpp.get("accounts", token=token)
    _refused(world, response, 503, "fractional digits")


def test_a_partial_transaction_page_is_a_503(
    world: ApiWorld, tpp: Tpp, backend: FaultyBackend
) -> None:
    token = world.token("jdupont")
    consent = tpp.call("PUT", "consents", token=token, json_body={"transactions": [{"iban": IBAN}]})
    assert consent.status_code == 201, consent.text
    backend.mode = "partial_page"
    response = tpp.get("accounts/acc-1/transactions", token=token)
    _refused(world, response, 503, "partial page")


def test_a_backend_certificate_from_another_ca_is_a_503(
    world: ApiWorld, tpp: Tpp, gateway_bank: HttpBank, pki: TestPki, tmp_path: Any
) -> None:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(pki.server_pem, pki.server_key)
    with faulty_backend(tls=context) as tls_backend:
        wrong_ca = http_bank(
            Settings(
                data_dir=tmp_path,
                bank_url=tls_backend.url,
                bank_auth="none",
                bank_ca_file=pki.foreign_dir / "ca.pem",
            )
        )
        gateway_bank.transport = wrong_ca.transport
        response = tpp.get("accounts", token=world.token("jdupont"))
        _refused(world, response, 503, "TLS failure")
        assert tls_backend.requests == []  # nothing was sent to an unverified server
        wrong_ca.close()


def test_nothing_is_written_when_the_backend_fails_a_consent(
    world: ApiWorld, tpp: Tpp, gateway_bank: HttpBank
) -> None:
    gateway_bank.transport = PooledTransport(refused_url(), max_connections=2)
    response = tpp.call(
        "PUT", "consents", token=world.token("jdupont"), json_body={"balances": [{"iban": IBAN}]}
    )
    _refused(world, response, 503, "connection refused")
    assert _consents(world) == []
    assert [e[0] for e in _audited(world)] == [PSD2_BANK_UNAVAILABLE]


def test_while_the_backend_hangs_the_worker_keeps_serving(
    world: ApiWorld, tpp: Tpp, backend: FaultyBackend, gateway_bank: HttpBank
) -> None:
    gateway_bank.timeout = 3.0
    backend.mode, backend.delay = "slow", 2.0
    token = world.token("jdupont")
    answers: list[httpx.Response] = []
    hanging = threading.Thread(target=lambda: answers.append(tpp.get("accounts", token=token)))
    hanging.start()
    deadline = time.monotonic() + 2
    while not backend.requests and time.monotonic() < deadline:
        time.sleep(0.01)
    assert backend.requests, "the backend call did not start"
    with world.bank.client() as other:
        started = time.monotonic()
        live = other.get("/health/live")
        document = other.get("/stet/psd2/v1.4.2/openapi.json")
        elapsed = time.monotonic() - started
    assert live.status_code == 200 and document.status_code == 200
    assert elapsed < 1.0, elapsed
    assert hanging.is_alive()  # the backend call is still in flight
    hanging.join(timeout=10)
    assert answers and answers[0].status_code == 200, answers


def test_the_circuit_breaker_opens_then_fails_fast_then_probes(
    world: ApiWorld, tpp: Tpp, backend: FaultyBackend, gateway_bank: HttpBank
) -> None:
    gateway_bank.breaker = CircuitBreaker(3, 0.5)
    backend.mode = "error_500"
    token = world.token("jdupont")
    for _ in range(3):
        assert tpp.get("accounts", token=token).status_code == 503
    assert len(backend.requests) == 3 and gateway_bank.breaker.state == "open"

    started = time.monotonic()
    response = tpp.get("accounts", token=token)
    assert time.monotonic() - started < 0.3
    assert_error(response, 503)
    assert len(backend.requests) == 3  # failed fast: the backend was not called
    events = [e for e in _audited(world) if e[1] == response.request.headers["x-request-id"]]
    assert events and "circuit open" in (events[0][2] or "")

    time.sleep(0.6)
    backend.mode = "ok"
    assert tpp.get("accounts", token=token).status_code == 200  # the half-open probe
    assert gateway_bank.breaker.state == "closed"
