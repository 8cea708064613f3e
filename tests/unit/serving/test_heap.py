"""Worker heap settings: the start-up heap leaves the collector's scans, young collections are
rarer, and glibc's mmap threshold is pinned (see `stetgate.serving.heap` for the measurements)."""

from __future__ import annotations

import gc
import sys
from collections.abc import Iterator

import pytest

from stetgate.serving import heap


@pytest.fixture
def restored_gc() -> Iterator[None]:
    threshold = gc.get_threshold()
    yield
    gc.unfreeze()
    gc.set_threshold(*threshold)


def test_settling_freezes_the_heap_and_raises_the_young_threshold(restored_gc: None) -> None:
    heap.settle_after_start()
    assert gc.get_freeze_count() > 0
    assert gc.get_threshold() == (
        heap.GEN0_THRESHOLD,
        heap.GEN1_THRESHOLD,
        heap.GEN2_THRESHOLD,
    )


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt")
def test_the_mmap_threshold_is_pinned_on_glibc() -> None:
    assert heap.pin_mmap_threshold() is True


def test_an_allocation_above_the_threshold_is_given_back() -> None:
    """After the pin, a freed 19 MiB block (an argon2id check's) leaves the process."""
    heap.pin_mmap_threshold()
    with open("/proc/self/statm") as statm:
        before = int(statm.read().split()[1])
    for _ in range(3):
        block = bytearray(19 * 1024 * 1024)
        del block
    with open("/proc/self/statm") as statm:
        after = int(statm.read().split()[1])
    page = 4096
    assert (after - before) * page < 8 * 1024 * 1024
