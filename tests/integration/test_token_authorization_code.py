"""POST /stet/psd2/oauth/token with grant_type=authorization_code, over real mutual TLS.

RFC 6749 §4.1.3, RFC 8705 §2 and docs/decisions.md#code-exchange. Every refusal is checked to leave
the database as it was (only the audit trail grows, with the reason).
"""

from __future__ import annotations

from datetime import timedelta

import httpx
import pytest
from sqlalchemy import select

from stetgate.eidas import parse_certificate
from stetgate.oauth.clients import CLIENT_SUSPENDED
from stetgate.oauth.pkce import s256_challenge
from stetgate.secrets import secret_hash
from stetgate.store.audit_events import CODE_REPLAYED, TOKEN_ISSUED, TOKEN_REFUSED
from stetgate.store.schema import authorization_codes, grants
from tests.support.bank import RunningBank
from tests.support.pki import TestPki, TppCerts
from tests.support.token_side import (
    CALLBACK,
    INTROSPECT,
    TOKEN,
    add_client,
    audit_trail,
    database_state,
    exchange_form,
    introspect,
    new_code,
    revoke_certificate,
)

ORG = "PSDFR-ACPR-40001"
OTHER_ORG = "PSDFR-ACPR-40002"
VERIFIER = "v" * 43 + "-._~0123456789"


@pytest.fixture
def tpp(pki: TestPki) -> TppCerts:
    return pki.issue(ORG, ("AISP", "CBPII"))


@pytest.fixture
def other_tpp(pki: TestPki) -> TppCerts:
    return pki.issue(OTHER_ORG, ("AISP", "CBPII"))


def _refused(response: httpx.Response, error: str, status: int = 400) -> dict[str, str]:
    assert response.status_code == status, response.text
    assert response.headers["cache-control"] == "no-store"
    body: dict[str, str] = response.json()
    assert body["error"] == error, body
    return body


def _exchange_refused(
    bank: RunningBank, tpp: TppCerts | None, form: dict[str, str], error: str, status: int = 400
) -> dict[str, str]:
    engine = bank.services.engine
    before = database_state(engine)
    refusals = len(audit_trail(engine, TOKEN_REFUSED))
    with bank.client(tpp) as http:
        body = _refused(http.post(TOKEN, data=form), error, status)
    assert database_state(engine) == before
    trail = audit_trail(engine, TOKEN_REFUSED)
    assert len(trail) == refusals + 1
    assert trail[-1]["reason"].startswith(error)
    return body


@pytest.mark.postgres  # PostgreSQL smoke test of the code exchange
def test_code_exchange_issues_a_certificate_bound_pair(bank: RunningBank, tpp: TppCerts) -> None:
    client = add_client(bank.services.engine, tpp, bank.clock.now())
    code = new_code(bank.services.engine, client, bank.clock.now())
    with bank.client(tpp) as http:
        response = http.post(TOKEN, data=exchange_form(client, code))
    assert response.status_code == 200, response.text
    assert response.headers["cache-control"] == "no-store"
    body = response.json()
    assert set(body) == {"access_token", "token_type", "expires_in", "refresh_token", "scope"}
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == 3600
    assert body["scope"] == "aisp"
    assert len(body["access_token"]) >= 43 and len(body["refresh_token"]) >= 43
    with bank.client(tpp) as http:
        described = http.post(INTROSPECT, data={"token": body["access_token"]}).json()
    thumbprint = parse_certificate(tpp.qwac_pem.read_bytes()).thumbprint_s256
    assert described["active"] is True
    assert described["cnf"] == {"x5t#S256": thumbprint}
    assert described["client_id"] == ORG
    issued = audit_trail(bank.services.engine, TOKEN_ISSUED)
    assert [(e["client_id"], e["psu_id"]) for e in issued] == [(ORG, "psu-1")]
    assert body["access_token"] not in repr(audit_trail(bank.services.engine))


def test_code_exchange_with_pkce_s256(bank: RunningBank, tpp: TppCerts) -> None:
    client = add_client(bank.services.engine, tpp, bank.clock.now())
    code = new_code(
        bank.services.engine, client, bank.clock.now(), code_challenge=s256_challenge(VERIFIER)
    )
    with bank.client(tpp) as http:
        response = http.post(TOKEN, data=exchange_form(client, code, code_verifier=VERIFIER))
    assert response.status_code == 200, response.text
    pair = response.json()
    described = introspect(bank, tpp, token=pair["access_token"])
    assert described["active"] is True and described["client_id"] == ORG
    with bank.services.engine.connect() as conn:
        used_at, grant_id = conn.execute(
            select(authorization_codes.c.used_at, authorization_codes.c.grant_id).where(
                authorization_codes.c.code_hash == secret_hash(code)
            )
        ).one()
        issued = conn.execute(
            select(grants.c.id).where(grants.c.refresh_hash == secret_hash(pair["refresh_token"]))
        ).scalar_one()
    assert used_at == bank.clock.now() and grant_id == issued  # the code is spent on this pair


def test_without_client_certificate_is_invalid_client(bank: RunningBank, tpp: TppCerts) -> None:
    client = add_client(bank.services.engine, tpp, bank.clock.now())
    code = new_code(bank.services.engine, client, bank.clock.now())
    body = _exchange_refused(bank, None, exchange_form(client, code), "invalid_client", 401)
    assert "no client certificate" in body["error_description"]


def test_certificate_from_another_ca_is_refused_at_the_handshake(
    bank: RunningBank, pki: TestPki, tpp: TppCerts
) -> None:
    client = add_client(bank.services.engine, tpp, bank.clock.now())
    code = new_code(bank.services.engine, client, bank.clock.now())
    foreign = pki.issue(ORG, ("AISP",), foreign=True)
    before = database_state(bank.services.engine)
    with bank.client(foreign) as http, pytest.raises(httpx.TransportError):
        http.post(TOKEN, data=exchange_form(client, code))
    assert database_state(bank.services.engine) == before


def test_expired_certificate_is_refused(bank: RunningBank, pki: TestPki, tpp: TppCerts) -> None:
    client = add_client(bank.services.engine, tpp, bank.clock.now())
    code = new_code(bank.services.engine, client, bank.clock.now())
    start = bank.clock.now() - timedelta(days=400)
    expired = pki.issue(ORG, ("AISP",), not_before=start, not_after=start + timedelta(days=30))
    before = database_state(bank.services.engine)
    try:
        with bank.client(expired) as http:
            response = http.post(TOKEN, data=exchange_form(client, code))
    except httpx.TransportError:
        pass  # Python's TLS layer verifies validity of a presented certificate
    else:
        _refused(response, "invalid_client", 401)
    assert database_state(bank.services.engine) == before


def test_revoked_certificate_is_invalid_client(bank: RunningBank, pki: TestPki) -> None:
    revoked = pki.issue(ORG, ("AISP", "CBPII"), fresh=True)
    client = add_client(bank.services.engine, revoked, bank.clock.now())
    code = new_code(bank.services.engine, client, bank.clock.now())
    revoke_certificate(bank, revoked)
    body = _exchange_refused(bank, revoked, exchange_form(client, code), "invalid_client", 401)
    assert body["error_description"].startswith("certificate revoked")


def test_certificate_of_another_organization_is_invalid_client(
    bank: RunningBank, tpp: TppCerts, other_tpp: TppCerts
) -> None:
    client = add_client(bank.services.engine, tpp, bank.clock.now())
    code = new_code(bank.services.engine, client, bank.clock.now())
    body = _exchange_refused(bank, other_tpp, exchange_form(client, code), "invalid_client", 401)
    assert body["error_description"] == (
        f"certificate organizationIdentifier {OTHER_ORG} does not match client {ORG}"
    )


def test_register_client_matches_its_organization_indirectly(
    bank: RunningBank, tpp: TppCerts, other_tpp: TppCerts
) -> None:
    client = add_client(
        bank.services.engine, tpp, bank.clock.now(), client_id="b7c1d2e3f4", origin="register"
    )
    code = new_code(bank.services.engine, client, bank.clock.now())
    _exchange_refused(bank, other_tpp, exchange_form(client, code), "invalid_client", 401)
    with bank.client(tpp) as http:
        response = http.post(TOKEN, data=exchange_form(client, code))
    assert response.status_code == 200, response.text
    described = introspect(bank, tpp, token=response.json()["access_token"])
    assert described["active"] is True and described["client_id"] == "b7c1d2e3f4"


def test_missing_role_for_the_scope_is_unauthorized_client(bank: RunningBank, pki: TestPki) -> None:
    cbpii_only = pki.issue(ORG, ("CBPII",))
    client = add_client(bank.services.engine, cbpii_only, bank.clock.now())
    code = new_code(bank.services.engine, client, bank.clock.now(), scope="aisp")
    body = _exchange_refused(bank, cbpii_only, exchange_form(client, code), "unauthorized_client")
    assert "PSP_AI" in body["error_description"]


def test_suspended_client_is_refused(bank: RunningBank, tpp: TppCerts) -> None:
    client = add_client(bank.services.engine, tpp, bank.clock.now(), status=CLIENT_SUSPENDED)
    code = new_code(bank.services.engine, client, bank.clock.now())
    body = _exchange_refused(bank, tpp, exchange_form(client, code), "unauthorized_client")
    assert "suspended" in body["error_description"]


def test_unknown_client_is_invalid_client(bank: RunningBank, tpp: TppCerts) -> None:
    client = add_client(bank.services.engine, tpp, bank.clock.now())
    code = new_code(bank.services.engine, client, bank.clock.now())
    form = exchange_form(client, code, client_id="PSDFR-ACPR-49999")
    _exchange_refused(bank, tpp, form, "invalid_client", 401)


def test_missing_client_id_is_invalid_request(bank: RunningBank, tpp: TppCerts) -> None:
    client = add_client(bank.services.engine, tpp, bank.clock.now())
    code = new_code(bank.services.engine, client, bank.clock.now())
    form = exchange_form(client, code)
    del form["client_id"]
    _exchange_refused(bank, tpp, form, "invalid_request")


def test_wrong_redirect_uri_is_invalid_grant(bank: RunningBank, tpp: TppCerts) -> None:
    client = add_client(
        bank.services.engine, tpp, bank.clock.now(), redirect_uris=(CALLBACK, CALLBACK + "/2")
    )
    code = new_code(bank.services.engine, client, bank.clock.now())
    for uri in (CALLBACK + "/2", CALLBACK + "?x=1", CALLBACK.upper()):
        form = exchange_form(client, code, redirect_uri=uri)
        body = _exchange_refused(bank, tpp, form, "invalid_grant")
        assert "redirect_uri" in body["error_description"]
    form = exchange_form(client, code)
    del form["redirect_uri"]
    _exchange_refused(bank, tpp, form, "invalid_request")


@pytest.mark.postgres  # the code claim
def test_reused_code_is_refused_and_revokes_the_pair_it_produced(
    bank: RunningBank, tpp: TppCerts
) -> None:
    client = add_client(bank.services.engine, tpp, bank.clock.now())
    code = new_code(bank.services.engine, client, bank.clock.now())
    with bank.client(tpp) as http:
        first = http.post(TOKEN, data=exchange_form(client, code)).json()
        assert introspect(bank, tpp, token=first["access_token"])["active"]
        body = _refused(http.post(TOKEN, data=exchange_form(client, code)), "invalid_grant")
    assert "already used" in body["error_description"]
    assert not introspect(bank, tpp, token=first["access_token"])["active"]
    assert not introspect(bank, tpp, token=first["refresh_token"])["active"]
    replays = audit_trail(bank.services.engine, CODE_REPLAYED)
    assert len(replays) == 1 and replays[0]["detail"]["revoked_grants"]


def test_replay_by_another_client_revokes_nothing(
    bank: RunningBank, tpp: TppCerts, other_tpp: TppCerts
) -> None:
    client = add_client(bank.services.engine, tpp, bank.clock.now())
    other = add_client(bank.services.engine, other_tpp, bank.clock.now())
    code = new_code(bank.services.engine, client, bank.clock.now())
    with bank.client(tpp) as http:
        pair = http.post(TOKEN, data=exchange_form(client, code)).json()
    body = _exchange_refused(bank, other_tpp, exchange_form(other, code), "invalid_grant")
    assert "another client" in body["error_description"]
    assert introspect(bank, tpp, token=pair["access_token"])["active"]


def test_expired_code_is_invalid_grant(bank: RunningBank, tpp: TppCerts) -> None:
    client = add_client(bank.services.engine, tpp, bank.clock.now())
    code = new_code(bank.services.engine, client, bank.clock.now())
    bank.clock.advance(60)
    body = _exchange_refused(bank, tpp, exchange_form(client, code), "invalid_grant")
    assert "expired" in body["error_description"]


def test_code_of_another_client_is_invalid_grant_and_stays_usable(
    bank: RunningBank, tpp: TppCerts, other_tpp: TppCerts
) -> None:
    client = add_client(bank.services.engine, tpp, bank.clock.now())
    other = add_client(bank.services.engine, other_tpp, bank.clock.now())
    code = new_code(bank.services.engine, client, bank.clock.now())
    _exchange_refused(bank, other_tpp, exchange_form(other, code), "invalid_grant")
    with bank.client(tpp) as http:
        response = http.post(TOKEN, data=exchange_form(client, code))
    assert response.status_code == 200, response.text
    described = introspect(bank, tpp, token=response.json()["access_token"])
    assert described["active"] is True and described["client_id"] == ORG
    issued = audit_trail(bank.services.engine, TOKEN_ISSUED)
    assert [(e["client_id"], e["psu_id"]) for e in issued] == [(ORG, "psu-1")]


def test_unknown_code_is_invalid_grant(bank: RunningBank, tpp: TppCerts) -> None:
    client = add_client(bank.services.engine, tpp, bank.clock.now())
    _exchange_refused(bank, tpp, exchange_form(client, "x" * 43), "invalid_grant")


@pytest.mark.parametrize(
    ("verifier", "error"),
    [
        (None, "invalid_grant"),
        ("w" * 43, "invalid_grant"),
        ("short", "invalid_request"),
    ],
)
def test_pkce_mismatch_is_refused(
    bank: RunningBank, tpp: TppCerts, verifier: str | None, error: str
) -> None:
    client = add_client(bank.services.engine, tpp, bank.clock.now())
    challenge = s256_challenge(VERIFIER)
    code = new_code(bank.services.engine, client, bank.clock.now(), code_challenge=challenge)
    extra = {} if verifier is None else {"code_verifier": verifier}
    _exchange_refused(bank, tpp, exchange_form(client, code, **extra), error)


def test_code_verifier_without_challenge_is_refused(bank: RunningBank, tpp: TppCerts) -> None:
    client = add_client(bank.services.engine, tpp, bank.clock.now())
    code = new_code(bank.services.engine, client, bank.clock.now())
    form = exchange_form(client, code, code_verifier=VERIFIER)
    _exchange_refused(bank, tpp, form, "invalid_grant")


def test_client_requiring_pkce_needs_a_challenged_code(bank: RunningBank, tpp: TppCerts) -> None:
    client = add_client(bank.services.engine, tpp, bank.clock.now(), require_pkce=True)
    code = new_code(bank.services.engine, client, bank.clock.now())
    _exchange_refused(bank, tpp, exchange_form(client, code), "invalid_grant")


@pytest.mark.parametrize("scope", ["aisp extended_transaction_history", "cbpii", "aisp pisp"])
def test_scope_escalation_is_invalid_scope(bank: RunningBank, tpp: TppCerts, scope: str) -> None:
    client = add_client(bank.services.engine, tpp, bank.clock.now())
    code = new_code(bank.services.engine, client, bank.clock.now(), scope="aisp")
    _exchange_refused(bank, tpp, exchange_form(client, code, scope=scope), "invalid_scope")


def test_scope_may_narrow_the_grant(bank: RunningBank, tpp: TppCerts) -> None:
    client = add_client(bank.services.engine, tpp, bank.clock.now())
    code = new_code(
        bank.services.engine, client, bank.clock.now(), scope="aisp extended_transaction_history"
    )
    with bank.client(tpp) as http:
        body = http.post(TOKEN, data=exchange_form(client, code, scope="aisp")).json()
    assert body["scope"] == "aisp"
    assert introspect(bank, tpp, token=body["access_token"])["scope"] == "aisp"


def test_second_authorization_revokes_the_first_pair(bank: RunningBank, tpp: TppCerts) -> None:
    client = add_client(bank.services.engine, tpp, bank.clock.now())
    with bank.client(tpp) as http:
        first = http.post(
            TOKEN,
            data=exchange_form(client, new_code(bank.services.engine, client, bank.clock.now())),
        ).json()
        cbpii = http.post(
            TOKEN,
            data=exchange_form(
                client, new_code(bank.services.engine, client, bank.clock.now(), scope="cbpii")
            ),
        ).json()
        other_psu = http.post(
            TOKEN,
            data=exchange_form(
                client, new_code(bank.services.engine, client, bank.clock.now(), psu_id="psu-2")
            ),
        ).json()
        second = http.post(
            TOKEN,
            data=exchange_form(client, new_code(bank.services.engine, client, bank.clock.now())),
        ).json()
    assert not introspect(bank, tpp, token=first["access_token"])["active"]
    assert not introspect(bank, tpp, token=first["refresh_token"])["active"]
    for alive in (second, cbpii, other_psu):
        assert introspect(bank, tpp, token=alive["access_token"])["active"]
    issued = audit_trail(bank.services.engine, TOKEN_ISSUED)
    assert len(issued[-1]["detail"]["superseded"]) == 1


@pytest.mark.parametrize(
    ("content", "content_type"),
    [
        (b'{"grant_type": "authorization_code"}', "application/json"),
        (b"grant_type=authorization_code", "text/plain"),
        (b"grant_type=authorization_code", None),
        (b"grant_type=authorization_code&grant_type=refresh_token", None),
        (b"grant_type=authorization_code&code=%ZZ", None),
        (b"grant_type=authorization_code&code=%FF%FE", None),
        (b"grant_type=authorization_code&code=" + b"a" * 3000, None),
        (b"grant_type=authorization_code&" + b"&".join(b"p%d=1" % i for i in range(30)), None),
        (b"grant_type=authorization_code&code=a%00b", None),
        (b"code=abc", None),
    ],
)
def test_malformed_requests_are_invalid_request(
    bank: RunningBank, tpp: TppCerts, content: bytes, content_type: str | None
) -> None:
    add_client(bank.services.engine, tpp, bank.clock.now())
    headers = {"content-type": content_type or "application/x-www-form-urlencoded"}
    before = database_state(bank.services.engine)
    with bank.client(tpp) as http:
        _refused(http.post(TOKEN, content=content, headers=headers), "invalid_request")
    assert database_state(bank.services.engine) == before


def test_parameters_in_the_query_string_are_refused(bank: RunningBank, tpp: TppCerts) -> None:
    client = add_client(bank.services.engine, tpp, bank.clock.now())
    code = new_code(bank.services.engine, client, bank.clock.now())
    before = database_state(bank.services.engine)
    with bank.client(tpp) as http:
        response = http.post(TOKEN, params={"code": code}, data=exchange_form(client, code))
    _refused(response, "invalid_request")
    assert database_state(bank.services.engine) == before


def test_oversized_body_is_refused(bank: RunningBank, tpp: TppCerts) -> None:
    with bank.client(tpp) as http:
        response = http.post(TOKEN, data={"grant_type": "authorization_code", "x": "a" * 70_000})
    assert response.status_code == 413


def test_unsupported_grant_type(bank: RunningBank, tpp: TppCerts) -> None:
    client = add_client(bank.services.engine, tpp, bank.clock.now())
    for grant_type in ("password", "implicit", "urn:ietf:params:oauth:grant-type:device_code"):
        form = {"grant_type": grant_type, "client_id": client.client_id}
        _exchange_refused(bank, tpp, form, "unsupported_grant_type")


def test_token_endpoint_accepts_only_post(bank: RunningBank, tpp: TppCerts) -> None:
    with bank.client(tpp) as http:
        assert http.get(TOKEN).status_code == 405
