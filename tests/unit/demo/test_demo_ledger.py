"""The demo ledger is deterministic, realistic and internally consistent (pure generation)."""

from __future__ import annotations

import re
from collections import Counter
from datetime import date, timedelta

import pytest

from stetgate.bank.iban import is_valid_iban
from stetgate.demo.seed import (
    HISTORY_DAYS,
    DemoAccount,
    DemoLedger,
    build_demo_ledger,
    numbered_entries,
)

ANCHOR = date(2026, 11, 26)
RESOURCE_ID = re.compile(r"[a-zA-Z0-9 /\-?:\()\.,']{1,35}")


@pytest.fixture(scope="module")
def ledger() -> DemoLedger:
    return build_demo_ledger(7, ANCHOR)


def test_the_same_seed_and_day_give_the_same_ledger(ledger: DemoLedger) -> None:
    assert build_demo_ledger(7, ANCHOR) == ledger


def test_another_seed_gives_other_credentials_ibans_and_entries(ledger: DemoLedger) -> None:
    other = build_demo_ledger(8, ANCHOR)
    assert [p.psu_id for p in other.psus] == [p.psu_id for p in ledger.psus]
    assert {p.password for p in other.psus}.isdisjoint(p.password for p in ledger.psus)
    assert {a.iban for a in other.accounts if a.iban}.isdisjoint(
        a.iban for a in ledger.accounts if a.iban
    )
    assert other.accounts[0].entries != ledger.accounts[0].entries


def test_handful_of_french_psus_with_valid_unique_ibans(ledger: DemoLedger) -> None:
    assert 4 <= len(ledger.psus) <= 8
    ibans = [a.iban for a in ledger.accounts if a.iban]
    assert len(ibans) == len(set(ibans))
    assert all(i.startswith("FR") and len(i) == 27 and is_valid_iban(i) for i in ibans)
    assert all(is_valid_iban(b.iban) for b in ledger.beneficiaries)
    ids = [a.resource_id for a in ledger.accounts]
    assert len(ids) == len(set(ids)) and all(RESOURCE_ID.fullmatch(i) for i in ids)
    assert all(len(p.totp_secret) == 32 and len(p.password) >= 12 for p in ledger.psus)


def test_account_types_include_joint_professional_and_card_accounts(ledger: DemoLedger) -> None:
    kinds = Counter((a.cash_account_type, a.usage) for a in ledger.accounts)
    assert kinds[("CACC", "PRIV")] >= 3 and kinds[("CACC", "ORGA")] >= 1
    assert kinds[("CARD", "PRIV")] + kinds[("CARD", "ORGA")] >= 2
    joint = [a for a in ledger.accounts if len(a.holders) == 2 and a.cash_account_type == "CACC"]
    assert joint and {s for _, s in joint[0].holders} == {"Account Holder", "Co-account Holder"}
    by_id = {a.resource_id: a for a in ledger.accounts}
    for card in (a for a in ledger.accounts if a.cash_account_type == "CARD"):
        cash = by_id[card.linked_account or ""]
        assert cash.cash_account_type == "CACC" and cash.holders == card.holders
        assert (
            card.iban is None
            and card.other_identification
            and "XXXXXX" in card.other_identification
        )


def test_history_covers_400_days_with_everyday_life(ledger: DemoLedger) -> None:
    personal = next(a for a in ledger.accounts if a.plan_key == "jdupont-perso")
    days = {e.imputation_date for e in personal.entries}
    assert min(days) == ANCHOR - timedelta(days=HISTORY_DAYS)
    assert max(days) <= ANCHOR
    labels = " ".join(e.label for e in personal.entries)
    for word in ("SALAIRE", "LOYER", "EDF", "CARTE", "RETRAIT DAB"):
        assert word in labels
    assert len(personal.entries) > 400


def test_balances_add_up_and_pending_entries_are_recent_card_payments(ledger: DemoLedger) -> None:
    for account in ledger.accounts:
        booked = sum(e.amount_minor for e in account.entries if not e.pending)
        assert booked == account.closing_minor, account.plan_key
        for entry in account.entries:
            if entry.pending:
                assert entry.imputation_date >= ANCHOR - timedelta(days=3)
                assert entry.amount_minor < 0 and ("CB " in entry.label or "CARTE" in entry.label)
    overdrawn = next(a for a in ledger.accounts if a.plan_key == "sroux-courant")
    assert _expected_minor(overdrawn) < 0 < _expected_minor(overdrawn) + overdrawn.overdraft_minor


def _expected_minor(account: DemoAccount) -> int:
    """The expected balance (XPCD): booked entries plus pending ones."""
    return account.closing_minor + sum(e.amount_minor for e in account.entries if e.pending)


@pytest.mark.parametrize(
    "anchor",
    [
        date(2026, 11, 29),  # seed 3 once put the student €180 past her overdraft on this day
        date(2026, 12, 31),
        date(2027, 1, 1),
        date(2027, 3, 28),  # Europe/Paris moves to summer time
        date(2027, 10, 31),  # and back
        date(2028, 2, 29),
        date(2028, 3, 1),
    ],
    ids=date.isoformat,
)
def test_accounts_keep_their_profile_on_any_anchor_day(anchor: date) -> None:
    """Tests rely on it whatever the day: the student's account is overdrawn within its
    authorised overdraft, every other cash account is in credit (pending payments included)."""
    for account in build_demo_ledger(3, anchor).accounts:
        if account.cash_account_type == "CARD":
            continue
        expected = _expected_minor(account)
        if account.plan_key == "sroux-courant":
            assert expected < 0 < expected + account.overdraft_minor, anchor
        else:
            assert expected > 0, (account.plan_key, anchor)


def test_card_statements_settle_the_card_on_its_cash_account(ledger: DemoLedger) -> None:
    card = next(a for a in ledger.accounts if a.plan_key == "dupont-joint:card")
    cash = next(a for a in ledger.accounts if a.plan_key == "dupont-joint")
    settled = {
        e.label.removeprefix("REGLEMENT "): e.amount_minor
        for e in card.entries
        if e.label.startswith("REGLEMENT")
    }
    debited = {e.label: -e.amount_minor for e in cash.entries if e.label.startswith("FACTURE")}
    assert settled and settled == debited


def test_entry_references_are_incremental_with_pending_entries_last(ledger: DemoLedger) -> None:
    for account in ledger.accounts:
        numbered = numbered_entries(account)
        assert [n for n, _ in numbered] == list(range(1, len(numbered) + 1))
        booked_dates = [e.imputation_date for _, e in numbered if not e.pending]
        assert booked_dates == sorted(booked_dates)
        flags = [e.pending for _, e in numbered]
        assert flags == sorted(flags)
