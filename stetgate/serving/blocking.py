"""`BlockingCalls`: where a worker runs what would otherwise stall its event loop.

A uvicorn worker is one event loop serving every connection it accepted. A call that waits —
a database round trip, a lock held by another transaction, the bank's core banking, a
certificate path validation — made on that loop stops *every* request of the worker for as
long as it waits, TLS handshakes and ``/health/live`` included (measured before this module
existed: with a table lock held by an operator session, ``/health/live`` on the same worker
could not finish its handshake in 30 s; with 1 ms of database round trip, signed
``GET /accounts`` kept 24 % of its throughput).

So handlers do their waiting work in one synchronous function per request step and hand it to
`BlockingCalls.run`, which runs it on a bounded pool of threads and awaits the result. Why
threads rather than an async driver: stetgate's storage is synchronous SQLAlchemy Core (one
code path for SQLite and PostgreSQL, the compiled hot-path statements of
`stetgate.store.compiled`), the bank's ports (`stetgate.bank`) are plain synchronous
protocols a bank implements without asyncio, and the database drivers release the GIL while
they wait. One hop costs ~20–40 µs of CPU, paid once per request step, not per statement.

The pool is bounded (``db_threads``, no more than the database connections a worker may open,
so a thread never queues for a pooled connection while holding a slot): beyond it requests wait
their turn *on the loop*, cheaply, instead of piling threads onto two cores.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import ParamSpec, TypeVar

from stetgate.store.db import unavailable

P = ParamSpec("P")
T = TypeVar("T")


class BlockingCalls:
    """A bounded thread pool for one app's blocking work (one per worker process)."""

    def __init__(self, threads: int, *, name: str = "stetgate-blocking") -> None:
        if threads < 1:
            raise ValueError("threads must be at least 1")
        self.threads = threads
        self._executor = ThreadPoolExecutor(threads, thread_name_prefix=name)

    async def run(self, function: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        """``function(*args, **kwargs)`` on the pool; the loop serves others meanwhile.

        If the awaiting request is cancelled (client gone), the call still runs to its end on
        its thread — a database transaction is never abandoned half way — and its result is
        dropped; statement and lock timeouts (`stetgate.store.db`) bound how long that is.
        A database that timed out or is unreachable comes back as `DatabaseUnavailable`
        (`DatabaseTimeout` for a timeout): 503 with ``Retry-After`` at every boundary, never a
        500 with a traceback."""
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(
                self._executor, functools.partial(function, *args, **kwargs)
            )
        except Exception as exc:
            translated = unavailable(exc)
            if translated is None:
                raise
            raise translated from exc

    def close(self) -> None:
        """Let running calls finish, start no new ones (at shutdown)."""
        self._executor.shutdown(wait=False, cancel_futures=True)


__all__ = ["BlockingCalls"]
