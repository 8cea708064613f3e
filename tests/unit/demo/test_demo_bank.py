"""`stetgate demo seed` and the demo bank's reads, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
import stat
from collections.abc import Iterator
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import Engine, func, select

from stetgate.bank.backend import CurrencyMismatch, TransactionQuery, UnknownAccount
from stetgate.cli import main
from stetgate.demo.bank import DemoBank
from stetgate.demo.seed import build_demo_ledger, seed_demo_bank
from stetgate.demo.totp import decode_totp_secret, totp_at
from stetgate.settings import Settings
from stetgate.store.db import make_engine
from stetgate.store.schema import (
    bank_account_holders,
    bank_accounts,
    bank_balances,
    bank_beneficiaries,
    bank_transactions,
    psus,
)
from tests.integration.psd2_support import cheap_directory

pytestmark = pytest.mark.postgres  # demo seed and the demo bank's reads

NOW = datetime(2026, 11, 26, 9, 30, tzinfo=UTC)
ANCHOR = date(2026, 11, 26)


@pytest.fixture
def settings(db_url: str, tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path / "data", database_url=db_url)


@pytest.fixture
def engine(settings: Settings) -> Iterator[Engine]:
    engine = make_engine(settings.resolved_database_url, 2)
    yield engine
    engine.dispose()


def _seed(settings: Settings, seed: int = 5) -> None:
    seed_demo_bank(settings, seed, anchor=ANCHOR, now=NOW, directory_factory=cheap_directory)


def _counts(engine: Engine) -> tuple[int, ...]:
    with engine.connect() as conn:
        return tuple(
            conn.execute(select(func.count()).select_from(t)).scalar_one()
            for t in (
                psus,
                bank_accounts,
                bank_account_holders,
                bank_balances,
                bank_transactions,
                bank_beneficiaries,
            )
        )


def _fingerprint(engine: Engine) -> list[tuple[object, ...]]:
    with engine.connect() as conn:
        return [
            tuple(r)
            for r in conn.execute(
                select(bank_transactions).order_by(
                    bank_transactions.c.account_id, bank_transactions.c.entry_reference
                )
            )
        ]


def test_seeding_twice_with_the_same_seed_gives_the_same_data_without_duplicates(
    settings: Settings, engine: Engine
) -> None:
    _seed(settings)
    counts, data = _counts(engine), _fingerprint(engine)
    _seed(settings)
    assert _counts(engine) == counts and _fingerprint(engine) == data
    assert counts[0] == 5 and counts[4] > 3000


def test_seeding_with_another_seed_replaces_the_demo_data(
    settings: Settings, engine: Engine
) -> None:
    _seed(settings, 5)
    first = _fingerprint(engine)
    _seed(settings, 6)
    assert _counts(engine)[0] == 5
    with engine.connect() as conn:
        ids = set(conn.execute(select(bank_accounts.c.resource_id)).scalars())
    assert ids == {a.resource_id for a in build_demo_ledger(6, ANCHOR).accounts}
    assert _fingerprint(engine) != first


def test_the_credentials_file_lets_each_psu_log_in(settings: Settings, engine: Engine) -> None:
    _seed(settings)
    path = settings.data_dir / "demo-psus.json"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    people = json.loads(path.read_text())
    assert {p["id"] for p in people} == {"jdupont", "mdupont", "cmartin", "lbernard", "sroux"}
    assert set(people[0]) == {"id", "password", "totp_secret", "accounts"}
    directory = cheap_directory(engine, settings)
    bank = DemoBank(engine)
    for person in people:
        assert directory.check_password(person["id"], person["password"])
        code = totp_at(decode_totp_secret(person["totp_secret"]), NOW)
        assert directory.check_totp(person["id"], code, NOW)
        assert person["accounts"] == [a.iban for a in bank.accounts_of(person["id"]) if a.iban]


def test_reseeding_with_another_seed_changes_the_psus_credentials(
    settings: Settings, engine: Engine
) -> None:
    _seed(settings, 5)
    old = json.loads((settings.data_dir / "demo-psus.json").read_text())[0]
    _seed(settings, 6)
    new = json.loads((settings.data_dir / "demo-psus.json").read_text())[0]
    directory = cheap_directory(engine, settings)
    assert directory.check_password(new["id"], new["password"])
    assert not directory.check_password(old["id"], old["password"])


def test_seed_command_writes_the_credentials(
    db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("STETGATE_DATABASE_URL", db_url)
    result = CliRunner().invoke(
        main,
        ["--data-dir", str(tmp_path), "demo", "seed", "--seed", "4", "--anchor-date", "2026-11-26"],
    )
    assert result.exit_code == 0, result.output
    assert "5 PSUs" in result.output and (tmp_path / "demo-psus.json").exists()
    people = json.loads((tmp_path / "demo-psus.json").read_text())
    expected = build_demo_ledger(4, ANCHOR)
    assert [p["password"] for p in people] == [p.password for p in expected.psus]


@pytest.fixture
def bank(settings: Settings, engine: Engine) -> DemoBank:
    _seed(settings)
    return DemoBank(engine)


def test_accounts_are_scoped_to_the_psu(bank: DemoBank) -> None:
    jean = bank.accounts_of("jdupont")
    marie = bank.accounts_of("mdupont")
    assert [a.cash_account_type for a in jean] == ["CACC", "CARD", "CACC"]
    assert jean[0].resource_id == marie[0].resource_id  # the joint account
    assert (jean[0].psu_status, marie[0].psu_status) == ("Account Holder", "Co-account Holder")
    assert bank.accounts_of("nobody") == []
    assert bank.balances_of("mdupont", [jean[2].resource_id]) == {}
    listed = bank.accounts_with_balances("jdupont", {jean[0].resource_id})
    assert [a for a, _ in listed] == list(jean)
    assert [b.balance_type for b in listed[0][1] or ()] == ["CLBD", "XPCD", "OTHR"]
    assert listed[1][1] is None and listed[2][1] is None


def test_transactions_page_filter_and_snapshot(bank: DemoBank) -> None:
    account = bank.accounts_of("jdupont")[2].resource_id
    everything = bank.transactions_of("jdupont", account, TransactionQuery(limit=10_000))
    refs = [t.entry_reference for t in everything.transactions]
    assert refs == sorted(refs, reverse=True) and everything.total == len(refs)
    assert everything.snapshot_entry == refs[0]
    page = bank.transactions_of(
        "jdupont", account, TransactionQuery(offset=10, limit=10, up_to_entry=refs[5])
    )
    assert [t.entry_reference for t in page.transactions] == refs[15:25]
    assert page.total == len(refs) - 5 and page.snapshot_entry == refs[5]
    window = bank.transactions_of(
        "jdupont",
        account,
        TransactionQuery(
            booked_from=date(2026, 10, 1), booked_before=date(2026, 11, 1), limit=10_000
        ),
    )
    assert window.transactions and all(
        date(2026, 10, 1) <= (t.booking_date or t.transaction_date or date.min) < date(2026, 11, 1)
        for t in window.transactions
    )
    newer = bank.transactions_of("jdupont", account, TransactionQuery(after_entry=refs[3]))
    assert [t.entry_reference for t in newer.transactions] == refs[:3]
    with pytest.raises(UnknownAccount):
        bank.transactions_of("cmartin", account, TransactionQuery())


def test_funds_check_uses_the_instant_balance_plus_overdraft(
    bank: DemoBank, engine: Engine
) -> None:
    account = bank.accounts_of("sroux")[0].resource_id
    with engine.connect() as conn:
        xpcd = conn.execute(
            select(bank_balances.c.amount_minor).where(
                bank_balances.c.account_id == account, bank_balances.c.balance_type == "XPCD"
            )
        ).scalar_one()
    available = Decimal(xpcd + 20_000) / 100
    assert bank.funds_available("sroux", account, available, "EUR")
    assert not bank.funds_available("sroux", account, available + Decimal("0.01"), "EUR")
    with pytest.raises(CurrencyMismatch):
        bank.funds_available("sroux", account, Decimal(1), "USD")
    with pytest.raises(UnknownAccount):
        bank.funds_available("jdupont", account, Decimal(1), "EUR")
    card = bank.accounts_of("jdupont")[1]
    assert bank.funds_available("jdupont", card.resource_id, Decimal("0.01"), "EUR")


def test_identity_and_beneficiaries(bank: DemoBank) -> None:
    identity = bank.identity_of("lbernard")
    assert identity is not None and identity.connected_psu == "M. Luc Bernard"
    assert bank.identity_of("nobody") is None
    payees = bank.trusted_beneficiaries_of("lbernard")
    assert payees[0].creditor_name == "Bois et Materiaux du Centre"
    assert all(p.creditor_address and p.creditor_address.country == "FR" for p in payees)
    assert bank.trusted_beneficiaries_of("nobody") == []


def test_unmigrated_database_is_reported(tmp_path: Path) -> None:
    runner = CliRunner()
    result = runner.invoke(main, ["--data-dir", str(tmp_path), "demo", "seed"])
    assert result.exit_code != 0 and "db upgrade" in result.output
