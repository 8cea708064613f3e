"""TPP client library rules that need no bank: callback checks, token keeping, PKCE, signing."""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from cryptography import x509

from stetgate.clock import FrozenClock
from stetgate.httpsig import ResolvedKey, verify_request
from stetgate.tpp.client import (
    AuthorizationRequest,
    BankError,
    StetBankClient,
    TokenFile,
    TokenSet,
    TppCredentials,
    pkce_pair,
)
from tests.support.pki import TestPki

BANK = "https://bank.test"


class Recorder:
    def __init__(self, response: httpx.Response) -> None:
        self.requests: list[httpx.Request] = []
        self.response = response

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        return self.response


@pytest.fixture
def recorder() -> Recorder:
    return Recorder(
        httpx.Response(
            200,
            json={
                "access_token": "A",
                "refresh_token": "R",
                "expires_in": 3600,
                "scope": "aisp",
                "token_type": "Bearer",
            },
        )
    )


@pytest.fixture
def client(pki: TestPki, recorder: Recorder) -> Iterator[StetBankClient]:
    creds = TppCredentials.from_directory(pki.issue().directory)
    with StetBankClient(
        BANK, creds, "PSDFR-ACPR-12345", ca_file=pki.ca_pem, transport=httpx.MockTransport(recorder)
    ) as c:
        yield c


def _request(client: StetBankClient) -> AuthorizationRequest:
    return client.authorization_request("aisp", "https://tpp.example/cb", state="s-1")


def test_authorization_url_carries_the_stet_parameters_and_pkce(client: StetBankClient) -> None:
    request = _request(client)
    query = parse_qs(urlsplit(request.url).query)
    assert urlsplit(request.url).path == "/stet/psd2/oauth/authorize"
    assert {k: v[0] for k, v in query.items() if k != "code_challenge"} == {
        "response_type": "code",
        "client_id": "PSDFR-ACPR-12345",
        "redirect_uri": "https://tpp.example/cb",
        "scope": "aisp",
        "state": "s-1",
        "code_challenge_method": "S256",
    }
    assert request.code_verifier is not None
    expected = base64.urlsafe_b64encode(hashlib.sha256(request.code_verifier.encode()).digest())
    assert query["code_challenge"][0] == expected.rstrip(b"=").decode()


def test_exchange_sends_code_redirect_uri_and_verifier_without_scope(
    client: StetBankClient, recorder: Recorder
) -> None:
    request = _request(client)
    tokens = client.exchange_code(request, f"https://tpp.example/cb?code=C&state=s-1&iss={BANK}")
    form = parse_qs(recorder.requests[0].content.decode())
    assert form["grant_type"] == ["authorization_code"]
    assert form["code"] == ["C"]
    assert form["redirect_uri"] == ["https://tpp.example/cb"]
    assert form["code_verifier"] == [request.code_verifier]
    assert "scope" not in form
    assert tokens.access_token == "A" and tokens.refresh_token == "R"


@pytest.mark.parametrize(
    "callback, message",
    [
        ("https://tpp.example/cb?code=C&state=other", "state"),
        ("https://tpp.example/cb?code=C", "state"),
        ("https://tpp.example/cb?code=C&state=s-1&iss=https://evil.test", "iss"),
        (
            "https://tpp.example/cb?error=access_denied&error_description=timeout&state=s-1",
            "timeout",
        ),
        ("https://tpp.example/cb?state=s-1", "neither code nor error"),
    ],
)
def test_bad_callbacks_are_refused_before_any_token_request(
    client: StetBankClient, recorder: Recorder, callback: str, message: str
) -> None:
    with pytest.raises(BankError, match=message):
        client.exchange_code(_request(client), callback)
    assert recorder.requests == []


def test_bank_error_exposes_the_oauth_error(client: StetBankClient, recorder: Recorder) -> None:
    recorder.response = httpx.Response(
        400, json={"error": "invalid_grant", "error_description": "SCA older than 90 days"}
    )
    tokens = TokenSet("A", "R", 3600, "aisp")
    with pytest.raises(BankError) as caught:
        client.refresh(tokens)
    assert caught.value.oauth_error == "invalid_grant"
    assert "90 days" in str(caught.value)


def test_refresh_keeps_the_refresh_token_when_the_bank_returns_none(
    client: StetBankClient, recorder: Recorder
) -> None:
    recorder.response = httpx.Response(
        200, json={"access_token": "A2", "expires_in": 60, "token_type": "Bearer"}
    )
    fresh = client.refresh(TokenSet("A", "R", 3600, "aisp"))
    assert (fresh.access_token, fresh.refresh_token, fresh.scope) == ("A2", "R", "aisp")
    form = parse_qs(recorder.requests[0].content.decode())
    assert "scope" not in form


def test_refresh_without_refresh_token_is_refused_locally(client: StetBankClient) -> None:
    with pytest.raises(BankError, match="no refresh token"):
        client.refresh(TokenSet("A", None, 3600, "cbpii"))


def test_signed_request_verifies_with_the_qsealc(
    client: StetBankClient, recorder: Recorder, pki: TestPki
) -> None:
    recorder.response = httpx.Response(201)
    client.signed_request(
        "PUT",
        "consents",
        "tok",
        json_body={"psuIdentity": True},
        psu_headers={"PSU-IP-Address": "192.0.2.1"},
    )
    sent = recorder.requests[0]
    cert = x509.load_pem_x509_certificate(pki.issue().qsealc_pem.read_bytes())
    verified = verify_request(
        "PUT",
        sent.url.raw_path.decode(),
        sent.headers.multi_items(),
        sent.content,
        lambda key_id: ResolvedKey.from_certificate(cert),
        now=datetime.now(UTC),
    )
    assert {"(request-target)", "x-request-id", "digest", "psu-ip-address", "date"} <= set(
        verified.signed_headers
    )
    assert verified.key_id.startswith("SN=")
    assert json.loads(sent.content) == {"psuIdentity": True}


def test_the_injected_clock_dates_signatures_and_tokens(pki: TestPki, recorder: Recorder) -> None:
    moment = datetime(2031, 2, 28, 23, 30, tzinfo=UTC)
    creds = TppCredentials.from_directory(pki.issue().directory)
    with StetBankClient(
        BANK,
        creds,
        "PSDFR-ACPR-12345",
        ca_file=pki.ca_pem,
        transport=httpx.MockTransport(recorder),
        clock=FrozenClock(moment),
    ) as client:
        tokens = client.refresh(TokenSet("A", "R", 3600, "aisp"))
        client.signed_request("GET", "accounts", tokens.access_token)
    assert tokens.obtained_at == moment
    assert recorder.requests[-1].headers["date"] == "Fri, 28 Feb 2031 23:30:00 GMT"


def test_pkce_pairs_are_unique_and_s256() -> None:
    v1, c1 = pkce_pair()
    v2, c2 = pkce_pair()
    assert v1 != v2 and c1 != c2
    assert 43 <= len(v1) <= 128


def test_token_set_needs_refresh_before_expiry() -> None:
    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    tokens = TokenSet("A", "R", 3600, "aisp", obtained_at=t0)
    assert not tokens.needs_refresh(t0 + timedelta(minutes=58))
    assert tokens.needs_refresh(t0 + timedelta(minutes=59, seconds=30))


def test_token_file_round_trips_with_private_permissions(tmp_path: object) -> None:
    from pathlib import Path

    path = Path(str(tmp_path)) / "tokens.json"
    store = TokenFile(path)
    tokens = TokenSet("A", "R", 3600, "aisp", obtained_at=datetime(2026, 1, 1, tzinfo=UTC))
    store.put("k", tokens)
    assert (path.stat().st_mode & 0o777) == 0o600
    assert store.get("k") == tokens
    store.delete("k")
    assert store.get("k") is None


def test_concurrent_private_writes_never_leave_a_torn_file_or_a_temporary(tmp_path: object) -> None:
    """Each writer writes a temporary of its own and renames it: the file is always one
    writer's whole content, and no temporary is left behind."""
    import threading
    from pathlib import Path

    from stetgate.tpp.client import write_private_bytes

    path = Path(str(tmp_path)) / "state.json"
    bodies = [json.dumps({"writer": n, "pad": "x" * 200_000}).encode() for n in range(8)]
    torn: list[bytes] = []
    failed: list[BaseException] = []

    def write(body: bytes) -> None:
        try:
            for _ in range(20):
                write_private_bytes(path, body)
                seen = path.read_bytes()
                if seen not in bodies:
                    torn.append(seen[:80])
        except BaseException as exc:  # a writer that failed is the finding
            failed.append(exc)

    threads = [threading.Thread(target=write, args=(body,)) for body in bodies]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failed == [] and torn == []
    assert path.read_bytes() in bodies
    assert sorted(p.name for p in path.parent.iterdir()) == ["state.json"]
    assert (path.stat().st_mode & 0o777) == 0o600


def test_token_file_writers_in_parallel_lose_no_entry(tmp_path: object) -> None:
    """Each writer opens the file on its own (as separate CLI runs do); the lock serializes
    their read-modify-writes, so every key written is there at the end."""
    import threading
    from pathlib import Path

    path = Path(str(tmp_path)) / "tokens.json"
    at = datetime(2026, 1, 1, tzinfo=UTC)

    def write(n: int) -> None:
        store = TokenFile(path)
        for i in range(15):
            store.put(f"k{n}-{i}", TokenSet(f"A{n}", "R", 3600, "aisp", obtained_at=at))

    threads = [threading.Thread(target=write, args=(n,)) for n in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(TokenFile(path).stored_keys()) == 6 * 15


def test_token_file_lock_is_reentrant_within_a_thread(tmp_path: object) -> None:
    from pathlib import Path

    store = TokenFile(Path(str(tmp_path)) / "tokens.json")
    at = datetime(2026, 1, 1, tzinfo=UTC)
    with store.locked(), store.locked():
        store.put("k", TokenSet("A", "R", 3600, "aisp", obtained_at=at))
    assert store.get("k") is not None
