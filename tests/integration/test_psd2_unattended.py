"""The unattended-access limit end to end: calls without PSU-IP-Address, counted per TPP, PSU,
account and endpoint; the 5th of a window gets 429; paging does not count and cannot be used
to read fresh data; calendar day (Europe/Paris) and rolling 24 h windows; the counters in the
database (SQLite, PostgreSQL) or in Redis."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import delete, func, insert, select

from stetgate.store.schema import bank_transactions, psd2_unattended_access
from tests.integration.psd2_support import (
    REDIS_URL,
    ApiWorld,
    Tpp,
    build_world,
    redis_or_skip,
    register_client,
)
from tests.integration.test_psd2_api import assert_error, consent_all
from tests.support.pki import TestPki

pytestmark = pytest.mark.postgres  # unattended counters through the API

PARIS = ZoneInfo("Europe/Paris")


def paris(world: ApiWorld, days: int, hour: int, minute: int = 0, second: int = 0) -> datetime:
    """Local Paris time ``days`` after the world's start day (always after the start)."""
    day = world.start.astimezone(PARIS).date() + timedelta(days=days)
    return datetime(day.year, day.month, day.day, hour, minute, second, tzinfo=PARIS).astimezone(
        UTC
    )


@pytest.fixture(scope="module")
def calendar_world(
    request: pytest.FixtureRequest,
    pki: TestPki,
    tmp_path_factory: pytest.TempPathFactory,
    database: str,
) -> Iterator[ApiWorld]:
    yield from build_world(request, pki, tmp_path_factory.mktemp("unattended"), database)


@pytest.fixture(scope="module")
def rolling_world(
    request: pytest.FixtureRequest,
    pki: TestPki,
    tmp_path_factory: pytest.TempPathFactory,
    database: str,
) -> Iterator[ApiWorld]:
    yield from build_world(
        request, pki, tmp_path_factory.mktemp("rolling"), database, unattended_window="rolling_24h"
    )


@pytest.fixture(scope="module", params=["sqlite"])
def redis_world(
    request: pytest.FixtureRequest, pki: TestPki, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ApiWorld]:
    redis_or_skip()
    yield from build_world(
        request, pki, tmp_path_factory.mktemp("redis"), request.param, redis_url=REDIS_URL
    )


@pytest.fixture
def api(calendar_world: ApiWorld) -> ApiWorld:
    calendar_world.reset()
    return calendar_world


def _count_rows(world: ApiWorld) -> int:
    with world.engine.connect() as conn:
        return int(
            conn.execute(
                select(func.coalesce(func.sum(psd2_unattended_access.c.count), 0))
            ).scalar_one()
        )


def _counters(world: ApiWorld) -> dict[tuple[str, str, str, str], int]:
    """(organization, PSU, endpoint, account) → unattended calls counted (all windows)."""
    table = psd2_unattended_access
    with world.engine.connect() as conn:
        rows = conn.execute(
            select(
                table.c.org_id, table.c.psu_id, table.c.endpoint, table.c.resource, table.c.count
            )
        ).all()
    counted: dict[tuple[str, str, str, str], int] = {}
    for org_id, psu_id, endpoint, resource, count in rows:
        key = (org_id, psu_id, endpoint, resource)
        counted[key] = counted.get(key, 0) + count
    return counted


def _four_then_429(tpp: Tpp, path: str, token: str) -> None:
    for call in range(4):
        assert tpp.get(path, token=token, psu_ip=None).status_code == 200, call
    body = assert_error(tpp.get(path, token=token, psu_ip=None), 429)
    assert "unattended" in body["message"]


def test_the_fifth_unattended_call_of_a_day_gets_429_and_the_next_day_resets(api: ApiWorld) -> None:
    tpp = api.tpp()
    api.clock.set(paris(api, 1, 10))
    token = api.token("jdupont")
    _four_then_429(tpp, "accounts", token)
    refused = tpp.get("accounts", token=token, psu_ip=None)
    # RFC 9110 §10.2.3: the next window opens at local (Europe/Paris) midnight, not UTC's
    assert refused.headers["Retry-After"] == str(14 * 3600)
    api.clock.set(paris(api, 1, 10, 0, 0) + timedelta(microseconds=1))
    assert tpp.get("accounts", token=token, psu_ip=None).headers["Retry-After"] == str(14 * 3600)
    api.clock.set(paris(api, 1, 10))
    assert _count_rows(api) == 4, "a refused call is not counted"
    # the PSU is present: no limit, nothing counted
    for _ in range(3):
        assert tpp.get("accounts", token=token).status_code == 200
    assert _count_rows(api) == 4
    api.clock.set(paris(api, 1, 23, 59, 59))
    late = tpp.get("accounts", token=api.token("jdupont"), psu_ip=None)
    assert_error(late, 429)
    assert late.headers["Retry-After"] == "1", "seconds until Paris midnight"
    api.clock.set(paris(api, 2, 0, 0, 1))
    assert tpp.get("accounts", token=api.token("jdupont"), psu_ip=None).status_code == 200
    # counted in the new day's window; the previous day's expired counter is dropped
    assert _counters(api) == {(api.tpp_certs.org_id, "jdupont", "accounts", ""): 1}


def test_each_account_endpoint_psu_and_tpp_has_its_own_count(api: ApiWorld, pki: TestPki) -> None:
    tpp = api.tpp()
    api.clock.set(paris(api, 1, 9))
    token = api.token("jdupont")
    joint, _, personal = consent_all(api, tpp, token)
    _four_then_429(tpp, f"accounts/{joint.resource_id}/balances", token)
    assert (
        tpp.get(f"accounts/{personal.resource_id}/balances", token=token, psu_ip=None).status_code
        == 200
    )
    assert (
        tpp.get(f"accounts/{joint.resource_id}/transactions", token=token, psu_ip=None).status_code
        == 200
    )
    for path in ("end-user-identity", "trusted-beneficiaries", "accounts"):
        assert tpp.get(path, token=token, psu_ip=None).status_code == 200
    # another PSU of the same TPP
    other_token = api.token("mdupont")
    consent_all(api, tpp, other_token, "mdupont")
    assert (
        tpp.get(
            f"accounts/{joint.resource_id}/balances", token=other_token, psu_ip=None
        ).status_code
        == 200
    )
    # another TPP for the same PSU
    certs = pki.issue("PSDFR-ACPR-46001", ("AISP",))
    register_client(api.engine, certs, api.clock.now())
    other_tpp = api.tpp(certs)
    other_tpp_token = api.token("jdupont", certs=certs, client_id=certs.org_id)
    consent_all(api, other_tpp, other_tpp_token)
    assert (
        other_tpp.get(
            f"accounts/{joint.resource_id}/balances", token=other_tpp_token, psu_ip=None
        ).status_code
        == 200
    )
    org = api.tpp_certs.org_id
    assert _counters(api) == {
        (org, "jdupont", "balances", joint.resource_id): 4,
        (org, "jdupont", "balances", personal.resource_id): 1,
        (org, "jdupont", "transactions", joint.resource_id): 1,
        (org, "jdupont", "end-user-identity", ""): 1,
        (org, "jdupont", "trusted-beneficiaries", ""): 1,
        (org, "jdupont", "accounts", ""): 1,
        (org, "mdupont", "balances", joint.resource_id): 1,
        (certs.org_id, "jdupont", "balances", joint.resource_id): 1,
    }


def _walk_unattended(tpp: Tpp, token: str, path: str) -> list[str]:
    response = tpp.get(path, token=token, psu_ip=None)
    pages = []
    while True:
        assert response.status_code == 200, response.text
        body = response.json()
        pages.append(body["_links"]["self"]["href"])
        if "next" not in body["_links"]:
            return pages
        response = tpp.follow(body["_links"]["next"]["href"], token=token, psu_ip=None)


def test_following_paging_links_does_not_count(api: ApiWorld) -> None:
    tpp = api.tpp()
    api.clock.set(paris(api, 1, 8))
    token = api.token("jdupont")
    personal = consent_all(api, tpp, token)[2]
    path = f"accounts/{personal.resource_id}/transactions"
    for _ in range(4):
        assert len(_walk_unattended(tpp, token, path)) >= 3
    assert _count_rows(api) == 4
    assert_error(tpp.get(path, token=token, psu_ip=None), 429)
    # the counted listing's links still work: continuing it is not a new access
    first = tpp.get(path, token=token).json()
    assert tpp.follow(first["_links"]["next"]["href"], token=token, psu_ip=None).status_code == 200
    assert _count_rows(api) == 4


def test_a_paging_link_never_shows_entries_newer_than_its_counted_listing(api: ApiWorld) -> None:
    tpp = api.tpp()
    token = api.token("jdupont")
    personal = consent_all(api, tpp, token)[2]
    path = f"accounts/{personal.resource_id}/transactions"
    listing = tpp.get(path, token=token, psu_ip=None).json()
    newest = int(listing["transactions"][0]["entryReference"])
    today = api.clock.now().astimezone(PARIS).date()
    with api.engine.begin() as conn:
        conn.execute(
            insert(bank_transactions).values(
                account_id=personal.resource_id,
                entry_reference=newest + 1,
                resource_id=f"{personal.resource_id}-NEW",
                amount_minor=4200,
                credit_debit="DBIT",
                status="BOOK",
                imputation_date=today,
                booking_date=today,
                value_date=today,
                transaction_date=today,
                remittance=["CB NOUVELLE OPERATION"],
            )
        )
    try:
        replayed = tpp.follow(listing["_links"]["first"]["href"], token=token, psu_ip=None)
        assert replayed.json()["transactions"][0]["entryReference"] == str(newest)
        fresh = tpp.get(path, token=token, psu_ip=None).json()
        assert fresh["transactions"][0]["entryReference"] == str(newest + 1)
    finally:
        with api.engine.begin() as conn:
            conn.execute(
                delete(bank_transactions).where(
                    bank_transactions.c.resource_id == f"{personal.resource_id}-NEW"
                )
            )


def test_rolling_window_admits_a_call_when_the_oldest_of_four_is_24_hours_old(
    rolling_world: ApiWorld,
) -> None:
    world = rolling_world
    world.reset()
    tpp = world.tpp()
    t0 = world.start + timedelta(hours=1)
    world.clock.set(t0)
    assert tpp.get("accounts", token=world.token("jdupont"), psu_ip=None).status_code == 200
    world.clock.set(t0 + timedelta(hours=10))
    token = world.token("jdupont")
    for _ in range(3):
        assert tpp.get("accounts", token=token, psu_ip=None).status_code == 200
    refused = tpp.get("accounts", token=token, psu_ip=None)
    assert_error(refused, 429)
    assert refused.headers["Retry-After"] == str(24 * 3600), "an upper bound for rolling 24 h"
    world.clock.set(t0 + timedelta(hours=23, minutes=59))  # a calendar day may have turned
    assert_error(tpp.get("accounts", token=world.token("jdupont"), psu_ip=None), 429)
    world.clock.set(t0 + timedelta(hours=24, seconds=1))
    token = world.token("jdupont")
    assert tpp.get("accounts", token=token, psu_ip=None).status_code == 200
    assert_error(tpp.get("accounts", token=token, psu_ip=None), 429)
    world.clock.set(t0 + timedelta(hours=34, seconds=1))
    token = world.token("jdupont")
    for _ in range(3):
        assert tpp.get("accounts", token=token, psu_ip=None).status_code == 200
    assert_error(tpp.get("accounts", token=token, psu_ip=None), 429)


def test_counters_in_redis_when_configured(redis_world: ApiWorld) -> None:
    world = redis_world
    world.reset()
    client = redis_or_skip()
    for key in client.scan_iter("stetgate:unattended:*"):
        client.delete(key)
    tpp = world.tpp()
    world.clock.set(paris(world, 1, 12))
    token = world.token("jdupont")
    _four_then_429(tpp, "accounts", token)
    assert _count_rows(world) == 0, "Redis, not the database, holds the counters"
    assert any(client.scan_iter("stetgate:unattended:*"))
    world.clock.set(paris(world, 2, 0, 0, 1))
    assert tpp.get("accounts", token=world.token("jdupont"), psu_ip=None).status_code == 200
