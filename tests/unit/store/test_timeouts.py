"""Statement and lock timeouts: a stuck statement fails with an error `is_timeout` recognises,
within its limit, on both databases and on both engines (transactions, hot-path reads); the
operator's engine (migrations, CLI) keeps no statement limit."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator

import pytest
from sqlalchemy import Engine, exc, text

from stetgate.store.db import Timeouts, is_timeout, make_engine, read_connection
from stetgate.store.reading import read_only_engine

pytestmark = pytest.mark.postgres  # timeouts are set per dialect

LIMITS = Timeouts(statement_ms=200, lock_ms=150)

RUNAWAY_SQLITE = (
    "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n) SELECT max(i) FROM n"
)
"""Counts for ever: only an interrupt stops it."""


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    engine = make_engine(db_url, 2, LIMITS)
    yield engine
    engine.dispose()


def runaway(engine: Engine) -> str:
    return "SELECT pg_sleep(5)" if engine.dialect.name == "postgresql" else RUNAWAY_SQLITE


def elapsed_error(engine: Engine, sql: str, *, read: bool = False) -> tuple[float, Exception]:
    """The error and how long it took; SQLite's lock wait fails in the write gate with the
    driver's own error (`stetgate.store.sqlite_writes`), statements with SQLAlchemy's."""
    started = time.monotonic()
    with pytest.raises((exc.OperationalError, sqlite3.OperationalError)) as raised:
        if read:
            with read_connection(engine) as conn:
                conn.execute(text(sql))
        else:
            with engine.begin() as conn:
                conn.execute(text(sql))
    return time.monotonic() - started, raised.value


def test_a_runaway_statement_is_stopped_at_the_statement_timeout(engine: Engine) -> None:
    seconds, error = elapsed_error(engine, runaway(engine))
    assert is_timeout(error)
    assert 0.15 <= seconds < 2


def test_the_hot_path_read_engine_has_the_same_statement_timeout(engine: Engine) -> None:
    reads = read_only_engine(engine, 1, LIMITS)
    seconds, error = elapsed_error(reads, runaway(engine), read=True)
    assert is_timeout(error)
    assert seconds < 2


def test_the_connection_works_again_after_a_timeout(engine: Engine) -> None:
    elapsed_error(engine, runaway(engine))
    with engine.begin() as conn:
        assert conn.execute(text("SELECT 1")).scalar_one() == 1


def test_a_statement_clock_restarts_per_statement(engine: Engine) -> None:
    """A transaction of many short statements may last longer than one statement's limit."""
    pause = "SELECT pg_sleep(0.05)" if engine.dialect.name == "postgresql" else "SELECT 1"
    with engine.begin() as conn:
        started = time.monotonic()
        while time.monotonic() - started < 0.5:
            conn.execute(text(pause))
            time.sleep(0.01)


def test_a_lock_wait_is_stopped_at_the_lock_timeout(engine: Engine) -> None:
    holder = engine.raw_connection()
    cursor = holder.cursor()
    if engine.dialect.name == "postgresql":
        cursor.execute("LOCK TABLE clients IN ACCESS EXCLUSIVE MODE")
    else:
        cursor.execute("BEGIN IMMEDIATE")
    try:
        seconds, error = elapsed_error(engine, "DELETE FROM clients WHERE client_id = 'none'")
    finally:
        cursor.execute("ROLLBACK")
        holder.close()
    assert is_timeout(error)
    assert 0.1 <= seconds < 2


def test_other_database_errors_are_not_timeouts(engine: Engine) -> None:
    with pytest.raises(exc.DBAPIError) as raised, engine.begin() as conn:
        conn.execute(text("SELECT * FROM no_such_table"))
    assert not is_timeout(raised.value)
    assert not is_timeout(ValueError("interrupted"))


def test_the_operator_engine_has_no_statement_limit(db_url: str) -> None:
    """Migrations and `stetgate retention purge` may legitimately run long."""
    engine = make_engine(db_url, 1)
    try:
        with engine.connect() as conn:
            if engine.dialect.name == "postgresql":
                assert conn.execute(text("SHOW statement_timeout")).scalar_one() == "0"
            else:
                assert conn.execute(text("PRAGMA busy_timeout")).scalar_one() == 30000
    finally:
        engine.dispose()


def test_the_serving_engine_reports_its_limits(engine: Engine) -> None:
    with engine.connect() as conn:
        if engine.dialect.name == "postgresql":
            assert conn.execute(text("SHOW statement_timeout")).scalar_one() == "200ms"
            assert conn.execute(text("SHOW lock_timeout")).scalar_one() == "150ms"
        else:
            assert conn.execute(text("PRAGMA busy_timeout")).scalar_one() == 150
