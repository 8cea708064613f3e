"""Engine construction and migration checks.

SQLite (default) runs in WAL mode with a busy timeout so several worker processes can write
without "database is locked" failures; PostgreSQL uses psycopg 3 with a small pool per worker
(workers are stateless; all shared state is in the database).
"""

from __future__ import annotations

import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy import exc as sa_exc
from sqlalchemy.pool import QueuePool

from stetgate.store.liveness import KEEPALIVE_OPTIONS, replace_stale_connections
from stetgate.store.sqlite_writes import (
    WriteGate,
    begin_write,
    install_gate_release,
    write_gate,
)

MIGRATIONS_DIR = Path(__file__).parent / "migrations"


class DatabaseNotMigrated(RuntimeError):
    """The database schema is not at the head revision: run `stetgate db upgrade`."""


@dataclass(frozen=True)
class Timeouts:
    """How long one statement may run and one lock may be waited for, in milliseconds.

    Without them one stuck statement (a lock held by an operator session, a runaway plan)
    holds its connection, its thread and its request for ever. With them it fails that one
    request — `DatabaseTimeout`, answered 503 — and frees everything it held."""

    statement_ms: int = 5000
    lock_ms: int = 2000

    def postgresql_options(self) -> str:
        """libpq ``options``: ``statement_timeout``, ``lock_timeout``, and an idle-in-transaction
        limit so a session that died mid-transaction does not keep its locks."""
        return (
            f"-c statement_timeout={self.statement_ms} -c lock_timeout={self.lock_ms} "
            f"-c idle_in_transaction_session_timeout={max(self.statement_ms, 10_000)}"
        )


RETRY_AFTER_SECONDS = 1
"""``Retry-After`` of every 503 a `DatabaseUnavailable` becomes (RFC 9110 §10.2.3): a timed-out
lock is usually free again soon, and a restarted or failed-over database answers again within
seconds (measured: a PostgreSQL restart under load is healed in under a second,
docs/security.md#faults-and-fuzzing). One value for the OAuth, register, STET and PSU answers."""


class DatabaseUnavailable(RuntimeError):
    """The database could not serve this request: it is down, restarting, refused or dropped
    the connection, has no connection slot left, or (`DatabaseTimeout`) did not answer in
    time. Its transaction did not commit — or, when the connection broke during COMMIT, the
    database decided alone, atomically — so nothing is half-written. Answered 503 with
    ``Retry-After`` at every boundary, in that API's own format, with one log line.

    ``reason`` is short and safe to log: the driver error's class, SQLSTATE and first line,
    never SQLAlchemy's wrapper text (it quotes statement parameters: token digests)."""

    public_description = "the database is unavailable; retry later"

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class DatabaseTimeout(DatabaseUnavailable):
    """A statement ran past ``statement_ms`` or waited past ``lock_ms`` for a lock; its
    transaction was rolled back. Answered 503 with ``Retry-After`` at every boundary."""

    public_description = "the database did not answer in time; nothing was changed, retry later"


_PG_TIMEOUT_STATES = frozenset({"57014", "55P03"})
"""SQLSTATE query_canceled (statement_timeout) and lock_not_available (lock_timeout)."""

_PG_OUTAGE_CLASSES = ("08", "53", "58")
"""SQLSTATE classes of an unavailable server (PostgreSQL Appendix A): connection exception,
insufficient resources (too many connections, disk full, out of memory), system error (I/O)."""
_PG_OUTAGE_STATES = frozenset({"57P01", "57P02", "57P03", "57P04", "57P05"})
"""admin_shutdown, crash_shutdown, cannot_connect_now (starting up, shutting down, in
recovery), database_dropped, idle_session_timeout."""

_SQLITE_OUTAGE_CODES = frozenset(
    code
    for code in (
        getattr(sqlite3, "SQLITE_CANTOPEN", None),
        getattr(sqlite3, "SQLITE_IOERR", None),
        getattr(sqlite3, "SQLITE_FULL", None),
        getattr(sqlite3, "SQLITE_NOMEM", None),
        getattr(sqlite3, "SQLITE_READONLY", None),
    )
    if code is not None
)
"""SQLite's "unable to open database file", "disk I/O error", "database or disk is full",
out of memory, "attempt to write a readonly database" (primary codes: extended I/O codes are
``SQLITE_IOERR | n << 8``)."""


def _driver_error(exc: BaseException) -> BaseException:
    return getattr(exc, "orig", None) or exc


def is_timeout(exc: BaseException) -> bool:
    """Whether ``exc`` (a DBAPI error, or SQLAlchemy's wrapper of one) is a statement or lock
    timeout of `Timeouts`: PostgreSQL's SQLSTATE, SQLite's busy or interrupted error."""
    orig = _driver_error(exc)
    if getattr(orig, "sqlstate", None) in _PG_TIMEOUT_STATES:
        return True
    if isinstance(orig, sqlite3.OperationalError):
        code = getattr(orig, "sqlite_errorcode", None)
        return code in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_INTERRUPT) or str(orig) in (
            "interrupted",
            "database is locked",
        )
    return False


def is_outage(exc: BaseException) -> bool:
    """Whether ``exc`` says the database is unreachable or cannot serve, rather than that a
    statement is wrong: connection refused or reset, server closed the connection,
    administrator shutdown or restart, too many connections (PostgreSQL via psycopg 3);
    cannot open the file, I/O error, disk full (SQLite); SQLAlchemy's own disconnect
    detection and its pool's checkout timeout. A programming error (``no such table``, a
    syntax error, a constraint violation) is not one: that stays a 500 with its traceback."""
    if isinstance(exc, sa_exc.DisconnectionError | sa_exc.TimeoutError):
        return True
    if isinstance(exc, sa_exc.DBAPIError) and exc.connection_invalidated:
        return True
    orig = _driver_error(exc)
    sqlstate = getattr(orig, "sqlstate", None)
    if sqlstate is not None:
        return sqlstate in _PG_OUTAGE_STATES or sqlstate.startswith(_PG_OUTAGE_CLASSES)
    if isinstance(orig, sqlite3.Error):
        code = getattr(orig, "sqlite_errorcode", None)
        return code is not None and (code & 0xFF) in _SQLITE_OUTAGE_CODES
    # psycopg 3 without SQLSTATE: the server never answered (refused, reset, closed, EOF).
    return isinstance(orig, psycopg.OperationalError | psycopg.InterfaceError)


def unavailable(exc: BaseException) -> DatabaseUnavailable | None:
    """``exc`` as the `DatabaseUnavailable` (or `DatabaseTimeout`) it means, or None when it
    is some other error. The result's ``__cause__`` is ``exc``."""
    if isinstance(exc, DatabaseUnavailable):
        return exc
    timeout = is_timeout(exc)
    if not timeout and not is_outage(exc):
        return None
    orig = _driver_error(exc)
    sqlstate = getattr(orig, "sqlstate", None)
    first_line = (str(orig).strip().splitlines() or [""])[0][:160]
    reason = f"{type(orig).__name__}{f' {sqlstate}' if sqlstate else ''}: {first_line}"
    translated = DatabaseTimeout(reason) if timeout else DatabaseUnavailable(reason)
    translated.__cause__ = exc
    return translated


def make_engine(url: str, pool_size: int = 8, timeouts: Timeouts | None = None) -> Engine:
    """Create the engine for `url` with the per-dialect settings stetgate relies on.

    ``timeouts`` are the serving limits (`Timeouts`); None is for operator commands and
    migrations, which may legitimately run long: no statement limit, a 30 s lock wait."""
    lock_seconds = 30.0 if timeouts is None else timeouts.lock_ms / 1000
    if url.startswith("sqlite"):
        path = url.split("///", 1)[-1]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(
            url,
            poolclass=QueuePool,
            pool_size=pool_size,
            max_overflow=pool_size,
            connect_args={"check_same_thread": False, "timeout": lock_seconds},
        )
        event.listen(engine, "connect", _sqlite_pragmas(lock_seconds))
        event.listen(engine, "begin", _sqlite_begin(write_gate(engine), lock_seconds))
        install_gate_release(engine)
        if timeouts is not None:
            sqlite_statement_timeout(engine, timeouts)
        return engine
    options: dict[str, Any] = dict(KEEPALIVE_OPTIONS)
    if timeouts is not None:
        options["options"] = timeouts.postgresql_options()
    # No pre-ping (a round trip per checkout): `replace_stale_connections` asks the kernel.
    engine = create_engine(
        url,
        pool_size=pool_size,
        max_overflow=pool_size,
        pool_recycle=1800,
        connect_args=options,
    )
    replace_stale_connections(engine)
    return engine


def _sqlite_pragmas(lock_seconds: float) -> Any:
    def on_connect(dbapi_conn: Any, _record: Any) -> None:
        # Let SQLAlchemy's "begin" event emit BEGIN itself (pysqlite's implicit BEGIN is
        # deferred, which turns read-then-write transactions into SQLITE_BUSY under
        # concurrency).
        dbapi_conn.isolation_level = None
        cursor = dbapi_conn.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute(f"PRAGMA busy_timeout={int(lock_seconds * 1000)}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    return on_connect


_STATEMENT_CLOCK = "stetgate_statement_clock"
_PROGRESS_STEPS = 10_000
"""SQLite virtual-machine steps between deadline checks (a hot-path statement is a few hundred:
the check is rare on them, and a runaway scan is stopped within milliseconds)."""


class _StatementClock:
    """The deadline of the statement a SQLite connection is running."""

    __slots__ = ("deadline", "limit")

    def __init__(self, limit: float) -> None:
        self.limit = limit
        self.deadline = float("inf")

    def restart(self) -> None:
        self.deadline = time.monotonic() + self.limit

    def expired(self) -> bool:
        return time.monotonic() > self.deadline


def sqlite_statement_timeout(engine: Engine, timeouts: Timeouts) -> None:
    """SQLite has no statement timeout: a progress handler interrupts a statement past its
    deadline (``sqlite3.OperationalError: interrupted``, `is_timeout`). The deadline starts
    when a connection is checked out (a single-statement read), before each statement
    SQLAlchemy executes, and when a holder of a raw connection calls
    `restart_statement_clock`."""
    limit = timeouts.statement_ms / 1000

    def on_connect(dbapi_conn: Any, record: Any) -> None:
        clock = _StatementClock(limit)
        record.info[_STATEMENT_CLOCK] = clock
        dbapi_conn.set_progress_handler(clock.expired, _PROGRESS_STEPS)

    def on_checkout(_dbapi_conn: Any, record: Any, _proxy: Any) -> None:
        record.info[_STATEMENT_CLOCK].restart()

    def before_execute(conn: Connection, *_args: Any) -> None:
        restart_statement_clock(conn.info)

    event.listen(engine, "connect", on_connect)
    event.listen(engine, "checkout", on_checkout)
    event.listen(engine, "before_cursor_execute", before_execute)


def restart_statement_clock(info: dict[Any, Any]) -> None:
    """Start the statement timeout of the connection whose ``info`` this is (a no-op where
    `sqlite_statement_timeout` is not installed: PostgreSQL times statements itself)."""
    clock = info.get(_STATEMENT_CLOCK)
    if clock is not None:
        clock.restart()


def _sqlite_begin(gate: WriteGate, lock_seconds: float) -> Any:
    def on_begin(conn: Any) -> None:
        """Take the write lock at BEGIN so concurrent writers queue (in this process on the
        `WriteGate`, between processes on busy_timeout) instead of failing on lock upgrade.
        Connections from `read_connection` begin deferred: in WAL mode a reader never waits
        for a writer, so reads of several workers run in parallel."""
        if conn.get_execution_options().get(READ_ONLY_OPTION):
            conn.exec_driver_sql("BEGIN")
        else:
            begin_write(conn, gate, lock_seconds)

    return on_begin


READ_ONLY_OPTION = "stetgate_read_only"


def read_connection(engine: Engine) -> Connection:
    """A connection for reads only (use as a context manager). On SQLite it does not take the
    write lock; on PostgreSQL it is an ordinary connection."""
    return engine.connect().execution_options(**{READ_ONLY_OPTION: True})


def alembic_config(url: str) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def upgrade(url: str, revision: str = "head") -> None:
    """Apply migrations (`stetgate db upgrade`)."""
    from alembic import command

    if url.startswith("sqlite"):
        make_engine(url).dispose()  # creates the parent folder
    command.upgrade(alembic_config(url), revision)


def head_revision() -> str:
    script = ScriptDirectory.from_config(alembic_config("sqlite://"))
    head = script.get_current_head()
    assert head is not None
    return head


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def require_migrated(engine: Engine) -> None:
    """Refuse to serve on an un-migrated database, with the command that fixes it."""
    current = current_revision(engine)
    head = head_revision()
    if current != head:
        raise DatabaseNotMigrated(
            f"database schema is at {current or 'nothing'}, expected {head}: "
            "run `stetgate db upgrade` (same --data-dir / STETGATE_DATABASE_URL) first"
        )
