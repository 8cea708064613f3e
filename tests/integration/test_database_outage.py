"""A PostgreSQL that goes away: every API answers its protocol's 503, and service comes back by
itself when the database does.

The bank runs on a private cluster (`tests.support.private_postgres`: its own ``initdb``, port
and socket; the shared server is never touched), which the tests stop (``pg_ctl -m fast``, what
a restart or a failover does to sessions) and start again while the bank keeps running. While
it is down: the token endpoint (refresh and code grants), revocation and introspection answer
``temporarily_unavailable`` JSON with ``Retry-After`` and the request's ``X-Request-ID``; the
STET resource API its 503 error body; the register API its RFC 7591 error; the PSU pages the
503 page — each with exactly one WARNING log line and no traceback. Once the cluster is back,
the very first request of each kind succeeds: no stale pooled connection fails it. The same
holds after ``pg_terminate_backend`` of every pooled session.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from typing import Any

import httpx
import psycopg
import pytest
from sqlalchemy import create_engine, func, select
from sqlalchemy.exc import OperationalError

from stetgate.eidas import parse_certificate
from stetgate.oauth.authorization_request import AuthorizationRequest
from stetgate.oauth.codes import issue_authorization_code
from stetgate.oauth.token_pairs import create_pair
from stetgate.store.db import (
    DatabaseTimeout,
    DatabaseUnavailable,
    make_engine,
    unavailable,
    upgrade,
)
from stetgate.store.liveness import connection_is_stale
from stetgate.store.schema import grants
from tests.conftest import DATABASES, PG_EXCLUDED
from tests.integration.psd2_support import API, ApiWorld, build_world
from tests.support.pki import TestPki
from tests.support.private_postgres import PrivatePostgres, require_private_postgres
from tests.support.psu_flow import authorize_params
from tests.support.token_side import INTROSPECT, REVOKE, TOKEN
from tests.unit.registry.register_client import RegisteringTpp
from tests.unit.registry.register_requests import REGISTER_TARGET

# Each test skipped with the reason (not the module): CI's date-shifted pass compares its
# cases with the normal pass's one by one, and accepts a skip that names the exclusion.
pytestmark = pytest.mark.skipif("postgresql" not in DATABASES, reason=PG_EXCLUDED)
if "postgresql" in DATABASES:
    require_private_postgres()

REDIRECT = "https://tpp.example/cb"
OUTAGE_LOGGER = "stetgate.database"


@pytest.fixture(scope="module")
def cluster() -> Iterator[PrivatePostgres]:
    cluster = PrivatePostgres()
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.destroy()


@pytest.fixture(scope="module")
def world(
    request: pytest.FixtureRequest,
    cluster: PrivatePostgres,
    pki: TestPki,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[ApiWorld]:
    url = cluster.create_database("stetgate")
    upgrade(url)
    yield from build_world(
        request, pki, tmp_path_factory.mktemp("outage"), "postgresql", url=url, db_pool_size=4
    )


@pytest.fixture
def up(cluster: PrivatePostgres) -> Iterator[PrivatePostgres]:
    """The cluster is running at the start and at the end of the test, whatever happened."""
    if not cluster.running():
        cluster.start()
    yield cluster
    if not cluster.running():
        cluster.start()


def new_pair(world: ApiWorld, role: str = "aisp") -> Any:
    now = world.clock.now()
    cnf = parse_certificate(world.tpp_certs.qwac_pem.read_bytes()).thumbprint_s256
    with world.engine.begin() as conn:
        return create_pair(
            conn,
            client_id=world.client_id,
            org_id=world.tpp_certs.org_id,
            psu_id=f"psu-{uuid.uuid4().hex[:8]}",
            role=role,
            scope=role,
            sca_at=now,
            refresh_expires_at=now + timedelta(days=90),
            access_expires_at=now + timedelta(hours=1),
            access_cnf=cnf,
            now=now,
        )


def new_code(world: ApiWorld) -> str:
    now = world.clock.now()
    with world.engine.begin() as conn:
        return issue_authorization_code(
            conn,
            AuthorizationRequest(
                client_id=world.client_id,
                redirect_uri=REDIRECT,
                scope="aisp",
                state=None,
                code_challenge=None,
                code_challenge_method=None,
            ),
            org_id=world.tpp_certs.org_id,
            psu_id=f"psu-{uuid.uuid4().hex[:8]}",
            sca_at=now,
            now=now,
            ttl_seconds=600,
        )


def refresh_form(world: ApiWorld, pair: Any) -> dict[str, str]:
    return {
        "grant_type": "refresh_token",
        "refresh_token": pair.refresh_token,
        "client_id": world.client_id,
    }


def code_form(world: ApiWorld, code: str) -> dict[str, str]:
    return {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": REDIRECT,
        "client_id": world.client_id,
    }


def request_id() -> str:
    return str(uuid.uuid4())


def assert_oauth_unavailable(response: httpx.Response, sent_id: str) -> None:
    assert response.status_code == 503, response.text
    assert response.headers["content-type"].startswith("application/json")
    assert response.json()["error"] == "temporarily_unavailable"
    assert response.headers["retry-after"] == "1"
    assert response.headers["cache-control"] == "no-store"
    assert response.headers["x-request-id"] == sent_id


def outage_lines(caplog: pytest.LogCaptureFixture, sent_id: str) -> list[logging.LogRecord]:
    """The log records that mention ``sent_id``; each must be the outage line, without a
    traceback."""
    mentioning = [r for r in caplog.records if sent_id in r.getMessage()]
    for record in mentioning:
        assert record.name == OUTAGE_LOGGER and record.levelno == logging.WARNING, record
        assert record.exc_info is None and "Traceback" not in record.getMessage()
    return mentioning


def pair_count(world: ApiWorld) -> int:
    with world.engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(grants)).scalar_one())


# --- while the database is down -------------------------------------------------------------


def test_a_refresh_while_the_database_is_down_is_temporarily_unavailable_then_works(
    world: ApiWorld, up: PrivatePostgres, caplog: pytest.LogCaptureFixture
) -> None:
    pair = new_pair(world)
    with world.bank.client(world.tpp_certs) as http:
        assert http.post(TOKEN, data=refresh_form(world, pair)).status_code == 200
        up.stop()
        sent = request_id()
        with caplog.at_level(logging.WARNING):
            response = http.post(
                TOKEN, data=refresh_form(world, pair), headers={"X-Request-ID": sent}
            )
        assert_oauth_unavailable(response, sent)
        assert len(outage_lines(caplog, sent)) == 1
        assert "access_token" not in response.text
        up.start()
        again = http.post(TOKEN, data=refresh_form(world, pair))  # first try after the restart
    assert again.status_code == 200, again.text
    assert again.json()["access_token"]


def test_a_code_exchange_while_the_database_is_down_spends_nothing(
    world: ApiWorld, up: PrivatePostgres, caplog: pytest.LogCaptureFixture
) -> None:
    code = new_code(world)
    before = pair_count(world)
    with world.bank.client(world.tpp_certs) as http:
        up.stop()
        sent = request_id()
        with caplog.at_level(logging.WARNING):
            response = http.post(TOKEN, data=code_form(world, code), headers={"X-Request-ID": sent})
        assert_oauth_unavailable(response, sent)
        assert len(outage_lines(caplog, sent)) == 1
        up.start()
        assert pair_count(world) == before
        exchanged = http.post(TOKEN, data=code_form(world, code))  # the code is still good
    assert exchanged.status_code == 200, exchanged.text
    assert pair_count(world) == before + 1


def test_a_refusal_while_the_database_is_down_is_not_a_400(
    world: ApiWorld, up: PrivatePostgres
) -> None:
    """A refusal is audited; when the audit row cannot be written the answer is the 503, not
    an unaudited refusal."""
    with world.bank.client(world.tpp_certs) as http:
        up.stop()
        sent = request_id()
        response = http.post(
            TOKEN, data={"grant_type": "refresh_token"}, headers={"X-Request-ID": sent}
        )
    assert_oauth_unavailable(response, sent)


def test_revocation_and_introspection_while_the_database_is_down(
    world: ApiWorld, up: PrivatePostgres, caplog: pytest.LogCaptureFixture
) -> None:
    pair = new_pair(world)
    form = {"token": pair.refresh_token, "client_id": world.client_id}
    with world.bank.client(world.tpp_certs) as http:
        up.stop()
        revoke_id, introspect_id = request_id(), request_id()
        with caplog.at_level(logging.WARNING):
            revoked = http.post(REVOKE, data=form, headers={"X-Request-ID": revoke_id})
            described = http.post(
                INTROSPECT,
                data={"token": pair.access_token},
                headers={"X-Request-ID": introspect_id},
            )
        assert_oauth_unavailable(revoked, revoke_id)
        assert_oauth_unavailable(described, introspect_id)
        assert len(outage_lines(caplog, revoke_id)) == 1
        assert len(outage_lines(caplog, introspect_id)) == 1
        up.start()
        assert http.post(INTROSPECT, data={"token": pair.access_token}).json()["active"] is True
        assert http.post(REVOKE, data=form).status_code == 200
    with world.engine.connect() as conn:
        revoked_at = conn.execute(
            select(grants.c.revoked_at).where(grants.c.id == pair.grant.id)
        ).scalar_one()
    assert revoked_at is not None


def test_the_resource_api_while_the_database_is_down_is_a_stet_503(
    world: ApiWorld, up: PrivatePostgres, caplog: pytest.LogCaptureFixture
) -> None:
    token = world.token("jdupont", "aisp")
    tpp = world.tpp()
    assert tpp.get("accounts", token=token).status_code == 200
    up.stop()
    sent = request_id()
    with caplog.at_level(logging.WARNING):
        response = tpp.get("accounts", token=token, headers={"X-Request-ID": sent})
    assert response.status_code == 503, response.text
    assert response.headers["content-type"].startswith("application/hal+json")
    assert response.headers["retry-after"] == "1"
    assert response.headers["x-request-id"] == sent
    body = response.json()
    assert body["status"] == 503 and body["path"] == f"{API}/accounts"
    assert len(outage_lines(caplog, sent)) == 1
    up.start()
    assert tpp.get("accounts", token=token).status_code == 200


def test_the_register_api_while_the_database_is_down(
    world: ApiWorld, up: PrivatePostgres, caplog: pytest.LogCaptureFixture
) -> None:
    registering = RegisteringTpp(world.bank, world.tpp_certs)
    bearer = registering.new_registration_token()
    document = registering.document()
    up.stop()
    token_response = registering.registration_token()
    assert token_response.status_code == 503, token_response.text
    assert token_response.json()["error"] == "temporarily_unavailable"
    sent = request_id()
    with caplog.at_level(logging.WARNING):
        response = registering.send(
            "POST", REGISTER_TARGET, bearer=bearer, document=document, request_id=sent
        )
    assert response.status_code == 503, response.text
    assert response.json()["error"] == "temporarily_unavailable"
    assert response.headers["retry-after"] == "1"
    assert response.headers["x-request-id"] == sent
    assert len(outage_lines(caplog, sent)) == 1
    up.start()
    created = registering.send(
        "POST", REGISTER_TARGET, bearer=bearer, document=document, request_id=sent
    )
    assert created.status_code == 201, created.text


def test_the_psu_pages_while_the_database_is_down(
    world: ApiWorld, up: PrivatePostgres, caplog: pytest.LogCaptureFixture
) -> None:
    params = authorize_params(world.client_id, redirect_uri=REDIRECT)
    with world.bank.client(follow_redirects=False) as browser:
        assert browser.get("/stet/psd2/oauth/authorize", params=params).status_code == 303
        up.stop()
        sent = request_id()
        with caplog.at_level(logging.WARNING):
            page = browser.get(
                "/stet/psd2/oauth/authorize", params=params, headers={"X-Request-ID": sent}
            )
        assert page.status_code == 503, page.text[:300]
        assert page.headers["content-type"].startswith("text/html")
        assert page.headers["retry-after"] == "1"
        assert "Traceback" not in page.text
        assert len(outage_lines(caplog, sent)) == 1
        up.start()
        assert browser.get("/stet/psd2/oauth/authorize", params=params).status_code == 303


def test_readiness_says_unavailable_while_the_database_is_down(
    world: ApiWorld, up: PrivatePostgres
) -> None:
    with world.bank.client() as http:
        up.stop()
        assert http.get("/health/ready").status_code == 503
        assert http.get("/health/live").status_code == 200
        up.start()
        assert http.get("/health/ready").status_code == 200


def test_a_restart_in_the_middle_of_refreshes_answers_only_200_or_503(
    world: ApiWorld, up: PrivatePostgres
) -> None:
    """Refreshes keep coming while the cluster stops and starts: each one is answered 200 or
    the protocol's 503, never a 500 or a dropped connection, and the last ones are 200s."""
    pairs = [new_pair(world) for _ in range(4)]
    stop = threading.Event()

    def keep_refreshing(pair: Any) -> list[int]:
        statuses: list[int] = []
        with world.bank.client(world.tpp_certs) as http:
            while not stop.is_set():
                statuses.append(http.post(TOKEN, data=refresh_form(world, pair)).status_code)
            for _ in range(3):
                statuses.append(http.post(TOKEN, data=refresh_form(world, pair)).status_code)
        return statuses

    with ThreadPoolExecutor(len(pairs)) as pool:
        running = [pool.submit(keep_refreshing, pair) for pair in pairs]
        time.sleep(0.3)
        up.stop()
        up.start()
        time.sleep(0.3)
        stop.set()
        seen = [future.result() for future in running]
    everything = [status for statuses in seen for status in statuses]
    assert set(everything) <= {200, 503}, sorted(set(everything))
    assert 503 in everything  # the stop really happened under the load
    assert all(statuses[-3:] == [200, 200, 200] for statuses in seen)


# --- sessions ended under the bank's feet -----------------------------------------------------


def test_terminated_pooled_sessions_are_replaced_before_any_request_fails(
    world: ApiWorld, up: PrivatePostgres
) -> None:
    token = world.token("jdupont", "aisp")
    tpp = world.tpp()
    pairs = [new_pair(world) for _ in range(3)]
    registering = RegisteringTpp(world.bank, world.tpp_certs)

    def every_kind(http: httpx.Client) -> list[int]:
        statuses = [http.post(TOKEN, data=refresh_form(world, p)).status_code for p in pairs]
        statuses.append(http.post(TOKEN, data=code_form(world, new_code(world))).status_code)
        statuses.append(http.post(INTROSPECT, data={"token": pairs[0].access_token}).status_code)
        statuses.append(tpp.get("accounts", token=token).status_code)
        statuses.append(registering.registration_token().status_code)
        return statuses

    with world.bank.client(world.tpp_certs) as http:
        for _ in range(3):  # warm every pool: the refresh store's, the shared and read pools
            assert set(every_kind(http)) == {200}
        ended = up.terminate_backends("stetgate")
        assert ended >= 2
        assert every_kind(http) == [200] * 7  # first requests after: none meets a dead session


def test_a_stale_connection_is_seen_without_a_round_trip(up: PrivatePostgres) -> None:
    url = up.url().replace("postgresql+psycopg", "postgresql")
    with psycopg.connect(url, autocommit=True) as conn:
        assert connection_is_stale(conn) is False
        conn.execute("SELECT 1")
        assert connection_is_stale(conn) is False
        assert up.terminate_backends("postgres") == 1
        deadline = time.monotonic() + 2  # the notice is sent as the backend exits
        while not connection_is_stale(conn) and time.monotonic() < deadline:
            time.sleep(0.005)
        assert connection_is_stale(conn) is True
    assert connection_is_stale(conn) is True  # closed


# --- which errors mean "unavailable" ------------------------------------------------------------


def test_connection_refused_is_an_outage(up: PrivatePostgres) -> None:
    up.stop()
    engine = make_engine(up.url())
    try:
        with pytest.raises(OperationalError) as raised, engine.connect():
            pass
    finally:
        engine.dispose()
    translated = unavailable(raised.value)
    assert isinstance(translated, DatabaseUnavailable)
    assert not isinstance(translated, DatabaseTimeout)
    assert "[SQL" not in translated.reason


def test_too_many_connections_is_an_outage() -> None:
    cluster = PrivatePostgres(max_connections=4)
    try:
        cluster.start()
        url = cluster.url().replace("postgresql+psycopg", "postgresql")
        held = []
        with pytest.raises(psycopg.OperationalError) as raised:
            for _ in range(10):
                held.append(psycopg.connect(url))
        for conn in held:
            conn.close()
    finally:
        cluster.destroy()
    assert "too many clients" in str(raised.value)  # FATAL 53300 at connection: no sqlstate
    assert isinstance(unavailable(raised.value), DatabaseUnavailable)


def test_statement_errors_are_not_outages(up: PrivatePostgres) -> None:
    """A wrong statement, a constraint violation: a bug, not an outage (stays a 500)."""
    engine = create_engine(up.url())
    try:
        with engine.connect() as conn, pytest.raises(Exception) as missing:
            conn.exec_driver_sql("SELECT * FROM no_such_table")
        with engine.connect() as conn, pytest.raises(Exception) as division:
            conn.exec_driver_sql("SELECT 1/0")
    finally:
        engine.dispose()
    assert unavailable(missing.value) is None
    assert unavailable(division.value) is None
