"""One writer at a time per process on a SQLite database, in arrival order.

SQLite has one write lock per database file. A transaction that finds it taken sleeps in
SQLite's busy handler — 1, 2, 5, 10 … 100 ms between attempts — and whoever retries at the
right moment wins, not whoever waited longest. With the database work of a worker on a pool of
threads (`stetgate.serving.blocking`), up to ``db_threads`` writers of the same process compete
that way: measured with ``benchmarks/run_all.py`` (code exchange on SQLite, 64 connections),
0.2–0.5 % of exchanges waited past the 2 s lock timeout and were answered 503 — on a single
worker too, so between threads of one process.

So writers of one process first queue on a `WriteGate` (a lock: a releasing writer wakes the
next one at once, no back-off sleep), and only the gate's holder asks SQLite for the write
lock; SQLite's busy handler is left to arbitrate between processes (workers), a handful of
contenders. The gate is held from ``BEGIN IMMEDIATE`` to the end of ``COMMIT``/``ROLLBACK``:
the commit is issued here, before the gate opens, so the next writer never finds the lock
still taken by a commit in flight. Reads (deferred transactions of `read_connection`, the
read-only engine) never touch the gate: in WAL mode readers do not block writers.

Between processes, the gate's holder does not use SQLite's busy handler either: its sleeps grow
to 100 ms, so the writers of a process that keeps its gate busy hand the lock to each other
while the other process sleeps — measured, 2 workers, 256 connections: code exchanges waited
past the 2 s lock timeout. `begin_immediate` retries ``BEGIN IMMEDIATE`` after 50 µs, doubling
to at most 1 ms (one such waiter per process, on a pool thread, never on the event loop).
"""

from __future__ import annotations

import sqlite3
import threading
import time
from typing import Any

from sqlalchemy import Engine, event

_HOLDER = "stetgate_write_gate"
"""Key, in a connection's ``info``, of the gate its open write transaction holds."""

_GATES: dict[str, WriteGate] = {}
_GATES_LOCK = threading.Lock()


class WriteGate:
    """The queue of one process's writers for one database file."""

    def __init__(self) -> None:
        self._lock = threading.Lock()

    def enter(self, timeout: float) -> None:
        """Wait up to ``timeout`` seconds for the gate; past it, the same error SQLite gives
        for a lock it could not get (`stetgate.store.db.is_timeout` recognises it)."""
        if not self._lock.acquire(timeout=timeout):
            error = sqlite3.OperationalError("database is locked")
            error.sqlite_errorcode = sqlite3.SQLITE_BUSY
            raise error

    def leave(self) -> None:
        self._lock.release()


def gate_for(database: str) -> WriteGate:
    """The process-wide gate of the database file ``database`` (every engine on the same file
    shares it)."""
    with _GATES_LOCK:
        gate = _GATES.get(database)
        if gate is None:
            gate = _GATES[database] = WriteGate()
        return gate


def write_gate(engine: Engine) -> WriteGate:
    """The gate of ``engine``'s SQLite database (for code that writes on a raw connection)."""
    return gate_for(str(engine.url.database or ":memory:"))


FIRST_PAUSE_SECONDS = 0.00005
"""A write transaction here lasts ~50 µs to a few ms: look again soon."""
LONGEST_PAUSE_SECONDS = 0.001


def begin_immediate(
    dbapi_conn: Any, wait_seconds: float, longest_pause: float = LONGEST_PAUSE_SECONDS
) -> None:
    """``BEGIN IMMEDIATE`` on a DBAPI connection whose busy timeout is 0, retried while
    another process holds the write lock, for up to ``wait_seconds``; then SQLite's own
    "database is locked" error. Pauses start at 50 µs and double up to ``longest_pause``
    (the refresh store keeps them at 50 µs: it is the hot path, and one thread per process)."""
    deadline = time.monotonic() + max(wait_seconds, 0.0)
    pause = min(FIRST_PAUSE_SECONDS, longest_pause)
    while True:
        try:
            dbapi_conn.execute("BEGIN IMMEDIATE")
            return
        except sqlite3.OperationalError as exc:
            if exc.sqlite_errorcode != sqlite3.SQLITE_BUSY or time.monotonic() >= deadline:
                raise
        time.sleep(pause)
        pause = min(pause * 2, longest_pause)


def begin_write(conn: Any, gate: WriteGate, lock_seconds: float) -> None:
    """``BEGIN IMMEDIATE`` on SQLAlchemy connection ``conn``: through this process's gate,
    then past the other processes' writers (`begin_immediate`), within ``lock_seconds``."""
    started = time.monotonic()
    gate.enter(lock_seconds)
    try:
        dbapi = conn.connection.dbapi_connection
        dbapi.execute("PRAGMA busy_timeout = 0")
        try:
            begin_immediate(dbapi, lock_seconds - (time.monotonic() - started))
        finally:
            dbapi.execute(f"PRAGMA busy_timeout = {int(lock_seconds * 1000)}")
    except BaseException:
        gate.leave()
        raise
    conn.info[_HOLDER] = gate


def install_gate_release(engine: Engine) -> None:
    """End write transactions here, then open the gate (see module docstring). SQLAlchemy's own
    commit/rollback then finds no transaction open (the connection is in autocommit mode,
    ``isolation_level = None``) and does nothing."""

    def finish(conn: Any, statement: str) -> None:
        gate: WriteGate | None = conn.info.pop(_HOLDER, None)
        if gate is None:
            return
        try:
            dbapi = conn.connection.dbapi_connection
            if dbapi.in_transaction:
                dbapi.execute(statement)
        finally:
            gate.leave()

    def on_commit(conn: Any) -> None:
        finish(conn, "COMMIT")

    def on_rollback(conn: Any) -> None:
        finish(conn, "ROLLBACK")

    def on_checkin(_dbapi_conn: Any, record: Any) -> None:
        # Safety net: a connection never returns to the pool holding the gate (the pool has
        # rolled it back by now).
        gate = record.info.pop(_HOLDER, None) if record is not None else None
        if gate is not None:
            gate.leave()

    event.listen(engine, "commit", on_commit)
    event.listen(engine, "rollback", on_rollback)
    event.listen(engine, "checkin", on_checkin)


__all__ = [
    "WriteGate",
    "begin_immediate",
    "begin_write",
    "gate_for",
    "install_gate_release",
    "write_gate",
]
