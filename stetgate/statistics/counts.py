"""`MinuteCounts`: what one worker counted since its last flush, keyed by epoch minute.

Only additions: the flush adds these counts to the database rows (`stetgate.statistics.store`),
and a flush that failed puts them back to be added with the next one, so nothing is lost or
counted twice while the database is away.
"""

from __future__ import annotations

from dataclasses import dataclass, field

RequestKey = tuple[int, str, int]
"""(epoch minute, family, status class 2..5)."""
LatencyKey = tuple[int, str, int]
"""(epoch minute, family, histogram bucket)."""


@dataclass
class MinuteCounts:
    requests: dict[RequestKey, list[int]] = field(default_factory=dict)
    """[requests, sum of response times in µs]."""
    latency: dict[LatencyKey, int] = field(default_factory=dict)
    availability: dict[int, list[int]] = field(default_factory=dict)
    """[probes up, probes down, failure runs]."""

    def __bool__(self) -> bool:
        return bool(self.requests or self.latency or self.availability)

    def add_request(
        self, minute: int, family: str, status: int, duration_us: int, bucket: int
    ) -> None:
        key = (minute, family, min(max(status // 100, 1), 5))
        entry = self.requests.get(key)
        if entry is None:
            self.requests[key] = [1, duration_us]
        else:
            entry[0] += 1
            entry[1] += duration_us
        latency_key = (minute, family, bucket)
        self.latency[latency_key] = self.latency.get(latency_key, 0) + 1

    def add_availability(self, minute: int, up: int = 0, down: int = 0, runs: int = 0) -> None:
        entry = self.availability.get(minute)
        if entry is None:
            self.availability[minute] = [up, down, runs]
        else:
            entry[0] += up
            entry[1] += down
            entry[2] += runs

    def merge(self, other: MinuteCounts) -> None:
        for key, (count, total_us) in other.requests.items():
            entry = self.requests.setdefault(key, [0, 0])
            entry[0] += count
            entry[1] += total_us
        for lkey, count in other.latency.items():
            self.latency[lkey] = self.latency.get(lkey, 0) + count
        for minute, (up, down, runs) in other.availability.items():
            self.add_availability(minute, up, down, runs)
