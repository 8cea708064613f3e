"""Unattended calls for many PSUs, spread over each bank's day, never a fifth per account.

A job asks for up to ``limit`` calls a day of one endpoint for one PSU's account. The jobs of
one account share its budget (`account_slots`): its calls are spread evenly over the bank's
calendar day, away from its midnight (`BankLimits.slots`); `run_due` runs each job's latest
slot that has come and not been served. Every call, before it leaves:

- gets fresh tokens through `SingleFlightRefresher` (the token endpoint is not counted);
- takes one unit of the account's budget from the `UnattendedLedger` (atomic), or is skipped;
- is sent **without** ``PSU-IP-Address``: STET reads that header as the PSU being there
  (docs/decisions.md#unattended-access), which an unattended call must not claim.

A 429 anyway (the bank counted calls this TPP did not make, or its day differs) marks the
account exhausted until its window ends. Slots missed while the scheduler was not running
(a clock jump, a restart) are not caught up: the latest one runs, once. `call_with_psu` is
the PSU-present path: never counted, never refused by the ledger.

Time comes from the injected clock, so a simulated week runs in milliseconds
(tests/unit/tpp/lifecycle/test_scheduler.py).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any, Literal

import anyio

from stetgate.clock import Clock
from stetgate.tpp.client import BankError
from stetgate.tpp.lifecycle.bank_access import BankAccess
from stetgate.tpp.lifecycle.errors import ReauthenticationRequired
from stetgate.tpp.lifecycle.ledger import AccountKey, UnattendedLedger
from stetgate.tpp.lifecycle.limits import BankLimits
from stetgate.tpp.lifecycle.single_flight import SingleFlightRefresher

TOO_MANY_REQUESTS = 429
DEFAULT_CONCURRENCY = 8


@dataclass(frozen=True)
class UnattendedJob:
    """``GET path`` for the PSU stored under ``psu_key``, counted against ``account`` (``""``
    for a PSU-level endpoint), ``calls_per_day`` times (capped at the bank's limit)."""

    psu_key: str
    account: str
    path: str
    calls_per_day: int = 4


Outcome = Literal["done", "over_budget", "reauthenticate", "refused", "failed"]


@dataclass(frozen=True)
class CallResult:
    job: UnattendedJob
    at: datetime
    outcome: Outcome
    body: Mapping[str, Any] | None = None
    detail: str = ""


def account_slots(
    limits: BankLimits, day: date, jobs: Sequence[UnattendedJob]
) -> dict[UnattendedJob, list[datetime]]:
    """Share one account's budget for ``day`` among its ``jobs``.

    The account gets ``min(limit, wanted)`` calls spread evenly over the day
    (`BankLimits.slots`); they are dealt round-robin to the jobs that still want one, so two
    jobs of an account (balances, transactions) alternate instead of both running at the same
    hour and starving the rest of the day. A job dealt nothing (more jobs than the limit)
    does not run that day."""
    wanted = {job: min(job.calls_per_day, limits.unattended_per_day) for job in jobs}
    total = min(limits.unattended_per_day, sum(wanted.values()))
    grid = limits.slots(day, total) if total else []
    dealt: dict[UnattendedJob, list[datetime]] = {job: [] for job in jobs}
    position = 0
    while position < total:
        for job in jobs:
            if position < total and len(dealt[job]) < wanted[job]:
                dealt[job].append(grid[position])
                position += 1
    return dealt


class UnattendedScheduler:
    """Runs `UnattendedJob`s of one bank (the refresher's) within its `BankLimits`."""

    def __init__(
        self,
        refresher: SingleFlightRefresher,
        client: BankAccess,
        ledger: UnattendedLedger,
        clock: Clock,
        *,
        concurrency: int = DEFAULT_CONCURRENCY,
    ) -> None:
        self.limits = refresher.limits
        self._refresher = refresher
        self._client = client
        self._ledger = ledger
        self._clock = clock
        self._concurrency = concurrency
        self._jobs: list[UnattendedJob] = []
        self._by_account: dict[AccountKey, list[UnattendedJob]] = {}
        self._served: dict[UnattendedJob, datetime] = {}

    def add(self, jobs: Iterable[UnattendedJob]) -> None:
        for job in jobs:
            if job.calls_per_day < 1:
                raise ValueError("calls_per_day must be at least 1")
            same_account = self._by_account.setdefault(self._account(job), [])
            if job not in same_account:
                same_account.append(job)
                self._jobs.append(job)

    def remove_psu(self, psu_key: str) -> None:
        """Stop a PSU's jobs (after `ReauthenticationRequired`, until it authenticates)."""
        self._jobs = [job for job in self._jobs if job.psu_key != psu_key]
        self._by_account = {
            account: jobs
            for account, jobs in self._by_account.items()
            if account.psu_key != psu_key
        }

    def _account(self, job: UnattendedJob) -> AccountKey:
        return AccountKey(self._refresher.bank, job.psu_key, job.account)

    def _slots(self, job: UnattendedJob, day: date) -> list[datetime]:
        same_account = self._by_account.get(self._account(job), [])
        return account_slots(self.limits, day, same_account).get(job, [])

    def due_slot(self, job: UnattendedJob, now: datetime) -> datetime | None:
        """The job's latest slot of ``now``'s bank day that has come and was not served."""
        passed = [slot for slot in self._slots(job, self.limits.bank_day(now)) if slot <= now]
        if not passed:
            return None
        latest = passed[-1]
        served = self._served.get(job)
        return latest if served is None or latest > served else None

    def next_wakeup(self, now: datetime) -> datetime:
        """When `run_due` next has something to do (for a loop that waits in between)."""
        day = self.limits.bank_day(now)
        upcoming = [
            slot
            for job in self._jobs
            for d in (day, day + timedelta(days=1))
            for slot in self._slots(job, d)
            if slot > now
        ]
        return min(upcoming, default=now + timedelta(hours=1))

    async def run_due(self) -> list[CallResult]:
        """Run every job whose slot has come; the results in job order."""
        now = self._clock.now()
        due = [(job, slot) for job in self._jobs if (slot := self.due_slot(job, now))]
        results: dict[int, CallResult] = {}
        limiter = anyio.CapacityLimiter(self._concurrency)

        async def run(index: int, job: UnattendedJob, slot: datetime) -> None:
            async with limiter:
                self._served[job] = slot
                results[index] = await self._unattended(job)

        async with anyio.create_task_group() as group:
            for index, (job, slot) in enumerate(due):
                group.start_soon(run, index, job, slot)
        return [results[i] for i in sorted(results)]

    async def _unattended(self, job: UnattendedJob) -> CallResult:
        account = self._account(job)
        now = self._clock.now()
        if self.limits.near_midnight(now):
            return CallResult(job, now, "over_budget", detail="too close to the bank's midnight")
        if self._ledger.used(account, now, self.limits) >= self.limits.unattended_per_day:
            return CallResult(job, now, "over_budget")
        try:
            record = await self._refresher.fresh(job.psu_key)
        except ReauthenticationRequired as exc:
            return CallResult(job, now, "reauthenticate", detail=exc.reason)
        now = self._clock.now()
        if self.limits.near_midnight(now) or not self._ledger.take(account, now, self.limits):
            return CallResult(job, now, "over_budget")
        try:
            body = await self._client.api("GET", job.path, record.tokens)
        except BankError as exc:
            if exc.status == TOO_MANY_REQUESTS:
                self._ledger.exhausted(account, now, self.limits)
                return CallResult(job, now, "refused", detail=str(exc))
            return CallResult(job, now, "failed", detail=str(exc))
        return CallResult(job, now, "done", body)

    async def call_with_psu(
        self, psu_key: str, path: str, psu_ip: str, *, extra: Mapping[str, str] | None = None
    ) -> dict[str, Any]:
        """A call the PSU asked for (``PSU-IP-Address`` sent): not counted nor limited."""
        record = await self._refresher.fresh(psu_key)
        headers = {"PSU-IP-Address": psu_ip, **(extra or {})}
        return await self._client.api("GET", path, record.tokens, psu_headers=headers)

    @property
    def jobs(self) -> Sequence[UnattendedJob]:
        return tuple(self._jobs)
