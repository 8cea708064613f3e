"""The SQLite write gate: one writer per process, from BEGIN to the end of COMMIT/ROLLBACK,
handed over without SQLite's back-off sleeps; reads never wait for it; every way a write
transaction ends opens it again."""

from __future__ import annotations

import shutil
import sqlite3
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import Engine, exc, insert, select, text

from stetgate.store.db import Timeouts, is_timeout, make_engine, read_connection
from stetgate.store.schema import audit_events
from stetgate.store.sqlite_writes import write_gate

LOCK_MS = 1000
"""Long enough that the hand-over test does not race the timeout on a loaded box (or under
libfaketime's slower sleeps), short enough for the give-up test."""


@pytest.fixture
def engine(sqlite_template: Path, tmp_path: Path) -> Iterator[Engine]:
    path = tmp_path / "gate.db"
    shutil.copy(sqlite_template, path)
    engine = make_engine(f"sqlite:///{path}", 8, Timeouts(statement_ms=5000, lock_ms=LOCK_MS))
    yield engine
    engine.dispose()


def audit_row(event: str) -> dict[str, object]:
    return {"at": datetime(2026, 1, 1, tzinfo=UTC), "event": event, "detail": {}}


def count(engine: Engine) -> int:
    with read_connection(engine) as conn:
        return int(conn.execute(text("SELECT count(*) FROM audit_events")).scalar_one())


def test_a_second_writer_waits_for_the_first_to_commit_then_goes_at_once(engine: Engine) -> None:
    inside, release = threading.Event(), threading.Event()

    def first() -> None:
        with engine.begin() as conn:
            conn.execute(insert(audit_events).values(audit_row("first")))
            inside.set()
            release.wait(5)

    def second() -> float:
        inside.wait(5)
        started = time.monotonic()
        with engine.begin() as conn:
            conn.execute(insert(audit_events).values(audit_row("second")))
        return time.monotonic() - started

    with ThreadPoolExecutor(2) as pool:
        one, two = pool.submit(first), pool.submit(second)
        inside.wait(5)
        time.sleep(0.1)
        assert not two.done(), "the second writer must wait for the first"
        release.set()
        one.result(5)
        waited = two.result(5)
    assert 0.09 <= waited < LOCK_MS / 1000
    assert count(engine) == 2


def test_a_writer_gives_up_at_the_lock_timeout_with_a_timeout_error(engine: Engine) -> None:
    gate = write_gate(engine)
    gate.enter(1)
    try:
        started = time.monotonic()
        with pytest.raises(sqlite3.OperationalError) as raised, engine.begin() as conn:
            conn.execute(insert(audit_events).values(audit_row("late")))
        assert is_timeout(raised.value)
        assert LOCK_MS / 1000 * 0.9 <= time.monotonic() - started < LOCK_MS / 1000 + 2
    finally:
        gate.leave()
    assert count(engine) == 0


def test_reads_do_not_wait_for_the_gate(engine: Engine) -> None:
    gate = write_gate(engine)
    gate.enter(1)
    try:
        started = time.monotonic()
        assert count(engine) == 0
        assert time.monotonic() - started < 0.1
    finally:
        gate.leave()


def test_a_rolled_back_transaction_opens_the_gate(engine: Engine) -> None:
    with pytest.raises(RuntimeError), engine.begin() as conn:
        conn.execute(insert(audit_events).values(audit_row("undone")))
        raise RuntimeError("the handler failed")
    with engine.begin() as conn:
        conn.execute(insert(audit_events).values(audit_row("next")))
    with read_connection(engine) as conn:
        assert conn.execute(select(audit_events.c.event)).scalars().all() == ["next"]


def test_a_failed_statement_rolls_back_and_opens_the_gate(engine: Engine) -> None:
    with pytest.raises(exc.OperationalError), engine.begin() as conn:
        conn.execute(insert(audit_events).values(audit_row("kept?")))
        conn.execute(text("INSERT INTO no_such_table VALUES (1)"))
    with engine.begin() as conn:
        conn.execute(insert(audit_events).values(audit_row("after")))
    assert count(engine) == 1


def test_a_begin_refused_by_another_process_opens_the_gate(engine: Engine, tmp_path: Path) -> None:
    other_process = sqlite3.connect(str(tmp_path / "gate.db"), isolation_level=None)
    other_process.execute("BEGIN IMMEDIATE")
    try:
        with pytest.raises(Exception) as raised, engine.begin() as conn:
            conn.execute(insert(audit_events).values(audit_row("blocked")))
        assert is_timeout(raised.value)
    finally:
        other_process.execute("ROLLBACK")
        other_process.close()
    with engine.begin() as conn:  # the gate did not stay closed
        conn.execute(insert(audit_events).values(audit_row("free")))
    assert count(engine) == 1


def test_an_explicit_commit_inside_a_connection_opens_the_gate(engine: Engine) -> None:
    with engine.connect() as conn:
        conn.execute(insert(audit_events).values(audit_row("one")))
        conn.commit()
        conn.execute(insert(audit_events).values(audit_row("two")))
        conn.commit()
    with engine.begin() as conn:
        conn.execute(insert(audit_events).values(audit_row("three")))
    assert count(engine) == 3


def test_many_threads_writing_at_once_all_commit(engine: Engine) -> None:
    """Without the gate, writers of one process race in SQLite's busy handler (1–100 ms
    sleeps); with it they queue, so none waits past a short lock timeout here."""

    def write(n: int) -> None:
        for i in range(25):
            with engine.begin() as conn:
                conn.execute(insert(audit_events).values(audit_row(f"w{n}-{i}")))

    with ThreadPoolExecutor(8) as pool:
        for future in [pool.submit(write, n) for n in range(8)]:
            future.result(30)
    assert count(engine) == 200


def test_every_engine_on_one_file_shares_the_gate(engine: Engine, tmp_path: Path) -> None:
    other = make_engine(f"sqlite:///{tmp_path / 'gate.db'}", 1)
    try:
        assert write_gate(other) is write_gate(engine)
    finally:
        other.dispose()
