"""AES-256-GCM at rest: bound to the store key and the key id, keys rotate, keyrings are
checked (stetgate/tpp/lifecycle/sealing.py)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from stetgate.tpp.lifecycle.errors import UndecryptableToken
from stetgate.tpp.lifecycle.file_store import FileTokenStore
from stetgate.tpp.lifecycle.sealing import KEYS_ENV, Keyring, TokenSealer, new_key_line
from stetgate.tpp.lifecycle.store import ABSENT, EncryptedTokens
from tests.support.lifecycle_values import keyring, record, sealer


def test_a_sealed_value_opens_under_its_store_key() -> None:
    s = sealer()
    assert s.open("psu-a", s.seal("psu-a", b"secret")) == b"secret"


def test_a_value_moved_to_another_psu_s_key_does_not_open() -> None:
    s = sealer()
    with pytest.raises(UndecryptableToken, match="psu-b"):
        s.open("psu-b", s.seal("psu-a", b"secret"))


def test_a_tampered_value_does_not_open() -> None:
    s = sealer()
    value = s.seal("psu-a", b"secret")
    middle = len(value) - 10  # inside the ciphertext (the last character may be padding bits)
    forged = value[:middle] + ("A" if value[middle] != "A" else "B") + value[middle + 1 :]
    with pytest.raises(UndecryptableToken):
        s.open("psu-a", forged)


def test_a_value_relabelled_with_another_key_id_does_not_open() -> None:
    ring = Keyring.parse(f"{new_key_line('new')}\n{new_key_line('old')}")
    s = TokenSealer(ring)
    value = s.seal("psu-a", b"secret")
    relabelled = value.replace(".new.", ".old.")
    with pytest.raises(UndecryptableToken):
        s.open("psu-a", relabelled)


def test_a_key_id_missing_from_the_keyring_is_named_not_guessed() -> None:
    value = sealer("gone").seal("psu-a", b"secret")
    with pytest.raises(UndecryptableToken, match="'gone'"):
        sealer("k1").open("psu-a", value)


def test_not_a_sealed_value_is_refused() -> None:
    with pytest.raises(UndecryptableToken):
        sealer().open("psu-a", '{"access_token": "plain"}')


def test_nonces_differ_so_equal_tokens_do_not_look_equal() -> None:
    s = sealer()
    assert s.seal("psu-a", b"same") != s.seal("psu-a", b"same")


def test_rotation_opens_with_the_old_key_and_seals_with_the_new(tmp_path: Path) -> None:
    old_line, new_line = new_key_line("2026a"), new_key_line("2026b")
    before = EncryptedTokens(
        FileTokenStore(tmp_path / "t.json"), TokenSealer(Keyring.parse(old_line))
    )
    before.put("psu-a", record(), ABSENT)
    after = EncryptedTokens(before.store, TokenSealer(Keyring.parse(f"{new_line}\n{old_line}")))
    assert after.get("psu-a") is not None
    assert after.reseal_all() == 1
    assert after.reseal_all() == 0
    sealed = before.store.get("psu-a")
    assert sealed is not None and sealed.value.startswith("sg1.2026b.")
    only_new = EncryptedTokens(before.store, TokenSealer(Keyring.parse(new_line)))
    stored = only_new.get("psu-a")
    assert stored is not None and stored.record == record()


def test_the_store_never_holds_a_token_in_clear(tmp_path: Path) -> None:
    tokens = EncryptedTokens(FileTokenStore(tmp_path / "t.json"), sealer())
    tokens.put("psu-a", record(), ABSENT)
    text = (tmp_path / "t.json").read_text()
    assert "access-secret" not in text and "refresh-secret" not in text
    assert "psu-a" in text  # the store key is not secret; it is bound into the ciphertext


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("", "no key"),
        ("k1", "malformed"),
        (f"{new_key_line('k1')}\n{new_key_line('k1')}", "repeated"),
        ("k1=c2hvcnQ", "32 bytes"),
        ("k1=!!!", "base64url"),
        ("bad id=" + "A" * 43, "invalid key id"),
    ],
    # Named by the problem: a case id holding fresh random keys differs from run to run (CI
    # matches the cases of its two passes by id).
    ids=["empty", "no-equals", "repeated-id", "short-key", "not-base64url", "bad-key-id"],
)
def test_a_malformed_keyring_is_refused(text: str, problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        Keyring.parse(text)


def test_a_keyring_file_readable_by_others_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "keys"
    path.write_text(new_key_line("k1"))
    os.chmod(path, 0o640)
    with pytest.raises(PermissionError, match="640"):
        Keyring.from_file(path)
    os.chmod(path, 0o600)
    assert Keyring.from_file(path).current == "k1"


def test_the_keyring_from_the_environment_seals_with_its_first_key() -> None:
    ring = Keyring.from_environment({KEYS_ENV: f"{new_key_line('b')},{new_key_line('a')}"})
    assert ring.current == "b" and set(ring.keys) == {"a", "b"}
    with pytest.raises(LookupError):
        Keyring.from_environment({})


def test_a_keyring_never_shows_its_keys() -> None:
    ring = keyring("k1")
    assert ring.keys["k1"].hex() not in repr(ring)
