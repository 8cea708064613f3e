"""The demo bank's PSU directory over the database (SQLite and PostgreSQL): argon2id
passwords, encrypted TOTP secrets with replay refusal, failure counting and blocking."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from argon2 import PasswordHasher
from cryptography.fernet import Fernet
from sqlalchemy import Engine, select, update

from stetgate.bank.psus import TotpCheck
from stetgate.demo.psu_directory import DatabasePsuDirectory, InvalidPsu
from stetgate.demo.totp import InvalidTotpSecret, decode_totp_secret, totp_at
from stetgate.store.db import make_engine
from stetgate.store.schema import psus

pytestmark = pytest.mark.postgres  # PSU directory: counters, TOTP replay

NOW = datetime(2026, 4, 1, 8, 0, tzinfo=UTC)
SECRET = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    engine = make_engine(db_url, 2)
    yield engine
    engine.dispose()


@pytest.fixture
def fernet() -> Fernet:
    return Fernet(Fernet.generate_key())


@pytest.fixture
def directory(engine: Engine, fernet: Fernet) -> DatabasePsuDirectory:
    found = DatabasePsuDirectory(engine, fernet, max_failed_attempts=3, block_seconds=600)
    found.add_psu("alice", "s3cret", display_name="Alice", totp_secret=SECRET, now=NOW)
    return found


def _row(engine: Engine, psu_id: str = "alice") -> dict[str, object]:
    with engine.connect() as conn:
        return dict(conn.execute(select(psus).where(psus.c.psu_id == psu_id)).mappings().one())


def test_added_psu_is_found_with_its_methods(directory: DatabasePsuDirectory) -> None:
    psu = directory.find("alice")
    assert psu is not None
    assert (psu.display_name, psu.has_totp, psu.app_sca, psu.failed_attempts) == (
        "Alice",
        True,
        True,
        0,
    )
    assert [p.psu_id for p in directory.list_psus()] == ["alice"]
    assert directory.find("bob") is None and directory.find("bad id!") is None


def test_password_is_an_argon2id_hash_and_checked(
    directory: DatabasePsuDirectory, engine: Engine
) -> None:
    stored = str(_row(engine)["password_hash"])
    assert stored.startswith("$argon2id$v=19$m=19456,t=2,p=1$")
    assert "s3cret" not in stored
    assert directory.check_password("alice", "s3cret")
    assert not directory.check_password("alice", "S3cret")
    assert not directory.check_password("nobody", "s3cret")
    assert not directory.check_password("alice", "s3cret" + "x" * 2000)


def test_a_hash_with_older_parameters_is_upgraded_on_success(
    directory: DatabasePsuDirectory, engine: Engine
) -> None:
    weak = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1).hash("s3cret")
    with engine.begin() as conn:
        conn.execute(update(psus).where(psus.c.psu_id == "alice").values(password_hash=weak))
    assert not directory.check_password("alice", "wrong")
    assert _row(engine)["password_hash"] == weak
    assert directory.check_password("alice", "s3cret")
    assert str(_row(engine)["password_hash"]).startswith("$argon2id$v=19$m=19456,t=2,p=1$")


def test_totp_secret_is_stored_encrypted(
    directory: DatabasePsuDirectory, engine: Engine, fernet: Fernet
) -> None:
    stored = str(_row(engine)["totp_secret_enc"])
    assert SECRET not in stored
    assert fernet.decrypt(stored.encode()).decode() == SECRET


def test_totp_accepts_a_code_once(directory: DatabasePsuDirectory, engine: Engine) -> None:
    code = totp_at(decode_totp_secret(SECRET), NOW)
    assert directory.current_totp("alice", NOW) == code
    assert directory.check_totp("alice", code, NOW) is TotpCheck.ACCEPTED
    assert directory.check_totp("alice", code, NOW) is TotpCheck.REUSED
    assert directory.check_totp("alice", code, NOW + timedelta(seconds=20)) is TotpCheck.REUSED
    later = NOW + timedelta(seconds=30)
    later_code = totp_at(decode_totp_secret(SECRET), later)
    assert directory.check_totp("alice", later_code, later) is TotpCheck.ACCEPTED
    assert directory.check_totp("nobody", code, NOW) is TotpCheck.WRONG


def test_a_reused_code_is_told_apart_from_a_wrong_one_and_changes_nothing(
    directory: DatabasePsuDirectory, engine: Engine
) -> None:
    code = directory.current_totp("alice", NOW) or ""
    assert directory.check_totp("alice", code, NOW)
    accepted = _row(engine)
    wrong = f"{(int(code) + 1) % 1_000_000:06d}"
    assert directory.check_totp("alice", wrong, NOW) is TotpCheck.WRONG
    assert directory.check_totp("alice", code, NOW) is TotpCheck.REUSED
    assert not directory.check_totp("alice", code, NOW)  # falsy, as the former False
    assert _row(engine) == accepted


def test_an_older_code_of_the_window_after_a_newer_one_is_reused(
    directory: DatabasePsuDirectory,
) -> None:
    key = decode_totp_secret(SECRET)
    ahead = totp_at(key, NOW + timedelta(seconds=30))  # the authenticator's clock runs ahead
    assert directory.check_totp("alice", ahead, NOW) is TotpCheck.ACCEPTED
    assert directory.check_totp("alice", totp_at(key, NOW), NOW) is TotpCheck.REUSED


def test_a_used_code_outside_the_window_is_wrong_not_reused(
    directory: DatabasePsuDirectory,
) -> None:
    code = directory.current_totp("alice", NOW) or ""
    assert directory.check_totp("alice", code, NOW)
    later = NOW + timedelta(seconds=90)
    assert directory.check_totp("alice", code, later) is TotpCheck.WRONG


def test_a_psu_without_totp_gets_wrong_for_any_code(
    directory: DatabasePsuDirectory, engine: Engine
) -> None:
    code = directory.current_totp("alice", NOW) or ""
    with engine.begin() as conn:
        conn.execute(update(psus).where(psus.c.psu_id == "alice").values(totp_secret_enc=None))
    assert directory.check_totp("alice", code, NOW) is TotpCheck.WRONG
    assert directory.check_totp("bad id!", code, NOW) is TotpCheck.WRONG


def test_re_enrolling_totp_restarts_replay_tracking(
    directory: DatabasePsuDirectory, engine: Engine
) -> None:
    assert directory.check_totp("alice", directory.current_totp("alice", NOW) or "", NOW)
    directory.enrol_totp("alice", "KRSXG5CTMVRXEZLUKRSXG5CTMVRXEZLU")
    assert _row(engine)["totp_last_step"] is None
    assert directory.check_totp("alice", directory.current_totp("alice", NOW) or "", NOW)


def test_failures_block_at_the_limit_and_the_count_restarts(
    directory: DatabasePsuDirectory, engine: Engine
) -> None:
    assert directory.record_failed_attempt("alice", NOW).blocked_until is None
    second = directory.record_failed_attempt("alice", NOW)
    assert (second.consecutive_failures, second.blocked_until) == (2, None)
    third = directory.record_failed_attempt("alice", NOW)
    assert third.blocked_until == NOW + timedelta(seconds=600)
    psu = directory.find("alice")
    assert psu is not None and psu.blocked_at(NOW) and not psu.blocked_at(NOW + timedelta(hours=1))
    assert psu.failed_attempts == 0
    assert directory.unblock("alice")
    psu = directory.find("alice")
    assert psu is not None and psu.blocked_until is None
    assert not directory.unblock("nobody")


def test_a_completed_sca_restarts_the_count(directory: DatabasePsuDirectory) -> None:
    directory.record_failed_attempt("alice", NOW)
    directory.record_failed_attempt("alice", NOW)
    directory.record_successful_authentication("alice")
    assert directory.record_failed_attempt("alice", NOW).blocked_until is None


def test_failures_of_an_unknown_id_change_nothing(directory: DatabasePsuDirectory) -> None:
    assert directory.record_failed_attempt("nobody", NOW).consecutive_failures == 0
    assert [p.psu_id for p in directory.list_psus()] == ["alice"]


@pytest.mark.parametrize(
    ("psu_id", "password", "secret"),
    [("alice", "x", None), ("bad id", "x", None), ("bob", "", None), ("bob", "x", "nope!")],
)
def test_invalid_psus_are_refused(
    directory: DatabasePsuDirectory, psu_id: str, password: str, secret: str | None
) -> None:
    with pytest.raises((InvalidPsu, InvalidTotpSecret)):
        directory.add_psu(psu_id, password, totp_secret=secret, now=NOW)
    assert [p.psu_id for p in directory.list_psus()] == ["alice"]


def test_generated_secret_is_returned_and_app_method_optional(
    directory: DatabasePsuDirectory,
) -> None:
    secret = directory.add_psu("bob", "pw", app_sca=False, now=NOW)
    assert len(decode_totp_secret(secret)) == 20
    bob = directory.find("bob")
    assert bob is not None and not bob.app_sca and bob.display_name == "bob"
    directory.enrol_app("bob", True)
    bob = directory.find("bob")
    assert bob is not None and bob.app_sca


def test_a_changed_instance_key_is_reported_clearly(engine: Engine, fernet: Fernet) -> None:
    DatabasePsuDirectory(engine, fernet, max_failed_attempts=3, block_seconds=60).add_psu(
        "carol", "pw", now=NOW
    )
    other = DatabasePsuDirectory(
        engine, Fernet(Fernet.generate_key()), max_failed_attempts=3, block_seconds=60
    )
    with pytest.raises(RuntimeError, match="secret key changed"):
        other.check_totp("carol", "123456", NOW)
