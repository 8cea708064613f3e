"""`HttpBank`'s call discipline on an in-memory `BankTransport` (`Scripted`): the time
budget, which calls are retried and how long it waits, request ids, the client-credentials
token, and strict answers. The same behaviours over real sockets are in
tests/integration/test_http_bank_faults.py."""

from __future__ import annotations

import json
from collections.abc import Callable
from decimal import Decimal
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest

from stetgate.bank.backend import CurrencyMismatch, TransactionQuery, UnknownAccount
from stetgate.bank.failures import BankTimeout, BankUnavailable
from stetgate.bank.request_context import serving_request
from stetgate.bank_http.auth import ClientCredentials
from stetgate.bank_http.breaker import CircuitBreaker
from stetgate.bank_http.client import HttpBank
from stetgate.bank_http.transport import BankAnswer, BankRequest, TlsFailure

ACCOUNT = {
    "resourceId": "a/1",
    "bic": "BNPAFRPP",
    "iban": "FR7630006000011234567890189",
    "currency": "EUR",
    "name": "Compte",
    "cashAccountType": "CACC",
    "usage": "PRIV",
    "product": "Dépôt",
    "psuStatus": "Account Holder",
}


def json_response(status: int, body: Any) -> BankAnswer:
    return BankAnswer(status, "application/json", json.dumps(body).encode())


Handler = Callable[[BankRequest], BankAnswer]


class Scripted:
    """A `BankTransport` answering each request with ``handler`` (which may raise the
    transport's failures), recording the timeouts it was given."""

    def __init__(self, handler: Handler) -> None:
        self.handler = handler
        self.timeouts: list[float] = []
        self.closed = False

    def send(self, request: BankRequest, timeout: float) -> BankAnswer:
        self.timeouts.append(timeout)
        return self.handler(request)

    def close(self) -> None:
        self.closed = True


def path_of(request: BankRequest) -> str:
    return urlsplit(request.target).path


class Fake:
    """A fake clock whose sleeps advance it; records the delays."""

    def __init__(self) -> None:
        self.now = 100.0
        self.sleeps: list[float] = []

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def bank(
    handler: Handler,
    *,
    fake: Fake | None = None,
    fraction: float = 1.0,
    **kwargs: Any,
) -> HttpBank:
    fake = fake or Fake()
    return HttpBank(
        Scripted(handler),
        random_fraction=lambda: fraction,
        sleep=fake.sleep,
        monotonic=fake.monotonic,
        **kwargs,
    )


def test_request_id_accept_and_encoded_path_are_sent() -> None:
    seen: list[BankRequest] = []

    def handler(request: BankRequest) -> BankAnswer:
        seen.append(request)
        return json_response(200, {"transactions": [], "total": 0, "snapshotEntry": None})

    with serving_request("req-42"):
        bank(handler).transactions_of("psu 1", "a/1", TransactionQuery(offset=0, limit=5))
    (request,) = seen
    assert request.headers["X-Request-ID"] == "req-42"
    assert request.headers["Accept"] == "application/json"
    assert request.target.startswith("/core-banking/v1/psus/psu%201/accounts/a%2F1/transactions?")
    assert dict(parse_qsl(urlsplit(request.target).query)) == {"offset": "0", "limit": "5"}


def test_without_a_request_a_fresh_id_is_sent() -> None:
    ids: list[str] = []

    def handler(request: BankRequest) -> BankAnswer:
        ids.append(request.headers["X-Request-ID"])
        return json_response(200, {"accounts": []})

    client = bank(handler)
    client.accounts_of("p")
    client.accounts_of("p")
    assert len(set(ids)) == 2 and all(len(i) == 36 for i in ids)


def test_gets_are_retried_on_503_with_jittered_exponential_backoff() -> None:
    fake = Fake()
    statuses = iter([503, 502, 200])

    def handler(request: BankRequest) -> BankAnswer:
        status = next(statuses)
        return json_response(status, {"accounts": [ACCOUNT]} if status == 200 else {})

    client = bank(handler, fake=fake, fraction=0.5, retries=2, backoff=0.1, timeout=2.0)
    assert [a.resource_id for a in client.accounts_of("p")] == ["a/1"]
    assert fake.sleeps == [0.05, 0.1]  # 0.1 × 2^n × 0.5


def test_retries_stop_at_the_configured_count() -> None:
    calls: list[int] = []

    def handler(request: BankRequest) -> BankAnswer:
        calls.append(1)
        return json_response(503, {})

    with pytest.raises(BankUnavailable, match="HTTP 503"):
        bank(handler, retries=2).accounts_of("p")
    assert len(calls) == 3


def test_no_retry_would_outlive_the_time_budget() -> None:
    fake = Fake()
    calls: list[int] = []

    def handler(request: BankRequest) -> BankAnswer:
        calls.append(1)
        fake.now += 0.3  # each attempt takes 300 ms
        return json_response(503, {})

    with pytest.raises(BankUnavailable):
        bank(handler, fake=fake, retries=5, backoff=0.2, timeout=0.5).accounts_of("p")
    assert len(calls) == 1 and fake.sleeps == []


def test_a_500_is_not_retried() -> None:
    calls: list[int] = []

    def handler(request: BankRequest) -> BankAnswer:
        calls.append(1)
        return json_response(500, {"error": "internal"})

    with pytest.raises(BankUnavailable, match="HTTP 500"):
        bank(handler).accounts_of("p")
    assert len(calls) == 1


def test_the_funds_check_post_is_never_retried() -> None:
    calls: list[str] = []

    def handler(request: BankRequest) -> BankAnswer:
        calls.append(request.method)
        assert json.loads(request.body or b"") == {"amount": "12.50", "currency": "EUR"}
        return json_response(503, {})

    with pytest.raises(BankUnavailable):
        bank(handler, retries=3).funds_available("p", "a", Decimal("12.50"), "EUR")
    assert calls == ["POST"]


def test_connection_failures_are_retried_then_reported() -> None:
    calls: list[int] = []

    def handler(request: BankRequest) -> BankAnswer:
        calls.append(1)
        raise BankUnavailable("connection refused")

    with pytest.raises(BankUnavailable, match="connection refused"):
        bank(handler, retries=1).accounts_of("p")
    assert len(calls) == 2


def test_a_timeout_is_a_bank_timeout() -> None:
    def handler(request: BankRequest) -> BankAnswer:
        raise BankTimeout("timed out")

    with pytest.raises(BankTimeout):
        bank(handler, retries=0).accounts_of("p")


@pytest.mark.parametrize(
    ("response", "reason"),
    [
        (
            BankAnswer(200, "application/json", b"{not json"),
            "invalid answer",
        ),
        (
            BankAnswer(200, "text/plain", b"{}"),
            "not application/json",
        ),
        (
            json_response(200, {"accounts": [{**ACCOUNT, "usage": "OTHER"}]}),
            "accounts.0.usage",
        ),
        (
            json_response(200, {"accounts": [{**ACCOUNT, "iban": None}]}),
            "exactly one of iban",
        ),
        (json_response(200, {"accounts": "nope"}), "accounts"),
        (json_response(200, []), "invalid answer"),
        (json_response(201, {"accounts": []}), "HTTP 201"),
        (json_response(404, {"error": "unknown_psu"}), "HTTP 404"),
    ],
)
def test_answers_outside_the_contract_are_failures(response: BankAnswer, reason: str) -> None:
    with pytest.raises(BankUnavailable, match=reason):
        bank(lambda request: response, retries=0).accounts_of("p")


def test_a_failure_reason_never_quotes_the_answer() -> None:
    secret = {"accounts": [{**ACCOUNT, "currency": "Jean Dupont 1970-01-01"}]}
    with pytest.raises(BankUnavailable) as failure:
        bank(lambda request: json_response(200, secret)).accounts_of("p")
    assert "Dupont" not in str(failure.value)


@pytest.mark.parametrize(
    ("total", "count", "offset", "limit"),
    [(10, 3, 0, 5), (10, 6, 0, 5), (10, 1, 8, 5), (0, 1, 0, 5)],
)
def test_a_page_that_is_not_the_page_asked_for_is_refused(
    total: int, count: int, offset: int, limit: int
) -> None:
    entry = {
        "resourceId": "t",
        "entryReference": 1,
        "amount": {"amount": "1.00", "currency": "EUR"},
        "creditDebitIndicator": "DBIT",
        "status": "BOOK",
    }
    page = {"transactions": [entry] * count, "total": total, "snapshotEntry": 9}
    with pytest.raises(BankUnavailable, match="partial page"):
        bank(lambda request: json_response(200, page)).transactions_of(
            "p", "a", TransactionQuery(offset=offset, limit=limit)
        )


def test_business_answers_are_the_ports_exceptions_and_keep_the_breaker_closed() -> None:
    def handler(request: BankRequest) -> BankAnswer:
        if request.method == "POST":
            return json_response(422, {"error": "currency_mismatch", "message": "EUR only"})
        return json_response(404, {"error": "unknown_account"})

    client = bank(handler, breaker=CircuitBreaker(1, 60))
    with pytest.raises(UnknownAccount):
        client.transactions_of("p", "a", TransactionQuery())
    with pytest.raises(CurrencyMismatch, match="EUR only"):
        client.funds_available("p", "a", Decimal(1), "USD")
    assert client.breaker.state == "closed"


def test_an_open_breaker_fails_without_calling() -> None:
    calls: list[int] = []

    def handler(request: BankRequest) -> BankAnswer:
        calls.append(1)
        return json_response(500, {})

    client = bank(handler, breaker=CircuitBreaker(2, 60), retries=0)
    for _ in range(2):
        with pytest.raises(BankUnavailable, match="HTTP 500"):
            client.accounts_of("p")
    with pytest.raises(BankUnavailable, match="circuit open"):
        client.accounts_of("p")
    assert len(calls) == 2


# --- OAuth 2 client credentials -------------------------------------------------------------


def test_the_token_is_fetched_once_cached_and_refreshed_before_expiry() -> None:
    fake = Fake()
    tokens: list[str] = []
    authorizations: list[str] = []

    def handler(request: BankRequest) -> BankAnswer:
        if path_of(request) == "/token":
            assert request.target == "http://core.test/token"
            assert request.headers["Authorization"] == "Basic Z3c6czNjcmV0"  # gw:s3cret
            assert request.body == b"grant_type=client_credentials"
            tokens.append(f"t{len(tokens)}")
            return json_response(
                200, {"access_token": tokens[-1], "token_type": "Bearer", "expires_in": 120}
            )
        authorizations.append(request.headers["Authorization"])
        return json_response(200, {"accounts": []})

    credentials = ClientCredentials(
        "http://core.test/token", "gw", "s3cret", refresh_margin=30, monotonic=fake.monotonic
    )
    client = bank(handler, fake=fake, credentials=credentials)
    client.accounts_of("p")
    fake.now += 89  # still fresh (120 - 30 margin)
    client.accounts_of("p")
    fake.now += 2  # within the margin: a new token
    client.accounts_of("p")
    assert authorizations == ["Bearer t0", "Bearer t0", "Bearer t1"]
    assert credentials.fetched == 2


def test_a_401_drops_the_token_and_retries_once_with_a_new_one() -> None:
    tokens: list[str] = []
    answers = iter([401, 200])

    def handler(request: BankRequest) -> BankAnswer:
        if path_of(request) == "/token":
            tokens.append(f"t{len(tokens)}")
            return json_response(200, {"access_token": tokens[-1], "token_type": "bearer"})
        return json_response(next(answers), {"accounts": []})

    credentials = ClientCredentials("http://core.test/token", "gw", "s3cret")
    bank(handler, credentials=credentials).accounts_of("p")
    assert tokens == ["t0", "t1"]


@pytest.mark.parametrize(
    "answer",
    [
        json_response(401, {"error": "invalid_client"}),
        json_response(200, {"token_type": "Bearer"}),
        json_response(200, {"access_token": "x", "token_type": "mac"}),
    ],
)
def test_a_token_endpoint_failure_is_a_bank_failure(answer: BankAnswer) -> None:
    def handler(request: BankRequest) -> BankAnswer:
        return answer if path_of(request) == "/token" else json_response(200, {"accounts": []})

    credentials = ClientCredentials("http://core.test/token", "gw", "s3cret")
    with pytest.raises(BankUnavailable, match="token endpoint"):
        bank(handler, credentials=credentials).accounts_of("p")


def test_a_tls_failure_is_not_retried() -> None:
    calls: list[int] = []

    def handler(request: BankRequest) -> BankAnswer:
        calls.append(1)
        raise TlsFailure("TLS failure")

    with pytest.raises(TlsFailure):
        bank(handler, retries=3).accounts_of("p")
    assert len(calls) == 1


def test_each_attempt_gets_what_is_left_of_the_budget() -> None:
    fake = Fake()
    statuses = iter([503, 200])

    def handler(request: BankRequest) -> BankAnswer:
        fake.now += 0.4
        return json_response(next(statuses), {"accounts": []})

    client = bank(handler, fake=fake, fraction=0.5, retries=1, backoff=0.2, timeout=1.0)
    assert isinstance(client.transport, Scripted)
    client.accounts_of("p")
    assert client.transport.timeouts == pytest.approx([1.0, 0.5])  # 1.0, then 1.0 - 0.4 - 0.1 sleep


def test_a_token_endpoint_failure_names_the_token_endpoint() -> None:
    def handler(request: BankRequest) -> BankAnswer:
        if path_of(request) == "/token":
            raise BankTimeout("timed out")
        return json_response(200, {"accounts": []})

    credentials = ClientCredentials("http://core.test/token", "gw", "s3cret")
    with pytest.raises(BankTimeout, match="token endpoint: timed out"):
        bank(handler, credentials=credentials, retries=0).accounts_of("p")


def test_a_client_secret_is_form_encoded_before_basic() -> None:
    seen: list[str] = []

    def handler(request: BankRequest) -> BankAnswer:
        if path_of(request) == "/token":
            seen.append(request.headers["Authorization"])
            return json_response(200, {"access_token": "t", "token_type": "Bearer"})
        return json_response(200, {"accounts": []})

    credentials = ClientCredentials("http://core.test/token", "gw 1", "a:b/c")
    bank(handler, credentials=credentials).accounts_of("p")
    # RFC 6749 §2.3.1: "gw%201:a%3Ab%2Fc" in base64
    assert seen == ["Basic Z3clMjAxOmElM0FiJTJGYw=="]
