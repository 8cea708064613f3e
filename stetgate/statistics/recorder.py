"""Recording while serving: an ASGI middleware counting in memory, and a background task per
worker that probes availability and adds the counts to the database.

Why in memory: the refresh grant serves >10,000 requests/s on two cores and signed
``GET /accounts`` >3,000/s; a database write per request would cost more than the request.
The app's access middleware (`stetgate.serving.access.AccessObserver`, which also writes the
access line and the request metrics; `RequestStatistics` alone in tests) classifies the path
(`stetgate.statistics.families`), times the request with ``time.perf_counter`` and the
recorder adds one count, its duration and one histogram count to
dictionaries keyed by (minute, family, status class) — a few microseconds under one
uncontended lock. Every ``statistics_flush_seconds`` the worker's task swaps the
dictionaries out and adds them to the per-minute rows (`stetgate.statistics.store`) through
the blocking pool (`stetgate.serving.blocking`); it flushes once more at shutdown (the app's
lifespan, or `StatisticsRecorder.close`). A worker killed outright loses at most one flush
interval of counts; its probes stop too, so those minutes count as down
(`stetgate.statistics.availability`).

The minute comes from the injected clock, the duration from the monotonic counter: tests move
minutes without sleeping, and a clock step never makes a negative response time.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Awaitable, Callable
from typing import Final

from sqlalchemy import Engine, text
from starlette.types import ASGIApp

from stetgate.clock import Clock
from stetgate.serving.access import AccessObserver
from stetgate.serving.blocking import BlockingCalls
from stetgate.statistics.availability import (
    PROBE_TIMEOUT_SECONDS,
    FailureRuns,
    request_failed,
)
from stetgate.statistics.counts import MinuteCounts
from stetgate.statistics.families import INFORMATION_FAMILIES, EndpointFamilies
from stetgate.statistics.histogram import bucket_of
from stetgate.statistics.store import add_counts
from stetgate.store.db import read_connection

log = logging.getLogger(__name__)

BackendCheck = Callable[[], bool]
"""True while the core-banking backend is usable (e.g. its circuit breaker is not open)."""

NO_BACKEND_CHECK: Final[BackendCheck] = lambda: True  # noqa: E731 - the in-process bank


class StatisticsRecorder:
    """One worker's counts and its background probe/flush task (one per app)."""

    def __init__(
        self,
        engine: Engine,
        clock: Clock,
        blocking: BlockingCalls,
        families: EndpointFamilies,
        *,
        flush_seconds: float,
        probe_seconds: float,
        backend_available: BackendCheck = NO_BACKEND_CHECK,
    ) -> None:
        self.engine = engine
        self.clock = clock
        self.blocking = blocking
        self.families = families
        self.flush_seconds = flush_seconds
        self.probe_seconds = probe_seconds
        self.backend_available = backend_available
        self._lock = threading.Lock()
        self._counts = MinuteCounts()
        self._runs = FailureRuns()
        self._tasks: list[asyncio.Task[None]] = []
        self._closed = False
        self._write_lock = threading.Lock()

    # --- counting (event loop, per request) -----------------------------------------------
    def family_of(self, path: str) -> str | None:
        """The family a request to ``path`` is counted in (`EndpointFamilies.classify`)."""
        return self.families.classify(path)

    def _minute(self) -> int:
        return int(self.clock.now().timestamp()) // 60

    def record(self, family: str, status: int, seconds: float) -> None:
        """One answered request of ``family``."""
        minute = self._minute()
        duration_us = int(seconds * 1_000_000)
        bucket = bucket_of(duration_us)
        information = family in INFORMATION_FAMILIES
        failed = information and request_failed(status, seconds)
        with self._lock:
            self._counts.add_request(minute, family, status, duration_us, bucket)
            if information:
                for down in self._runs.observe(minute, failed):
                    self._counts.add_availability(down, runs=1)

    def record_probe(self, up: bool) -> None:
        minute = self._minute()
        with self._lock:
            self._counts.add_availability(minute, up=int(up), down=int(not up))

    # --- probing --------------------------------------------------------------------------
    def _probe(self) -> bool:
        """Blocking: the database answers a query and the backend is usable."""
        with read_connection(self.engine) as conn:
            conn.execute(text("SELECT 1"))
        return self.backend_available()

    async def probe(self) -> bool:
        """One availability sample for the current minute; a probe that raises or takes more
        than `PROBE_TIMEOUT_SECONDS` (a saturated pool, a hung database) is a down sample."""
        try:
            up = await asyncio.wait_for(self.blocking.run(self._probe), PROBE_TIMEOUT_SECONDS)
        except Exception as exc:  # any failure is the sample's answer: down
            log.warning("availability probe failed: %s", type(exc).__name__)
            up = False
        self.record_probe(up)
        return up

    # --- flushing -------------------------------------------------------------------------
    def _take(self) -> MinuteCounts:
        with self._lock:
            counts, self._counts = self._counts, MinuteCounts()
        return counts

    def _put_back(self, counts: MinuteCounts) -> None:
        with self._lock:
            counts.merge(self._counts)
            self._counts = counts

    def _write(self, counts: MinuteCounts) -> None:
        """Blocking: add ``counts`` in one transaction, or put them back when that fails —
        here on the writing thread, so a flush whose awaiting task was cancelled (shutdown)
        still keeps them."""
        try:
            with self._write_lock, self.engine.begin() as conn:
                add_counts(conn, counts)
        except Exception:
            self._put_back(counts)
            raise

    async def flush(self) -> None:
        """Add what was counted to the database; on failure keep it for the next flush."""
        counts = self._take()
        if not counts:
            return
        try:
            await self.blocking.run(self._write, counts)
        except Exception as exc:
            log.warning("statistics flush failed, kept for the next one: %s", type(exc).__name__)

    def flush_now(self) -> None:
        """`flush`, blocking, from a thread that is not the event loop (shutdown, tests)."""
        counts = self._take()
        if counts:
            self._write(counts)

    # --- background task ------------------------------------------------------------------
    @property
    def started(self) -> bool:
        return bool(self._tasks)

    def start(self) -> None:
        """Start probing and flushing on the running loop (at start-up, or by the first
        request when the server runs without lifespan events)."""
        if self._tasks or self._closed:
            return
        loop = asyncio.get_running_loop()
        self._tasks = [
            loop.create_task(self._every(self.probe_seconds, self.probe, at_once=True)),
            loop.create_task(self._every(self.flush_seconds, self.flush, at_once=False)),
        ]

    async def _every(
        self, seconds: float, step: Callable[[], Awaitable[object]], *, at_once: bool
    ) -> None:
        if not at_once:
            await asyncio.sleep(seconds)
        while not self._closed:
            await step()
            await asyncio.sleep(seconds)

    async def stop(self) -> None:
        """At shutdown: stop the task, then add the last counts."""
        tasks, self._tasks = self._tasks, []
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await self.flush()

    def close(self) -> None:
        """No more probes or flushes; the last counts are written (`Services.close`)."""
        self._closed = True
        try:
            self.flush_now()
        except Exception as exc:
            log.warning("last statistics flush failed: %s", type(exc).__name__)


class RequestStatistics(AccessObserver):
    """ASGI middleware counting the requests of the recorded families and nothing else (no
    access line, no request metrics): `AccessObserver` with only its statistics part. The
    app wires the statistics into its one `AccessObserver` instead (one ``send`` wrapper and
    one pair of clock reads per request for the access line, metrics and statistics)."""

    def __init__(self, app: ASGIApp, recorder: StatisticsRecorder) -> None:
        super().__init__(app, log_requests=False, statistics=recorder, metrics=False)
        self.recorder = recorder
