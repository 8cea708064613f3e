"""Daily and quarterly figures from minute rows: sums, rates, percentiles, availability."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from stetgate.statistics.availability import MinuteSample
from stetgate.statistics.histogram import BOUNDS_US, bucket_of
from stetgate.statistics.output import period_rows
from stetgate.statistics.report import ALL, build_report, day_availability
from stetgate.statistics.store import LatencyRow, RequestRow

MARCH_31 = date(2026, 3, 31)
APRIL_1 = date(2026, 4, 1)
LATE = datetime(2026, 3, 31, 23, 59, tzinfo=UTC)
EARLY = datetime(2026, 4, 1, 0, 0, tzinfo=UTC)
NOW = datetime(2026, 5, 1, tzinfo=UTC)


def rows() -> tuple[list[RequestRow], list[LatencyRow]]:
    requests = [
        RequestRow(LATE, "aisp", 2, 3, 3 * 20_000),
        RequestRow(LATE, "aisp", 4, 1, 5_000),
        RequestRow(LATE, "token", 2, 2, 2 * 1_000),
        RequestRow(EARLY, "aisp", 5, 4, 4 * 400_000),
        RequestRow(EARLY, "cbpii", 2, 1, 30_000),
    ]
    latency = [
        LatencyRow(LATE, "aisp", bucket_of(20_000), 3),
        LatencyRow(LATE, "aisp", bucket_of(5_000), 1),
        LatencyRow(LATE, "token", bucket_of(1_000), 2),
        LatencyRow(EARLY, "aisp", bucket_of(400_000), 4),
        LatencyRow(EARLY, "cbpii", bucket_of(30_000), 1),
    ]
    return requests, latency


def test_days_across_a_quarter_boundary_go_to_their_own_quarter() -> None:
    requests, latency = rows()
    report = build_report(MARCH_31, APRIL_1, requests, latency, {}, NOW)
    assert [p.label for p in report.daily] == ["2026-03-31", "2026-04-01"]
    assert [p.label for p in report.quarterly] == ["2026-Q1", "2026-Q2"]
    q1, q2 = report.quarterly
    assert (q1.first_day, q1.last_day) == (MARCH_31, MARCH_31)  # clipped to the range
    assert (q2.first_day, q2.last_day) == (APRIL_1, APRIL_1)
    assert q1.families["aisp"].requests == 4 and q1.families["aisp"].responses_4xx == 1
    assert q2.families["aisp"].responses_5xx == 4
    assert q1.families[ALL].requests == 6 and q2.families[ALL].requests == 5


def test_rates_means_and_percentiles_of_a_day() -> None:
    requests, latency = rows()
    march = build_report(MARCH_31, MARCH_31, requests[:3], latency[:3], {}, NOW).daily[0]
    aisp = march.families["aisp"]
    assert aisp.rate_percent(aisp.responses_4xx) == 25.0
    assert aisp.mean_ms == pytest.approx((60_000 + 5_000) / 4 / 1000)
    assert aisp.percentile_ms(0.25) == BOUNDS_US[bucket_of(5_000)] / 1000
    assert aisp.percentile_ms(0.5) == BOUNDS_US[bucket_of(20_000)] / 1000
    assert march.families["cbpii"].mean_ms is None  # no request: no figure, not zero
    cells = {row["family"]: row for row in period_rows(march)}
    assert cells["cbpii"]["mean_ms"] == "" and cells["cbpii"]["requests"] == "0"
    assert cells["aisp"]["error_rate_4xx_percent"] == "25.0000"
    assert cells["aisp"]["uptime_percent"] == ""  # availability only on the "all" row
    assert cells[ALL]["downtime_minutes"] == "1440"


def test_a_whole_quarter_sums_its_days() -> None:
    first, last = date(2026, 1, 1), date(2026, 3, 31)
    minute = datetime(2026, 2, 1, tzinfo=UTC)
    requests = [RequestRow(minute + timedelta(days=i), "aisp", 2, 1, 1000) for i in range(10)]
    report = build_report(first, last, requests, [], {}, NOW)
    assert len(report.daily) == 90 and len(report.quarterly) == 1
    assert report.quarterly[0].families["aisp"].requests == 10
    assert report.quarterly[0].availability.elapsed_minutes == 90 * 1440


def test_minutes_without_samples_are_down_and_future_minutes_do_not_count() -> None:
    day = date(2026, 6, 1)
    start = datetime(2026, 6, 1, tzinfo=UTC)
    samples = {
        start: MinuteSample(2, 0, 0),
        start + timedelta(minutes=1): MinuteSample(2, 0, 0),
        start + timedelta(minutes=2): MinuteSample(2, 1, 0),  # a failed probe
        start + timedelta(minutes=3): MinuteSample(2, 0, 1),  # a failure run
        start + timedelta(minutes=5): MinuteSample(1, 0, 0),
    }
    # Six minutes elapsed at 00:06:30: 00:04 has no sample at all.
    during = day_availability(day, samples, start + timedelta(minutes=6, seconds=30))
    assert (during.elapsed_minutes, during.down_minutes) == (6, 3)
    assert during.uptime_percent == pytest.approx(50.0)
    after = day_availability(day, samples, NOW.replace(month=7))
    assert (after.elapsed_minutes, after.down_minutes) == (1440, 1437)
    before = day_availability(day, samples, start - timedelta(days=1))
    assert before.elapsed_minutes == 0 and before.uptime_percent is None


def test_a_report_that_ends_before_it_starts_is_refused() -> None:
    with pytest.raises(ValueError):
        build_report(APRIL_1, MARCH_31, [], [], {}, NOW)
