"""Minutes, UTC days and quarters, on any date and across quarter and year boundaries."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from stetgate.statistics.periods import Quarter, day_start, days, minute_of, quarters

ANY_DAY = st.dates(min_value=date(2000, 1, 1), max_value=date(2200, 12, 31))


def test_a_minute_is_the_utc_minute_holding_the_moment() -> None:
    paris = timezone(timedelta(hours=1))
    moment = datetime(2026, 4, 1, 0, 30, 59, 999_999, tzinfo=paris)
    assert minute_of(moment) == datetime(2026, 3, 31, 23, 30, tzinfo=UTC)


def test_a_naive_moment_is_refused() -> None:
    with pytest.raises(ValueError):
        minute_of(datetime(2026, 1, 1, 12, 0))


@pytest.mark.parametrize(
    ("day", "label", "first", "last"),
    [
        (date(2026, 1, 1), "2026-Q1", date(2026, 1, 1), date(2026, 3, 31)),
        (date(2026, 3, 31), "2026-Q1", date(2026, 1, 1), date(2026, 3, 31)),
        (date(2026, 4, 1), "2026-Q2", date(2026, 4, 1), date(2026, 6, 30)),
        (date(2028, 2, 29), "2028-Q1", date(2028, 1, 1), date(2028, 3, 31)),
        (date(2026, 9, 30), "2026-Q3", date(2026, 7, 1), date(2026, 9, 30)),
        (date(2026, 12, 31), "2026-Q4", date(2026, 10, 1), date(2026, 12, 31)),
    ],
)
def test_the_quarter_of_a_day(day: date, label: str, first: date, last: date) -> None:
    quarter = Quarter.of(day)
    assert (quarter.label, quarter.first_day, quarter.last_day) == (label, first, last)


@given(ANY_DAY)
def test_every_day_is_inside_its_quarter_and_quarters_follow_each_other(day: date) -> None:
    quarter = Quarter.of(day)
    assert quarter.first_day <= day <= quarter.last_day
    assert Quarter.of(quarter.last_day + timedelta(days=1)) > quarter
    assert Quarter.of(quarter.first_day - timedelta(days=1)) < quarter
    assert 90 <= (quarter.last_day - quarter.first_day).days + 1 <= 92


@given(ANY_DAY, st.integers(min_value=0, max_value=400))
def test_quarters_of_a_range_cover_each_day_once_clipped_to_the_range(
    first: date, length: int
) -> None:
    last = first + timedelta(days=length)
    parts = list(quarters(first, last))
    covered = [d for _, start, end in parts for d in days(start, end)]
    assert covered == list(days(first, last))
    assert all(Quarter.of(start) == q == Quarter.of(end) for q, start, end in parts)


def test_a_range_across_new_year_has_two_quarters() -> None:
    parts = [(q.label, s, e) for q, s, e in quarters(date(2026, 12, 30), date(2027, 1, 2))]
    assert parts == [
        ("2026-Q4", date(2026, 12, 30), date(2026, 12, 31)),
        ("2027-Q1", date(2027, 1, 1), date(2027, 1, 2)),
    ]


def test_days_include_both_ends_and_an_empty_range_has_none() -> None:
    assert list(days(date(2026, 2, 27), date(2026, 3, 1))) == [
        date(2026, 2, 27),
        date(2026, 2, 28),
        date(2026, 3, 1),
    ]
    assert list(days(date(2026, 3, 2), date(2026, 3, 1))) == []
    assert day_start(date(2026, 3, 1)) == datetime(2026, 3, 1, tzinfo=UTC)
