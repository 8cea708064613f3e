"""Per-request cost of the access middleware (`stetgate.serving.access`): latency
histogram in prometheus-client's multiprocess mode plus one JSON access line, measured on an
in-process ASGI call to a one-route Starlette app, with and without the middleware.

    .venv/bin/python benchmarks/access_overhead.py [--calls 50000]

Prints CPU µs per call for: the bare app, + metrics only (access lines off), + metrics and the
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
    """CPU time of this process per call (not wall time: on a shared machine the CPU time is
    what other processes disturb least)."""
    started = time.process_time()
    for _ in range(calls):
        await app(dict(_SCOPE), _receive, _send)
    return (time.process_time() - started) / calls * 1e6


def _log_to_devnull(formatter: logging.Formatter) -> None:
    handler = logging.StreamHandler(open(os.devnull, "w"))  # noqa: SIM115 - lives until exit
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.INFO)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--calls", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    variants = {
        "bare app": (_app([]), JsonFormatter()),
        "+ metrics (access line off)": (
            _app([Middleware(AccessObserver, log_requests=False)]),
            JsonFormatter(),
        ),
        "+ metrics + JSON access line": (_app([Middleware(AccessObserver)]), JsonFormatter()),
        "+ metrics + text access line": (_app([Middleware(AccessObserver)]), TextFormatter()),
    }
    best = dict.fromkeys(variants, float("inf"))
    for round_ in range(args.rounds + 1):  # the variants interleaved; round 0 warms up
        for name, (app, formatter) in variants.items():
            _log_to_devnull(formatter)
            took = asyncio.run(_per_call_us(app, args.calls))
            if round_:
                best[name] = min(best[name], took)
    bare = best["bare app"]
    print(f"python {sys.version.split()[0]}, CPU µs per request, best of {args.rounds} rounds")
    for name, took in best.items():
        extra = "" if name == "bare app" else f"  (+{took - bare:.2f})"
        print(f"  {name:32} {took:7.2f}{extra}")


if __name__ == "__main__":
    main()
