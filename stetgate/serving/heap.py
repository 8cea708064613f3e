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

Memory is not tuned here: glibc keeps freed large blocks (an argon2id check's 19 MiB) in the
heap of the thread that used it, which is bounded by running password checks on a pool of
their own (`stetgate.services.Services.password_checks`). Pinning glibc's mmap threshold
instead (every 19 MiB block mapped and unmapped per check) was measured and dropped: it kept
workers under 150 MiB too but added 13 ms of CPU to each 19–21 ms check (page faults).
"""

from __future__ import annotations

import gc

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


__all__ = ["settle_after_start"]
