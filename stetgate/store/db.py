"""Engine construction and migration checks.

SQLite (default) runs in WAL mode with a busy timeout so several worker processes can write
without "database is locked" failures; PostgreSQL uses psycopg 3 with a small pool per worker
(workers are stateless; all shared state is in the database).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.pool import QueuePool

MIGRATIONS_DIR = Path(__file__).parent / "migrations"


class DatabaseNotMigrated(RuntimeError):
    """The database schema is not at the head revision: run `stetgate db upgrade`."""


def make_engine(url: str, pool_size: int = 8) -> Engine:
    """Create the engine for `url` with the per-dialect settings stetgate relies on."""
    if url.startswith("sqlite"):
        path = url.split("///", 1)[-1]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(
            url,
            poolclass=QueuePool,
            pool_size=pool_size,
            max_overflow=pool_size,
            connect_args={"check_same_thread": False, "timeout": 30},
        )
        event.listen(engine, "connect", _sqlite_pragmas)
        event.listen(engine, "begin", _sqlite_begin_immediate)
        return engine
    return create_engine(
        url, pool_size=pool_size, max_overflow=pool_size, pool_pre_ping=True, pool_recycle=1800
    )


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    # Let SQLAlchemy's "begin" event emit BEGIN itself (pysqlite's implicit BEGIN is deferred,
    # which turns read-then-write transactions into SQLITE_BUSY under concurrency).
    dbapi_conn.isolation_level = None
    cursor = dbapi_conn.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def _sqlite_begin_immediate(conn: Any) -> None:
    """Take the write lock at BEGIN so concurrent writers queue on busy_timeout instead of
    failing on lock upgrade. Connections from `read_connection` begin deferred: in WAL mode a
    reader never waits for a writer, so reads of several workers run in parallel."""
    if conn.get_execution_options().get(READ_ONLY_OPTION):
        conn.exec_driver_sql("BEGIN")
    else:
        conn.exec_driver_sql("BEGIN IMMEDIATE")


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
