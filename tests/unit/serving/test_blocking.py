"""`BlockingCalls`: work runs on the pool's threads (never the loop's), no more at once than
the pool's size, and a database timeout comes back as `DatabaseTimeout`."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
import time
from pathlib import Path

import pytest
from pydantic import ValidationError

from stetgate.serving.blocking import BlockingCalls
from stetgate.settings import Settings
from stetgate.store.db import DatabaseTimeout


def test_the_call_runs_on_a_pool_thread_and_returns_its_result() -> None:
    pool = BlockingCalls(2)

    async def main() -> tuple[str, str]:
        loop_thread = threading.current_thread().name
        worker = await pool.run(lambda: threading.current_thread().name)
        return loop_thread, worker

    loop_thread, worker = asyncio.run(main())
    pool.close()
    assert worker != loop_thread
    assert worker.startswith("stetgate-blocking")


def test_keyword_arguments_are_passed() -> None:
    pool = BlockingCalls(1)

    def join(a: str, *, b: str) -> str:
        return a + b

    assert asyncio.run(pool.run(join, "x", b="y")) == "xy"
    pool.close()


def test_the_loop_keeps_running_while_calls_wait() -> None:
    pool = BlockingCalls(2)

    async def main() -> int:
        ticks = 0

        async def ticker() -> None:
            nonlocal ticks
            while True:
                await asyncio.sleep(0.01)
                ticks += 1

        task = asyncio.create_task(ticker())
        await pool.run(time.sleep, 0.3)
        task.cancel()
        return ticks

    assert asyncio.run(main()) >= 10  # a blocked loop would have ticked at most once
    pool.close()


def test_no_more_calls_run_at_once_than_threads() -> None:
    pool = BlockingCalls(2)
    running = peak = 0
    lock = threading.Lock()

    def work() -> None:
        nonlocal running, peak
        with lock:
            running += 1
            peak = max(peak, running)
        time.sleep(0.05)
        with lock:
            running -= 1

    async def main() -> None:
        await asyncio.gather(*(pool.run(work) for _ in range(8)))

    asyncio.run(main())
    pool.close()
    assert peak == 2


def test_a_database_timeout_becomes_database_timeout() -> None:
    pool = BlockingCalls(1)

    def locked() -> None:
        error = sqlite3.OperationalError("database is locked")
        error.sqlite_errorcode = sqlite3.SQLITE_BUSY  # type: ignore[attr-defined]
        raise error

    with pytest.raises(DatabaseTimeout) as raised:
        asyncio.run(pool.run(locked))
    assert isinstance(raised.value.__cause__, sqlite3.OperationalError)
    pool.close()


def test_other_errors_pass_through_unchanged() -> None:
    pool = BlockingCalls(1)

    def broken() -> None:
        raise KeyError("x")

    with pytest.raises(KeyError):
        asyncio.run(pool.run(broken))
    pool.close()


def test_a_pool_needs_a_thread() -> None:
    with pytest.raises(ValueError):
        BlockingCalls(0)


def test_the_settings_refuse_more_threads_than_connections(tmp_path: Path) -> None:
    """A thread waiting for a pooled connection would hold its slot doing nothing."""
    Settings(data_dir=tmp_path, db_pool_size=4, db_threads=8)
    with pytest.raises(ValidationError, match="db_threads"):
        Settings(data_dir=tmp_path, db_pool_size=4, db_threads=9)
