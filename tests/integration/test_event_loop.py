"""One stuck database call never stalls the worker: it holds its own request, and only for
as long as the lock timeout.

The bank here is one uvicorn worker (one event loop) over real mTLS. A test connection plays
the operator session of the incident this guards against: it takes the lock every write of
``PUT /consents`` needs (PostgreSQL: ``LOCK TABLE psd2_consents IN EXCLUSIVE MODE``, which
still lets readers in; SQLite: the database's one write lock, ``BEGIN IMMEDIATE``) and holds it.
While one TPP's ``PUT /consents`` waits for that lock, requests that do not need it —
``/health/live`` (no database) and another PSU's signed ``GET /accounts`` (reads) — must be
answered on the same worker in well under 100 ms. When the lock is held past
``db_lock_timeout_ms`` the waiting request fails alone: STET 503 with ``Retry-After``, and it
changed nothing.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select, text

from stetgate.store.schema import psd2_consents
from tests.integration.psd2_support import ApiWorld, Tpp, build_world
from tests.integration.test_psd2_api import assert_error, consent_all
from tests.support.pki import TestPki

pytestmark = pytest.mark.postgres  # the lock and the waiting differ per database

LOCK_TIMEOUT_MS = 1500
UNRELATED_BUDGET_S = 0.1


@pytest.fixture(scope="module")
def world(
    request: pytest.FixtureRequest,
    pki: TestPki,
    tmp_path_factory: pytest.TempPathFactory,
    database: str,
) -> Iterator[ApiWorld]:
    yield from build_world(
        request,
        pki,
        tmp_path_factory.mktemp("event-loop"),
        database,
        db_lock_timeout_ms=LOCK_TIMEOUT_MS,
    )


@pytest.fixture
def api(world: ApiWorld) -> ApiWorld:
    world.reset()
    return world


@contextmanager
def consents_locked(world: ApiWorld) -> Iterator[None]:
    """An operator session holding the lock a consent write needs, until the block ends."""
    raw = world.engine.raw_connection()
    cursor = raw.cursor()
    try:
        if world.engine.dialect.name == "postgresql":
            cursor.execute("LOCK TABLE psd2_consents IN EXCLUSIVE MODE")  # opens a transaction
        else:
            cursor.execute("BEGIN IMMEDIATE")
        yield
    finally:
        cursor.execute("ROLLBACK")
        cursor.close()
        raw.close()


def consent_body(world: ApiWorld, psu_id: str) -> dict[str, Any]:
    refs = [{"iban": a.iban} for a in world.accounts_of(psu_id) if a.iban]
    return {
        "balances": refs,
        "transactions": refs,
        "psuIdentity": True,
        "trustedBeneficiaries": False,
    }


def timed(call: Any) -> tuple[httpx.Response, float]:
    started = time.perf_counter()
    response = call()
    return response, time.perf_counter() - started


def consent_rows(world: ApiWorld) -> int:
    with world.engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(psd2_consents)).scalar_one())


def wait_until_blocked(world: ApiWorld) -> None:
    """Give the held request time to reach the lock (it is then waiting inside the
    database, not queued in the client)."""
    if world.engine.dialect.name == "postgresql":
        deadline = time.monotonic() + 5
        with world.engine.connect() as conn:
            while time.monotonic() < deadline:
                waiting = conn.execute(
                    text(
                        "SELECT count(*) FROM pg_stat_activity "
                        "WHERE wait_event_type = 'Lock' AND datname = current_database()"
                    )
                ).scalar_one()
                conn.rollback()  # pg_stat_activity is a snapshot per transaction
                if waiting:
                    return
                time.sleep(0.02)
        pytest.fail("the consent write never waited for the lock")
    time.sleep(0.3)  # SQLite: the writer is in its busy handler


def test_a_request_waiting_on_a_lock_does_not_hold_up_the_worker(api: ApiWorld) -> None:
    tpp, other = api.tpp(), api.tpp()
    waiting_token, reading_token = api.token("jdupont"), api.token("mdupont")
    consent_all(api, other, reading_token, "mdupont")
    # Warm both keep-alive connections (TLS handshake, certificate cache) before the lock.
    assert other.get("accounts", token=reading_token).status_code == 200
    assert other.http.get("/health/live").status_code == 200
    assert tpp.get("accounts", token=waiting_token).status_code == 200

    with ThreadPoolExecutor(1) as pool, consents_locked(api):
        held: Future[httpx.Response] = pool.submit(
            tpp.call, "PUT", "consents", token=waiting_token, json_body=consent_body(api, "jdupont")
        )
        wait_until_blocked(api)
        assert not held.done()
        live, live_seconds = timed(lambda: other.http.get("/health/live"))
        accounts, accounts_seconds = timed(lambda: other.get("accounts", token=reading_token))
        assert live.status_code == 200
        assert accounts.status_code == 200, accounts.text
        assert len(accounts.json()["accounts"]) == len(api.accounts_of("mdupont"))
        assert live_seconds < UNRELATED_BUDGET_S, f"/health/live took {live_seconds:.3f} s"
        assert accounts_seconds < UNRELATED_BUDGET_S, f"GET /accounts took {accounts_seconds:.3f} s"
        assert not held.done(), "the consent write did not wait for the lock"
        time.sleep(0.5)  # released ~1 s after the write started waiting: within the timeout
    response = held.result(timeout=10)
    assert response.status_code == 201, response.text
    assert consent_rows(api) == 2


def test_a_lock_held_past_the_timeout_fails_that_request_alone_and_changes_nothing(
    api: ApiWorld,
) -> None:
    tpp, other = api.tpp(), api.tpp()
    token, reading_token = api.token("jdupont"), api.token("mdupont")
    assert tpp.get("accounts", token=token).status_code == 200
    before = consent_rows(api)
    release = threading.Event()

    with ThreadPoolExecutor(1) as pool, consents_locked(api):
        held = pool.submit(
            tpp.call, "PUT", "consents", token=token, json_body=consent_body(api, "jdupont")
        )
        wait_until_blocked(api)
        assert other.get("accounts", token=reading_token).status_code == 200
        response = held.result(timeout=LOCK_TIMEOUT_MS / 1000 + 5)
        release.set()
    body = assert_error(response, 503)
    assert response.headers["retry-after"] == "1"
    assert "nothing was changed" in body["message"]
    assert "psd2_consents" not in response.text and "Traceback" not in response.text
    assert consent_rows(api) == before
    # The connection, the thread and the lock went back: the same call now succeeds.
    retried = tpp.call("PUT", "consents", token=token, json_body=consent_body(api, "jdupont"))
    assert retried.status_code == 201, retried.text
    assert consent_rows(api) == before + 1


def test_the_waiting_request_gives_up_at_the_lock_timeout_not_later(api: ApiWorld) -> None:
    tpp: Tpp = api.tpp()
    token = api.token("jdupont")
    assert tpp.get("accounts", token=token).status_code == 200
    with consents_locked(api):
        response, seconds = timed(
            lambda: tpp.call("PUT", "consents", token=token, json_body=consent_body(api, "jdupont"))
        )
    assert response.status_code == 503
    assert LOCK_TIMEOUT_MS / 1000 * 0.9 <= seconds < LOCK_TIMEOUT_MS / 1000 + 1.5
