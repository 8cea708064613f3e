"""Reads on the resource API's hot path: a lock-free read engine and pre-compiled SELECTs.

Every resource-API call reads (token, consent, accounts, balances) and almost none writes.

*Which connections.* The shared engine opens each SQLite transaction with ``BEGIN IMMEDIATE``
— right for read-then-write transactions, but it takes the database's single write lock, so
workers serving reads would queue behind each other (SQLite's busy handler sleeps a
millisecond or more per collision). In WAL mode readers need no lock, so `read_only_engine`
gives SQLite a separate small pool of ``query_only`` connections in autocommit mode (each
``SELECT`` reads one consistent snapshot; a write through them is refused by SQLite) and
PostgreSQL a pool of autocommit, read-only sessions (no transaction round trips around a
single ``SELECT``).

*How they are run.* `CompiledRead` compiles a Core ``SELECT`` once for the engine's dialect
(`stetgate.store.compiled.CompiledStatement`: the very bind/result processors SQLAlchemy would
use — UtcDateTime, JsonText, dates on SQLite) and runs it on a pooled DBAPI connection. It
skips SQLAlchemy's per-execution machinery, which costs ~50 µs of a ~70 µs token lookup — a
third of what a ``GET /accounts`` may spend in the database (benchmarks/accounts.py).
"""

from __future__ import annotations

from collections import namedtuple
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from sqlalchemy import Engine, Select, create_engine, event
from sqlalchemy.pool import QueuePool

from stetgate.store.compiled import CompiledStatement
from stetgate.store.db import Timeouts, sqlite_statement_timeout
from stetgate.store.liveness import KEEPALIVE_OPTIONS, replace_stale_connections


def read_only_engine(engine: Engine, pool_size: int, timeouts: Timeouts | None = None) -> Engine:
    """A separate small pool for single-statement reads on ``engine``'s database; disposing
    of ``engine`` disposes of it too. ``timeouts`` as for `stetgate.store.db.make_engine`."""
    lock_seconds = 30.0 if timeouts is None else timeouts.lock_ms / 1000
    if engine.dialect.name == "sqlite":
        reader = create_engine(
            engine.url,
            poolclass=QueuePool,
            pool_size=pool_size,
            max_overflow=pool_size,
            pool_reset_on_return=None,  # autocommit: nothing to roll back
            connect_args={"check_same_thread": False, "timeout": lock_seconds},
        )
        event.listen(reader, "connect", _sqlite_reader_pragmas(lock_seconds))
        if timeouts is not None:
            sqlite_statement_timeout(reader, timeouts)
    else:
        # Autocommit: no BEGIN/ROLLBACK round trips around one SELECT; read-only sessions
        # refuse writes. No pre-ping (a round trip per checkout): a connection the server
        # ended is replaced at checkout (`replace_stale_connections`), one dropped silently is
        # detected when used and the read retried once on a fresh one (`CompiledRead`).
        reader = create_engine(
            engine.url,
            pool_size=pool_size,
            max_overflow=pool_size,
            pool_recycle=1800,
            isolation_level="AUTOCOMMIT",
            pool_reset_on_return=None,
            connect_args={
                **KEEPALIVE_OPTIONS,
                "options": "-c default_transaction_read_only=on"
                + ("" if timeouts is None else " " + timeouts.postgresql_options()),
            },
        )
        replace_stale_connections(reader)
    event.listen(engine, "engine_disposed", lambda _engine: reader.dispose())
    return reader


def _sqlite_reader_pragmas(lock_seconds: float) -> Any:
    def on_connect(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None  # autocommit: no implicit BEGIN from pysqlite
        cursor = dbapi_conn.cursor()
        cursor.execute(f"PRAGMA busy_timeout={int(lock_seconds * 1000)}")
        cursor.execute("PRAGMA query_only=ON")
        cursor.close()

    return on_connect


class CompiledRead:
    """One Core ``SELECT`` compiled for ``engine``'s dialect, run on the DBAPI connection.

    Rows come back as named tuples (field names = the selected columns' keys or labels),
    with SQLAlchemy's result processing applied. Parameters are the statement's
    ``bindparam`` names; literal values in the statement keep their compiled values
    (`CompiledStatement`).
    """

    def __init__(self, engine: Engine, statement: Select[Any]) -> None:
        self._engine = engine
        self._statement = CompiledStatement(statement, engine.dialect)
        row_type: Any = namedtuple(  # type: ignore[misc]
            "_row", self._statement.columns, rename=True
        )  # unnamed columns: _0, _1…
        self._make: Callable[[Iterable[Any]], Any] = row_type._make

    def rows(self, params: Mapping[str, Any]) -> list[Any]:
        bound = self._statement.parameters(params)
        try:
            fetched = self._fetch(bound)
        except _Disconnected:
            try:
                fetched = self._fetch(bound)  # the pool dropped that connection; one retry
            except _Disconnected as again:  # the database itself is gone: the driver's error
                raise again.__cause__ or again from None
        row, make = self._statement.row, self._make
        return [make(row(raw)) for raw in fetched]

    def _fetch(self, bound: Any) -> list[Any]:
        connection = self._engine.raw_connection()
        cursor = None
        try:
            cursor = connection.cursor()
            cursor.execute(self._statement.sql, bound)
            return list(cursor.fetchall())
        except self._engine.dialect.loaded_dbapi.Error as exc:
            if self._engine.dialect.is_disconnect(exc, connection.dbapi_connection, cursor):
                connection.invalidate(exc)
                raise _Disconnected from exc
            raise
        finally:
            if cursor is not None:
                cursor.close()
            connection.close()


class _Disconnected(Exception):
    """The pooled connection was dead (database restart, idle timeout)."""
