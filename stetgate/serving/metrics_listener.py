"""The Prometheus listener: ``GET /metrics`` on its own plain-HTTP port, never the TPPs' port.

`stetgate serve` starts it in the supervising process, in a thread, before uvicorn starts the
workers (with ``--workers 1`` that process is also the worker; a scrape then costs that one
worker a few milliseconds every scrape interval). Why a separate listener rather than a route
of the app: the app's port is the one TPPs reach (mTLS, optional certificate), and the
counters describe every TPP's traffic; a listener bound to ``metrics_host`` (127.0.0.1 by
default) is reachable only by what the bank puts next to it. Why not the app's address
allow-list: behind a proxy the app sees the proxy's address for every caller.

Multiprocess mode (prometheus-client): `prepare_multiprocess_dir` empties the folder and sets
``PROMETHEUS_MULTIPROC_DIR`` before any worker starts (workers inherit it, and import
prometheus-client lazily, `stetgate.observability.metrics`); each scrape sums every worker's
files (`MultiProcessCollector`), so counters of a worker that exited stay counted. The
revocation-data age is computed at each scrape from the CRL folder
(`stetgate.eidas.crl_store`), by this process, against its clock.
"""

from __future__ import annotations

import atexit
import os
import shutil
import threading
from collections.abc import Callable, Iterator
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from stetgate.clock import Clock
from stetgate.eidas.crl_store import CrlSnapshot, CrlStore
from stetgate.observability.metrics import MULTIPROCESS_DIR_VARIABLE, registry
from stetgate.settings import Settings

METRICS_PATH = "/metrics"


def multiprocess_dir(settings: Settings) -> Path:
    return settings.data_dir / "run" / "prometheus"


def prepare_multiprocess_dir(path: Path) -> None:
    """An empty folder for this run's worker files, named in ``PROMETHEUS_MULTIPROC_DIR``
    (a previous run's files would add its counts to this one's)."""
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(parents=True)
    os.environ[MULTIPROCESS_DIR_VARIABLE] = str(path)


def forget_process_at_exit() -> None:
    """In a worker: on exit, drop its live-gauge files (prometheus-client's
    ``mark_process_dead``); its counters and histograms stay counted."""
    if not os.environ.get(MULTIPROCESS_DIR_VARIABLE):
        return
    from prometheus_client import multiprocess

    atexit.register(multiprocess.mark_process_dead, os.getpid())


class RevocationDataAge:
    """A collector: ``stetgate_revocation_data_age_seconds{crl}``, the time since each CRL's
    thisUpdate (RFC 5280 §5.1.2.4) — how stale the revocation data the validator uses is —
    and ``stetgate_revocation_data_next_update_seconds{crl}``, the time left until its
    nextUpdate (negative: overdue, validation then fails closed)."""

    def __init__(self, snapshot: Callable[[], CrlSnapshot], now: Callable[[], datetime]) -> None:
        self._snapshot = snapshot
        self._now = now

    def collect(self) -> Iterator[Any]:
        from prometheus_client.core import GaugeMetricFamily

        age = GaugeMetricFamily(
            "stetgate_revocation_data_age_seconds",
            "Seconds since the thisUpdate of each CRL in the CRL folder.",
            labels=("crl",),
        )
        left = GaugeMetricFamily(
            "stetgate_revocation_data_next_update_seconds",
            "Seconds until the nextUpdate of each CRL (negative when overdue).",
            labels=("crl",),
        )
        now = self._now()
        for info in self._snapshot().crls:
            name = Path(info.source).name
            age.add_metric((name,), (now - info.this_update).total_seconds())
            if info.next_update is not None:
                left.add_metric((name,), (info.next_update - now).total_seconds())
        yield age
        yield left


def scrape_registry(settings: Settings, clock: Clock) -> Any:
    """What a scrape reads: every worker's files (multiprocess mode) or this process's own
    instruments, and the revocation-data age."""
    from prometheus_client import CollectorRegistry
    from prometheus_client.multiprocess import MultiProcessCollector

    path = os.environ.get(MULTIPROCESS_DIR_VARIABLE)
    scraped = CollectorRegistry()
    if path:
        MultiProcessCollector(scraped, path)  # type: ignore[no-untyped-call]
    else:
        scraped.register(_Forwarding(registry()))
    store = CrlStore(settings.crl_path, poll_seconds=settings.crl_poll_seconds)
    scraped.register(RevocationDataAge(store.snapshot, clock.now))
    return scraped


class _Forwarding:
    """Collects another registry (the in-memory instruments of a single process)."""

    def __init__(self, source: Any) -> None:
        self._source = source

    def collect(self) -> Iterator[Any]:
        yield from self._source.collect()


class MetricsListener:
    """A small threaded HTTP server answering ``GET /metrics`` (and 404 to anything else)."""

    def __init__(self, host: str, port: int, scraped: Any) -> None:
        from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                if self.path.split("?", 1)[0] != METRICS_PATH:
                    self.send_error(404)
                    return
                body = generate_latest(scraped)
                self.send_response(200)
                self.send_header("Content-Type", CONTENT_TYPE_LATEST)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                """Scrapes are not logged (one line every interval, no information)."""

        self._server = ThreadingHTTPServer((host, port), Handler)
        self._server.daemon_threads = True
        self.port = int(self._server.server_address[1])
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="stetgate-metrics", daemon=True
        )

    def start(self) -> MetricsListener:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


def start_metrics_listener(settings: Settings, clock: Clock) -> MetricsListener | None:
    """The listener of `settings` (``metrics_port`` 0: none)."""
    if settings.metrics_port == 0:
        return None
    return MetricsListener(
        settings.metrics_host, settings.metrics_port, scrape_registry(settings, clock)
    ).start()
