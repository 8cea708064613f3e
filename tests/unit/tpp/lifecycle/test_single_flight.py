"""One refresh per PSU and expiry among concurrent tasks; the end of an authorization is
stored and typed (stetgate/tpp/lifecycle/single_flight.py). Processes: see
tests/integration/test_tpp_lifecycle.py."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import anyio
import pytest

from stetgate.clock import FrozenClock
from stetgate.tpp.client import BankError
from stetgate.tpp.lifecycle.errors import ReauthenticationRequired
from stetgate.tpp.lifecycle.file_store import FileTokenStore
from stetgate.tpp.lifecycle.limits import BankLimits
from stetgate.tpp.lifecycle.records import TokenRecord
from stetgate.tpp.lifecycle.single_flight import SingleFlightRefresher
from stetgate.tpp.lifecycle.store import ABSENT, EncryptedTokens
from tests.support.lifecycle_values import BANK, START, CountingBank, record, sealer, tokens

KEY = "psu-42"


class World:
    def __init__(self, tmp_path: Path, **bank: object) -> None:
        self.clock = FrozenClock(START)
        self.store = FileTokenStore(tmp_path / "tokens.json")
        self.tokens = EncryptedTokens(self.store, sealer())
        self.bank = CountingBank(self.clock, **bank)  # type: ignore[arg-type]
        self.refresher = SingleFlightRefresher(
            BANK, self.tokens, self.store, self.bank, self.clock, limits=BankLimits()
        )

    def stored(self) -> TokenRecord:
        stored = self.tokens.get(KEY)
        assert stored is not None
        return stored.record

    async def together(self, n: int) -> list[TokenRecord]:
        results: list[TokenRecord] = []

        async def one() -> None:
            results.append(await self.refresher.fresh(KEY))

        async with anyio.create_task_group() as group:
            for _ in range(n):
                group.start_soon(one)
        return results


@pytest.fixture
def world(tmp_path: Path) -> World:
    w = World(tmp_path, pause=0.01)
    w.tokens.put(KEY, record(), ABSENT)
    return w


def test_a_token_with_time_left_is_returned_without_asking_the_bank(world: World) -> None:
    world.clock.advance(3600 - 61)
    got = anyio.run(world.refresher.fresh, KEY)
    assert got.tokens.access_token == "access-secret-0" and world.bank.refreshes == []


def test_twenty_tasks_needing_a_refresh_cause_one_grant(world: World) -> None:
    world.clock.advance(3600)
    results = anyio.run(world.together, 20)
    assert len(world.bank.refreshes) == 1
    assert {r.tokens.access_token for r in results} == {"access-secret-1"}
    assert world.stored().tokens.access_token == "access-secret-1"


def test_with_rotation_the_rotated_refresh_token_is_stored_and_used_next(tmp_path: Path) -> None:
    world = World(tmp_path, rotate=True, pause=0.01)
    world.tokens.put(KEY, record(), ABSENT)
    for expiry in (1, 2, 3):
        world.clock.advance(3600)
        anyio.run(world.together, 10)
        assert len(world.bank.refreshes) == expiry
    assert world.bank.refreshes == ["refresh-secret-0", "refresh-secret-1", "refresh-secret-2"]
    assert world.stored().tokens.refresh_token == world.bank.live_refresh


def test_the_sca_time_survives_refreshes(world: World) -> None:
    world.clock.advance(days=3)
    refreshed = anyio.run(world.refresher.fresh, KEY)
    assert refreshed.authenticated_at == START
    assert refreshed.days_left(world.clock.now(), 90) == 87


def test_invalid_grant_raises_reauthentication_and_is_stored_for_everyone(world: World) -> None:
    world.clock.advance(3600)
    world.bank.refuse_with = "the refresh token is revoked (psu_withdrew)"
    with pytest.raises(ReauthenticationRequired) as caught:
        anyio.run(world.refresher.fresh, KEY)
    assert caught.value.reason == "refused_by_bank"
    assert (caught.value.bank, caught.value.psu_key) == (BANK, KEY)
    assert "psu_withdrew" in caught.value.detail
    assert "secret" not in str(caught.value)
    assert world.stored().ended is not None
    with pytest.raises(ReauthenticationRequired):
        anyio.run(world.refresher.fresh, KEY)
    assert len(world.bank.refreshes) == 1  # the second caller did not ask the bank again


def test_the_waiting_tasks_of_a_refused_refresh_do_not_ask_the_bank_again(world: World) -> None:
    world.clock.advance(3600)
    world.bank.refuse_with = "the refresh token has expired"
    reasons: list[str] = []

    async def one() -> None:
        try:
            await world.refresher.fresh(KEY)
        except ReauthenticationRequired as exc:
            reasons.append(exc.reason)

    async def eight() -> None:
        async with anyio.create_task_group() as group:
            for _ in range(8):
                group.start_soon(one)

    anyio.run(eight)
    assert reasons == ["refused_by_bank"] * 8
    assert len(world.bank.refreshes) == 1


def test_past_the_sca_window_no_refresh_is_attempted(world: World) -> None:
    world.clock.advance(days=90)
    with pytest.raises(ReauthenticationRequired) as caught:
        anyio.run(world.refresher.fresh, KEY)
    assert caught.value.reason == "sca_expired" and world.bank.refreshes == []
    assert world.stored().ended == "sca_expired"
    with pytest.raises(ReauthenticationRequired) as again:
        anyio.run(world.refresher.fresh, KEY)
    assert again.value.reason == "sca_expired" and "90 days" in again.value.detail


def test_a_bank_with_a_180_day_window_still_refreshes_after_90(tmp_path: Path) -> None:
    world = World(tmp_path)
    world.tokens.put(KEY, record(), ABSENT)
    world.refresher = SingleFlightRefresher(
        BANK,
        world.tokens,
        world.store,
        world.bank,
        world.clock,
        limits=BankLimits(sca_validity_days=180),
    )
    world.clock.advance(days=120)
    assert anyio.run(world.refresher.fresh, KEY).tokens.access_token == "access-secret-1"


def test_a_transient_bank_error_propagates_and_changes_nothing(world: World) -> None:
    world.clock.advance(3600)
    world.bank.fail_with_status = 503
    before = world.store.get(KEY)
    with pytest.raises(BankError):
        anyio.run(world.refresher.fresh, KEY)
    assert world.store.get(KEY) == before
    assert world.stored().ended is None


def test_nothing_stored_is_a_reauthentication(world: World) -> None:
    with pytest.raises(ReauthenticationRequired) as caught:
        anyio.run(world.refresher.fresh, "psu-unknown")
    assert caught.value.reason == "not_stored"


def test_tokens_without_a_refresh_token_need_a_new_authorization(world: World) -> None:
    world.tokens.save_authorization(KEY, TokenRecord(BANK, tokens(START, refresh=None), START))
    world.clock.advance(3600)
    with pytest.raises(ReauthenticationRequired) as caught:
        anyio.run(world.refresher.fresh, KEY)
    assert caught.value.reason == "no_refresh_token" and world.bank.refreshes == []


def test_another_bank_s_record_is_not_refreshed_with_this_bank(world: World) -> None:
    other = TokenRecord("https://other.test", tokens(START), START)
    world.tokens.save_authorization(KEY, other)
    world.clock.advance(3600)
    with pytest.raises(ValueError, match=r"other\.test"):
        anyio.run(world.refresher.fresh, KEY)
    assert world.bank.refreshes == []


def test_a_new_authorization_replaces_an_ended_record(world: World) -> None:
    world.clock.advance(3600)
    world.bank.refuse_with = "revoked"
    with pytest.raises(ReauthenticationRequired):
        anyio.run(world.refresher.fresh, KEY)
    world.tokens.save_authorization(KEY, record(world.clock.now(), n=9))
    assert anyio.run(world.refresher.fresh, KEY).tokens.access_token == "access-secret-9"


def test_days_left_counts_down_to_zero_at_the_end_of_the_window() -> None:
    r = record()
    assert r.days_left(START, 90) == 90
    assert r.days_left(START + timedelta(days=89, hours=23), 90) == 0
    assert r.days_left(START + timedelta(days=200), 90) == 0
    assert r.sca_expires_at(180) == START + timedelta(days=180)
