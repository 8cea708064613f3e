"""The figures of `stetgate report statistics`: per day and per quarter, per endpoint family.

The key performance indicators of EBA/GL/2018/07 guideline 2.2 (uptime and downtime per day,
`stetgate.statistics.availability` for when a minute is down) and 2.3 (response times per
type of request), plus what a compliance officer needs to read them: requests, 4xx and 5xx
answers and their rates, mean and nearest-rank p50/p95/p99 response times. Quarters are
clipped to the requested range (a report from 15 October shows Q4 from 15 October).

Only minutes that have elapsed by the report's ``now`` count towards availability: the
remainder of today is neither up nor down yet.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from stetgate.statistics.availability import MinuteSample, minute_is_down
from stetgate.statistics.families import FAMILIES
from stetgate.statistics.histogram import LatencyHistogram
from stetgate.statistics.periods import MINUTE, day_start, days, minute_of, quarters
from stetgate.statistics.store import LatencyRow, RequestRow

ALL = "all"
"""The pseudo-family summing the four families."""
PERCENTILES = (0.50, 0.95, 0.99)


@dataclass
class FamilyFigures:
    requests: int = 0
    responses_4xx: int = 0
    responses_5xx: int = 0
    latency_us: int = 0
    histogram: LatencyHistogram = field(default_factory=LatencyHistogram)

    def add(self, other: FamilyFigures) -> None:
        self.requests += other.requests
        self.responses_4xx += other.responses_4xx
        self.responses_5xx += other.responses_5xx
        self.latency_us += other.latency_us
        self.histogram.merge(other.histogram)

    def rate_percent(self, count: int) -> float | None:
        return None if self.requests == 0 else 100.0 * count / self.requests

    @property
    def mean_ms(self) -> float | None:
        return None if self.requests == 0 else self.latency_us / self.requests / 1000

    def percentile_ms(self, q: float) -> float | None:
        value = self.histogram.percentile_us(q)
        return None if value is None else value / 1000


@dataclass
class Availability:
    elapsed_minutes: int = 0
    down_minutes: int = 0

    def add(self, other: Availability) -> None:
        self.elapsed_minutes += other.elapsed_minutes
        self.down_minutes += other.down_minutes

    @property
    def uptime_percent(self) -> float | None:
        """GL 2.2(a): 100 % minus the downtime percentage; None before the period began."""
        if self.elapsed_minutes == 0:
            return None
        return 100.0 - 100.0 * self.down_minutes / self.elapsed_minutes

    @property
    def downtime_percent(self) -> float | None:
        if self.elapsed_minutes == 0:
            return None
        return 100.0 * self.down_minutes / self.elapsed_minutes


@dataclass
class PeriodStatistics:
    label: str
    first_day: date
    last_day: date
    families: dict[str, FamilyFigures]
    availability: Availability


@dataclass(frozen=True)
class StatisticsReport:
    first_day: date
    last_day: date
    generated_at: datetime
    daily: list[PeriodStatistics]
    quarterly: list[PeriodStatistics]


def _empty_families() -> dict[str, FamilyFigures]:
    return {family: FamilyFigures() for family in (*FAMILIES, ALL)}


def day_availability(
    day: date, samples: Mapping[datetime, MinuteSample], now: datetime
) -> Availability:
    """Elapsed and down minutes of one UTC day by ``now``."""
    start = day_start(day)
    end = min(start + timedelta(days=1), minute_of(now))
    result = Availability()
    minute = start
    while minute < end:
        result.elapsed_minutes += 1
        if minute_is_down(samples.get(minute)):
            result.down_minutes += 1
        minute += MINUTE
    return result


def build_report(
    first_day: date,
    last_day: date,
    requests: Iterable[RequestRow],
    latency: Iterable[LatencyRow],
    samples: Mapping[datetime, MinuteSample],
    now: datetime,
) -> StatisticsReport:
    """The daily and quarterly figures of ``first_day``..``last_day`` from the minute rows of
    that range (`stetgate.statistics.store`)."""
    if last_day < first_day:
        raise ValueError("the report ends before it starts")
    per_day: dict[date, dict[str, FamilyFigures]] = {
        day: _empty_families() for day in days(first_day, last_day)
    }
    for row in requests:
        figures = per_day[row.minute.date()][row.family]
        figures.requests += row.requests
        figures.latency_us += row.latency_us
        if row.status_class == 4:
            figures.responses_4xx += row.requests
        elif row.status_class == 5:
            figures.responses_5xx += row.requests
    for lrow in latency:
        per_day[lrow.minute.date()][lrow.family].histogram.add_bucket(lrow.bucket, lrow.requests)
    daily: list[PeriodStatistics] = []
    for day, families in per_day.items():
        for family in FAMILIES:
            families[ALL].add(families[family])
        daily.append(
            PeriodStatistics(
                day.isoformat(), day, day, families, day_availability(day, samples, now)
            )
        )
    quarterly: list[PeriodStatistics] = []
    for quarter, first, last in quarters(first_day, last_day):
        families = _empty_families()
        availability = Availability()
        for period in daily:
            if first <= period.first_day <= last:
                for family, figures in period.families.items():
                    families[family].add(figures)
                availability.add(period.availability)
        quarterly.append(PeriodStatistics(quarter.label, first, last, families, availability))
    return StatisticsReport(first_day, last_day, now, daily, quarterly)
