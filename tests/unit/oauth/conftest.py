"""Values for the token-side rule tests: certificates and clients built as plain values (the
rules take values, so no PKI or server is needed), a frozen clock, and a migrated database."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Engine

from stetgate.clock import FrozenClock
from stetgate.eidas import Psd2Certificate, Psd2Role, QcType
from stetgate.eidas.parse import thumbprint_s256
from stetgate.oauth.clients import CLIENT_ACTIVE, Client, insert_client
from stetgate.store.db import make_engine

START = datetime(2026, 3, 2, 9, 30, tzinfo=UTC)


def certificate(
    org_id: str = "PSDFR-ACPR-50001",
    roles: tuple[Psd2Role, ...] = (Psd2Role.PSP_AI, Psd2Role.PSP_IC),
) -> Psd2Certificate:
    der = hashlib.sha256(f"{org_id}{roles}".encode()).digest()
    return Psd2Certificate(
        der=der,
        organization_identifier=org_id,
        organization_name=f"TPP {org_id}",
        common_name=None,
        roles=frozenset(roles),
        nca_name="ACPR",
        nca_id="FR-ACPR",
        qc_types=frozenset({QcType.WEB}),
        not_before=START - timedelta(days=1),
        not_after=START + timedelta(days=365),
        serial_hex="01",
        issuer_dn="CN=test",
        subject_dn=f"organizationIdentifier={org_id}",
        thumbprint_s256=thumbprint_s256(der),
        crl_urls=(),
        qc_compliance=True,
    )


def client(
    client_id: str = "PSDFR-ACPR-50001",
    org_id: str | None = None,
    *,
    origin: str = "golive",
    status: str = CLIENT_ACTIVE,
    require_pkce: bool = False,
) -> Client:
    return Client(
        client_id=client_id,
        org_id=org_id or client_id,
        name=f"App {client_id}",
        origin=origin,
        status=status,
        redirect_uris=("https://tpp.example/cb",),
        require_pkce=require_pkce,
        contacts=(),
        grant_types=("authorization_code", "refresh_token"),
        response_types=("code",),
        certificates=(),
        created_at=START,
        updated_at=START,
    )


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock(START)


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    engine = make_engine(db_url, 2)
    yield engine
    engine.dispose()


def store_client(engine: Engine, value: Client) -> Client:
    with engine.begin() as conn:
        insert_client(conn, value)
    return value
