"""Days left before each PSU must authenticate again (stetgate/tpp/lifecycle/report.py)."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from stetgate.tpp.lifecycle.file_store import FileTokenStore
from stetgate.tpp.lifecycle.limits import BankLimits
from stetgate.tpp.lifecycle.records import TokenRecord
from stetgate.tpp.lifecycle.report import sca_report
from stetgate.tpp.lifecycle.store import ABSENT, EncryptedTokens
from tests.support.lifecycle_values import BANK, START, record, sealer, tokens


def test_the_report_lists_psus_soonest_to_expire_first_with_each_bank_s_window(
    tmp_path: Path,
) -> None:
    store = FileTokenStore(tmp_path / "t.json")
    vault = EncryptedTokens(store, sealer())
    vault.put("old", record(START - timedelta(days=80)), ABSENT)
    vault.put("new", record(START - timedelta(days=1)), ABSENT)
    other = "https://lenient.test"
    vault.put("elsewhere", TokenRecord(other, tokens(START), START - timedelta(days=170)), ABSENT)
    vault.put("over", record().ending("refused_by_bank", "revoked"), ABSENT)
    report = sca_report(vault, {other: BankLimits(sca_validity_days=180)}, START)
    assert [(s.psu_key, s.days_left, s.ended) for s in report] == [
        ("over", 0, "refused_by_bank"),
        ("elsewhere", 10, None),
        ("old", 10, None),
        ("new", 89, None),
    ]
    assert report[2].sca_expires_at == START + timedelta(days=10)
    assert all(s.bank for s in report)
    assert {s.bank for s in report} == {BANK, other}


def test_an_undecryptable_entry_is_reported_not_skipped(tmp_path: Path) -> None:
    store = FileTokenStore(tmp_path / "t.json")
    EncryptedTokens(store, sealer("lost")).put("psu-1", record(), ABSENT)
    report = sca_report(EncryptedTokens(store, sealer("k1")), {}, START)
    assert len(report) == 1 and report[0].days_left == 0
    assert report[0].ended is not None and "'lost'" in report[0].ended
