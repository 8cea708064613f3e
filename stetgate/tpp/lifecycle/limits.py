"""A bank's limits on keeping access alive, as values: the SCA window and "4 a day".

RTS (EU) 2018/389 Art. 36(5)(b): without the PSU actively asking, an AISP may access the data
at most four times in 24 hours. STET signals the PSU's presence with ``PSU-IP-Address``; BPCE
counts calls without it per **calendar day** of Europe/Paris, which stetgate follows by default
(docs/decisions.md#unattended-access; setting ``unattended_window`` offers the RTS's rolling
24 hours). Banks differ, so every number is a field of `BankLimits`, one value per bank.

The SCA window: 90 days in the STET cinematic and stetgate's default ``sca_validity_days``;
RTS Art. 10a (since 25 July 2023) allows 180 (docs/decisions.md#lifetimes).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Literal
from zoneinfo import ZoneInfo

Window = Literal["calendar_day", "rolling_24h"]
DAY = timedelta(hours=24)


@dataclass(frozen=True)
class BankLimits:
    """One bank's rules. ``midnight_margin``: no unattended call this close to the bank's
    local midnight, so a few seconds of clock skew between the TPP and the bank cannot make a
    call count on the other day (where it could be a fifth)."""

    unattended_per_day: int = 4
    window: Window = "calendar_day"
    timezone: str = "Europe/Paris"
    sca_validity_days: int = 90
    midnight_margin: timedelta = timedelta(minutes=5)
    _zone: ZoneInfo = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.unattended_per_day < 1:
            raise ValueError("unattended_per_day must be at least 1")
        if not timedelta(0) <= self.midnight_margin < timedelta(hours=2):
            raise ValueError("midnight_margin must be between 0 and 2 hours")
        object.__setattr__(self, "_zone", ZoneInfo(self.timezone))

    def bank_day(self, moment: datetime) -> date:
        """The bank's calendar day of ``moment`` (its local date, DST-aware)."""
        return moment.astimezone(self._zone).date()

    def day_bounds(self, day: date) -> tuple[datetime, datetime]:
        """The UTC instants the bank's local ``day`` starts and ends (23 or 25 hours apart
        on DST days)."""
        start = datetime(day.year, day.month, day.day, tzinfo=self._zone)
        after = day + timedelta(days=1)
        end = datetime(after.year, after.month, after.day, tzinfo=self._zone)
        utc = ZoneInfo("UTC")
        return start.astimezone(utc), end.astimezone(utc)

    def near_midnight(self, moment: datetime) -> bool:
        start, end = self.day_bounds(self.bank_day(moment))
        return moment - start < self.midnight_margin or end - moment <= self.midnight_margin

    def slots(self, day: date, count: int) -> list[datetime]:
        """``count`` (at most the limit) call times spread evenly over the bank's ``day``,
        inside the midnight margins: each at the middle of its share of the day."""
        count = min(count, self.unattended_per_day)
        start, end = self.day_bounds(day)
        usable_start = start + self.midnight_margin
        share = (end - self.midnight_margin - usable_start) / count
        return [usable_start + share * (i + 0.5) for i in range(count)]

    def window_start(self, now: datetime) -> datetime:
        """Calls at or after this instant count against ``now``'s window."""
        if self.window == "calendar_day":
            return self.day_bounds(self.bank_day(now))[0]
        return now - DAY

    def window_end(self, now: datetime) -> datetime:
        """When the window holding ``now`` stops counting its calls (for a refused one)."""
        if self.window == "calendar_day":
            return self.day_bounds(self.bank_day(now))[1]
        return now + DAY


STET_DEFAULT = BankLimits()
"""BPCE's rules, which stetgate follows: 4 per calendar day of Europe/Paris, 90-day SCA."""
