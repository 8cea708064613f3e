"""Garbage-collector and allocator settings for a serving worker.

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

And glibc's allocator: a local argon2id check allocates 19 MiB. glibc serves a block that large
with ``mmap`` and gives it back on free — until the first such free, which raises its
"dynamic" mmap threshold above 19 MiB; from then on every check's 19 MiB comes from the heap
of whichever thread ran it and stays in the process. Measured on the whole cinematic (SQLite,
2 workers, 64 PSUs): workers grew to 177–197 MiB; with the threshold pinned at 1 MiB
(``mallopt(M_MMAP_THRESHOLD)``, which also stops the dynamic adjustment) they stayed at
126–145 MiB, under the 150 MiB budget.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import gc
import sys

GEN0_THRESHOLD = 50_000
"""Allocations between young collections (CPython's default: 700)."""
GEN1_THRESHOLD = 20
GEN2_THRESHOLD = 50


M_MMAP_THRESHOLD = -3
"""glibc's ``mallopt`` parameter number (malloc.h)."""
MMAP_THRESHOLD_BYTES = 1024 * 1024


def settle_after_start() -> None:
    """Freeze the start-up heap and set the serving thresholds (call once per worker, after
    `stetgate.app.create_app`)."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(GEN0_THRESHOLD, GEN1_THRESHOLD, GEN2_THRESHOLD)
    pin_mmap_threshold()


def pin_mmap_threshold() -> bool:
    """Large blocks always from ``mmap``, returned on free (glibc only; elsewhere a no-op).
    True when applied."""
    if not sys.platform.startswith("linux"):
        return False
    name = ctypes.util.find_library("c")
    if name is None:
        return False
    try:
        mallopt = ctypes.CDLL(name).mallopt
    except (OSError, AttributeError):  # not glibc (musl has no mallopt)
        return False
    return bool(mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES))


__all__ = ["settle_after_start"]
