"""Identification as one decision over any `PsuDirectory` (RTS Art. 4(3)(a)(b))."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta

from stetgate.bank.psus import FailedAttempt, Psu
from stetgate.psu.authentication import Verdict, identify

NOW = datetime(2026, 2, 1, 12, tzinfo=UTC)


@dataclass
class MemoryDirectory:
    """A `PsuDirectory` in memory, recording which checks ran."""

    psus: dict[str, Psu]
    passwords: dict[str, str]
    limit: int = 3
    password_checks: list[str] = field(default_factory=list)

    def find(self, psu_id: str) -> Psu | None:
        return self.psus.get(psu_id)

    def check_password(self, psu_id: str, password: str) -> bool:
        self.password_checks.append(psu_id)
        return self.passwords.get(psu_id) == password

    def check_totp(self, psu_id: str, code: str, now: datetime) -> bool:
        return False

    def record_failed_attempt(self, psu_id: str, now: datetime) -> FailedAttempt:
        psu = self.psus[psu_id]
        count = psu.failed_attempts + 1
        if count >= self.limit:
            until = now + timedelta(minutes=15)
            self.psus[psu_id] = replace(psu, failed_attempts=0, blocked_until=until)
            return FailedAttempt(count, until)
        self.psus[psu_id] = replace(psu, failed_attempts=count)
        return FailedAttempt(count, None)

    def record_successful_authentication(self, psu_id: str) -> None:
        self.psus[psu_id] = replace(self.psus[psu_id], failed_attempts=0)

    def block(self, psu_id: str, until: datetime) -> bool:
        self.psus[psu_id] = replace(self.psus[psu_id], blocked_until=until)
        return True

    def unblock(self, psu_id: str) -> bool:
        self.psus[psu_id] = replace(self.psus[psu_id], blocked_until=None, failed_attempts=0)
        return True

    def enrol_totp(self, psu_id: str, secret: str) -> None:
        return None

    def enrol_app(self, psu_id: str, enabled: bool) -> None:
        return None


def _directory(**changes: object) -> MemoryDirectory:
    alice = replace(Psu("alice", "Alice", True, True, 0, None, NOW), **changes)  # type: ignore[arg-type]
    return MemoryDirectory({"alice": alice}, {"alice": "pw"})


def test_right_password_identifies() -> None:
    result = identify(_directory(), "alice", "pw", NOW)
    assert result.verdict is Verdict.IDENTIFIED and result.psu is not None


def test_unknown_id_costs_a_password_check_and_counts_nothing() -> None:
    directory = _directory()
    result = identify(directory, "mallory", "pw", NOW)
    assert result.verdict is Verdict.FAILED and result.psu is None
    assert directory.password_checks == ["mallory"]


def test_wrong_password_counts_and_blocks_at_the_limit() -> None:
    directory = _directory()
    assert identify(directory, "alice", "x", NOW).verdict is Verdict.FAILED
    assert identify(directory, "alice", "x", NOW).verdict is Verdict.FAILED
    third = identify(directory, "alice", "x", NOW)
    assert third.verdict is Verdict.BLOCKED and third.just_blocked
    assert third.blocked_until == NOW + timedelta(minutes=15)


def test_during_a_block_the_right_password_is_answered_like_a_wrong_one() -> None:
    """RTS Art. 4(3)(a)(b): no oracle while blocked (found by an outside attack run: the right
    password used to get the blocked page, a wrong one the ordinary failure)."""
    directory = _directory(blocked_until=NOW + timedelta(minutes=5))
    wrong = identify(directory, "alice", "x", NOW)
    right = identify(directory, "alice", "pw", NOW)
    assert wrong.verdict is right.verdict is Verdict.FAILED
    for answer in (wrong, right):
        assert answer.blocked_until is None and not answer.just_blocked
    assert directory.password_checks == ["alice", "alice"]  # the same work either way


def test_attempts_during_a_block_are_counted_and_restart_it() -> None:
    later = NOW + timedelta(minutes=1)
    directory = _directory(blocked_until=NOW + timedelta(minutes=5))
    assert identify(directory, "alice", "pw", later).verdict is Verdict.FAILED
    assert identify(directory, "alice", "x", later).verdict is Verdict.FAILED
    assert directory.psus["alice"].failed_attempts == 2
    third = identify(directory, "alice", "pw", later)  # the right one: counted all the same
    assert third.verdict is Verdict.BLOCKED and third.just_blocked
    assert third.blocked_until == later + timedelta(minutes=15)


def test_an_expired_block_no_longer_applies() -> None:
    directory = _directory(blocked_until=NOW - timedelta(seconds=1))
    assert identify(directory, "alice", "pw", NOW).verdict is Verdict.IDENTIFIED
