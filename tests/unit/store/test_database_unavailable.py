"""Which driver errors mean "the database cannot serve now" (`DatabaseUnavailable`, a 503) and
which mean a bug (a 500 with its traceback), on SQLite; PostgreSQL's, from a real server that
goes away, are in tests/integration/test_database_outage.py."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.exc import DBAPIError, OperationalError

from stetgate.store.db import (
    DatabaseTimeout,
    DatabaseUnavailable,
    is_outage,
    unavailable,
)


def raised_by(url: str, sql: str) -> DBAPIError:
    engine = create_engine(url)
    try:
        with pytest.raises(DBAPIError) as raised, engine.connect() as conn:
            conn.execute(text(sql))
    finally:
        engine.dispose()
    return raised.value


def test_a_database_file_that_cannot_be_opened_is_unavailable(tmp_path: Path) -> None:
    error = raised_by(f"sqlite:///{tmp_path}/no/such/folder/bank.db", "SELECT 1")
    translated = unavailable(error)
    assert type(translated) is DatabaseUnavailable
    assert translated.reason.startswith("OperationalError: unable to open database file")
    assert translated.__cause__ is error


def test_the_reason_never_quotes_statement_parameters(tmp_path: Path) -> None:
    path = tmp_path / "gone" / "bank.db"
    engine = create_engine(f"sqlite:///{path}")
    try:
        with pytest.raises(OperationalError) as raised, engine.connect() as conn:
            conn.execute(text("SELECT :secret"), {"secret": "refresh-token-digest"})
    finally:
        engine.dispose()
    translated = unavailable(raised.value)
    assert translated is not None
    assert "refresh-token-digest" not in translated.reason
    assert "[SQL" not in translated.reason


def test_a_locked_database_is_a_timeout(tmp_path: Path) -> None:
    path = tmp_path / "bank.db"
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("CREATE TABLE t (x)")
    holder.execute("BEGIN IMMEDIATE")
    try:
        contender = sqlite3.connect(path, timeout=0.01, isolation_level=None)
        with pytest.raises(sqlite3.OperationalError) as raised:
            contender.execute("BEGIN IMMEDIATE")
        contender.close()
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert isinstance(unavailable(raised.value), DatabaseTimeout)


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT * FROM no_such_table",
        "SELEC 1",
        "INSERT INTO t VALUES (1)",  # t is not there either: a programming error
    ],
)
def test_statement_errors_are_not_outages(tmp_path: Path, sql: str) -> None:
    error = raised_by(f"sqlite:///{tmp_path}/bank.db", sql)
    assert not is_outage(error)
    assert unavailable(error) is None


def test_a_constraint_violation_is_not_an_outage(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite:///{tmp_path}/bank.db")
    try:
        with engine.begin() as conn:
            conn.execute(text("CREATE TABLE t (x PRIMARY KEY)"))
            conn.execute(text("INSERT INTO t VALUES (1)"))
        with pytest.raises(DBAPIError) as raised, engine.begin() as conn:
            conn.execute(text("INSERT INTO t VALUES (1)"))
    finally:
        engine.dispose()
    assert unavailable(raised.value) is None


def test_an_error_already_translated_is_kept() -> None:
    timeout = DatabaseTimeout("statement timeout")
    assert unavailable(timeout) is timeout
    assert unavailable(ValueError("not a database error")) is None
