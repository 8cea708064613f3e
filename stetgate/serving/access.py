"""The access line, the request metrics and the PSD2 statistics: one ASGI middleware,
outermost in `create_app`.

Per request it reads the monotonic clock twice and wraps ``send`` once to note the status the
app answers; when the answer is done it records the latency histogram
(`stetgate.observability.metrics.observe_request`), hands the request to the statistics
recorder when one is wired (`RequestCounts`, implemented by
`stetgate.statistics.recorder.StatisticsRecorder`) and writes one structured line to the
``stetgate.access`` logger (`stetgate.observability.logs`):

``{"event": "request", "request_id", "method", "endpoint", "status", "duration_ms",
"client_id", "org_id"}``

``endpoint`` is the template of the route that answered (``/stet/psd2/v1.4.2/accounts/
{accountResourceId}/transactions``), never the raw path: a label of bounded cardinality, and
no path parameter, query string (the ``code`` and ``state`` of a callback, an ``/authorize``
request) or fragment in a line. ``request_id`` is the ``X-Request-ID`` when well formed
(`stetgate.serving.request_id` rules: visible ASCII, 100 characters), ``client_id`` and
``org_id`` are those of the authenticated TPP, noted on the scope by the code that
authenticated it (`note_caller`) — never a value the client merely claimed.

Why one middleware: each stacked ASGI middleware costs the refresh grant a coroutine, a
``send`` closure and an extra hop for every message; access line, metrics and statistics
were two of them with two pairs of clock reads (docs/performance-notes.md, "What the
operations features cost the refresh grant").
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from typing import Any, Protocol

from starlette.routing import Mount

from stetgate.observability.logs import ACCESS_LOGGER
from stetgate.observability.metrics import observe_request
from stetgate.serving.request_id import REQUEST_ID_PATTERN

ASGIApp = Any

CALLER_KEY = "stetgate.caller"
"""Scope key of the authenticated caller: ``(client_id, org_id)``, either may be None."""

ACCESS_FIELDS = frozenset(
    ("event", "request_id", "method", "endpoint", "status", "duration_ms", "client_id", "org_id")
)
"""The fields of an access line (docs/operations.md#logs)."""

UNMATCHED = "unmatched"
"""``endpoint`` of a request no route answered (404): the raw path is never a label."""

_log = logging.getLogger(ACCESS_LOGGER)


def note_caller(
    scope: Mapping[str, Any], *, client_id: str | None = None, org_id: str | None = None
) -> None:
    """Record who the authenticated TPP is, for the access line. Called where the identity is
    established (the QWAC validated, the access token resolved)."""
    known = scope.get(CALLER_KEY) or (None, None)
    caller = (client_id or known[0], org_id or known[1])
    scope[CALLER_KEY] = caller  # type: ignore[index]  # the ASGI scope is a dict


def endpoint_of(scope: Mapping[str, Any]) -> str:
    """The template of the route that answered, with the prefix of the `Mount` it sits in (the
    resource API is a router mounted at ``/stet/psd2/v1.4.2``: Starlette leaves the inner route
    in ``scope["route"]`` and the mount's path in ``root_path``); ``unmatched`` without one.
    stetgate's mounts have constant paths, so the prefix is a template too."""
    route = scope.get("route")
    path = getattr(route, "path", None)
    if not isinstance(path, str):
        return UNMATCHED
    root: str = scope.get("root_path", "")
    base: str = scope.get("app_root_path", root)
    prefix = root[len(base) :]
    return prefix if isinstance(route, Mount) else prefix + path


def _request_id(scope: Mapping[str, Any]) -> str | None:
    for name, value in scope.get("headers", ()):
        if name == b"x-request-id":
            text = value.decode("latin-1")
            return text if REQUEST_ID_PATTERN.fullmatch(text) else None
    return None


class RequestCounts(Protocol):
    """Where the access middleware hands each answered request of a counted family (the PSD2
    statistics, `stetgate.statistics.recorder.StatisticsRecorder`)."""

    @property
    def started(self) -> bool: ...

    def start(self) -> None:
        """Start background work on the running loop (first request without lifespan)."""

    def family_of(self, path: str) -> str | None:
        """The family ``path`` is counted in, or None when it is not counted."""

    def record(self, family: str, status: int, seconds: float) -> None:
        """One answered request of ``family``."""


class AccessObserver:
    """Times every HTTP request; when the answer is sent: latency histogram (``metrics``),
    statistics (``statistics``, for a counted family) and access line (``log_requests``).

    An exception before any answer is a 500 for the histogram and the line (the server error
    middleware outside answers it so) and for the statistics; a request that ends without an
    answer and without an exception (a cancelled one) is left out of the statistics."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        log_requests: bool = True,
        statistics: RequestCounts | None = None,
        metrics: bool = True,
    ) -> None:
        self.app = app
        self.log_requests = log_requests
        self.statistics = statistics
        self.metrics = metrics

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        statistics = self.statistics
        family = None
        if statistics is not None:
            if not statistics.started:
                statistics.start()
            family = statistics.family_of(scope["path"])
        started = time.perf_counter()
        status = 0

        async def noting_status(message: dict[str, Any]) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, noting_status)
        except Exception:
            status = status or 500
            raise
        finally:
            seconds = time.perf_counter() - started
            if family is not None and status:
                statistics.record(family, status, seconds)  # type: ignore[union-attr]
            self._observed(scope, status or 500, seconds)

    def _observed(self, scope: dict[str, Any], status: int, seconds: float) -> None:
        if not (self.metrics or self.log_requests):
            return
        endpoint = endpoint_of(scope)
        method = scope["method"]
        if self.metrics:
            observe_request(method, endpoint, status, seconds)
        if self.log_requests and _log.isEnabledFor(logging.INFO):
            client_id, org_id = scope.get(CALLER_KEY) or (None, None)
            _log.info(
                "request",
                extra={
                    "fields": {
                        "event": "request",
                        "request_id": _request_id(scope),
                        "method": method,
                        "endpoint": endpoint,
                        "status": status,
                        "duration_ms": round(seconds * 1000, 3),
                        "client_id": client_id,
                        "org_id": org_id,
                    }
                },
            )
