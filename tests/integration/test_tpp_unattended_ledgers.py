"""The unattended-call ledgers — in memory, PostgreSQL, Redis: the limit per account and
window, the window's end, a 429's block, atomic takes under 8 threads, and a scheduler restarted
mid-day that still makes no fifth call (stetgate/tpp/lifecycle/*ledger.py)."""

from __future__ import annotations

import tempfile
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import anyio
import pytest

from stetgate.clock import FrozenClock
from stetgate.tpp.lifecycle.file_store import FileTokenStore
from stetgate.tpp.lifecycle.ledger import AccountKey, UnattendedLedger
from stetgate.tpp.lifecycle.limits import BankLimits
from stetgate.tpp.lifecycle.scheduler import UnattendedJob, UnattendedScheduler
from stetgate.tpp.lifecycle.single_flight import SingleFlightRefresher
from stetgate.tpp.lifecycle.store import EncryptedTokens
from tests.support.lifecycle_values import BANK, CountingBank, record, sealer
from tests.support.token_lifecycle import ledger_factory

LEDGER_KINDS = ("memory", "postgresql", "redis")
SHARED_KINDS = ("postgresql", "redis")
ACCOUNT = AccountKey(BANK, "psu-1", "acc-1")
PARIS_NOON = datetime(2026, 3, 2, 11, 0, tzinfo=UTC)
LIMITS = BankLimits()


@pytest.fixture(params=LEDGER_KINDS)
def new_ledger(request: pytest.FixtureRequest) -> Iterator[Callable[[], UnattendedLedger]]:
    with ledger_factory(request.param) as factory:
        yield factory


def test_the_fifth_take_of_a_bank_day_is_refused_and_not_counted(
    new_ledger: Callable[[], UnattendedLedger],
) -> None:
    ledger = new_ledger()
    takes = [ledger.take(ACCOUNT, PARIS_NOON + timedelta(minutes=m), LIMITS) for m in range(6)]
    assert takes == [True] * 4 + [False] * 2
    assert ledger.used(ACCOUNT, PARIS_NOON + timedelta(hours=1), LIMITS) == 4


def test_another_account_has_its_own_budget(new_ledger: Callable[[], UnattendedLedger]) -> None:
    ledger = new_ledger()
    for _ in range(4):
        ledger.take(ACCOUNT, PARIS_NOON, LIMITS)
    other = AccountKey(BANK, "psu-1", "acc-2")
    assert ledger.take(other, PARIS_NOON, LIMITS) is True
    assert ledger.take(AccountKey(BANK, "psu-2", "acc-1"), PARIS_NOON, LIMITS) is True


def test_the_bank_s_midnight_not_utc_s_opens_the_next_day(
    new_ledger: Callable[[], UnattendedLedger],
) -> None:
    ledger = new_ledger()
    late = datetime(2026, 3, 2, 22, 50, tzinfo=UTC)  # 23:50 in Paris
    for _ in range(4):
        assert ledger.take(ACCOUNT, late, LIMITS)
    assert ledger.take(ACCOUNT, late + timedelta(minutes=9), LIMITS) is False  # 23:59 Paris
    assert ledger.take(ACCOUNT, late + timedelta(minutes=11), LIMITS) is True  # 00:01 Paris


def test_in_a_rolling_window_a_call_leaves_24_hours_after_it(
    new_ledger: Callable[[], UnattendedLedger],
) -> None:
    ledger = new_ledger()
    rolling = BankLimits(window="rolling_24h")
    for hour in range(4):
        assert ledger.take(ACCOUNT, PARIS_NOON + timedelta(hours=hour), rolling)
    assert ledger.take(ACCOUNT, PARIS_NOON + timedelta(hours=20), rolling) is False  # other day
    assert ledger.take(ACCOUNT, PARIS_NOON + timedelta(hours=24), rolling) is False
    assert ledger.take(ACCOUNT, PARIS_NOON + timedelta(hours=24, seconds=1), rolling) is True


def test_a_429_blocks_the_account_until_the_window_ends(
    new_ledger: Callable[[], UnattendedLedger],
) -> None:
    ledger = new_ledger()
    ledger.take(ACCOUNT, PARIS_NOON, LIMITS)
    ledger.exhausted(ACCOUNT, PARIS_NOON, LIMITS)
    assert ledger.used(ACCOUNT, PARIS_NOON, LIMITS) == 4
    assert ledger.take(ACCOUNT, PARIS_NOON + timedelta(hours=11), LIMITS) is False  # 23:00 Paris
    assert ledger.take(ACCOUNT, PARIS_NOON + timedelta(hours=13), LIMITS) is True


def test_eight_threads_taking_at_once_get_exactly_the_limit(
    new_ledger: Callable[[], UnattendedLedger],
) -> None:
    granted: list[bool] = []
    start = threading.Barrier(8)

    def take() -> None:
        ledger = new_ledger()
        start.wait()
        granted.append(ledger.take(ACCOUNT, PARIS_NOON, LIMITS))

    threads = [threading.Thread(target=take) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(granted) == [False] * 4 + [True] * 4


@pytest.mark.parametrize("kind", SHARED_KINDS)
def test_a_scheduler_restarted_mid_day_makes_no_fifth_call(kind: str) -> None:
    clock = FrozenClock(datetime(2026, 3, 1, 23, 0, tzinfo=UTC))  # midnight in Paris
    bank = CountingBank(clock)
    with ledger_factory(kind) as new_ledger, tempfile.TemporaryDirectory() as folder:
        store = FileTokenStore(Path(folder) / "tokens.json")
        vault = EncryptedTokens(store, sealer())
        vault.save_authorization("psu-1", record(clock.now()))
        job = UnattendedJob("psu-1", "acc-1", "accounts/acc-1/balances")

        def scheduler() -> UnattendedScheduler:
            refresher = SingleFlightRefresher(BANK, vault, store, bank, clock, limits=LIMITS)
            started = UnattendedScheduler(refresher, bank, new_ledger(), clock)
            started.add([job])
            return started

        async def run(s: UnattendedScheduler, hours: float) -> None:
            end = clock.now() + timedelta(hours=hours)
            while clock.now() < end:
                clock.advance(600)
                await s.run_due()

        anyio.run(run, scheduler(), 15)  # 15:00 Paris: three slots ran
        # A new process runs the 14:58 slot again (4th call); at 20:56 the shared ledger says
        # no — an empty one would have allowed a fifth.
        anyio.run(run, scheduler(), 7)
        anyio.run(run, scheduler(), 24)  # and the next day
    per_day = Counter(LIMITS.bank_day(at) for at, _, _ in bank.calls)
    assert per_day == {datetime(2026, 3, 2).date(): 4, datetime(2026, 3, 3).date(): 4}
