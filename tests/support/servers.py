"""Servers the tests start in-process or beside it: a free port, and a uvicorn server on a
background thread (so the test keeps the app, its clock and its services in reach)."""

from __future__ import annotations

import asyncio
import socket
import threading
import time

import uvicorn


def free_port() -> int:
    """A port nothing listens on now, on 127.0.0.1 (tests bind to the loopback only)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def bound_socket() -> socket.socket:
    """A TCP socket bound to an ephemeral port of 127.0.0.1, for uvicorn to serve on (no race
    between choosing the port and binding it)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    return sock


def serve_in_thread(
    config: uvicorn.Config, sock: socket.socket, what: str
) -> tuple[uvicorn.Server, threading.Thread]:
    """Run ``config`` on ``sock`` in a daemon thread; return once it serves (10 s at most)."""
    server = uvicorn.Server(config)
    server.install_signal_handlers = lambda: None  # type: ignore[method-assign]
    thread = threading.Thread(target=lambda: asyncio.run(server.serve(sockets=[sock])), daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError(f"{what} did not start")
        time.sleep(0.01)
    return server, thread
