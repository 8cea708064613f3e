"""The unattended-access limit: windows, atomic counting under concurrency, database and Redis."""

from __future__ import annotations

import multiprocessing
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import Engine, func, select

from stetgate.psd2.limits import (
    DatabaseUnattendedLimiter,
    RedisUnattendedLimiter,
    UnattendedKey,
    UnattendedLimiter,
    UnattendedPolicy,
    WindowMode,
)
from stetgate.store.db import make_engine
from stetgate.store.schema import psd2_unattended_access
from tests.integration.psd2_support import database_url, redis_or_skip

pytestmark = pytest.mark.postgres  # unattended-access counters (upsert)

PARIS = ZoneInfo("Europe/Paris")
KEY = UnattendedKey("PSDFR-ACPR-1", "jdupont", "accounts")


def policy(mode: WindowMode = "calendar_day", limit: int = 4) -> UnattendedPolicy:
    return UnattendedPolicy(limit, mode, PARIS)


def paris(*args: int) -> datetime:
    return datetime(*args, tzinfo=PARIS).astimezone(UTC)  # type: ignore[misc]


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    engine = make_engine(db_url, 4)
    yield engine
    engine.dispose()


LimiterFactory = Callable[[UnattendedPolicy], UnattendedLimiter]


@pytest.fixture(params=["sqlite", "postgresql", "redis"])
def make_limiter(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[LimiterFactory]:
    """Every counter store, with the same behaviour expected of each."""
    if request.param != "redis":
        engine = make_engine(database_url(request, tmp_path), 4)
        yield lambda p: DatabaseUnattendedLimiter(engine, p)
        engine.dispose()
        return
    client = redis_or_skip()
    prefix = f"stetgate:test:{uuid.uuid4().hex}:"
    yield lambda p: RedisUnattendedLimiter(client, p, prefix=prefix)
    for key in client.scan_iter(f"{prefix}*"):
        client.delete(key)


def _admitted(
    limiter: UnattendedLimiter, at: datetime, times: int, key: UnattendedKey = KEY
) -> list[bool]:
    return [limiter.admit(key, at) for _ in range(times)]


def test_four_calls_a_calendar_day_then_refused(make_limiter: LimiterFactory) -> None:
    limiter = make_limiter(policy())
    assert _admitted(limiter, paris(2026, 11, 26, 0, 0, 1), 4) == [True] * 4
    assert _admitted(limiter, paris(2026, 11, 26, 23, 59, 59), 3) == [False] * 3
    assert limiter.admit(KEY, paris(2026, 11, 27, 0, 0, 0))


@pytest.mark.parametrize(
    "last, first",
    [
        (datetime(2026, 7, 1, 21, 59, 59, tzinfo=UTC), datetime(2026, 7, 1, 22, 0, 0, tzinfo=UTC)),
        (
            datetime(2026, 1, 15, 22, 59, 59, tzinfo=UTC),
            datetime(2026, 1, 15, 23, 0, 0, tzinfo=UTC),
        ),
    ],
)
def test_the_calendar_day_ends_at_paris_midnight_summer_and_winter(
    make_limiter: LimiterFactory, last: datetime, first: datetime
) -> None:
    limiter = make_limiter(policy())
    assert _admitted(limiter, last - timedelta(hours=20), 4) == [True] * 4
    assert not limiter.admit(KEY, last)
    assert limiter.admit(KEY, first)


def test_keys_are_counted_separately(make_limiter: LimiterFactory) -> None:
    limiter = make_limiter(policy(limit=1))
    at = paris(2026, 11, 26, 10)
    keys = [
        KEY,
        UnattendedKey("PSDFR-ACPR-2", "jdupont", "accounts"),
        UnattendedKey("PSDFR-ACPR-1", "mdupont", "accounts"),
        UnattendedKey("PSDFR-ACPR-1", "jdupont", "balances", "A1"),
        UnattendedKey("PSDFR-ACPR-1", "jdupont", "balances", "A2"),
    ]
    assert [limiter.admit(k, at) for k in keys] == [True] * 5
    assert [limiter.admit(k, at) for k in keys] == [False] * 5


def test_rolling_window_allows_four_calls_in_any_24_hours(make_limiter: LimiterFactory) -> None:
    limiter = make_limiter(policy("rolling_24h"))
    t0 = datetime(2026, 11, 26, 9, 0, 0, 500_000, tzinfo=UTC)
    assert limiter.admit(KEY, t0)
    assert _admitted(limiter, t0 + timedelta(hours=10), 3) == [True] * 3
    assert not limiter.admit(KEY, t0 + timedelta(hours=20))
    # a calendar day turned, but the oldest call is not yet 24 hours old
    assert not limiter.admit(KEY, t0 + timedelta(hours=23, minutes=59, seconds=59))
    assert limiter.admit(KEY, t0 + timedelta(hours=24))
    assert not limiter.admit(KEY, t0 + timedelta(hours=24, minutes=1))
    assert _admitted(limiter, t0 + timedelta(hours=34, milliseconds=1), 4) == [
        True,
        True,
        True,
        False,
    ]


def test_a_lowered_limit_applies_to_the_calls_already_recorded(engine: Engine) -> None:
    t0 = datetime(2026, 11, 26, 9, tzinfo=UTC)
    assert _admitted(DatabaseUnattendedLimiter(engine, policy("rolling_24h")), t0, 4) == [True] * 4
    stricter = DatabaseUnattendedLimiter(engine, policy("rolling_24h", limit=2))
    assert not stricter.admit(KEY, t0 + timedelta(hours=12))
    assert _admitted(stricter, t0 + timedelta(hours=25), 3) == [True, True, False]
    looser = DatabaseUnattendedLimiter(engine, policy("rolling_24h", limit=6))
    assert _admitted(looser, t0 + timedelta(hours=26), 5) == [True] * 4 + [False]


def test_expired_counters_are_purged_when_a_new_window_starts(engine: Engine) -> None:
    limiter = DatabaseUnattendedLimiter(engine, policy())
    for day in range(1, 6):
        limiter.admit(KEY, paris(2026, 11, day, 12))
        limiter.admit(
            UnattendedKey(KEY.org_id, KEY.psu_id, "balances", "A1"), paris(2026, 11, day, 12)
        )
    with engine.connect() as conn:
        windows = conn.execute(select(psd2_unattended_access.c.window_key)).scalars().all()
    assert sorted(windows) == ["2026-11-05", "2026-11-05"]


def _hammer(
    url: str, mode: WindowMode, at: datetime, attempts: int, start: Any, results: Any
) -> None:
    engine = make_engine(url, 1)
    limiter = DatabaseUnattendedLimiter(engine, policy(mode))
    start.wait()
    results.put(sum(limiter.admit(KEY, at) for _ in range(attempts)))
    engine.dispose()


@pytest.mark.parametrize("mode", ["calendar_day", "rolling_24h"])
def test_concurrent_workers_never_admit_more_than_the_limit(db_url: str, mode: WindowMode) -> None:
    """Six worker processes, each with its own engine, race for the same counter."""
    workers, attempts = 6, 4
    context = multiprocessing.get_context("fork")
    barrier, results = context.Barrier(workers), context.Queue()
    at = paris(2026, 11, 26, 15)
    processes = [
        context.Process(target=_hammer, args=(db_url, mode, at, attempts, barrier, results))
        for _ in range(workers)
    ]
    for process in processes:
        process.start()
    admitted = [results.get(timeout=60) for _ in processes]
    for process in processes:
        process.join(timeout=30)
        assert process.exitcode == 0
    assert sum(admitted) == 4
    engine = make_engine(db_url, 1)
    try:
        with engine.connect() as conn:
            assert (
                conn.execute(select(func.count()).select_from(psd2_unattended_access)).scalar_one()
                == 1
            )
    finally:
        engine.dispose()


def test_concurrent_threads_on_redis_never_admit_more_than_the_limit() -> None:
    client = redis_or_skip()
    prefix = f"stetgate:test:{uuid.uuid4().hex}:"
    try:
        for mode in ("calendar_day", "rolling_24h"):
            limiter = RedisUnattendedLimiter(client, policy(mode), prefix=prefix)  # type: ignore[arg-type]
            at = paris(2026, 11, 26, 15)
            with ThreadPoolExecutor(8) as pool:
                results = list(pool.map(limiter.admit, [KEY] * 40, [at] * 40))
            assert sum(results) == 4, mode
    finally:
        for key in client.scan_iter(f"{prefix}*"):
            client.delete(key)
