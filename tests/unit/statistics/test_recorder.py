"""The recorder's counts and its additive flushes, on SQLite and PostgreSQL (the upsert SQL
differs by dialect)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine, create_engine, select

from stetgate.app import endpoint_families
from stetgate.clock import FrozenClock
from stetgate.serving.blocking import BlockingCalls
from stetgate.statistics.histogram import bucket_of
from stetgate.statistics.recorder import StatisticsRecorder
from stetgate.store.db import upgrade
from stetgate.store.schema import (
    statistics_availability,
    statistics_latency,
    statistics_requests,
)

pytestmark = pytest.mark.postgres  # INSERT … ON CONFLICT DO UPDATE per dialect

START = datetime(2026, 3, 31, 23, 59, 10, tzinfo=UTC)


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    engine = create_engine(db_url)
    yield engine
    engine.dispose()


def recorder_on(engine: Engine, clock: FrozenClock, **checks: object) -> StatisticsRecorder:
    return StatisticsRecorder(
        engine,
        clock,
        BlockingCalls(2),
        endpoint_families(),
        flush_seconds=10,
        probe_seconds=10,
        **checks,  # type: ignore[arg-type]
    )


def requests_table(engine: Engine) -> set[tuple[datetime, str, int, int, int]]:
    with engine.connect() as conn:
        return {tuple(r) for r in conn.execute(select(statistics_requests))}  # type: ignore[misc]


def test_flushes_add_to_the_minute_rows_of_every_worker(engine: Engine) -> None:
    clock = FrozenClock(START)
    first, second = recorder_on(engine, clock), recorder_on(engine, clock)
    first.record("aisp", 200, 0.010)
    first.record("aisp", 200, 0.030)
    second.record("aisp", 200, 0.020)  # another worker, same minute
    first.record("aisp", 404, 0.001)
    first.flush_now()
    second.flush_now()
    clock.advance(60)  # 2026-04-01 00:00: the next quarter
    first.record("cbpii", 503, 0.5)
    first.flush_now()
    first.flush_now()  # nothing new: nothing added twice
    minute = START.replace(second=0)
    assert requests_table(engine) == {
        (minute, "aisp", 2, 3, 60_000),
        (minute, "aisp", 4, 1, 1_000),
        (minute + timedelta(minutes=1), "cbpii", 5, 1, 500_000),
    }
    with engine.connect() as conn:
        latency = {tuple(r[1:]) for r in conn.execute(select(statistics_latency))}
    assert latency == {
        ("aisp", bucket_of(10_000), 1),
        ("aisp", bucket_of(20_000), 1),
        ("aisp", bucket_of(30_000), 1),
        ("aisp", bucket_of(1_000), 1),
        ("cbpii", bucket_of(500_000), 1),
    }


def test_probes_and_failure_runs_are_recorded_per_minute(engine: Engine) -> None:
    clock = FrozenClock(START)
    backend_up = [True]
    recorder = recorder_on(engine, clock, backend_available=lambda: backend_up[0])
    assert asyncio.run(recorder.probe()) is True
    backend_up[0] = False
    assert asyncio.run(recorder.probe()) is False
    clock.advance(60)
    for _ in range(5):
        recorder.record("aisp", 503, 0.01)
    recorder.record("token", 500, 0.01)  # not an information request: no run
    recorder.flush_now()
    minute = START.replace(second=0)
    with engine.connect() as conn:
        rows = {tuple(r) for r in conn.execute(select(statistics_availability))}
    assert rows == {(minute, 1, 1, 0), (minute + timedelta(minutes=1), 0, 0, 1)}


def test_a_probe_on_a_database_that_does_not_answer_is_down(tmp_path: Path) -> None:
    broken = create_engine(f"sqlite:///{tmp_path / 'missing' / 'nowhere.db'}")
    recorder = recorder_on(broken, FrozenClock(START))
    assert asyncio.run(recorder.probe()) is False
    assert recorder._counts.availability == {START.timestamp() // 60: [0, 1, 0]}


def test_a_failed_flush_keeps_the_counts_for_the_next_one(tmp_path: Path) -> None:
    path = tmp_path / "late.db"
    engine = create_engine(f"sqlite:///{path}")  # not migrated yet: the flush fails
    clock = FrozenClock(START)
    recorder = recorder_on(engine, clock)
    recorder.record("token", 200, 0.002)
    with pytest.raises(Exception, match="statistics_requests"):
        recorder.flush_now()
    recorder.record("token", 200, 0.004)
    asyncio.run(recorder.flush())  # the async flush logs and keeps them too
    upgrade(f"sqlite:///{path}")
    recorder.flush_now()
    assert requests_table(engine) == {(START.replace(second=0), "token", 2, 2, 6_000)}
    engine.dispose()


def test_close_writes_the_last_counts_and_stops_for_good(engine: Engine) -> None:
    recorder = recorder_on(engine, FrozenClock(START))
    recorder.record("authorization", 302, 0.05)
    recorder.close()
    assert len(requests_table(engine)) == 1

    async def start_after_close() -> bool:
        recorder.start()
        return recorder.started

    assert asyncio.run(start_after_close()) is False
