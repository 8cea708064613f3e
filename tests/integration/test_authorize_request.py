"""GET /stet/psd2/oauth/authorize: which requests start a PSU journey, and where every refusal
goes (docs/decisions.md#callback-outcomes; RFC 6749 §4.1.2.1, RFC 9207). Real TLS, real test-QTSP
certificates, SQLite and PostgreSQL. Every refused request leaves the database as it was
(only the audit trail records the refusal)."""

from __future__ import annotations

from datetime import timedelta
from urllib.parse import urlencode

import httpx
import pytest

from stetgate.oauth.clients import CLIENT_SUSPENDED
from stetgate.store.audit_events import AUTHORIZATION_STARTED, AUTHORIZE_REQUEST_REJECTED
from tests.support.bank import RunningBank
from tests.support.pki import TestPki
from tests.support.psu_flow import AUTHORIZE, authorize_params, callback_keys, callback_query
from tests.support.token_side import CALLBACK, add_client, audit_trail, database_state

ORG = "PSDFR-ACPR-40001"
CHALLENGE = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"  # RFC 7636 Appendix B


@pytest.fixture
def client_id(bank: RunningBank, pki: TestPki) -> str:
    add_client(
        bank.services.engine,
        pki.issue(ORG, ("AISP",)),
        bank.clock.now(),
        redirect_uris=(CALLBACK, "https://tpp.example/other?tenant=7"),
        name="Agrégateur",
    )
    return ORG


def _get(bank: RunningBank, query: dict[str, str] | str) -> httpx.Response:
    raw = query if isinstance(query, str) else urlencode(query)
    with bank.client() as http:
        return http.get(f"{AUTHORIZE}?{raw}", follow_redirects=False)


def _refused_here(bank: RunningBank, response: httpx.Response, before: object) -> None:
    """No redirect: an HTML error page, and nothing stored."""
    assert response.status_code == 400
    assert "location" not in response.headers
    assert response.headers["content-type"].startswith("text/html")
    assert "frame-ancestors 'none'" in response.headers["content-security-policy"]
    assert database_state(bank.services.engine) == before


def _refused_to_callback(
    bank: RunningBank,
    response: httpx.Response,
    before: object,
    error: str,
    description: str | None = None,
    state: str | None = "st-123",
) -> dict[str, str]:
    query = callback_query(response)
    assert query["error"] == error
    if description is not None:
        assert query["error_description"] == description
    assert query.get("state") == state
    assert query["iss"] == bank.services.issuer
    expected = ["error", "error_description"] + (["state"] if state else []) + ["iss"]
    assert callback_keys(response.headers["location"]) == expected
    assert "set-cookie" not in response.headers
    assert database_state(bank.services.engine) == before
    return query


# --- accepted ---------------------------------------------------------------------------------
@pytest.mark.postgres  # PostgreSQL smoke test of /authorize
def test_valid_request_starts_a_journey_and_sends_the_browser_to_identification(
    bank: RunningBank, client_id: str
) -> None:
    response = _get(bank, authorize_params(client_id))
    assert response.status_code == 303
    assert response.headers["location"] == "/psu/login"
    cookie = response.headers["set-cookie"]
    assert cookie.startswith("__Host-stetgate-psu=")
    for attribute in ("HttpOnly", "Secure", "SameSite=lax", "Path=/"):
        assert attribute.lower() in cookie.lower()
    assert "domain=" not in cookie.lower()
    assert response.headers["cache-control"] == "no-store"
    rows = database_state(bank.services.engine)["psu_journeys"]
    assert len(rows) == 1
    assert [e["event"] for e in audit_trail(bank.services.engine)] == [AUTHORIZATION_STARTED]


def test_pkce_s256_challenge_is_kept_for_the_token_endpoint(
    bank: RunningBank, client_id: str
) -> None:
    response = _get(
        bank, authorize_params(client_id, code_challenge=CHALLENGE, code_challenge_method="S256")
    )
    assert response.headers["location"] == "/psu/login"
    from tests.support.psu_flow import journey_rows

    (row,) = journey_rows(bank)
    assert (row["code_challenge"], row["code_challenge_method"]) == (CHALLENGE, "S256")
    assert row["scope"] == "aisp" and row["state"] == "st-123" and row["stage"] == "identify"


# --- no redirect: client or redirect_uri not trusted ------------------------------------------
@pytest.mark.parametrize(
    "query",
    [
        pytest.param({"client_id": "PSDFR-ACPR-99999"}, id="unknown-client"),
        pytest.param({"redirect_uri": "https://evil.example/cb"}, id="unregistered-redirect"),
        pytest.param({"redirect_uri": CALLBACK + "/"}, id="redirect-not-exact"),
        pytest.param({"redirect_uri": "https://tpp.example/other"}, id="registered-query-dropped"),
        pytest.param({"client_id": None}, id="no-client-id"),
        pytest.param({"redirect_uri": None}, id="no-redirect-uri"),
    ],
)
def test_untrusted_client_or_redirect_uri_shows_an_error_page_and_never_redirects(
    bank: RunningBank, client_id: str, query: dict[str, str | None]
) -> None:
    before = database_state(bank.services.engine)
    response = _get(bank, authorize_params(client_id, **query))
    _refused_here(bank, response, before)
    assert "evil.example" not in response.text
    (event,) = audit_trail(bank.services.engine, AUTHORIZE_REQUEST_REJECTED)
    assert event["reason"]


@pytest.mark.parametrize("name", ["client_id", "redirect_uri"])
def test_repeated_client_id_or_redirect_uri_is_not_trusted(
    bank: RunningBank, client_id: str, name: str
) -> None:
    before = database_state(bank.services.engine)
    raw = (
        urlencode(authorize_params(client_id))
        + "&"
        + urlencode({name: authorize_params(client_id)[name]})
    )
    _refused_here(bank, _get(bank, raw), before)


def test_undecodable_redirect_uri_is_not_trusted(bank: RunningBank, client_id: str) -> None:
    before = database_state(bank.services.engine)
    raw = urlencode(authorize_params(client_id, redirect_uri=None)) + "&redirect_uri=https%3A%2F%FF"
    _refused_here(bank, _get(bank, raw), before)


def test_error_page_escapes_what_the_request_carried(bank: RunningBank) -> None:
    response = _get(bank, {"client_id": "<script>alert(1)</script>", "redirect_uri": CALLBACK})
    assert response.status_code == 400
    assert "<script>alert" not in response.text


# --- redirected errors: client and callback are known good -----------------------------------
@pytest.mark.parametrize(
    ("overrides", "error"),
    [
        pytest.param({"response_type": None}, "invalid_request", id="no-response-type"),
        pytest.param({"response_type": "token"}, "unsupported_response_type", id="implicit"),
        pytest.param({"response_type": "code id_token"}, "unsupported_response_type", id="hybrid"),
        pytest.param({"scope": None}, "invalid_scope", id="no-scope"),
        pytest.param({"scope": "pisp"}, "invalid_scope", id="pisp"),
        pytest.param({"scope": "aisp cbpii"}, "invalid_scope", id="two-roles"),
        pytest.param(
            {"scope": "aisp extended_transaction_history"},
            "invalid_scope",
            id="extended-not-offered",
        ),
        pytest.param(
            {"code_challenge": CHALLENGE, "code_challenge_method": "plain"},
            "invalid_request",
            id="pkce-plain",
        ),
        pytest.param({"code_challenge": CHALLENGE}, "invalid_request", id="pkce-method-missing"),
        pytest.param(
            {"code_challenge_method": "S256"}, "invalid_request", id="pkce-challenge-missing"
        ),
        pytest.param(
            {"code_challenge": "short", "code_challenge_method": "S256"},
            "invalid_request",
            id="pkce-malformed",
        ),
        pytest.param({"scope": "aisp\x01"}, "invalid_request", id="control-character"),
    ],
)
def test_bad_parameters_are_answered_at_the_callback(
    bank: RunningBank, client_id: str, overrides: dict[str, str | None], error: str
) -> None:
    before = database_state(bank.services.engine)
    _refused_to_callback(bank, _get(bank, authorize_params(client_id, **overrides)), before, error)


@pytest.mark.parametrize("name", ["scope", "response_type", "code_challenge"])
def test_a_repeated_parameter_is_invalid_request(
    bank: RunningBank, client_id: str, name: str
) -> None:
    before = database_state(bank.services.engine)
    raw = urlencode(
        authorize_params(client_id, code_challenge=CHALLENGE, code_challenge_method="S256")
    )
    raw += "&" + urlencode(
        {name: {"scope": "aisp", "response_type": "code", "code_challenge": CHALLENGE}[name]}
    )
    query = _refused_to_callback(bank, _get(bank, raw), before, "invalid_request")
    assert name in query["error_description"]


def test_a_repeated_state_is_refused_and_not_echoed(bank: RunningBank, client_id: str) -> None:
    before = database_state(bank.services.engine)
    raw = urlencode(authorize_params(client_id)) + "&state=other"
    _refused_to_callback(bank, _get(bank, raw), before, "invalid_request", state=None)


def test_an_oversized_state_is_refused_and_not_echoed(bank: RunningBank, client_id: str) -> None:
    before = database_state(bank.services.engine)
    response = _get(bank, authorize_params(client_id, state="s" * 1001))
    _refused_to_callback(bank, response, before, "invalid_request", "state is too long", state=None)


def test_an_oversized_query_is_invalid_request(bank: RunningBank, client_id: str) -> None:
    before = database_state(bank.services.engine)
    raw = urlencode(authorize_params(client_id)) + "&padding=" + "x" * 9000
    _refused_to_callback(bank, _get(bank, raw), before, "invalid_request", "request is too large")


def test_malformed_percent_encoding_is_invalid_request(bank: RunningBank, client_id: str) -> None:
    before = database_state(bank.services.engine)
    raw = urlencode(authorize_params(client_id, scope=None)) + "&scope=ai%zzsp"
    _refused_to_callback(bank, _get(bank, raw), before, "invalid_request", "scope is malformed")


def test_invalid_utf8_is_invalid_request(bank: RunningBank, client_id: str) -> None:
    before = database_state(bank.services.engine)
    raw = urlencode(authorize_params(client_id, scope=None)) + "&scope=%C3%28"
    _refused_to_callback(bank, _get(bank, raw), before, "invalid_request")


def test_empty_parameters_count_as_absent_and_unknown_ones_are_ignored(
    bank: RunningBank, client_id: str
) -> None:
    raw = urlencode(authorize_params(client_id)) + "&code_challenge=&nonce=abc&prompt=login"
    assert _get(bank, raw).headers["location"] == "/psu/login"


def test_the_registered_query_of_the_callback_is_kept(bank: RunningBank, client_id: str) -> None:
    before = database_state(bank.services.engine)
    other = "https://tpp.example/other?tenant=7"
    response = _get(bank, authorize_params(client_id, redirect_uri=other, response_type="token"))
    location = response.headers["location"]
    assert location.startswith(other + "&error=unsupported_response_type&")
    assert database_state(bank.services.engine) == before


def test_pkce_required_by_the_client_is_enforced(bank: RunningBank, pki: TestPki) -> None:
    add_client(bank.services.engine, pki.issue(ORG, ("AISP",)), bank.clock.now(), require_pkce=True)
    before = database_state(bank.services.engine)
    response = _get(bank, authorize_params(ORG))
    _refused_to_callback(bank, response, before, "invalid_request", "code challenge required")
    ok = _get(bank, authorize_params(ORG, code_challenge=CHALLENGE, code_challenge_method="S256"))
    assert ok.headers["location"] == "/psu/login"


# --- the TPP itself (docs/decisions.md#checks-on-the-tpp-at-authorize) ------------------------
def test_suspended_client_is_access_denied(bank: RunningBank, pki: TestPki) -> None:
    add_client(
        bank.services.engine, pki.issue(ORG, ("AISP",)), bank.clock.now(), status=CLIENT_SUSPENDED
    )
    before = database_state(bank.services.engine)
    _refused_to_callback(
        bank, _get(bank, authorize_params(ORG)), before, "access_denied", "client_suspended"
    )


def test_client_whose_stored_certificate_is_revoked_is_access_denied(
    bank: RunningBank, pki: TestPki
) -> None:
    tpp = pki.issue(ORG, ("AISP",), fresh=True)
    add_client(bank.services.engine, tpp, bank.clock.now())
    pki.revoke(tpp.qwac_pem)
    bank.clock.set(pki.clock.now())  # the new CRL is dated by the QTSP's clock
    before = database_state(bank.services.engine)
    _refused_to_callback(
        bank, _get(bank, authorize_params(ORG)), before, "access_denied", "certificate_revoked"
    )


def test_client_whose_stored_certificate_expired_is_access_denied(
    bank: RunningBank, pki: TestPki
) -> None:
    add_client(bank.services.engine, pki.issue(ORG, ("AISP",)), bank.clock.now())
    bank.clock.advance(timedelta(days=366).total_seconds())
    before = database_state(bank.services.engine)
    _refused_to_callback(
        bank, _get(bank, authorize_params(ORG)), before, "access_denied", "certificate_expired"
    )


def test_client_without_the_role_for_the_scope_is_unauthorized_client(
    bank: RunningBank, client_id: str
) -> None:
    before = database_state(bank.services.engine)
    response = _get(bank, authorize_params(client_id, scope="cbpii"))
    _refused_to_callback(bank, response, before, "unauthorized_client", "role_missing")


def test_client_without_stored_certificates_is_checked_at_token_time_only(
    bank: RunningBank, pki: TestPki
) -> None:
    from stetgate.oauth.clients import replace_certificates

    add_client(bank.services.engine, pki.issue(ORG, ("AISP",)), bank.clock.now())
    with bank.services.engine.begin() as conn:
        replace_certificates(conn, ORG, (), bank.clock.now())
    assert _get(bank, authorize_params(ORG, scope="cbpii")).headers["location"] == "/psu/login"
