"""The token endpoint's counters, in-process (one worker, in-memory values): refusals are
labelled by a *registered* grant type and the RFC 6749 error, whatever the client sent."""

from __future__ import annotations

from stetgate.oauth.token_endpoint import grant_type_label
from stetgate.observability.metrics import registry
from tests.support.bank import RunningBank
from tests.support.pki import TestPki
from tests.support.token_side import TOKEN, add_client, exchange_form, new_code


def _refused(grant_type: str, error: str) -> float:
    labels = {"grant_type": grant_type, "error": error}
    return registry().get_sample_value("stetgate_grants_refused_total", labels) or 0.0


def _issued(grant_type: str) -> float:
    labels = {"grant_type": grant_type}
    return registry().get_sample_value("stetgate_grants_issued_total", labels) or 0.0


def test_an_unknown_grant_type_is_labelled_other_never_by_its_value(
    bank: RunningBank, pki: TestPki
) -> None:
    tpp = pki.issue("PSDFR-ACPR-48101", ("AISP",))
    before = _refused("other", "unsupported_grant_type")
    with bank.client(tpp) as http:
        for value in ("password", "urn:evil:" + "x" * 40):
            response = http.post(TOKEN, data={"grant_type": value, "client_id": tpp.org_id})
            assert response.json()["error"] == "unsupported_grant_type"
    assert _refused("other", "unsupported_grant_type") == before + 2
    assert (
        registry().get_sample_value(
            "stetgate_grants_refused_total",
            {"grant_type": "password", "error": "unsupported_grant_type"},
        )
        is None
    )


def test_a_missing_grant_type_is_labelled_none(bank: RunningBank, pki: TestPki) -> None:
    tpp = pki.issue("PSDFR-ACPR-48102", ("AISP",))
    before = _refused("none", "invalid_request")
    with bank.client(tpp) as http:
        assert http.post(TOKEN, data={"client_id": tpp.org_id}).status_code == 400
    assert _refused("none", "invalid_request") == before + 1


def test_a_refused_code_counts_no_issue_and_one_refusal(bank: RunningBank, pki: TestPki) -> None:
    tpp = pki.issue("PSDFR-ACPR-48103", ("AISP",))
    client = add_client(bank.services.engine, tpp, bank.clock.now())
    code = new_code(bank.services.engine, client, bank.clock.now())
    issued, refused = _issued("authorization_code"), _refused("authorization_code", "invalid_grant")
    with bank.client(tpp) as http:
        assert http.post(TOKEN, data=exchange_form(client, code)).status_code == 200
        assert http.post(TOKEN, data=exchange_form(client, code)).status_code == 400
        wrong = exchange_form(client, "not-a-code")
        assert http.post(TOKEN, data=wrong).json()["error"] == "invalid_grant"
    assert _issued("authorization_code") == issued + 1
    assert _refused("authorization_code", "invalid_grant") == refused + 2


def test_a_revoked_qwac_counts_a_certificate_failure_and_an_invalid_client(
    bank: RunningBank, pki: TestPki
) -> None:
    tpp = pki.issue("PSDFR-ACPR-48104", ("AISP",), fresh=True)
    client = add_client(bank.services.engine, tpp, bank.clock.now())
    code = new_code(bank.services.engine, client, bank.clock.now())
    pki.revoke(tpp.qwac_pem)
    revoked = (
        registry().get_sample_value(
            "stetgate_certificate_failures_total", {"reason": "certificate_revoked"}
        )
        or 0.0
    )
    before = _refused("authorization_code", "invalid_client")
    with bank.client(tpp) as http:
        response = http.post(TOKEN, data=exchange_form(client, code))
    assert response.status_code == 401 and response.json()["error"] == "invalid_client"
    assert _refused("authorization_code", "invalid_client") == before + 1
    assert (
        registry().get_sample_value(
            "stetgate_certificate_failures_total", {"reason": "certificate_revoked"}
        )
        == revoked + 1
    )


def test_the_label_function_keeps_registered_names_only() -> None:
    registered = {"authorization_code": object(), "refresh_token": object()}
    assert grant_type_label({"grant_type": "refresh_token"}, registered) == "refresh_token"  # type: ignore[arg-type]
    assert grant_type_label({"grant_type": "REFRESH_TOKEN"}, registered) == "other"  # type: ignore[arg-type]
    assert grant_type_label({}, registered) == "none"  # type: ignore[arg-type]
