"""Response-time histograms with fixed, log-spaced buckets.

Why buckets rather than the durations themselves: each worker counts in memory and adds its
counts to per-minute rows, and the report merges minutes into days and quarters across every
worker. Percentiles of merged data need mergeable summaries; a histogram with the same
bucket bounds everywhere merges by adding counts, exactly.

Bucket ``i`` holds durations in ``(BOUNDS_US[i-1], BOUNDS_US[i]]`` (bucket 0 from 0); the
bounds grow by 2^(1/4) from 100 µs, so a percentile read as its bucket's upper bound is at
most 19 % above the true value and never below it. The last bucket also takes everything
longer than its bound (about one hour: no request lives that long).
"""

from __future__ import annotations

import math
from bisect import bisect_left
from collections.abc import Iterable, Mapping
from typing import Final

BOUNDS_US: Final[tuple[int, ...]] = tuple(round(100 * 2 ** (i / 4)) for i in range(102))
"""Upper bounds in microseconds: 100 µs … ~4,000 s."""
LAST: Final = len(BOUNDS_US) - 1


def bucket_of(duration_us: int) -> int:
    """The bucket a duration falls in (negative durations count as 0)."""
    return min(bisect_left(BOUNDS_US, duration_us), LAST)


class LatencyHistogram:
    """Counts per bucket; `merge` adds another histogram's counts."""

    __slots__ = ("counts",)

    def __init__(self, counts: Mapping[int, int] | None = None) -> None:
        self.counts: dict[int, int] = {}
        if counts:
            for bucket, count in counts.items():
                self.add_bucket(bucket, count)

    @classmethod
    def of(cls, durations_us: Iterable[int]) -> LatencyHistogram:
        histogram = cls()
        for duration in durations_us:
            histogram.add_bucket(bucket_of(duration), 1)
        return histogram

    def add_bucket(self, bucket: int, count: int) -> None:
        if not 0 <= bucket <= LAST:
            raise ValueError(f"no latency bucket {bucket}")
        if count < 0:
            raise ValueError("a bucket count is never negative")
        if count:
            self.counts[bucket] = self.counts.get(bucket, 0) + count

    def merge(self, other: LatencyHistogram) -> None:
        for bucket, count in other.counts.items():
            self.add_bucket(bucket, count)

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    def percentile_us(self, q: float) -> int | None:
        """Nearest-rank percentile ``q`` (0 < q ≤ 1) as the upper bound of the bucket holding
        the ⌈q·n⌉-th smallest duration; None without any duration."""
        if not 0 < q <= 1:
            raise ValueError("q is in (0, 1]")
        total = self.total
        if total == 0:
            return None
        rank = max(1, math.ceil(q * total))
        seen = 0
        for bucket in sorted(self.counts):
            seen += self.counts[bucket]
            if seen >= rank:
                return BOUNDS_US[bucket]
        raise AssertionError("unreachable: rank ≤ total")
