"""The client does what the bank's profile says: keyId form, signed headers, endpoints, issuer,
PKCE, and refuses locally what the profile rules out. No bank: httpx's MockTransport records
requests; the signatures are checked with stetgate's own verifier."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from cryptography import x509

from stetgate.clock import FrozenClock
from stetgate.httpsig import ResolvedKey, parse_signature_header, verify_request
from stetgate.tpp.bank_profile import BankProfile, builtin_profile
from stetgate.tpp.client import (
    BankError,
    ProfileGap,
    Registration,
    StetBankClient,
    TokenSet,
    TppCredentials,
)
from tests.support.pki import TestPki
from tests.support.tpp_profiles import sandbox_with

BANK = "https://bank.test"
NOW = datetime(2031, 3, 1, 12, 0, tzinfo=UTC)
TOKENS = TokenSet("A", "R", 3600, "aisp", NOW)
REGISTRATION = Registration("c-1", "rat", f"{BANK}/register/c-1", {})


class Recorder:
    def __init__(self) -> None:
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        return httpx.Response(
            200, json={"access_token": "A2", "expires_in": 60, "client_id": "c-1"}
        )


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


@pytest.fixture
def make(pki: TestPki, recorder: Recorder) -> Iterator[Any]:
    opened: list[StetBankClient] = []

    def make(profile: BankProfile, key_id: str | None = None, base: str = BANK) -> StetBankClient:
        creds = TppCredentials.from_directory(pki.issue().directory, key_id)
        client = StetBankClient(
            base,
            creds,
            "PSDFR-ACPR-12345",
            ca_file=pki.ca_pem,
            transport=httpx.MockTransport(recorder),
            clock=FrozenClock(NOW),
            profile=profile,
        )
        opened.append(client)
        return client

    yield make
    for client in opened:
        client.close()


def _signature(request: httpx.Request) -> Any:
    return parse_signature_header(request.headers["signature"])


def _verified(request: httpx.Request, pki: TestPki) -> Any:
    cert = x509.load_pem_x509_certificate(pki.issue().qsealc_pem.read_bytes())
    return verify_request(
        request.method,
        request.url.raw_path.decode(),
        request.headers.multi_items(),
        request.content,
        lambda key_id: ResolvedKey.from_certificate(cert),
        now=NOW,
    )


# --- keyId ----------------------------------------------------------------------------------------
def test_a_profile_accepting_only_kids_refuses_a_client_without_one(make: Any) -> None:
    with pytest.raises(ProfileGap, match="wants a keyId of form registration_kid"):
        make(builtin_profile("bpce"))


def test_a_key_id_of_a_form_the_bank_refuses_is_refused_before_any_request(
    make: Any, recorder: Recorder
) -> None:
    with pytest.raises(ProfileGap, match="is a serial_and_issuer"):
        make(builtin_profile("bpce"), key_id="SN=1f,CA=CN=Test QTSP")
    profile = sandbox_with(signature={"key_id_forms": ["serial_and_issuer"]})
    with pytest.raises(ProfileGap, match="is a certificate_url"):
        make(profile, key_id="https://tpp.example/qsealc.pem")
    assert recorder.requests == []


def test_the_registered_kid_is_the_key_id_where_the_profile_wants_one(
    make: Any, recorder: Recorder, pki: TestPki
) -> None:
    with make(builtin_profile("bpce"), key_id="seal-2031") as client:
        client.api("GET", "accounts", TOKENS)
    assert _signature(recorder.requests[0]).key_id == "seal-2031"
    assert _verified(recorder.requests[0], pki).key_id == "seal-2031"


def test_without_a_key_id_the_client_sends_sn_and_ca_where_accepted(
    make: Any, recorder: Recorder, pki: TestPki
) -> None:
    profile = sandbox_with(signature={"key_id_forms": ["certificate_url", "serial_and_issuer"]})
    with make(profile) as client:
        client.api("GET", "accounts", TOKENS)
    cert = x509.load_pem_x509_certificate(pki.issue().qsealc_pem.read_bytes())
    assert _signature(recorder.requests[0]).key_id == (
        f"SN={cert.serial_number:x},CA={cert.issuer.rfc4514_string()}"
    )


# --- signed headers -------------------------------------------------------------------------------
def test_the_profile_s_header_list_is_what_gets_signed(
    make: Any, recorder: Recorder, pki: TestPki
) -> None:
    lists = {
        "GET": ["(request-target)", "authorization", "x-request-id"],
        "POST": ["(request-target)", "digest", "content-type"],
        "PUT": ["(request-target)", "digest", "x-request-id", "psu-*"],
        "DELETE": ["(request-target)"],
    }
    psu = {"PSU-IP-Address": "192.0.2.1", "PSU-User-Agent": "ua"}
    with make(sandbox_with(signature={"signed_headers": lists})) as client:
        client.api("GET", "accounts", TOKENS, psu_headers=psu)
        client.api("PUT", "consents", TOKENS, json={"psuIdentity": True}, psu_headers=psu)
    get, put = recorder.requests
    assert _signature(get).headers == ("(request-target)", "authorization", "x-request-id")
    assert _signature(put).headers == (
        "(request-target)",
        "digest",
        "x-request-id",
        "psu-ip-address",
        "psu-user-agent",
    )
    assert _verified(put, pki).signed_headers == _signature(put).headers


def test_a_listed_header_the_request_lacks_is_left_out_not_signed_empty(
    make: Any, recorder: Recorder
) -> None:
    lists = {
        m: ["(request-target)", "x-request-id", "psu-*", "authorization"]
        for m in ("GET", "POST", "PUT", "DELETE")
    }
    with make(sandbox_with(signature={"signed_headers": lists})) as client:
        client.signed_request("GET", "accounts", None)  # no token, no PSU header
    assert _signature(recorder.requests[0]).headers == ("(request-target)", "x-request-id")


def test_an_unknown_header_list_signs_stetgate_s_policy_plus_date(
    make: Any, recorder: Recorder
) -> None:
    with make(sandbox_with(signature={"signed_headers": "unknown"})) as client:
        client.api(
            "POST",
            "funds-confirmations",
            TOKENS,
            json={},
            psu_headers={"PSU-IP-Address": "192.0.2.1"},
        )
    assert _signature(recorder.requests[0]).headers == (
        "(request-target)",
        "x-request-id",
        "digest",
        "psu-ip-address",
        "date",
    )


def test_a_base_url_with_a_path_is_signed_with_that_path(
    make: Any, recorder: Recorder, pki: TestPki
) -> None:
    with make(builtin_profile("sandbox"), base="https://bank.test/gateway/") as client:
        client.api("GET", "accounts", TOKENS)
    sent = recorder.requests[0]
    assert sent.url.path == "/gateway/stet/psd2/v1.4.2/accounts"
    _verified(sent, pki)  # (request-target) is the path sent, prefix included


# --- endpoints, issuer, PKCE ----------------------------------------------------------------------
def test_an_absolute_token_endpoint_on_another_host_is_used(make: Any, recorder: Recorder) -> None:
    profile = sandbox_with(endpoints={"token": "https://auth.bank.test/oauth2/token"})
    with make(profile) as client:
        client.refresh(TOKENS)
    assert str(recorder.requests[0].url) == "https://auth.bank.test/oauth2/token"


def test_the_profile_s_issuer_is_expected_on_the_callback(make: Any, recorder: Recorder) -> None:
    profile = sandbox_with(endpoints={"issuer": "https://auth.bank.test"})
    with make(profile) as client:
        request = client.authorization_request("aisp", "https://tpp.example/cb", state="s")
        with pytest.raises(BankError, match="callback iss"):
            client.exchange_code(request, f"https://tpp.example/cb?code=C&state=s&iss={BANK}")
        assert recorder.requests == []
        client.exchange_code(
            request, "https://tpp.example/cb?code=C&state=s&iss=https://auth.bank.test"
        )
    assert len(recorder.requests) == 1


@pytest.mark.parametrize(
    "pkce, sent",
    [("required", True), ("supported", True), ("not_supported", False), ("unknown", False)],
)
def test_pkce_follows_the_profile_unless_asked(make: Any, pkce: str, sent: bool) -> None:
    with make(sandbox_with(pkce=pkce)) as client:
        request = client.authorization_request("aisp", "https://tpp.example/cb")
        assert ("code_challenge=" in request.url) is sent
        assert (request.code_verifier is not None) is sent
        forced = client.authorization_request("aisp", "https://tpp.example/cb", use_pkce=not sent)
        assert ("code_challenge=" in forced.url) is not sent


# --- what the profile rules out -------------------------------------------------------------------
@pytest.mark.parametrize("revoke", ["none", "unknown"])
def test_revocation_without_an_endpoint_is_refused_locally(
    make: Any, recorder: Recorder, revoke: str
) -> None:
    with (
        make(sandbox_with(endpoints={"revoke": revoke})) as client,
        pytest.raises(ProfileGap, match="revocation"),
    ):
        client.revoke("R")
    assert recorder.requests == []


def test_metadata_where_the_bank_has_none_is_refused_and_unknown_tries_rfc_8414(
    make: Any, recorder: Recorder
) -> None:
    with (
        make(sandbox_with(discovery={"metadata": "none"})) as client,
        pytest.raises(ProfileGap, match="has none"),
    ):
        client.metadata()
    assert recorder.requests == []
    with make(sandbox_with(discovery={"metadata": "unknown"})) as client:
        client.metadata()
    assert recorder.requests[0].url.path == "/.well-known/oauth-authorization-server"


def test_registration_without_a_known_client_id_is_refused_locally(
    make: Any, recorder: Recorder
) -> None:
    with make(builtin_profile("bpce"), key_id="seal-1") as client:
        metadata = client.client_metadata("App", ["https://tpp.example/cb"])
        with pytest.raises(ProfileGap, match="registration client_id"):
            client.register(metadata)
    assert recorder.requests == []


@pytest.mark.parametrize("call", ["read", "delete", "register"])
def test_a_bank_without_register_api_gets_no_register_call(
    make: Any, recorder: Recorder, call: str
) -> None:
    profile = sandbox_with(registration={"supported": False, "path": "none"})
    with make(profile) as client, pytest.raises(ProfileGap, match="no register API"):
        if call == "read":
            client.read_registration(REGISTRATION)
        elif call == "delete":
            client.delete_registration(REGISTRATION)
        else:
            client.register({})
    assert recorder.requests == []


def test_the_register_calls_use_the_profile_s_path_and_client_id(
    make: Any, recorder: Recorder
) -> None:
    profile = sandbox_with(registration={"path": "/psd2/register", "client_id": "GENERIC"})
    with make(profile) as client:
        client.read_registration(REGISTRATION)
        client.registration_token()
    assert recorder.requests[0].url.path == "/psd2/register/c-1"
    assert b"client_id=GENERIC" in recorder.requests[1].content


# --- RFC 9207 §2.4: iss ---------------------------------------------------------------------------
class IssAnnouncingBank(Recorder):
    """Metadata announcing ``iss`` on authorization responses; tokens for the rest."""

    def __call__(self, request: httpx.Request) -> httpx.Response:
        if request.url.path.startswith("/.well-known/"):
            self.requests.append(request)
            return httpx.Response(
                200, json={"issuer": BANK, "authorization_response_iss_parameter_supported": True}
            )
        return super().__call__(request)


def _client_of(bank: Recorder, pki: TestPki) -> StetBankClient:
    creds = TppCredentials.from_directory(pki.issue().directory)
    return StetBankClient(
        BANK, creds, "c-1", transport=httpx.MockTransport(bank), clock=FrozenClock(NOW)
    )


def test_a_callback_without_iss_from_a_bank_announcing_it_is_refused_before_redeeming(
    pki: TestPki,
) -> None:
    bank = IssAnnouncingBank()
    with _client_of(bank, pki) as client:
        request = client.authorization_request("aisp", "https://tpp.example/cb", state="s")
        with pytest.raises(BankError, match="no iss"):
            client.exchange_code(request, "https://tpp.example/cb?code=C&state=s")
    assert [r.url.path for r in bank.requests] == ["/.well-known/oauth-authorization-server"]


def test_a_callback_with_iss_asks_no_metadata(pki: TestPki) -> None:
    bank = IssAnnouncingBank()
    with _client_of(bank, pki) as client:
        request = client.authorization_request("aisp", "https://tpp.example/cb", state="s")
        client.exchange_code(request, f"https://tpp.example/cb?code=C&state=s&iss={BANK}")
    assert [r.method for r in bank.requests] == ["POST"]


@pytest.mark.parametrize("metadata", ["none", "unknown"])
def test_a_callback_without_iss_is_accepted_where_the_bank_does_not_announce_it(
    make: Any, recorder: Recorder, metadata: str
) -> None:
    with make(sandbox_with(discovery={"metadata": metadata})) as client:
        request = client.authorization_request("aisp", "https://tpp.example/cb", state="s")
        client.exchange_code(request, "https://tpp.example/cb?code=C&state=s")
    assert [r.method for r in recorder.requests][-1] == "POST"
    assert len(recorder.requests) == (1 if metadata == "none" else 2)
