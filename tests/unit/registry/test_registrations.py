"""Storage side of API registrations: create, read, replace, remove (RFC 7591/7592)."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from cryptography import x509
from sqlalchemy import Engine, select

from stetgate.oauth.clients import get_client
from stetgate.oauth.token_pairs import create_pair, get_grant
from stetgate.registry.errors import InvalidClientMetadata, InvalidToken
from stetgate.registry.metadata_rules import client_metadata_of, seal_key_of
from stetgate.registry.registrations import (
    NewRegistration,
    client_by_registration_token,
    client_information,
    create_registration,
    remove_registration,
    replace_registration,
)
from stetgate.registry.signed_requests import SealSignature
from stetgate.secrets import secret_hash
from stetgate.store.db import make_engine
from stetgate.store.schema import clients
from tests.unit.registry.conftest import ORG_A, ORG_B, RegistryPki, psd2
from tests.unit.registry.db_snapshot import state_snapshot
from tests.unit.registry.register_requests import registration_document

pytestmark = pytest.mark.postgres  # registrations store

NOW = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)
ISSUER = "https://bank.example"


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    engine = make_engine(db_url, 2)
    yield engine
    engine.dispose()


def register(
    engine: Engine,
    registry_pki: RegistryPki,
    name: str = "Budget Insight Test",
    *,
    tpp: str = "tpp_a",
    url: str | None = None,
    **changes: Any,
) -> NewRegistration:
    certs = getattr(registry_pki, tpp)
    document = registration_document(certs.qsealc_pem, client_name=name, **changes)
    seal = seal_key_of(document)
    with engine.begin() as conn:
        return create_registration(
            conn,
            metadata=client_metadata_of(document),
            seal=seal,
            signature=SealSignature("qsealc-1", url),
            qwac=psd2(certs.qwac_pem),
            now=NOW,
        )


def test_a_registration_creates_an_opaque_client_linked_to_the_organization(
    engine: Engine, registry_pki: RegistryPki
) -> None:
    created = register(
        engine, registry_pki, url="https://tpp.example/qsealc.pem", require_pkce=True
    )
    client = created.client
    assert len(client.client_id) == 32 and client.client_id != ORG_A
    with engine.connect() as conn:
        stored = get_client(conn, client.client_id)
        token_hash = conn.execute(select(clients.c.registration_token_hash)).scalar()
    assert stored == client
    assert (stored.org_id, stored.origin, stored.status) == (ORG_A, "register", "active")
    assert stored.redirect_uris == ("https://tpp.example/callback",)
    assert stored.require_pkce is True
    assert token_hash == secret_hash(created.registration_access_token)
    qwac, qsealc = stored.certificates_of("qwac"), stored.certificates_of("qsealc")
    assert [c.thumbprint for c in qwac] == [psd2(registry_pki.tpp_a.qwac_pem).thumbprint_s256]
    assert [(c.kid, c.url) for c in qsealc] == [("qsealc-1", "https://tpp.example/qsealc.pem")]


def test_a_name_already_registered_in_another_case_is_refused_and_nothing_is_written(
    engine: Engine, registry_pki: RegistryPki
) -> None:
    register(engine, registry_pki, "Budget Insight Test")
    before = state_snapshot(engine)
    with pytest.raises(InvalidClientMetadata, match="already registered") as caught:
        register(engine, registry_pki, "BUDGET  insight test", tpp="tpp_b")
    assert caught.value.reason == "client_name_taken"
    assert state_snapshot(engine) == before


def test_the_registration_access_token_finds_its_client_only(
    engine: Engine, registry_pki: RegistryPki
) -> None:
    created = register(engine, registry_pki)
    with engine.connect() as conn:
        found = client_by_registration_token(conn, created.registration_access_token)
        assert found is not None and found.client_id == created.client.client_id
        assert client_by_registration_token(conn, created.registration_access_token[:-1]) is None


def test_client_information_describes_the_registration_per_rfc7591(
    engine: Engine, registry_pki: RegistryPki
) -> None:
    created = register(engine, registry_pki)
    info = client_information(created.client, created.registration_access_token, ISSUER)
    assert info["client_id"] == created.client.client_id
    assert info["client_id_issued_at"] == int(NOW.timestamp())
    assert info["registration_client_uri"] == (
        f"{ISSUER}/stet/setting/v1/register/{created.client.client_id}"
    )
    assert info["registration_access_token"] == created.registration_access_token
    assert info["token_endpoint_auth_method"] == "tls_client_auth"
    assert info["grant_types"] == ["authorization_code", "refresh_token"]
    [jwk] = info["jwks"]["keys"]
    sent = registration_document(registry_pki.tpp_a.qsealc_pem)["jwks"]["keys"][0]
    assert {k: jwk[k] for k in ("kty", "use", "alg", "kid", "n", "e", "x5c")} == sent
    assert "x5u" not in jwk
    x509.load_der_x509_certificate(base64.b64decode(jwk["x5c"][0]))


def test_replace_changes_metadata_and_certificates_and_keeps_the_client(
    engine: Engine, registry_pki: RegistryPki
) -> None:
    created = register(engine, registry_pki)
    new_qwac = psd2(registry_pki.expired.qwac_pem)  # any certificate of the organization
    document = registration_document(
        registry_pki.tpp_a.qsealc_pem,
        client_name="Renamed",
        redirect_uris=["https://new.example/cb"],
        contacts=None,
        kid="seal-2024",
    )
    later = NOW + timedelta(days=1)
    with engine.begin() as conn:
        updated = replace_registration(
            conn,
            created.client,
            metadata=client_metadata_of(document),
            seal=seal_key_of(document),
            signature=SealSignature("seal-2024", None),
            qwac=new_qwac,
            now=later,
        )
    assert updated.client_id == created.client.client_id
    assert (updated.name, updated.redirect_uris, updated.contacts) == (
        "Renamed",
        ("https://new.example/cb",),
        (),
    )
    assert updated.created_at == NOW and updated.updated_at == later
    assert [c.thumbprint for c in updated.certificates_of("qwac")] == [new_qwac.thumbprint_s256]
    assert [c.kid for c in updated.certificates_of("qsealc")] == ["seal-2024"]


def test_replace_may_keep_its_own_name_but_not_take_another_clients(
    engine: Engine, registry_pki: RegistryPki
) -> None:
    mine = register(engine, registry_pki, "Mine")
    register(engine, registry_pki, "Theirs", tpp="tpp_b")

    def replace_with(name: str) -> None:
        document = registration_document(registry_pki.tpp_a.qsealc_pem, client_name=name)
        with engine.begin() as conn:
            replace_registration(
                conn,
                mine.client,
                metadata=client_metadata_of(document),
                seal=seal_key_of(document),
                signature=SealSignature("qsealc-1", None),
                qwac=psd2(registry_pki.tpp_a.qwac_pem),
                now=NOW,
            )

    replace_with("mine")
    before = state_snapshot(engine)
    with pytest.raises(InvalidClientMetadata, match="already registered"):
        replace_with("THEIRS")
    assert state_snapshot(engine) == before


def test_remove_deletes_the_client_and_revokes_its_token_pairs_only(
    engine: Engine, registry_pki: RegistryPki
) -> None:
    mine = register(engine, registry_pki, "Mine")
    theirs = register(engine, registry_pki, "Theirs", tpp="tpp_b")
    with engine.begin() as conn:
        pairs = [
            create_pair(
                conn,
                client_id=client.client_id,
                org_id=client.org_id,
                psu_id=psu,
                role="aisp",
                scope="aisp",
                sca_at=NOW,
                refresh_expires_at=NOW + timedelta(days=90),
                access_expires_at=NOW + timedelta(hours=1),
                access_cnf="x",
                now=NOW,
            )
            for client, psu in (
                (mine.client, "psu-1"),
                (mine.client, "psu-2"),
                (theirs.client, "psu-1"),
            )
        ]
    with engine.begin() as conn:
        assert remove_registration(conn, mine.client, NOW) == 2
    with engine.connect() as conn:
        assert get_client(conn, mine.client.client_id) is None
        assert client_by_registration_token(conn, mine.registration_access_token) is None
        states = [get_grant(conn, pair.grant.id) for pair in pairs]
        assert get_client(conn, theirs.client.client_id) is not None
    assert [(g.revoked_reason if g else "gone") for g in states] == [
        "registration_deleted",
        "registration_deleted",
        None,
    ]
    assert theirs.client.org_id == ORG_B


def test_replacing_or_removing_a_client_deleted_meanwhile_is_401_and_writes_nothing(
    engine: Engine, registry_pki: RegistryPki
) -> None:
    created = register(engine, registry_pki)
    with engine.begin() as conn:
        remove_registration(conn, created.client, NOW)
    before = state_snapshot(engine)
    document = registration_document(registry_pki.tpp_a.qsealc_pem)
    with pytest.raises(InvalidToken, match="no longer exists"), engine.begin() as conn:
        replace_registration(
            conn,
            created.client,
            metadata=client_metadata_of(document),
            seal=seal_key_of(document),
            signature=SealSignature("qsealc-1", None),
            qwac=psd2(registry_pki.tpp_a.qwac_pem),
            now=NOW,
        )
    with pytest.raises(InvalidToken, match="no longer exists"), engine.begin() as conn:
        remove_registration(conn, created.client, NOW)
    assert state_snapshot(engine) == before


def test_a_name_confusable_with_another_organizations_is_refused_and_nothing_is_written(
    engine: Engine, registry_pki: RegistryPki
) -> None:
    """UTS #39 §4: Cyrillic ``а`` (U+0430) for Latin ``a`` impersonates on the consent page."""
    register(engine, registry_pki, "Budget Insight Test")
    before = state_snapshot(engine)
    with pytest.raises(InvalidClientMetadata, match="mistaken") as caught:
        register(engine, registry_pki, "Budget lnsight Test", tpp="tpp_b")
    assert caught.value.reason == "client_name_confusable"
    assert state_snapshot(engine) == before


def test_an_organization_may_name_its_own_clients_alike(
    engine: Engine, registry_pki: RegistryPki
) -> None:
    register(engine, registry_pki, "Budget Insight Test")
    second = register(engine, registry_pki, "Budget lnsight Test")
    assert second.client.org_id == ORG_A


def test_replacing_keeps_a_client_its_own_name_but_not_a_look_alike_of_another(
    engine: Engine, registry_pki: RegistryPki
) -> None:
    mine = register(engine, registry_pki, "Budget Insight Test")
    register(engine, registry_pki, "Orange Test", tpp="tpp_b")
    certs = registry_pki.tpp_a

    def rename(name: str) -> str:
        document = registration_document(certs.qsealc_pem, client_name=name)
        with engine.begin() as conn:
            return replace_registration(
                conn,
                mine.client,
                metadata=client_metadata_of(document),
                seal=seal_key_of(document),
                signature=SealSignature("qsealc-1", None),
                qwac=psd2(certs.qwac_pem),
                now=NOW,
            ).name

    assert rename("Budget Insight Test") == "Budget Insight Test"
    before = state_snapshot(engine)
    with pytest.raises(InvalidClientMetadata) as caught:
        rename("0range Test")  # digit zero for the other organization's O
    assert caught.value.reason == "client_name_confusable"
    assert state_snapshot(engine) == before
