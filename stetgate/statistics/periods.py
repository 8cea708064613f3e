"""Minutes, days and quarters in UTC: how recorded time is bucketed and reported.

EBA/GL/2018/07 GL 2.2(b) counts downtime per 24-hour period "starting and ending at
midnight", and guideline 3 asks for quarterly publication with daily figures. stetgate's days
are UTC days (the rows are UTC minutes); a bank publishing on local days shifts the
``--from``/``--to`` it asks for, not the data.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

MINUTE = timedelta(minutes=1)
MINUTES_PER_DAY = 1440


def minute_of(moment: datetime) -> datetime:
    """The UTC minute holding ``moment`` (aware datetimes only)."""
    if moment.tzinfo is None:
        raise ValueError("naive datetime; use the injected clock (UTC)")
    return moment.astimezone(UTC).replace(second=0, microsecond=0)


def day_start(day: date) -> datetime:
    return datetime.combine(day, time(0), tzinfo=UTC)


def days(first: date, last: date) -> Iterator[date]:
    """Every day from ``first`` to ``last``, both included."""
    day = first
    while day <= last:
        yield day
        day += timedelta(days=1)


@dataclass(frozen=True, order=True)
class Quarter:
    year: int
    number: int  # 1..4

    @classmethod
    def of(cls, day: date) -> Quarter:
        return cls(day.year, (day.month - 1) // 3 + 1)

    @property
    def first_day(self) -> date:
        return date(self.year, 3 * self.number - 2, 1)

    @property
    def last_day(self) -> date:
        following = (
            Quarter(self.year + 1, 1) if self.number == 4 else Quarter(self.year, self.number + 1)
        )
        return following.first_day - timedelta(days=1)

    @property
    def label(self) -> str:
        return f"{self.year}-Q{self.number}"


def quarters(first: date, last: date) -> Iterator[tuple[Quarter, date, date]]:
    """The quarters ``first``..``last`` touches, each with the days of it inside the range."""
    quarter = Quarter.of(first)
    while quarter.first_day <= last:
        yield quarter, max(first, quarter.first_day), min(last, quarter.last_day)
        quarter = Quarter.of(quarter.last_day + timedelta(days=1))
