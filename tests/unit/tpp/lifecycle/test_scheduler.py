"""Unattended calls within each bank's limit per account and day, on the injected clock
(stetgate/tpp/lifecycle/scheduler.py): a simulated week, a property over random jobs and clock
jumps, PSU-present calls not counted, limits per bank, 429, DST, midnight."""

from __future__ import annotations

import itertools
import tempfile
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import anyio
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from stetgate.clock import FrozenClock
from stetgate.tpp.lifecycle.file_store import FileTokenStore
from stetgate.tpp.lifecycle.ledger import AccountKey, MemoryLedger
from stetgate.tpp.lifecycle.limits import BankLimits
from stetgate.tpp.lifecycle.scheduler import (
    CallResult,
    UnattendedJob,
    UnattendedScheduler,
    account_slots,
)
from stetgate.tpp.lifecycle.single_flight import SingleFlightRefresher
from stetgate.tpp.lifecycle.store import EncryptedTokens
from tests.support.lifecycle_values import BANK, START, CountingBank, record, sealer

PARIS = ZoneInfo("Europe/Paris")
PSU_IP = "198.51.100.23"
PARIS_MIDNIGHT = datetime(2026, 3, 1, 23, 0, tzinfo=UTC)
"""Slots of that day (4, 5 min margins): 03:03:45, 09:01:15, 14:58:45, 20:56:15 Paris."""


class World:
    def __init__(self, directory: Path, limits: BankLimits, start: datetime = START) -> None:
        self.clock = FrozenClock(start)
        store = FileTokenStore(directory / "tokens.json")
        self.tokens = EncryptedTokens(store, sealer())
        self.bank = CountingBank(self.clock)
        self.ledger = MemoryLedger()
        refresher = SingleFlightRefresher(
            BANK, self.tokens, store, self.bank, self.clock, limits=limits
        )
        self.scheduler = UnattendedScheduler(refresher, self.bank, self.ledger, self.clock)
        self.limits = limits
        self.results: list[CallResult] = []

    def authorize(self, *psus: str) -> None:
        for psu in psus:
            self.tokens.save_authorization(psu, record(self.clock.now()))

    def run_for(self, duration: timedelta, step: timedelta = timedelta(minutes=10)) -> None:
        async def loop() -> None:
            end = self.clock.now() + duration
            while self.clock.now() < end:
                self.clock.advance(step.total_seconds())
                self.results += await self.scheduler.run_due()

        anyio.run(loop)

    def unattended(self) -> list[tuple[datetime, str]]:
        return [(at, path) for at, path, headers in self.bank.calls if not headers]

    def per_account_day(self, account_of: dict[str, str]) -> Counter[tuple[str, date]]:
        return Counter(
            (account_of[path], self.limits.bank_day(at)) for at, path in self.unattended()
        )


@pytest.fixture
def directory() -> Iterator[Path]:
    with tempfile.TemporaryDirectory() as name:
        yield Path(name)


def _jobs(psus: list[str], accounts: list[str]) -> tuple[list[UnattendedJob], dict[str, str]]:
    jobs, account_of = [], {}
    for psu in psus:
        for account in accounts:
            for endpoint in ("balances", "transactions"):
                path = f"accounts/{psu}-{account}/{endpoint}"
                jobs.append(UnattendedJob(psu, f"{psu}-{account}", path, calls_per_day=4))
                account_of[path] = f"{psu}-{account}"
    return jobs, account_of


def test_a_simulated_week_makes_exactly_four_calls_per_account_and_day(directory: Path) -> None:
    world = World(directory, BankLimits())
    world.authorize("psu-1", "psu-2", "psu-3")
    jobs, account_of = _jobs(["psu-1", "psu-2", "psu-3"], ["a", "b"])
    world.scheduler.add(jobs)
    world.run_for(timedelta(days=7))
    counts = world.per_account_day(account_of)
    assert max(counts.values()) == 4
    full_days = {world.limits.bank_day(START) + timedelta(days=d) for d in range(1, 7)}
    for account in set(account_of.values()):
        for day in full_days:
            assert counts[(account, day)] == 4, (account, day)
    assert {r.outcome for r in world.results} == {"done"}


def test_two_jobs_of_one_account_alternate_over_the_day(directory: Path) -> None:
    limits = BankLimits()
    balances = UnattendedJob("p", "acc", "accounts/acc/balances")
    transactions = UnattendedJob("p", "acc", "accounts/acc/transactions")
    plan = account_slots(limits, date(2026, 3, 3), [balances, transactions])
    assert len(plan[balances]) == len(plan[transactions]) == 2
    times = sorted(plan[balances] + plan[transactions])
    assert [t in plan[balances] for t in times] == [True, False, True, False]
    gaps = {b - a for a, b in itertools.pairwise(times)}
    assert gaps == {(timedelta(hours=24) - 2 * limits.midnight_margin) / 4}


def test_more_jobs_than_the_limit_leave_some_without_a_call(directory: Path) -> None:
    limits = BankLimits(unattended_per_day=2)
    jobs = [UnattendedJob("p", "acc", f"accounts/acc/{n}") for n in ("b", "t", "x")]
    plan = account_slots(limits, date(2026, 3, 3), jobs)
    assert [len(plan[j]) for j in jobs] == [1, 1, 0]


def test_a_psu_present_call_is_not_counted_nor_limited(directory: Path) -> None:
    world = World(directory, BankLimits(), start=PARIS_MIDNIGHT)
    world.authorize("psu-1")
    job = UnattendedJob("psu-1", "acc", "accounts/acc/balances")
    world.scheduler.add([job])
    world.run_for(timedelta(hours=22))  # until 22:00 Paris: the four slots have run
    account = AccountKey(BANK, "psu-1", "acc")
    assert world.ledger.used(account, world.clock.now(), world.limits) == 4
    body = anyio.run(world.scheduler.call_with_psu, "psu-1", "accounts/acc/balances", PSU_IP)
    assert body == {"path": "accounts/acc/balances"}
    assert world.bank.calls[-1][2] == {"PSU-IP-Address": PSU_IP}
    assert world.ledger.used(account, world.clock.now(), world.limits) == 4
    assert all(not headers for _, _, headers in world.bank.calls[:-1])


def test_the_limit_is_the_bank_s_own(directory: Path) -> None:
    monday = datetime(2026, 3, 2, tzinfo=UTC)
    world = World(directory, BankLimits(unattended_per_day=2, timezone="UTC"), start=monday)
    world.authorize("psu-1")
    jobs, account_of = _jobs(["psu-1"], ["a"])
    world.scheduler.add(jobs)
    world.run_for(timedelta(days=7))
    counts = world.per_account_day(account_of)
    assert max(counts.values()) == 2
    assert sum(counts.values()) == 2 * 7


def test_a_429_stops_the_account_until_the_bank_s_next_day(directory: Path) -> None:
    world = World(directory, BankLimits(), start=PARIS_MIDNIGHT)
    world.authorize("psu-1")
    job = UnattendedJob("psu-1", "acc", "accounts/acc/balances")
    world.scheduler.add([job])
    world.bank.answer_status = 429
    world.run_for(timedelta(hours=4))  # the 03:03 slot
    assert [r.outcome for r in world.results] == ["refused"]
    world.bank.answer_status = 200
    world.run_for(timedelta(hours=17))  # 09:01, 14:58, 20:56: the ledger says no
    assert [r.outcome for r in world.results] == ["refused"] + ["over_budget"] * 3
    world.run_for(timedelta(hours=8))  # 03:03 the next day
    assert world.results[-1].outcome == "done"
    assert len(world.bank.calls) == 2


def test_a_clock_jump_runs_the_latest_slot_once_instead_of_catching_up(directory: Path) -> None:
    world = World(directory, BankLimits())
    world.authorize("psu-1")
    world.scheduler.add([UnattendedJob("psu-1", "acc", "accounts/acc/balances")])
    world.run_for(timedelta(days=3, hours=5), step=timedelta(days=3, hours=5))
    assert len(world.bank.calls) == 1
    world.run_for(timedelta(minutes=10))
    assert len(world.bank.calls) == 1


def test_no_unattended_call_in_the_minutes_around_the_bank_s_midnight(directory: Path) -> None:
    limits = BankLimits()
    late = datetime(2026, 3, 2, 22, 57, tzinfo=UTC)  # 23:57 in Paris
    assert limits.near_midnight(late) and limits.near_midnight(late + timedelta(minutes=6))
    assert not limits.near_midnight(late + timedelta(minutes=9))
    world = World(directory, limits, start=datetime(2026, 3, 2, 19, 0, tzinfo=UTC))
    world.authorize("psu-1")
    world.scheduler.add([UnattendedJob("psu-1", "acc", "accounts/acc/balances", 4)])
    world.run_for(timedelta(hours=3, minutes=57), step=timedelta(hours=3, minutes=57))
    assert [r.outcome for r in world.results] == ["over_budget"]
    assert world.bank.calls == []


def test_on_the_short_dst_day_the_four_slots_fit_its_23_hours() -> None:
    limits = BankLimits()
    day = date(2026, 3, 29)  # Europe/Paris moves from 02:00 to 03:00
    start, end = limits.day_bounds(day)
    assert end - start == timedelta(hours=23)
    slots = limits.slots(day, 4)
    assert all(start + limits.midnight_margin <= s < end - limits.midnight_margin for s in slots)
    assert {limits.bank_day(s) for s in slots} == {day}


def test_on_the_long_dst_day_the_four_slots_spread_over_its_25_hours() -> None:
    limits = BankLimits()
    day = date(2026, 10, 25)  # Europe/Paris moves from 03:00 back to 02:00
    start, end = limits.day_bounds(day)
    assert end - start == timedelta(hours=25)
    slots = limits.slots(day, 4)
    gaps = {b - a for a, b in itertools.pairwise(slots)}
    assert gaps == {(timedelta(hours=25) - 2 * limits.midnight_margin) / 4}
    assert {limits.bank_day(s) for s in slots} == {day}


def test_a_psu_who_must_authenticate_again_costs_no_call(directory: Path) -> None:
    world = World(directory, BankLimits())
    world.authorize("psu-1")
    world.clock.advance(hours=2)  # the access token has expired
    world.bank.refuse_with = "the refresh token is revoked (psu_withdrew)"
    world.scheduler.add([UnattendedJob("psu-1", "acc", "accounts/acc/balances")])
    world.run_for(timedelta(hours=6))  # the 09:01 slot (missed at start) and 14:58
    assert [r.outcome for r in world.results] == ["reauthenticate"] * 2
    assert len(world.bank.refreshes) == 1 and world.bank.calls == []
    assert world.ledger.used(AccountKey(BANK, "psu-1", "acc"), world.clock.now(), world.limits) == 0


@pytest.mark.parametrize("limit", [0, -1])
def test_a_limit_below_one_is_refused(limit: int) -> None:
    with pytest.raises(ValueError, match="at least 1"):
        BankLimits(unattended_per_day=limit)


def test_a_job_wanting_no_call_is_refused(directory: Path) -> None:
    world = World(directory, BankLimits())
    with pytest.raises(ValueError, match="at least 1"):
        world.scheduler.add([UnattendedJob("p", "a", "accounts/a/balances", calls_per_day=0)])


# --- the property: never a fifth ------------------------------------------------------------
job_specs = st.lists(
    st.tuples(
        st.sampled_from(["psu-1", "psu-2"]),
        st.sampled_from(["a", "b", ""]),
        st.sampled_from(["balances", "transactions"]),
        st.integers(1, 6),
    ),
    min_size=1,
    max_size=6,
    unique_by=lambda spec: spec[:3],
)
steps = st.lists(
    st.tuples(
        st.one_of(
            st.integers(1, 3600),  # within an hour
            st.integers(3600, 6 * 3600),
            st.integers(20 * 3600, 3 * 86400),  # a jump over midnight(s)
        ),
        st.booleans(),  # the PSU is present and asks once after this step
    ),
    min_size=1,
    max_size=80,
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    specs=job_specs,
    moves=steps,
    limit=st.integers(1, 5),
    window=st.sampled_from(["calendar_day", "rolling_24h"]),
    start_offset=st.integers(0, 86400),
)
def test_never_more_unattended_calls_per_account_than_the_limit(
    specs: list[tuple[str, str, str, int]],
    moves: list[tuple[int, bool]],
    limit: int,
    window: str,
    start_offset: int,
) -> None:
    limits = BankLimits(unattended_per_day=limit, window=window)  # type: ignore[arg-type]
    with tempfile.TemporaryDirectory() as name:
        world = World(Path(name), limits, start=START + timedelta(seconds=start_offset))
        world.authorize("psu-1", "psu-2")
        account_of: dict[str, tuple[str, str]] = {}
        jobs = []
        for psu, account, endpoint, per_day in specs:
            path = f"{psu}/accounts/{account or '-'}/{endpoint}"
            account_of[path] = (psu, account)
            jobs.append(UnattendedJob(psu, account, path, per_day))
        world.scheduler.add(jobs)

        async def simulate() -> None:
            for seconds, present in moves:
                world.clock.advance(seconds)
                await world.scheduler.run_due()
                if present:
                    await world.scheduler.call_with_psu("psu-1", jobs[0].path, PSU_IP)

        anyio.run(simulate)
    unattended = [(at, account_of[path]) for at, path in world.unattended()]
    for at, account in unattended:
        assert not limits.near_midnight(at)
        if window == "calendar_day":
            same = [
                t
                for t, a in unattended
                if a == account and limits.bank_day(t) == limits.bank_day(at)
            ]
        else:
            same = [
                t for t, a in unattended if a == account and at - timedelta(hours=24) <= t <= at
            ]
        assert len(same) <= limit, (account, at.astimezone(PARIS), same)
    present = [h for _, _, h in world.bank.calls if h]
    assert all(h == {"PSU-IP-Address": PSU_IP} for h in present)
    assert len(present) == sum(p for _, p in moves)
