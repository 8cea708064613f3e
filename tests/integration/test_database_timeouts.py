"""Database timeouts at the OAuth and register endpoints, and an event loop that keeps serving.

Another session holds the locks these endpoints need (SQLite: the write lock, ``BEGIN
IMMEDIATE``; PostgreSQL: ``ACCESS EXCLUSIVE`` on their tables, which blocks readers too) and the
bank waits at most ``db_lock_timeout_ms``. The request then answers 503
``temporarily_unavailable`` with ``Retry-After`` and changes nothing — not even the audit trail —
and the same request succeeds once the lock is gone. Meanwhile the worker's event loop serves
others: the waiting happens on the blocking pool (`stetgate.serving.blocking`).
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager

import httpx
import pytest
from sqlalchemy import create_engine, select, text
from sqlalchemy.pool import NullPool

from stetgate.secrets import secret_hash
from stetgate.store.schema import grants
from tests.support.bank import RunningBank
from tests.support.pki import TestPki, TppCerts
from tests.support.token_side import (
    INTROSPECT,
    REVOKE,
    TOKEN,
    add_client,
    audit_trail,
    database_state,
    exchange_form,
    new_code,
    obtain_pair,
)
from tests.unit.registry.register_client import RegisteringTpp
from tests.unit.registry.register_requests import REGISTER_TARGET

pytestmark = pytest.mark.postgres  # timeouts are detected per dialect (SQLSTATE, SQLITE_BUSY)

ORG = "PSDFR-ACPR-70001"
REQUEST_ID = "0b6e3c1a-5d2f-4a8e-9c7b-1f2e3d4c5b6a"
LOCKED_TABLES = (
    "clients, client_certificates, grants, authorization_codes, service_tokens, audit_events"
)


@pytest.fixture
def tpp(pki: TestPki) -> TppCerts:
    return pki.issue(ORG, ("AISP", "CBPII"), "Timeout TPP")


@pytest.fixture
def impatient_bank(bank_factory: Callable[..., RunningBank]) -> RunningBank:
    """A bank that waits at most 200 ms for a lock."""
    return bank_factory(db_lock_timeout_ms=200)


@contextmanager
def locked(db_url: str) -> Iterator[None]:
    """Another session holds the locks the endpoints need, until the block ends."""
    if db_url.startswith("sqlite"):
        holder = sqlite3.connect(db_url.split("///", 1)[1], isolation_level=None)
        try:
            holder.execute("BEGIN IMMEDIATE")
            yield
            holder.execute("ROLLBACK")
        finally:
            holder.close()
        return
    engine = create_engine(db_url, poolclass=NullPool)
    try:
        with engine.connect() as conn:
            conn.execute(text(f"LOCK TABLE {LOCKED_TABLES} IN ACCESS EXCLUSIVE MODE"))
            yield
            conn.rollback()
    finally:
        engine.dispose()


def assert_unavailable(response: httpx.Response) -> None:
    assert response.status_code == 503, response.text
    assert response.json()["error"] == "temporarily_unavailable"
    assert response.headers["retry-after"] == "1"
    assert response.headers["cache-control"] == "no-store"


def test_a_code_exchange_that_times_out_is_503_and_changes_nothing(
    impatient_bank: RunningBank, db_url: str, tpp: TppCerts
) -> None:
    bank = impatient_bank
    engine = bank.services.engine
    client = add_client(engine, tpp, bank.clock.now())
    code = new_code(engine, client, bank.clock.now())
    before, events = database_state(engine), len(audit_trail(engine))
    with locked(db_url), bank.client(tpp) as http:
        assert_unavailable(http.post(TOKEN, data=exchange_form(client, code)))
    assert database_state(engine) == before
    assert len(audit_trail(engine)) == events  # a timeout is not a refusal: nothing audited
    with bank.client(tpp) as http:  # the code was not spent
        assert http.post(TOKEN, data=exchange_form(client, code)).status_code == 200


def test_a_refusal_whose_audit_times_out_is_503(
    impatient_bank: RunningBank, db_url: str, tpp: TppCerts
) -> None:
    bank = impatient_bank
    events = len(audit_trail(bank.services.engine))
    with locked(db_url), bank.client(tpp) as http:
        assert_unavailable(http.post(TOKEN, data={"grant_type": "authorization_code"}))
    assert len(audit_trail(bank.services.engine)) == events
    with bank.client(tpp) as http:  # without the lock: the refusal, audited
        response = http.post(TOKEN, data={"grant_type": "authorization_code"})
    assert response.status_code == 400 and response.json()["error"] == "invalid_request"
    assert len(audit_trail(bank.services.engine)) == events + 1


def test_a_revocation_that_times_out_is_503_and_revokes_nothing(
    impatient_bank: RunningBank, db_url: str, tpp: TppCerts
) -> None:
    bank = impatient_bank
    engine = bank.services.engine
    client = add_client(engine, tpp, bank.clock.now())
    pair = obtain_pair(bank, tpp, client)
    form = {"token": pair["refresh_token"], "client_id": client.client_id}
    before, events = database_state(engine), len(audit_trail(engine))
    with locked(db_url), bank.client(tpp) as http:
        assert_unavailable(http.post(REVOKE, data=form))
    assert database_state(engine) == before
    assert len(audit_trail(engine)) == events
    with bank.client(tpp) as http:
        assert http.post(REVOKE, data=form).status_code == 200
    with engine.connect() as conn:
        revoked_at = conn.execute(
            select(grants.c.revoked_at).where(
                grants.c.refresh_hash == secret_hash(pair["refresh_token"])
            )
        ).scalar_one()
    assert revoked_at is not None


def test_introspection_reads_past_a_writer_or_times_out(
    impatient_bank: RunningBank, db_url: str, tpp: TppCerts
) -> None:
    """SQLite (WAL): a reader never waits for the writer, so introspection answers under the
    write lock; PostgreSQL: ``ACCESS EXCLUSIVE`` blocks readers, so it is 503 past the lock
    timeout."""
    bank = impatient_bank
    client = add_client(bank.services.engine, tpp, bank.clock.now())
    pair = obtain_pair(bank, tpp, client)
    with locked(db_url), bank.client(tpp) as http:
        response = http.post(INTROSPECT, data={"token": pair["access_token"]})
    if db_url.startswith("sqlite"):
        assert response.status_code == 200, response.text
        assert response.json()["active"] is True
    else:
        assert_unavailable(response)


def test_a_registration_that_times_out_is_503_and_registers_nothing(
    impatient_bank: RunningBank, db_url: str, tpp: TppCerts
) -> None:
    bank = impatient_bank
    engine = bank.services.engine
    registering = RegisteringTpp(bank, tpp)
    bearer = registering.new_registration_token()
    document = registering.document()
    before, events = database_state(engine), len(audit_trail(engine))
    with locked(db_url):
        response = registering.send(
            "POST", REGISTER_TARGET, bearer=bearer, document=document, request_id=REQUEST_ID
        )
    assert_unavailable(response)
    assert response.headers["x-request-id"] == REQUEST_ID
    assert database_state(engine) == before
    assert len(audit_trail(engine)) == events
    retried = registering.send(
        "POST", REGISTER_TARGET, bearer=bearer, document=document, request_id=REQUEST_ID
    )
    assert retried.status_code == 201, retried.text


def test_the_event_loop_serves_while_a_request_waits_for_a_lock(
    bank_factory: Callable[..., RunningBank], db_url: str, tpp: TppCerts
) -> None:
    """A code exchange waits (up to 5 s) for a lock on the blocking pool; meanwhile the same
    worker completes new TLS handshakes and answers ``/health/live`` and ``/health/ready``."""
    bank = bank_factory(db_lock_timeout_ms=5000)
    client = add_client(bank.services.engine, tpp, bank.clock.now())
    code = new_code(bank.services.engine, client, bank.clock.now())

    def exchange() -> httpx.Response:
        with bank.client(tpp) as http:
            return http.post(TOKEN, data=exchange_form(client, code))

    with ThreadPoolExecutor(1) as pool:
        with locked(db_url):
            waiting = pool.submit(exchange)
            time.sleep(0.3)  # the exchange is now waiting for the lock
            started = time.monotonic()
            with bank.client(None) as http:
                assert http.get("/health/live").status_code == 200
                ready = http.get("/health/ready")
            elapsed = time.monotonic() - started
            assert not waiting.done()
        assert ready.status_code == 200, ready.text
        assert elapsed < 2.0
        assert waiting.result(timeout=10).status_code == 200  # went through once unlocked
