"""The refresh grant's hot path: one statement that checks everything and issues the token.

Refreshing is the most frequent call a TPP makes (every access token lives an hour, for 90 to
180 days), and the product must sustain thousands per second on two cores. So the whole
decision of docs/decisions.md#refresh is a single ``UPDATE … RETURNING`` on the pair's row:

- the refresh token exists, is not revoked, has not expired (RFC 6749 §6, §10.4);
- the PSU's last SCA is younger than ``sca_validity_days`` (PSD2 RTS Art. 10/10a via STET
  v1.4.2 Part I §3.4.3.4);
- the pair belongs to the calling client and to the organization of its QWAC (refresh tokens are
  bound to client and organization, docs/decisions.md#certificate-binding), the client is
  registered, active and still linked to that organization (RFC 8705 §2: "directly or
  indirectly" matching);
- the QWAC carries the PSD2 role of the pair (ETSI TS 119 495 §5.1)

(these conditions live in `stetgate.oauth.refreshable`, beside their Python twin that explains
a refusal), and when all hold, in the same statement: new access-token digest (the previous
token dies at once), its expiry (never after the refresh token's), ``cnf`` = the presenting
QWAC's thumbprint (RFC 8705 §3), scope reduced to the role (``extended_transaction_history`` is
dropped on refresh), ``last_used_at``; with rotation on, the new refresh digest and the old one
kept as ``previous_refresh_hash`` for reuse detection (OAuth 2.1 §6.1). The ``token_refreshed``
audit row is written by the database from the updated row, atomically with it: on PostgreSQL by
a data-modifying CTE of the same statement, on SQLite by an ``INSERT … SELECT`` in the same
transaction. When the statement matches nothing, the caller looks at the row with ordinary
queries to say precisely why (`stetgate.oauth.refresh`, with
`stetgate.oauth.refreshable.refreshable_by`).

Group commit. Refreshes that reach a worker in the same event-loop turn run in one transaction
(`RefreshStore.refresh_soon`): one ``BEGIN IMMEDIATE … COMMIT`` on SQLite, one libpq pipeline
(one round trip, one implicit transaction, one WAL flush) on PostgreSQL. Each response leaves
only after the commit holding its refresh. This is what carries the product bar: measured on
the 2-core box with ``benchmarks/refresh_grants.py`` (2 workers), SQLite went from ~4,000 to
~7,300 refreshes/s and PostgreSQL (full ``synchronous_commit``) from ~2,000 to ~3,900.

Why the statements are compiled once and run on the DBAPI cursor: they are SQLAlchemy Core
constructs over `stetgate.store.schema` (so columns and types are checked), compiled once per
engine (`stetgate.store.compiled.CompiledStatement`); executing them through the DBAPI
connection skips SQLAlchemy's per-execution context set-up, which measured 2–3× the cost of
the SQLite statement itself (≈200 µs vs ≈85 µs per refresh on this box). Values go through the
same type processors SQLAlchemy would apply (`UtcDateTime` storage on each dialect), so the
rows are identical to Core-written ones.
"""

from __future__ import annotations

import asyncio
import threading
import time
import weakref
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, String, bindparam, case, event, insert, literal, select, update
from sqlalchemy.pool import PoolProxiedConnection

from stetgate.oauth.refreshable import (
    NOW,
    REFRESHABLE_BY_SQL,
    Presenter,
    RefreshLimits,
    statement_parameters,
)
from stetgate.store.audit_events import TOKEN_REFRESHED
from stetgate.store.compiled import CompiledStatement
from stetgate.store.db import restart_statement_clock, unavailable
from stetgate.store.liveness import connection_is_stale
from stetgate.store.schema import UtcDateTime, audit_events, grants
from stetgate.store.sqlite_writes import FIRST_PAUSE_SECONDS, begin_immediate, write_gate

_ACCESS_EXPIRES = bindparam("access_expires_at", type_=UtcDateTime())
_REQUEST_ID = bindparam("request_id", type_=String())


@dataclass(frozen=True, slots=True)
class RefreshedAccess:
    """What the hot statement returns when the refresh succeeded."""

    grant_id: str
    psu_id: str
    role: str
    access_expires_at: datetime


@dataclass(frozen=True, slots=True)
class RefreshJob:
    """One refresh's statement parameters, already in the driver's shape."""

    parameters: Any
    request_id: str | None


@dataclass
class _LoopQueue:
    """Refreshes waiting for the next batch on one event loop, and the task flushing them."""

    waiting: list[tuple[RefreshJob, asyncio.Future[RefreshedAccess | None]]] = field(
        default_factory=list
    )
    flusher: asyncio.Task[None] | None = None


def _refresh_update(rotate: bool, returning: tuple[str, ...]) -> Any:
    """``UPDATE grants SET … WHERE <every refresh rule> RETURNING …`` (see module docstring);
    the rules are `stetgate.oauth.refreshable.REFRESHABLE_BY_SQL`."""
    values: dict[str, Any] = {
        "access_hash": bindparam("access_hash", type_=String()),
        "access_expires_at": case(
            (grants.c.refresh_expires_at < _ACCESS_EXPIRES, grants.c.refresh_expires_at),
            else_=_ACCESS_EXPIRES,
        ),
        "access_cnf": bindparam("access_cnf", type_=String()),
        "access_scope": grants.c.role,
        "last_used_at": NOW,
    }
    if rotate:
        values["refresh_hash"] = bindparam("new_refresh_hash", type_=String())
        values["previous_refresh_hash"] = grants.c.refresh_hash
    return (
        update(grants)
        .where(
            grants.c.refresh_hash == bindparam("refresh_hash", type_=String()),
            *REFRESHABLE_BY_SQL,
        )
        .values(**values)
        .returning(*(grants.c[name] for name in returning))
    )


_RETURNED = ("id", "psu_id", "role", "access_expires_at")
"""What the caller gets back (`RefreshedAccess`)."""
_AUDITED = (*_RETURNED, "client_id", "org_id", "last_used_at")
"""What the audit row is made of, when it is written from the statement's own result."""
_AUDIT_COLUMNS = ["at", "event", "client_id", "org_id", "psu_id", "request_id", "detail"]

BUSY_WAIT_SECONDS = 30.0
"""How long a SQLite writer waits for another worker's write transaction by default (the app
passes its ``db_lock_timeout_ms``)."""


def _audit_from(source: Any) -> Any:
    """``INSERT INTO audit_events … SELECT … FROM <the refreshed row>``: the audit row is
    written by the database from the row it just updated, in the same transaction."""
    return insert(audit_events).from_select(
        _AUDIT_COLUMNS,
        select(
            source.c.last_used_at,
            literal(TOKEN_REFRESHED, String()),
            source.c.client_id,
            source.c.org_id,
            source.c.psu_id,
            _REQUEST_ID,
            literal('{"grant_id":"', String()) + source.c.id + literal('"}', String()),
        ),
    )


class RefreshStore:
    """The compiled refresh statement(s) of one engine, and the connection that runs them.

    Refreshes are grouped into batches, one transaction each (`refresh_soon`). The store
    keeps one DBAPI connection for itself (one batch runs at a time, so one is enough): no
    pool checkout, reset or PostgreSQL pre-ping per request.
    The connection is dropped after any error (the next call takes a fresh one) and closed
    when the engine is disposed. On SQLite a batch queues on the process's write gate with the
    other writers, then retries ``BEGIN IMMEDIATE`` from 50 µs (`stetgate.store.sqlite_writes`)
    rather than SQLite's busy handler, whose first back-off is 1 ms: with several workers,
    write transactions of ~50 µs collide often; all within ``lock_wait_seconds``.
    A batch that times out (statement or lock timeout, `stetgate.store.db.Timeouts`) fails
    each of its callers with `DatabaseTimeout`, one that finds the database unreachable with
    `DatabaseUnavailable`. On PostgreSQL the kept connection is checked before each batch
    (`stetgate.store.liveness.connection_is_stale`, one non-blocking poll, no round trip):
    one the server ended (restart, ``pg_terminate_backend``) is replaced before it fails.
    """

    def __init__(
        self,
        engine: Engine,
        *,
        rotate: bool,
        limits: RefreshLimits,
        lock_wait_seconds: float = BUSY_WAIT_SECONDS,
    ) -> None:
        self.engine = engine
        self.rotate = rotate
        self.limits = limits
        self.lock_wait_seconds = lock_wait_seconds
        dialect = engine.dialect
        self._sqlite = dialect.name == "sqlite"
        if self._sqlite:
            self._update = CompiledStatement(_refresh_update(rotate, _RETURNED), dialect)
            by_id = select(grants).where(grants.c.id == bindparam("grant_id", type_=String()))
            self._audit = CompiledStatement(_audit_from(by_id.subquery()), dialect)
        else:
            refreshed = _refresh_update(rotate, _AUDITED).cte("refreshed")
            self._update = CompiledStatement(
                select(*(refreshed.c[name] for name in _RETURNED)).add_cte(
                    _audit_from(refreshed).cte("audited")
                ),
                dialect,
            )
        self._lock = threading.Lock()
        self._raw: PoolProxiedConnection | None = None
        self._cursor: Any = None
        self._queues: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _LoopQueue] = (
            weakref.WeakKeyDictionary()
        )
        self._executor: ThreadPoolExecutor | None = None
        event.listen(engine, "engine_disposed", self._on_engine_disposed)

    def job(
        self,
        *,
        refresh_hash: str,
        presenter: Presenter,
        now: datetime,
        access_hash: str,
        access_expires_at: datetime,
        access_cnf: str,
        request_id: str | None,
        new_refresh_hash: str | None = None,
    ) -> RefreshJob:
        """One refresh of the pair holding ``refresh_hash`` by ``presenter`` at ``now``, ready
        to run (`refresh` now, or `refresh_soon` with others)."""
        if self.rotate != (new_refresh_hash is not None):
            raise ValueError("new_refresh_hash must be given exactly when rotation is on")
        values = statement_parameters(presenter, now, self.limits)
        values["refresh_hash"] = refresh_hash
        values["access_hash"] = access_hash
        values["access_expires_at"] = access_expires_at
        values["access_cnf"] = access_cnf
        values["request_id"] = request_id
        if new_refresh_hash is not None:
            values["new_refresh_hash"] = new_refresh_hash
        return RefreshJob(self._update.parameters(values), request_id)

    def refresh(self, job: RefreshJob) -> RefreshedAccess | None:
        """Run one refresh now; None when any rule fails (nothing changed then)."""
        return self._run_batch([job])[0]

    async def refresh_soon(self, job: RefreshJob) -> RefreshedAccess | None:
        """Run the refresh in the next group commit and return its own result.

        The first refresh of an event-loop turn starts a flush task; those submitted in the
        same turn join its batch. The batch runs on the store's database thread, so the loop
        goes on parsing requests while the database works (libpq's round trip and WAL flush;
        on SQLite, waiting for another worker's write lock), and refreshes arriving meanwhile
        form the next batch: the busier the worker, the larger the batches. (Running SQLite
        batches inline saved a thread hop but spun on the loop with ``time.sleep`` whenever
        another worker held the write lock.) Every response leaves only after the commit that
        holds its refresh, so nothing is acknowledged before the database made it durable
        (as durable as its own commit is)."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[RefreshedAccess | None] = loop.create_future()
        queue = self._queues.get(loop)
        if queue is None:
            queue = self._queues[loop] = _LoopQueue()
        queue.waiting.append((job, future))
        if queue.flusher is None:
            queue.flusher = loop.create_task(self._flush(loop, queue))
        return await future

    async def _flush(self, loop: asyncio.AbstractEventLoop, queue: _LoopQueue) -> None:
        try:
            while queue.waiting:
                batch, queue.waiting = queue.waiting, []
                jobs = [job for job, _ in batch]
                try:
                    results = await loop.run_in_executor(self._thread(), self._run_batch, jobs)
                except Exception as exc:  # the batch was rolled back: each caller sees why
                    exc = unavailable(exc) or exc
                    for _, future in batch:
                        if not future.done():
                            future.set_exception(exc)
                    continue
                for (_, future), result in zip(batch, results, strict=True):
                    if not future.done():
                        future.set_result(result)
        finally:
            queue.flusher = None

    def _thread(self) -> ThreadPoolExecutor:
        with self._lock:
            if self._executor is None:
                self._executor = ThreadPoolExecutor(1, thread_name_prefix="stetgate-refresh")
            return self._executor

    def _run_batch(self, jobs: list[RefreshJob]) -> list[RefreshedAccess | None]:
        with self._lock:
            raw = self._raw
            if raw is not None and not self._sqlite and connection_is_stale(raw.driver_connection):
                self._drop()  # ended by a restart: replaced before it fails a batch
            cursor = self._cursor if self._raw is not None else self._connect()
            assert self._raw is not None
            restart_statement_clock(self._raw.info)
            try:
                if self._sqlite:
                    fetched = self._run_sqlite(cursor, jobs)
                else:
                    fetched = self._run_postgresql(cursor, jobs)
            except BaseException:
                self._drop()
                raise
        return [None if raw is None else self._refreshed(raw) for raw in fetched]

    def _refreshed(self, raw: Any) -> RefreshedAccess:
        row = self._update.row(raw)
        return RefreshedAccess(
            grant_id=row[0], psu_id=row[1], role=row[2], access_expires_at=row[3]
        )

    def _run_sqlite(self, cursor: Any, jobs: list[RefreshJob]) -> list[Any]:
        # This process's other writers first (`stetgate.store.sqlite_writes`), then the
        # other workers' (the 50 µs retry loop below).
        gate = write_gate(self.engine)
        started = time.monotonic()
        gate.enter(self.lock_wait_seconds)
        try:
            begin_immediate(
                cursor,
                self.lock_wait_seconds - (time.monotonic() - started),
                longest_pause=FIRST_PAUSE_SECONDS,
            )
            return self._run_sqlite_transaction(cursor, jobs)
        finally:
            gate.leave()

    def _run_sqlite_transaction(self, cursor: Any, jobs: list[RefreshJob]) -> list[Any]:
        results: list[Any] = []
        try:
            for job in jobs:
                cursor.execute(self._update.sql, job.parameters)
                fetched = cursor.fetchone()
                if fetched is not None:
                    cursor.fetchall()  # let the UPDATE … RETURNING statement finish
                    cursor.execute(
                        self._audit.sql,
                        self._audit.parameters(
                            {"request_id": job.request_id, "grant_id": fetched[0]}
                        ),
                    )
                results.append(fetched)
            cursor.execute("COMMIT")
        except BaseException:
            cursor.execute("ROLLBACK")
            raise
        return results

    def _run_postgresql(self, cursor: Any, jobs: list[RefreshJob]) -> list[Any]:
        if len(jobs) == 1:
            cursor.execute(self._update.sql, jobs[0].parameters)
            return [cursor.fetchone()]
        # Pipeline mode (libpq): the statements go out together and, in autocommit mode,
        # form one implicit transaction up to the Sync sent when the block ends — one round
        # trip and one WAL flush for the whole batch.
        assert self._raw is not None
        connection: Any = self._raw.driver_connection
        cursors = []
        with connection.pipeline():
            for job in jobs:
                batch_cursor = connection.cursor()
                batch_cursor.execute(self._update.sql, job.parameters)
                cursors.append(batch_cursor)
        return [batch_cursor.fetchone() for batch_cursor in cursors]

    def _connect(self) -> Any:
        raw = self.engine.raw_connection()
        cursor = raw.cursor()
        if self._sqlite:
            cursor.execute("PRAGMA busy_timeout = 0")
        else:
            # One statement in autocommit mode: one round trip, atomic by itself.
            driver: Any = raw.driver_connection
            driver.autocommit = True
        self._raw, self._cursor = raw, cursor
        return cursor

    def _drop(self) -> None:
        """Forget the connection (it is closed, never returned to the pool with our
        settings)."""
        raw, self._raw, self._cursor = self._raw, None, None
        if raw is not None:
            raw.invalidate()

    def _on_engine_disposed(self, engine: Engine) -> None:
        with self._lock:
            self._drop()
            executor, self._executor = self._executor, None
        if executor is not None:
            executor.shutdown(wait=False)


__all__ = ["RefreshJob", "RefreshStore", "RefreshedAccess"]
