"""Mergeable response-time histograms: percentiles against a sorted-list reference."""

from __future__ import annotations

import itertools
import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from stetgate.statistics.histogram import BOUNDS_US, LAST, LatencyHistogram, bucket_of

DURATIONS = st.lists(st.integers(min_value=0, max_value=4_000_000_000), min_size=1, max_size=300)
QUANTILES = st.sampled_from([0.01, 0.5, 0.9, 0.95, 0.99, 1.0]) | st.floats(
    min_value=1e-6, max_value=1.0
)


def reference(durations: list[int], q: float) -> int:
    """Nearest rank on the sorted durations."""
    ordered = sorted(durations)
    return ordered[max(1, math.ceil(q * len(ordered))) - 1]


@given(DURATIONS, QUANTILES)
def test_a_percentile_is_the_upper_bound_of_the_bucket_of_the_true_value(
    durations: list[int], q: float
) -> None:
    value = reference(durations, q)
    found = LatencyHistogram.of(durations).percentile_us(q)
    assert found == BOUNDS_US[bucket_of(value)]
    if value <= BOUNDS_US[-1]:
        assert value <= found  # never below the true value …
        assert found <= max(BOUNDS_US[0], value * 2 ** (1 / 4) + 1)  # … at most 19 % above


@given(DURATIONS, DURATIONS, QUANTILES)
def test_merged_histograms_give_the_percentiles_of_the_concatenated_durations(
    first: list[int], second: list[int], q: float
) -> None:
    merged = LatencyHistogram.of(first)
    merged.merge(LatencyHistogram.of(second))
    together = LatencyHistogram.of(first + second)
    assert merged.counts == together.counts
    assert merged.total == len(first) + len(second)
    assert merged.percentile_us(q) == BOUNDS_US[bucket_of(reference(first + second, q))]


def test_bucket_bounds_are_increasing_and_log_spaced() -> None:
    assert BOUNDS_US[0] == 100
    assert all(b < a for b, a in itertools.pairwise(BOUNDS_US))
    assert BOUNDS_US[-1] >= 3_600_000_000  # one hour
    for below, above in itertools.pairwise(BOUNDS_US):
        assert above / below == pytest.approx(2 ** (1 / 4), rel=0.01)


def test_bucket_edges_are_inclusive_above() -> None:
    assert bucket_of(0) == 0
    assert bucket_of(-5) == 0
    assert bucket_of(100) == 0
    assert bucket_of(101) == 1
    assert bucket_of(BOUNDS_US[10]) == 10
    assert bucket_of(BOUNDS_US[10] + 1) == 11
    assert bucket_of(10**12) == LAST


def test_an_empty_histogram_has_no_percentile() -> None:
    assert LatencyHistogram().percentile_us(0.5) is None
    assert LatencyHistogram({3: 0}).total == 0


@pytest.mark.parametrize("q", [0.0, -0.5, 1.01, float("nan")])
def test_a_quantile_outside_0_1_is_refused(q: float) -> None:
    with pytest.raises(ValueError):
        LatencyHistogram.of([1]).percentile_us(q)


@pytest.mark.parametrize(("bucket", "count"), [(-1, 1), (LAST + 1, 1), (0, -1)])
def test_a_bucket_that_does_not_exist_or_a_negative_count_is_refused(
    bucket: int, count: int
) -> None:
    with pytest.raises(ValueError):
        LatencyHistogram().add_bucket(bucket, count)
