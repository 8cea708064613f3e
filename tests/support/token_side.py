"""Helpers for the token-side tests (token, refresh, revoke, introspect, clients CLI).

They seed what the PSU side would have produced — a Go-Live client, an authorization code
issued with `stetgate.oauth.codes.issue_authorization_code` at the end of a journey — and
read the database so negative tests can assert that nothing changed.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import httpx
from sqlalchemy import Engine, select

from stetgate.eidas import parse_certificate
from stetgate.oauth.authorization_request import AuthorizationRequest
from stetgate.oauth.clients import CLIENT_ACTIVE, Client, insert_client, stored_certificate
from stetgate.oauth.codes import issue_authorization_code
from stetgate.store.schema import audit_events, metadata
from tests.support.bank import RunningBank
from tests.support.pki import TppCerts

TOKEN = "/stet/psd2/oauth/token"
REVOKE = "/stet/psd2/oauth/revoke"
INTROSPECT = "/stet/psd2/oauth/introspect"
CALLBACK = "https://tpp.example/callback"


def add_client(
    engine: Engine,
    tpp: TppCerts,
    now: datetime,
    *,
    client_id: str | None = None,
    origin: str = "golive",
    redirect_uris: tuple[str, ...] = (CALLBACK,),
    require_pkce: bool = False,
    status: str = CLIENT_ACTIVE,
    name: str | None = None,
) -> Client:
    """A registered client for ``tpp`` (Go-Live: ``client_id`` = organizationIdentifier)."""
    qwac = parse_certificate(tpp.qwac_pem.read_bytes())
    client = Client(
        client_id=client_id or tpp.org_id,
        org_id=tpp.org_id,
        name=name or f"App of {client_id or tpp.org_id}",
        origin=origin,
        status=status,
        redirect_uris=redirect_uris,
        require_pkce=require_pkce,
        contacts=(),
        grant_types=("authorization_code", "refresh_token"),
        response_types=("code",),
        certificates=(stored_certificate("qwac", qwac),),
        created_at=now,
        updated_at=now,
    )
    with engine.begin() as conn:
        insert_client(conn, client)
    return client


def new_code(
    engine: Engine,
    client: Client,
    now: datetime,
    *,
    psu_id: str = "psu-1",
    scope: str = "aisp",
    redirect_uri: str = CALLBACK,
    code_challenge: str | None = None,
    sca_at: datetime | None = None,
    ttl_seconds: int = 60,
) -> str:
    """An authorization code as /authorize issues it after consent."""
    with engine.begin() as conn:
        return issue_authorization_code(
            conn,
            AuthorizationRequest(
                client_id=client.client_id,
                redirect_uri=redirect_uri,
                scope=scope,
                state=None,
                code_challenge=code_challenge,
                code_challenge_method="S256" if code_challenge else None,
            ),
            org_id=client.org_id,
            psu_id=psu_id,
            sca_at=sca_at or now,
            now=now,
            ttl_seconds=ttl_seconds,
        )


def exchange_form(client: Client, code: str, **extra: str) -> dict[str, str]:
    return {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": CALLBACK,
        "client_id": client.client_id,
        **extra,
    }


def refresh_form(client: Client, refresh_token: str, **extra: str) -> dict[str, str]:
    return {
        "grant_type": "refresh_token",
        "refresh_token": refresh_token,
        "client_id": client.client_id,
        **extra,
    }


def post_form(http: httpx.Client, path: str, form: dict[str, str]) -> httpx.Response:
    return http.post(path, data=form)


def obtain_pair(bank: RunningBank, tpp: TppCerts, client: Client, **code: Any) -> dict[str, Any]:
    """A token pair for ``client``: a fresh code (``new_code`` arguments) exchanged at /token."""
    with bank.client(tpp) as http:
        response = http.post(
            TOKEN,
            data=exchange_form(
                client, new_code(bank.services.engine, client, bank.clock.now(), **code)
            ),
        )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def introspect(bank: RunningBank, caller: TppCerts | None, **form: str) -> dict[str, Any]:
    """The RFC 7662 answer the bank gives ``caller`` for ``form`` (``token=…``)."""
    with bank.client(caller) as http:
        response = http.post(INTROSPECT, data=form)
    assert response.status_code == 200, response.text
    assert response.headers["cache-control"] == "no-store"
    body: dict[str, Any] = response.json()
    return body


def database_state(engine: Engine) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table except the audit trail (which records refusals by design)."""
    state: dict[str, list[tuple[Any, ...]]] = {}
    with engine.connect() as conn:
        for table in metadata.sorted_tables:
            if table is audit_events:
                continue
            rows = conn.execute(select(table)).all()
            state[table.name] = sorted((tuple(row) for row in rows), key=repr)
    return state


def revoke_certificate(bank: RunningBank, tpp: TppCerts) -> None:
    """Revoke ``tpp``'s QWAC and bring the bank's frozen clock up to the CRL's thisUpdate
    (the test QTSP signs with its own clock, `TestPki.clock`; a CRL from the future is refused
    as "too recent", RFC 5280 §6.3.3)."""
    bank.pki.revoke(tpp.qwac_pem)
    bank.clock.set(max(bank.clock.now(), bank.pki.clock.now() + timedelta(seconds=1)))


def audit_trail(engine: Engine, event: str | None = None) -> list[dict[str, Any]]:
    query = select(audit_events).order_by(audit_events.c.id)
    if event is not None:
        query = query.where(audit_events.c.event == event)
    with engine.connect() as conn:
        return [dict(row) for row in conn.execute(query).mappings()]
