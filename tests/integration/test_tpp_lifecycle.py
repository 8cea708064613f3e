"""The TPP lifecycle against a real stetgate bank (TLS, test-QTSP certificates, Marie's real
authorization walked by the PSU robot):

- single-flight refresh: 8 OS processes × 4 tasks need Marie's token at once, for each store
  (file, PostgreSQL, Redis); the bank rotates refresh tokens, so a second refresh with the
  replaced token would revoke the authorization (OAuth 2.1 §6.1). Exactly one refresh grant
  per expiry, every task gets the one new access token, and the stored refresh token is the
  live one;
- the unattended scheduler over simulated days on the bank's own clock: never a 429, 4 calls
  per account and bank day; a PSU-present call not counted; a bank with a lower limit than
  the TPP was told is answered by one 429 a day, after which the TPP stops.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import anyio
import pytest
from sqlalchemy import select

from stetgate.store.audit_events import REFRESH_TOKEN_REUSED, TOKEN_REFRESHED
from stetgate.store.schema import grants
from stetgate.tpp.client import BankError, StetBankClient
from stetgate.tpp.lifecycle.bank_access import ThreadedClient
from stetgate.tpp.lifecycle.ledger import MemoryLedger
from stetgate.tpp.lifecycle.limits import BankLimits
from stetgate.tpp.lifecycle.records import TokenRecord
from stetgate.tpp.lifecycle.scheduler import CallResult, UnattendedJob, UnattendedScheduler
from stetgate.tpp.lifecycle.sealing import KEYS_ENV, Keyring, TokenSealer, new_key_line
from stetgate.tpp.lifecycle.single_flight import SingleFlightRefresher
from stetgate.tpp.lifecycle.store import EncryptedTokens
from tests.integration.psd2_support import DemoPsuWorld, demo_psu_world
from tests.support.bank import RunningBank
from tests.support.pki import TestPki
from tests.support.token_lifecycle import (
    STORE_KINDS,
    open_store,
    store_config,
    token_digest,
)
from tests.support.token_side import audit_trail

ORG = "PSDFR-ACPR-47001"
CALLBACK = "https://tpp.example/cb"
PSU_IP = "198.51.100.23"
ROOT = Path(__file__).resolve().parents[2]
PROCESSES = 8
TASKS = 4


@dataclass
class Aggregator:
    world: DemoPsuWorld
    client: StetBankClient
    key: str

    @property
    def bank(self) -> RunningBank:
        return self.world.bank

    def authorize(self) -> TokenRecord:
        request = self.client.authorization_request("aisp", CALLBACK)
        self.bank.clock.advance(31)  # a fresh TOTP step
        with self.bank.client() as browser:
            callback = self.world.robot.walk(browser, request.url, CALLBACK)
        tokens = self.client.exchange_code(request, callback, expected_issuer=self.bank.base_url)
        return TokenRecord.after_exchange(self.bank.base_url, tokens)


def _aggregator(bank: RunningBank, pki: TestPki) -> Iterator[Aggregator]:
    world = demo_psu_world(bank, pki, ORG)
    client = world.tpp_client()
    yield Aggregator(world, client, f"{bank.base_url} marie")
    client.close()


@pytest.fixture
def rotating(bank_factory: Callable[..., RunningBank], pki: TestPki) -> Iterator[Aggregator]:
    yield from _aggregator(bank_factory(rotate_refresh_tokens=True), pki)


# --- single flight across processes ---------------------------------------------------------
class Workers:
    """``PROCESSES`` worker processes (tests/support/token_lifecycle.py), started once."""

    def __init__(self, agg: Aggregator, store: dict[str, Any], keys: str) -> None:
        config = {
            "store": store,
            "bank": agg.bank.base_url,
            "certs": str(agg.world.certs.directory),
            "ca": str(agg.bank.pki.ca_pem),
            "client_id": ORG,
            "key": agg.key,
            "tasks": TASKS,
        }
        # ROOT added to, not replacing, PYTHONPATH: the date-shifted run's scripts/faketime
        # (its time.sleep fix) must load in these processes too.
        path = os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p)
        env = {**os.environ, "PYTHONPATH": path, KEYS_ENV: keys}
        self.processes = [
            subprocess.Popen(
                [sys.executable, "-m", "tests.support.token_lifecycle", json.dumps(config)],
                cwd=ROOT,
                env=env,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                text=True,
            )
            for _ in range(PROCESSES)
        ]
        for line in self._lines():
            assert line == "ready"

    def _lines(self) -> list[str]:
        lines = []
        for process in self.processes:
            assert process.stdout is not None
            lines.append(process.stdout.readline().strip())
        return lines

    def run(self, now: datetime) -> list[list[str]]:
        """All workers start at once at ``now``; what each of their tasks got."""
        for process in self.processes:
            assert process.stdin is not None
            process.stdin.write(f"{now.isoformat()}\n")
            process.stdin.flush()
        return [json.loads(line) for line in self._lines()]

    def close(self) -> None:
        for process in self.processes:
            if process.stdin is not None:
                process.stdin.close()
        for process in self.processes:
            try:
                assert process.wait(timeout=30) == 0
            finally:
                if process.poll() is None:
                    process.kill()


@pytest.mark.parametrize("kind", STORE_KINDS)
def test_eight_processes_refresh_a_psu_s_token_once_per_expiry(
    rotating: Aggregator, kind: str, tmp_path: Path
) -> None:
    agg = rotating
    keys = new_key_line("k1")
    with store_config(kind, tmp_path) as config:
        store = open_store(config)
        tokens = EncryptedTokens(store, TokenSealer(Keyring.parse(keys)))
        first = agg.authorize()
        tokens.save_authorization(agg.key, first)
        engine = agg.bank.services.engine
        workers = Workers(agg, config, keys)
        try:
            for expiry in (1, 2):
                agg.bank.clock.advance(3600)  # the access token has expired for every worker
                seen = workers.run(agg.bank.clock.now())
                stored = tokens.get(agg.key)
                assert stored is not None and stored.record.ended is None
                current = token_digest(stored.record.tokens.access_token)
                assert seen == [[current] * TASKS] * PROCESSES
                assert len(audit_trail(engine, TOKEN_REFRESHED)) == expiry
        finally:
            workers.close()
        assert audit_trail(engine, REFRESH_TOKEN_REUSED) == []
        assert stored.record.tokens.refresh_token != first.tokens.refresh_token  # rotated
        assert stored.record.authenticated_at == first.authenticated_at
        with engine.connect() as conn:
            assert conn.execute(select(grants).where(grants.c.revoked_at.is_(None))).all()
        accounts = agg.client.api(
            "GET", "accounts", stored.record.tokens, psu_headers={"PSU-IP-Address": PSU_IP}
        )
        assert accounts["accounts"]
        if hasattr(store, "close"):
            store.close()


# --- the scheduler on the bank's clock ------------------------------------------------------
@pytest.fixture
def aggregator(bank_factory: Callable[..., RunningBank], pki: TestPki) -> Iterator[Aggregator]:
    yield from _aggregator(bank_factory(), pki)


@pytest.fixture
def low_limit(bank_factory: Callable[..., RunningBank], pki: TestPki) -> Iterator[Aggregator]:
    yield from _aggregator(bank_factory(unattended_limit=2), pki)


@dataclass
class Scheduling:
    agg: Aggregator
    scheduler: UnattendedScheduler
    refresher: SingleFlightRefresher
    limits: BankLimits
    accounts: list[str]
    results: list[CallResult]

    def run_for(self, duration: timedelta, step: timedelta = timedelta(minutes=15)) -> None:
        clock = self.agg.bank.clock

        async def loop() -> None:
            end = clock.now() + duration
            while clock.now() < end:
                clock.advance(step.total_seconds())
                self.results += await self.scheduler.run_due()

        anyio.run(loop)

    def per_account_day(self, outcome: str) -> Counter[tuple[str, Any]]:
        return Counter(
            (r.job.account, self.limits.bank_day(r.at))
            for r in self.results
            if r.outcome == outcome
        )


def _scheduling(agg: Aggregator, tmp_path: Path, limits: BankLimits) -> Scheduling:
    with store_config("file", tmp_path) as config:
        store = open_store(config)
    tokens = EncryptedTokens(store, TokenSealer(Keyring.parse(new_key_line("k1"))))
    record = agg.authorize()
    tokens.save_authorization(agg.key, record)
    present = {"PSU-IP-Address": PSU_IP}
    agg.client.forward_consent(record.tokens, all_accounts=True, psu_headers=present)
    listed = agg.client.api("GET", "accounts", record.tokens, psu_headers=present)["accounts"]
    accounts = [a["resourceId"] for a in listed][:2]
    bank = ThreadedClient(agg.client)
    clock = agg.bank.clock
    refresher = SingleFlightRefresher(agg.bank.base_url, tokens, store, bank, clock, limits=limits)
    scheduler = UnattendedScheduler(refresher, bank, MemoryLedger(), clock)
    return Scheduling(agg, scheduler, refresher, limits, accounts, [])


def test_three_simulated_days_of_unattended_calls_never_meet_a_429(
    aggregator: Aggregator, tmp_path: Path
) -> None:
    s = _scheduling(aggregator, tmp_path, BankLimits())
    s.scheduler.add(
        UnattendedJob(aggregator.key, account, f"accounts/{account}/{endpoint}")
        for account in s.accounts
        for endpoint in ("balances", "transactions")
    )
    start_day = s.limits.bank_day(aggregator.bank.clock.now())
    s.run_for(timedelta(days=3))
    assert {r.outcome for r in s.results} == {"done"}, [r.detail for r in s.results]
    done = s.per_account_day("done")
    assert max(done.values()) == 4
    for account in s.accounts:
        for day in (start_day + timedelta(days=1), start_day + timedelta(days=2)):
            assert done[(account, day)] == 4


def test_a_psu_present_call_is_not_counted_by_either_side(
    aggregator: Aggregator, tmp_path: Path
) -> None:
    s = _scheduling(aggregator, tmp_path, BankLimits())
    account = s.accounts[0]
    path = f"accounts/{account}/balances"
    s.scheduler.add([UnattendedJob(aggregator.key, account, path)])
    clock = aggregator.bank.clock
    s.run_for(timedelta(days=1))
    day = s.limits.bank_day(clock.now())
    end = s.limits.day_bounds(day)[1]
    s.run_for(end - clock.now() - timedelta(minutes=30))  # the whole day's four slots
    assert s.per_account_day("done")[(account, day)] == 4
    body = anyio.run(s.scheduler.call_with_psu, aggregator.key, path, PSU_IP)
    assert body["balances"]
    tokens = anyio.run(s.refresher.fresh, aggregator.key).tokens
    with pytest.raises(BankError) as refused:  # the bank did count four unattended calls
        aggregator.client.api("GET", path, tokens)
    assert refused.value.status == 429


def test_a_bank_stricter_than_the_tpp_s_limits_costs_one_429_a_day(
    low_limit: Aggregator, tmp_path: Path
) -> None:
    s = _scheduling(low_limit, tmp_path, BankLimits())  # the TPP believes 4, the bank says 2
    account = s.accounts[0]
    s.scheduler.add([UnattendedJob(low_limit.key, account, f"accounts/{account}/balances")])
    start_day = s.limits.bank_day(low_limit.bank.clock.now())
    s.run_for(timedelta(days=3))
    for day in (start_day + timedelta(days=1), start_day + timedelta(days=2)):
        outcomes = [r.outcome for r in s.results if s.limits.bank_day(r.at) == day]
        assert outcomes == ["done", "done", "refused", "over_budget"]
