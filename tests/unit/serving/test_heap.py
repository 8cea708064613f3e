"""Worker heap settings: the start-up heap leaves the collector's scans and young collections
are rarer (see `stetgate.serving.heap` for the measurements)."""

from __future__ import annotations

import gc
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
