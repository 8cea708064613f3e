"""The TPP's own count of unattended calls, checked before each one.

The bank counts too and answers the fifth with 429 (docs/decisions.md#unattended-access), but
a 429 is already a refused call, and the TPP should never provoke it. `take` is atomic: it
counts the call and says yes, or says no and counts nothing, so two tasks can never both take
the last call of a window. Calls are counted per `AccountKey` (bank, PSU, account — ``""`` for
a PSU-level endpoint such as ``GET /accounts``): all endpoints of an account share its budget,
which is stricter than stetgate (per endpoint) and within any reading of RTS Art. 36(5)(b).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from stetgate.tpp.lifecycle.limits import DAY, BankLimits


@dataclass(frozen=True)
class AccountKey:
    bank: str
    psu_key: str
    account: str = ""


class UnattendedLedger(Protocol):
    def used(self, account: AccountKey, now: datetime, limits: BankLimits) -> int:
        """Unattended calls counted in ``now``'s window (the limit once the bank refused)."""
        ...

    def take(self, account: AccountKey, now: datetime, limits: BankLimits) -> bool:
        """Count one call at ``now`` and return True, or return False counting nothing."""
        ...

    def exhausted(self, account: AccountKey, now: datetime, limits: BankLimits) -> None:
        """The bank refused (429): take nothing more until ``now``'s window ends."""
        ...


class MemoryLedger:
    """`UnattendedLedger` in this process's memory: for one scheduler process that is not
    restarted during a bank day (a restart forgets the day's calls). Several processes, or
    restarts: `PostgresLedger`, `RedisLedger`."""

    def __init__(self) -> None:
        self._calls: dict[AccountKey, list[datetime]] = {}
        self._blocked_until: dict[AccountKey, datetime] = {}
        self._lock = threading.Lock()

    def _in_window(self, account: AccountKey, now: datetime, limits: BankLimits) -> list[datetime]:
        start = limits.window_start(now)
        kept = [t for t in self._calls.get(account, []) if t > now - 2 * DAY]
        self._calls[account] = kept
        return [t for t in kept if t >= start]  # a call "after" now (clock set back) counts too

    def used(self, account: AccountKey, now: datetime, limits: BankLimits) -> int:
        with self._lock:
            if now < self._blocked_until.get(account, now):
                return limits.unattended_per_day
            return len(self._in_window(account, now, limits))

    def take(self, account: AccountKey, now: datetime, limits: BankLimits) -> bool:
        with self._lock:
            if now < self._blocked_until.get(account, now):
                return False
            if len(self._in_window(account, now, limits)) >= limits.unattended_per_day:
                return False
            self._calls.setdefault(account, []).append(now)
            return True

    def exhausted(self, account: AccountKey, now: datetime, limits: BankLimits) -> None:
        with self._lock:
            self._blocked_until[account] = limits.window_end(now)
