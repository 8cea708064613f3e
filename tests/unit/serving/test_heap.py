"""Worker heap settings: the start-up heap leaves the collector's scans and young collections
are rarer (see `stetgate.serving.heap` for the measurements)."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import weakref
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


class _Node:
    """An object in a reference cycle: only the cyclic collector frees it."""

    def __init__(self) -> None:
        self.me = self


def _cycle() -> weakref.ref[_Node]:
    return weakref.ref(_Node())


@pytest.fixture
def collector_off() -> Iterator[None]:
    """No automatic collection: whatever frees a cycle here is the sweep."""
    enabled = gc.isenabled()
    gc.disable()
    yield
    if enabled:
        gc.enable()


async def _until_freed(ref: weakref.ref[_Node], limit: float) -> bool:
    deadline = asyncio.get_running_loop().time() + limit
    while ref() is not None and asyncio.get_running_loop().time() < deadline:
        await asyncio.sleep(0.005)
    return ref() is None


def test_a_cycle_outlives_its_last_reference_without_a_sweep(collector_off: None) -> None:
    """The premise of the sweep: with automatic collection off (as good as off at the serving
    thresholds under a steady load), a cycle stays in memory."""
    ref = _cycle()
    assert ref() is not None
    gc.collect()
    assert ref() is None


def test_the_periodic_sweep_frees_cycles_without_the_thresholds(collector_off: None) -> None:
    asyncio.run(_sweep_frees_cycles())


async def _sweep_frees_cycles() -> None:
    sweeper = asyncio.get_running_loop().create_task(heap.sweep_periodically(0.01))
    try:
        assert await _until_freed(_cycle(), limit=5.0)
        assert await _until_freed(_cycle(), limit=5.0), "a sweep runs again, not once"
    finally:
        sweeper.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await sweeper


def test_a_cancelled_sweep_collects_no_more(collector_off: None) -> None:
    asyncio.run(_cancelled_sweep())


async def _cancelled_sweep() -> None:
    sweeper = asyncio.get_running_loop().create_task(heap.sweep_periodically(0.01))
    await asyncio.sleep(0)
    sweeper.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await sweeper
    assert not await _until_freed(ref := _cycle(), limit=0.1)
    assert ref() is not None
    gc.collect()
