"""The registration token (client_credentials, scope manageRegistration, RFC 8705 §3 binding)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Engine, select

from stetgate.oauth.errors import InvalidScope, UnauthorizedClient
from stetgate.registry.registration_token import (
    check_registration_scope,
    find_registration_token,
    is_registration_client,
    issue_registration_token,
    refuse_client_credentials_for,
    require_psd2_role,
)
from stetgate.secrets import secret_hash
from stetgate.store.audit_events import REGISTRATION_TOKEN_ISSUED
from stetgate.store.db import make_engine
from stetgate.store.schema import audit_events, service_tokens
from tests.unit.registry.conftest import ORG_A, RegistryPki, psd2

pytestmark = pytest.mark.postgres  # registration tokens store

NOW = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    engine = make_engine(db_url, 2)
    yield engine
    engine.dispose()


@pytest.mark.parametrize("scope", [None, "", " ", "manageRegistration", " manageRegistration "])
def test_the_registration_client_gets_manage_registration_by_default_or_on_request(
    scope: str | None,
) -> None:
    assert check_registration_scope(scope) == "manageRegistration"


@pytest.mark.parametrize(
    "scope",
    [
        "aisp",
        "manageRegistration aisp",
        "cbpii",
        "manageregistration",
        "manageRegistration manageRegistration",
    ],
)
def test_any_other_scope_for_the_registration_client_is_invalid_scope(scope: str) -> None:
    with pytest.raises(InvalidScope):
        check_registration_scope(scope)


def test_only_the_configured_generic_client_id_is_the_registration_client() -> None:
    assert is_registration_client("PSD2_TPPRegister", "PSD2_TPPRegister")
    assert not is_registration_client("psd2_tppregister", "PSD2_TPPRegister")
    assert not is_registration_client(None, "PSD2_TPPRegister")
    refusal = refuse_client_credentials_for(ORG_A)
    assert refusal.error == "unauthorized_client"


def test_a_qwac_without_psd2_role_gets_no_registration_token(registry_pki: RegistryPki) -> None:
    with pytest.raises(UnauthorizedClient, match="no PSD2 role"):
        require_psd2_role(psd2(registry_pki.roleless.qwac_pem))
    require_psd2_role(psd2(registry_pki.tpp_b.qwac_pem))


def test_issued_token_is_stored_hashed_and_bound_to_the_qwac(
    engine: Engine, registry_pki: RegistryPki
) -> None:
    qwac = psd2(registry_pki.tpp_a.qwac_pem)
    with engine.begin() as conn:
        issued = issue_registration_token(
            conn, qwac, client_id="PSD2_TPPRegister", now=NOW, ttl_seconds=600, request_id="req-1"
        )
    assert issued.response_body() == {
        "access_token": issued.access_token,
        "token_type": "Bearer",
        "expires_in": 600,
        "scope": "manageRegistration",
    }
    assert len(issued.access_token) >= 43
    with engine.connect() as conn:
        rows = conn.execute(select(service_tokens)).mappings().all()
        events = conn.execute(select(audit_events)).mappings().all()
    assert len(rows) == 1
    row = rows[0]
    assert row["access_hash"] == secret_hash(issued.access_token)
    assert issued.access_token not in str(dict(row))
    assert (row["org_id"], row["cnf"], row["client_id"]) == (
        ORG_A,
        qwac.thumbprint_s256,
        "PSD2_TPPRegister",
    )
    assert row["expires_at"] == NOW + timedelta(seconds=600)
    assert [(e["event"], e["org_id"]) for e in events] == [(REGISTRATION_TOKEN_ISSUED, ORG_A)]
    assert issued.access_token not in str([dict(e) for e in events])


def test_a_token_is_found_until_it_expires(engine: Engine, registry_pki: RegistryPki) -> None:
    qwac = psd2(registry_pki.tpp_a.qwac_pem)
    with engine.begin() as conn:
        issued = issue_registration_token(
            conn, qwac, client_id="PSD2_TPPRegister", now=NOW, ttl_seconds=600
        )
    with engine.connect() as conn:
        found = find_registration_token(conn, issued.access_token, NOW + timedelta(seconds=599))
        assert found is not None
        assert (found.org_id, found.cnf) == (ORG_A, qwac.thumbprint_s256)
        assert (
            find_registration_token(conn, issued.access_token, NOW + timedelta(seconds=600)) is None
        )
        assert find_registration_token(conn, issued.access_token + "x", NOW) is None
        assert find_registration_token(conn, "", NOW) is None


def test_issuing_sweeps_only_the_expired_tokens_of_the_same_organization(
    engine: Engine, registry_pki: RegistryPki
) -> None:
    qwac_a, qwac_b = psd2(registry_pki.tpp_a.qwac_pem), psd2(registry_pki.tpp_b.qwac_pem)
    with engine.begin() as conn:
        old_a = issue_registration_token(conn, qwac_a, client_id="r", now=NOW, ttl_seconds=60)
        old_b = issue_registration_token(conn, qwac_b, client_id="r", now=NOW, ttl_seconds=60)
        live_a = issue_registration_token(conn, qwac_a, client_id="r", now=NOW, ttl_seconds=3600)
    later = NOW + timedelta(seconds=120)
    with engine.begin() as conn:
        issue_registration_token(conn, qwac_a, client_id="r", now=later, ttl_seconds=60)
    with engine.connect() as conn:
        hashes = set(conn.execute(select(service_tokens.c.access_hash)).scalars())
    assert secret_hash(old_a.access_token) not in hashes
    assert secret_hash(old_b.access_token) in hashes  # another organization's: untouched
    assert secret_hash(live_a.access_token) in hashes
    assert len(hashes) == 3
