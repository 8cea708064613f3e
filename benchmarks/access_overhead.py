"""Per-request cost of the access middleware (`stetgate.serving.access`): latency
histogram in prometheus-client's multiprocess mode plus one JSON access line, measured on an
in-process ASGI call to a one-route Starlette app, with and without the middleware.

    .venv/bin/python benchmarks/access_overhead.py [--calls 50000]

Prints µs per call for: the bare app, + metrics only (access lines off), + metrics and the
JSON line (to /dev/null through a `logging.StreamHandler`, as `serve` writes to stderr), and
the same with the text format. The difference is what each request pays on the event loop.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
import tempfile
import time
from typing import Any

# Multiprocess mode, as under `stetgate serve`: set before prometheus-client is imported.
os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="stetgate-bench-metrics-")

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from stetgate.observability.logs import JsonFormatter, TextFormatter
from stetgate.serving.access import AccessObserver


async def _token(request: Request) -> Response:
    return Response(b'{"access_token":"x"}', media_type="application/json")


def _app(middleware: list[Middleware]) -> Starlette:
    return Starlette(
        routes=[Route("/stet/psd2/oauth/token", _token, methods=["POST"])], middleware=middleware
    )


_SCOPE: dict[str, Any] = {
    "type": "http",
    "asgi": {"version": "3.0"},
    "http_version": "1.1",
    "method": "POST",
    "scheme": "https",
    "path": "/stet/psd2/oauth/token",
    "raw_path": b"/stet/psd2/oauth/token",
    "query_string": b"",
    "root_path": "",
    "headers": [(b"host", b"bank"), (b"x-request-id", b"5f1c1f6e-1d3b-4b0e-9f43-2c1e2a0b7f11")],
    "client": ("127.0.0.1", 50000),
    "server": ("127.0.0.1", 8443),
}


async def _receive() -> dict[str, Any]:
    return {"type": "http.request", "body": b"", "more_body": False}


async def _send(message: dict[str, Any]) -> None:
    return None


async def _per_call_us(app: Starlette, calls: int) -> float:
    for _ in range(1000):  # warm-up: route children, label caches
        await app(dict(_SCOPE), _receive, _send)
    best = float("inf")
    for _ in range(5):
        started = time.perf_counter()
        for _ in range(calls):
            await app(dict(_SCOPE), _receive, _send)
        best = min(best, (time.perf_counter() - started) / calls * 1e6)
    return best


def _log_to_devnull(formatter: logging.Formatter) -> None:
    handler = logging.StreamHandler(open(os.devnull, "w"))  # noqa: SIM115 - lives until exit
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.INFO)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--calls", type=int, default=50_000)
    args = parser.parse_args()
    _log_to_devnull(JsonFormatter())
    bare = asyncio.run(_per_call_us(_app([]), args.calls))
    metrics = asyncio.run(
        _per_call_us(_app([Middleware(AccessObserver, log_requests=False)]), args.calls)
    )
    json_line = asyncio.run(_per_call_us(_app([Middleware(AccessObserver)]), args.calls))
    _log_to_devnull(TextFormatter())
    text_line = asyncio.run(_per_call_us(_app([Middleware(AccessObserver)]), args.calls))
    print(f"python {sys.version.split()[0]}, best of 5 × {args.calls} calls, µs per request")
    print(f"  bare app                         {bare:7.2f}")
    print(f"  + metrics (access line off)      {metrics:7.2f}  (+{metrics - bare:.2f})")
    print(f"  + metrics + JSON access line     {json_line:7.2f}  (+{json_line - bare:.2f})")
    print(f"  + metrics + text access line     {text_line:7.2f}  (+{text_line - bare:.2f})")


if __name__ == "__main__":
    main()
