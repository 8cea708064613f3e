"""`stetgate tpp tokens …` on a file store (stetgate/tpp/lifecycle/cli.py): no token is ever
printed, a missing or unsafe keyring is one line, never a traceback."""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from stetgate.clock import SystemClock
from stetgate.tpp.cli import tpp
from stetgate.tpp.lifecycle.file_store import FileTokenStore
from stetgate.tpp.lifecycle.sealing import KEYS_ENV, Keyring, TokenSealer, new_key_line
from stetgate.tpp.lifecycle.store import ABSENT, EncryptedTokens
from stetgate.tpp.lifecycle.store_url import open_token_store
from tests.support.lifecycle_values import record

KEYS = new_key_line("k1")


def _run(state: Path, *args: str, keys: str | None = KEYS) -> Result:
    env = {KEYS_ENV: keys} if keys else {KEYS_ENV: ""}
    return CliRunner().invoke(
        tpp, ["--state-dir", str(state), "tokens", *args], env=env, catch_exceptions=False
    )


@pytest.fixture
def vault(tmp_path: Path) -> EncryptedTokens:
    now = SystemClock().now()
    vault = EncryptedTokens(
        FileTokenStore(tmp_path / "tokens.sealed.json"), TokenSealer(Keyring.parse(KEYS))
    )
    vault.put("alice", record(now - timedelta(days=85)), ABSENT)
    vault.put("bob", record(now - timedelta(days=3)), ABSENT)
    vault.put("carol", record(now).ending("refused_by_bank", "revoked"), ABSENT)
    return vault


def test_report_lists_days_left_soonest_first_without_tokens(
    tmp_path: Path, vault: EncryptedTokens
) -> None:
    result = _run(tmp_path, "report")
    assert result.exit_code == 0, result.output
    lines = result.output.strip().splitlines()
    assert [line.split("\t")[0] for line in lines] == ["carol", "alice", "bob"]
    assert "ended: refused_by_bank" in lines[0] and "4 days left" in lines[1]
    assert "secret" not in result.output
    within = _run(tmp_path, "report", "--within", "10")
    assert [line.split("\t")[0] for line in within.output.strip().splitlines()] == [
        "carol",
        "alice",
    ]


def test_a_bank_s_longer_sca_window_is_used_in_the_report(
    tmp_path: Path, vault: EncryptedTokens
) -> None:
    result = _run(tmp_path, "report", "--sca-days", "https://bank.test=180")
    assert "94 days left" in result.output


def test_a_malformed_sca_days_is_a_usage_error(tmp_path: Path, vault: EncryptedTokens) -> None:
    result = _run(tmp_path, "report", "--sca-days", "180")
    assert result.exit_code == 2 and "BANK_URL=DAYS" in result.output


def test_purge_deletes_only_ended_authorizations(tmp_path: Path, vault: EncryptedTokens) -> None:
    assert _run(tmp_path, "purge").exit_code == 2  # --yes is required
    result = _run(tmp_path, "purge", "--yes")
    assert result.output.strip() == "1 ended entries deleted"
    assert vault.stored_keys() == ["alice", "bob"]


def test_reseal_moves_every_entry_to_the_first_key(tmp_path: Path, vault: EncryptedTokens) -> None:
    rotated = f"{new_key_line('k2')}\n{KEYS}"
    assert _run(tmp_path, "reseal", keys=rotated).output.strip() == "3 entries resealed"
    wrong = _run(tmp_path, "report", keys=new_key_line("k2")).output
    assert wrong.count("undecryptable") == 3
    assert "undecryptable" not in _run(tmp_path, "report", keys=rotated).output
    store = FileTokenStore(tmp_path / "tokens.sealed.json")
    assert all(store.get(k).value.startswith("sg1.k2.") for k in store.stored_keys())  # type: ignore[union-attr]


def test_without_a_keyring_the_command_says_what_to_set(tmp_path: Path) -> None:
    result = _run(tmp_path, "report", keys=None)
    assert result.exit_code == 1 and KEYS_ENV in result.output
    assert "Traceback" not in result.output


def test_a_keyring_file_readable_by_others_is_refused_in_one_line(tmp_path: Path) -> None:
    keys = tmp_path / "keys"
    keys.write_text(KEYS)
    os.chmod(keys, 0o644)
    result = _run(tmp_path, "--keys-file", str(keys), "report", keys=None)
    assert result.exit_code == 1 and "readable by others" in result.output


def test_keygen_prints_a_line_the_keyring_accepts(tmp_path: Path) -> None:
    line = _run(tmp_path, "keygen", "2026-12", keys=None).output.strip()
    assert Keyring.parse(line).current == "2026-12"
    assert _run(tmp_path, "keygen", "bad id", keys=None).exit_code == 2


def test_an_unknown_store_scheme_is_refused() -> None:
    with pytest.raises(ValueError, match="'mysql'"):
        open_token_store("mysql://db/tokens")
