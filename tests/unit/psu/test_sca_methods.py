"""The one-time-code method over the directory's answer (`TotpCheck`, or the former bool):
a reused code is its own outcome, a wrong or empty one a failure, and a directory written for
the earlier port keeps working (RFC 6238 §5.2; RTS (EU) 2018/389 Art. 4(3))."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import cast

import pytest

from stetgate.bank.psus import PsuDirectory, TotpCheck, totp_check
from stetgate.bank.sca import ScaCheck
from stetgate.psu.sca import TotpMethod

NOW = datetime(2026, 2, 1, 12, tzinfo=UTC)


@dataclass(frozen=True)
class Attempt:
    psu_id: str | None = "alice"
    app_challenge_status: str | None = None
    app_challenge_id: str | None = None
    sca_service_challenge_id: str | None = None


@dataclass
class AnsweringDirectory:
    """Only ``check_totp`` of a directory, answering what the test says; records the codes."""

    answer: TotpCheck | bool
    codes: list[str] = field(default_factory=list)

    def check_totp(self, psu_id: str, code: str, now: datetime) -> TotpCheck | bool:
        self.codes.append(code)
        return self.answer


def _check(answer: TotpCheck | bool, otp: str = "123456", psu_id: str | None = "alice") -> ScaCheck:
    directory = AnsweringDirectory(answer)
    return TotpMethod().check(
        cast(PsuDirectory, directory), Attempt(psu_id=psu_id), {"otp": otp}, NOW
    )


@pytest.mark.parametrize(
    ("answer", "outcome"),
    [
        (TotpCheck.ACCEPTED, ScaCheck.COMPLETED),
        (TotpCheck.WRONG, ScaCheck.FAILED),
        (TotpCheck.REUSED, ScaCheck.REUSED),
        (True, ScaCheck.COMPLETED),
        (False, ScaCheck.FAILED),
    ],
)
def test_the_directory_answer_decides_the_sca_outcome(
    answer: TotpCheck | bool, outcome: ScaCheck
) -> None:
    assert _check(answer) is outcome


def test_a_directory_of_the_earlier_port_cannot_answer_reused() -> None:
    assert totp_check(False) is TotpCheck.WRONG and totp_check(True) is TotpCheck.ACCEPTED


@pytest.mark.parametrize("otp", ["", "   "])
def test_an_empty_code_fails_without_asking_the_directory(otp: str) -> None:
    directory = AnsweringDirectory(TotpCheck.ACCEPTED)
    check = TotpMethod().check(cast(PsuDirectory, directory), Attempt(), {"otp": otp}, NOW)
    assert check is ScaCheck.FAILED and directory.codes == []


def test_a_journey_without_psu_fails_without_asking_the_directory() -> None:
    assert _check(TotpCheck.ACCEPTED, psu_id=None) is ScaCheck.FAILED


def test_spaces_inside_the_typed_code_are_dropped() -> None:
    directory = AnsweringDirectory(TotpCheck.ACCEPTED)
    TotpMethod().check(cast(PsuDirectory, directory), Attempt(), {"otp": "123 456"}, NOW)
    assert directory.codes == ["123456"]


def test_only_an_accepted_code_is_truthy() -> None:
    assert [bool(answer) for answer in TotpCheck] == [True, False, False]
