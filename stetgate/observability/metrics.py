"""The Prometheus instruments stetgate records, and the one-line functions that record them.

`stetgate serve` runs several uvicorn worker processes, so the counters use prometheus-client's
multiprocess mode: each process writes its values to memory-mapped files in the folder named by
``PROMETHEUS_MULTIPROC_DIR``, and the metrics listener (`stetgate.serving.metrics_listener`)
adds the files of every worker up at each scrape. prometheus-client chooses file-backed or
in-memory values when it is imported, so it is imported here *lazily*, the first time
something is recorded — after `serve` has set the folder — never when stetgate is imported.
Without the variable (an app built in-process, the tests) the values live in memory, in
`registry()`.

Labels are bounded by the code, never by what a client sends: a route *template*, an OAuth
error code, a journey outcome, an exception class name. Recording costs a dictionary lookup and
one or two writes to a memory map, with no I/O; the two recorded on every request or grant —
the request histogram and the grant counters — are tallied in memory instead and written by a
flusher thread every second (`RequestTally`, `CounterTally`; docs/operations.md#metrics).
"""

from __future__ import annotations

import atexit
import bisect
import functools
import os
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Concatenate, Literal, ParamSpec, TypeVar

if TYPE_CHECKING:  # pragma: no cover - typing only
    from prometheus_client import CollectorRegistry

MULTIPROCESS_DIR_VARIABLE = "PROMETHEUS_MULTIPROC_DIR"

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
"""Seconds; the refresh grant answers in about a millisecond, a PSU page in tens."""

JOURNEY_AUTHORIZED = "authorized"
JOURNEY_REFUSED = "refused"
JOURNEY_FAILED = "failed"
JOURNEY_TIMEOUT = "timeout"
JOURNEY_BLOCKED = "blocked"
JOURNEY_OUTCOMES = (
    JOURNEY_AUTHORIZED,
    JOURNEY_REFUSED,
    JOURNEY_FAILED,
    JOURNEY_TIMEOUT,
    JOURNEY_BLOCKED,
)


class Instruments:
    """The metric objects of this process, and caches of their labelled children (the
    children are what a hot path touches: ``labels()`` itself takes a lock and builds a key)."""

    def __init__(self) -> None:
        from prometheus_client import CollectorRegistry, Counter, Histogram

        self.multiprocess = bool(os.environ.get(MULTIPROCESS_DIR_VARIABLE))
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.http_requests = Histogram(
            "stetgate_http_request_duration_seconds",
            "Time from the request reaching the app to the end of its answer, by route "
            "template and status (the _count series counts the requests).",
            ("method", "endpoint", "status"),
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.grants_issued = Counter(
            "stetgate_grants_issued",
            "Token endpoint answers with a token, by grant_type.",
            ("grant_type",),
            registry=r,
        )
        self.grants_refused = Counter(
            "stetgate_grants_refused",
            "Token endpoint refusals, by grant_type and OAuth error code (RFC 6749 §5.2).",
            ("grant_type", "error"),
            registry=r,
        )
        self.journeys = Counter(
            "stetgate_psu_journeys",
            "PSU authorization journeys that ended, by outcome.",
            ("outcome",),
            registry=r,
        )
        self.unattended_refusals = Counter(
            "stetgate_unattended_refusals",
            "Resource-API calls refused (429) by the unattended-access limit (RTS Art. 36(5)).",
            ("endpoint",),
            registry=r,
        )
        self.certificate_failures = Counter(
            "stetgate_certificate_failures",
            "Client certificates refused by the eIDAS checks, by reason.",
            ("reason",),
            registry=r,
        )
        self.backend_calls = Histogram(
            "stetgate_backend_call_duration_seconds",
            "Calls to the core-banking service over HTTP, by operation and outcome "
            "(ok, or the failure's class).",
            ("operation", "outcome"),
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.backend_errors = Counter(
            "stetgate_backend_call_errors",
            "Failed calls to the core-banking service, by operation and failure class.",
            ("operation", "error"),
            registry=r,
        )
        self._children: dict[tuple[Any, ...], Any] = {}

    def child(self, metric: Any, *labels: str) -> Any:
        """``metric.labels(*labels)``, cached: one dictionary lookup on later calls."""
        key = (id(metric), *labels)
        found = self._children.get(key)
        if found is None:
            found = self._children[key] = metric.labels(*labels)
        return found


_instruments: Instruments | None = None
_lock = threading.Lock()


def instruments() -> Instruments:
    """This process's instruments, built (and prometheus-client imported) on first use."""
    found = _instruments
    if found is None:
        found = _build()
    return found


def _build() -> Instruments:
    global _instruments
    with _lock:
        if _instruments is None:
            _instruments = Instruments()
        return _instruments


# --- what the code records -------------------------------------------------------------------
class _Tally(ABC):
    """Values added up in this process under one uncontended lock, and written to their
    prometheus-client instruments by a flusher thread every ``interval`` seconds, at exit, and
    whenever the in-memory `registry` is read. Subclasses say how pending values are written."""

    def __init__(self, interval: float = 1.0) -> None:
        self.interval = interval
        self._lock = threading.Lock()
        self._pending: dict[tuple[Any, ...], Any] = {}
        self._flusher: threading.Thread | None = None

    def flush(self) -> None:
        """Write what was added since the last flush."""
        with self._lock:
            pending, self._pending = self._pending, {}
        if pending:
            self._write(instruments(), pending)

    @abstractmethod
    def _write(self, m: Instruments, pending: dict[tuple[Any, ...], Any]) -> None:
        """Add ``pending`` to the instruments ``m`` (called without the lock held)."""

    def _start_flusher(self) -> None:
        """Called with the lock held, when the first key is added."""
        if self._flusher is not None:
            return

        def run() -> None:
            while True:
                time.sleep(self.interval)
                self.flush()

        self._flusher = threading.Thread(target=run, name="stetgate-metrics-flush", daemon=True)
        self._flusher.start()
        atexit.register(self.flush)


class RequestTally(_Tally):
    """The request histogram's observations, added up in this process and written to the
    histogram (its memory-mapped values, in multiprocess mode) by a flusher thread every
    ``interval`` seconds and at exit.

    Why not ``Histogram.observe`` per request: in multiprocess mode it writes the sum and a
    bucket to the memory map, each under prometheus-client's lock — ~4 µs on the event loop
    of every request, measured (benchmarks/access_overhead.py); here a request costs a
    `bisect` and two list updates under an uncontended lock. A scrape sees requests at most
    ``interval`` seconds late. The flush writes through the histogram child's ``_sum`` and
    ``_buckets`` values (prometheus-client has no public way to add many observations at
    once); tests/integration/test_observability.py reads the scraped histogram back."""

    def __init__(self, interval: float = 1.0) -> None:
        super().__init__(interval)
        self._bounds = (*LATENCY_BUCKETS, float("inf"))

    def add(self, method: str, endpoint: str, status: int, seconds: float) -> None:
        bucket = bisect.bisect_left(self._bounds, seconds) + 1
        key = (method, endpoint, status)
        with self._lock:
            row = self._pending.get(key)
            if row is None:
                row = self._pending[key] = [0.0] * (len(self._bounds) + 1)
                self._start_flusher()
            row[0] += seconds
            row[bucket] += 1

    def _write(self, m: Instruments, pending: dict[tuple[Any, ...], Any]) -> None:
        for (method, endpoint, status), row in pending.items():
            child = m.child(m.http_requests, method, endpoint, str(status))
            child._sum.inc(row[0])
            for index, count in enumerate(row[1:]):
                if count:
                    child._buckets[index].inc(count)


TalliedCounter = Literal["grants_issued", "grants_refused"]
"""The `Instruments` counters recorded through `CounterTally`."""


class CounterTally(_Tally):
    """Increments of the token endpoint's counters, added up in this process (a dictionary
    update under an uncontended lock) and written to the counters like `RequestTally`: in
    multiprocess mode ``Counter.inc`` is a memory-map write under prometheus-client's lock and a
    process-id check, ~2 µs on the event loop of every grant. A scrape sees them at most
    ``interval`` seconds late; the in-memory `registry` is exact (it flushes first)."""

    def add(self, counter: TalliedCounter, *labels: str) -> None:
        """One more for the `Instruments` counter named ``counter`` with ``labels``."""
        key = (counter, *labels)
        with self._lock:
            count = self._pending.get(key)
            if count is None:
                self._pending[key] = 1
                self._start_flusher()
            else:
                self._pending[key] = count + 1

    def _write(self, m: Instruments, pending: dict[tuple[Any, ...], Any]) -> None:
        for (counter, *labels), count in pending.items():
            m.child(getattr(m, counter), *labels).inc(count)


_requests = RequestTally()
_grants = CounterTally()


def registry() -> CollectorRegistry:
    """The in-memory registry (meaningful when not in multiprocess mode), with every tallied
    value written first."""
    flush_requests()
    return instruments().registry


def observe_request(method: str, endpoint: str, status: int, seconds: float) -> None:
    """One answered request (``stetgate_http_request_duration_seconds``), seen by a scrape
    within a second (`RequestTally`)."""
    _requests.add(method, endpoint, status, seconds)


def flush_requests() -> None:
    """Write the pending request observations and grant counts now (tests, and before a
    process exits)."""
    _requests.flush()
    _grants.flush()


def count_grant_issued(grant_type: str) -> None:
    """``stetgate_grants_issued_total``, within a second (`CounterTally`)."""
    _grants.add("grants_issued", grant_type)


def count_grant_refused(grant_type: str, error: str) -> None:
    """``stetgate_grants_refused_total``, within a second (`CounterTally`)."""
    _grants.add("grants_refused", grant_type, error)


def count_journey(outcome: str) -> None:
    m = instruments()
    m.child(m.journeys, outcome).inc()


def count_unattended_refusal(endpoint: str) -> None:
    m = instruments()
    m.child(m.unattended_refusals, endpoint).inc()


def count_certificate_failure(reason: str) -> None:
    m = instruments()
    m.child(m.certificate_failures, reason).inc()


def observe_backend_call(operation: str, seconds: float, error: str | None) -> None:
    m = instruments()
    m.child(m.backend_calls, operation, error or "ok").observe(seconds)
    if error is not None:
        m.child(m.backend_errors, operation, error).inc()


_S = TypeVar("_S")
_P = ParamSpec("_P")
_T = TypeVar("_T")


def timed_backend_call(
    answers: tuple[type[Exception], ...] = (),
) -> Callable[[Callable[Concatenate[_S, str, _P], _T]], Callable[Concatenate[_S, str, _P], _T]]:
    """Decorate a backend client's one call method ``(self, operation, …)``: its latency by
    operation and outcome, and its failures by exception class. An exception in ``answers``
    is the bank's business answer (an unknown account), counted as ``ok``."""

    def decorate(
        call: Callable[Concatenate[_S, str, _P], _T],
    ) -> Callable[Concatenate[_S, str, _P], _T]:
        @functools.wraps(call)
        def timed(self: _S, operation: str, /, *args: _P.args, **kwargs: _P.kwargs) -> _T:
            started = time.perf_counter()
            try:
                result = call(self, operation, *args, **kwargs)
            except answers:
                observe_backend_call(operation, time.perf_counter() - started, None)
                raise
            except Exception as exc:
                error = type(exc).__name__
                observe_backend_call(operation, time.perf_counter() - started, error)
                raise
            observe_backend_call(operation, time.perf_counter() - started, None)
            return result

        return timed

    return decorate
