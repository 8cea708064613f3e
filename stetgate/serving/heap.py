"""Garbage-collector settings for a serving worker.

Measured with ``benchmarks/refresh_grants.py --gc-probe`` (2 workers, 256 connections): full
(generation-2) collections of 70–205 ms, one every ~1.4 s per worker, 14 % of worker time in
GC, and the p999 was one full collection plus queueing. Two causes: the start-up heap
(~100 MB of SQLAlchemy, pyhanko, asn1crypto and cryptography objects, never garbage) is
scanned by every full collection, and with hundreds of requests in flight per-request objects
live long enough to be promoted and fill generation 2 quickly.

So, once the app is built: collect, then `gc.freeze` the survivors (they move to a permanent
generation the collector never scans, CPython ≥ 3.7) and raise the generation-0 threshold so
short-lived request objects die young in fewer, cheaper young collections. Reference cycles
are still collected; only how often and how much is scanned changes.

The price of rare young collections is that cyclic garbage (SQLAlchemy statements, exception
tracebacks) waits for them: a young collection comes after 50,000 *net* allocations of tracked
objects, and a worker serving a steady refresh load makes only ~3,000 a minute, so a worker went
~16 minutes between collections and its RSS grew by 170–380 KiB a minute meanwhile (the 30-minute
soak of docs/security.md#faults-and-fuzzing). `sweep_periodically` collects on a timer instead
(settings ``gc_sweep_seconds``, 60 by default): what it scans is the non-frozen heap only,
~5,000 live objects and a minute of garbage, 2–7 ms measured per sweep on this 2-core box.

Memory is not tuned here: glibc keeps freed large blocks (an argon2id check's 19 MiB) in the
heap of the thread that used it, which is bounded by running password checks on a pool of
their own (`stetgate.services.Services.password_checks`). Pinning glibc's mmap threshold
instead (every 19 MiB block mapped and unmapped per check) was measured and dropped: it kept
workers under 150 MiB too but added 13 ms of CPU to each 19–21 ms check (page faults).
"""

from __future__ import annotations

import asyncio
import gc
import logging

GEN0_THRESHOLD = 50_000
"""Allocations between young collections (CPython's default: 700)."""
GEN1_THRESHOLD = 20
GEN2_THRESHOLD = 50


def settle_after_start() -> None:
    """Freeze the start-up heap and set the serving thresholds (call once per worker, after
    `stetgate.app.create_app`)."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(GEN0_THRESHOLD, GEN1_THRESHOLD, GEN2_THRESHOLD)


log = logging.getLogger(__name__)


async def sweep_periodically(seconds: float) -> None:
    """Collect every ``seconds`` on the event loop until cancelled (a worker's lifespan).

    On the loop, not on a thread: finalizers of asyncio objects (transports, futures) then run
    where they expect to, and the pause (the scan above) is one short stop between requests.
    """
    while True:
        await asyncio.sleep(seconds)
        found = gc.collect()
        if found:
            log.debug("heap sweep: %d unreachable objects", found)


__all__ = ["settle_after_start", "sweep_periodically"]
