"""`stetgate tpp doctor` against real stetgate banks over mTLS: a healthy bank passes every
check; banks broken in exactly one way (tests/support/broken_banks.py) fail exactly the check
that names that rule, and nothing else."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from stetgate.demo.totp import decode_totp_secret, totp_at
from stetgate.tpp.client import TppCredentials
from stetgate.tpp.doctor.context import DoctorContext
from stetgate.tpp.doctor.expectations import DoctorExpectations, RefreshRotation
from stetgate.tpp.doctor.journeys import RobotJourney
from stetgate.tpp.doctor.model import DoctorReport, Outcome
from stetgate.tpp.doctor.reports import report_html, report_json
from stetgate.tpp.doctor.runner import CHECKS, run_doctor
from tests.integration.psd2_support import DemoPsuWorld, demo_psu_world
from tests.support import broken_banks
from tests.support.bank import RunningBank
from tests.support.pki import TestPki

CALLBACK = "https://tpp.example/cb"
STEP_SECONDS = 30


def doctor(world: DemoPsuWorld, expectations: DoctorExpectations | None = None) -> DoctorReport:
    """Run the doctor as the world's TPP, its robot playing Marie. Each journey's one-time
    code is read a TOTP step later on the bank's clock (the bank refuses a step twice)."""
    bank = world.bank
    secret = decode_totp_secret(world.marie["totp_secret"])

    def next_code() -> str:
        return totp_at(secret, bank.clock.advance(STEP_SECONDS))

    robot = dataclasses.replace(world.robot, otp=next_code)
    with bank.client() as browser:
        ctx = DoctorContext.open(
            bank.base_url,
            TppCredentials.from_directory(world.certs.directory),
            world.certs.org_id,
            RobotJourney(robot, browser, CALLBACK),
            clock=bank.clock,
            ca_file=world.pki.ca_pem,
            expectations=expectations,
        )
        try:
            return run_doctor(ctx)
        finally:
            ctx.close()


def failed_ids(report: DoctorReport) -> set[str]:
    return {r.check_id for r in report.with_outcome(Outcome.FAIL)}


@pytest.fixture
def start_world(
    bank_factory: Callable[..., RunningBank], pki: TestPki
) -> Iterator[Callable[..., DemoPsuWorld]]:
    count = iter(range(100))

    def start(**bank_options: Any) -> DemoPsuWorld:
        return demo_psu_world(bank_factory(**bank_options), pki, f"PSDFR-ACPR-4{next(count):04d}")

    yield start


def test_a_healthy_bank_passes_every_check(
    start_world: Callable[..., DemoPsuWorld], tmp_path: Path
) -> None:
    report = doctor(start_world())
    outcomes = {r.check_id: r.outcome for r in report.results}
    assert outcomes == {check.rule.check_id: Outcome.PASS for check in CHECKS}, [
        (r.check_id, r.detail) for r in report.results if r.outcome is not Outcome.PASS
    ]
    document = json.loads(report_json(report))
    assert document["failed"] is False
    assert document["counts"]["pass"] == len(CHECKS)
    assert "<script" not in report_html(report)


def test_a_bank_that_does_not_echo_x_request_id_fails_only_that_check(
    start_world: Callable[..., DemoPsuWorld],
) -> None:
    report = doctor(start_world(wrap=broken_banks.without_request_id_echo))
    assert failed_ids(report) == {"request_id_is_echoed"}


def test_a_bank_that_rotates_refresh_tokens_fails_only_the_rotation_check(
    start_world: Callable[..., DemoPsuWorld],
) -> None:
    report = doctor(start_world(rotate_refresh_tokens=True))
    assert failed_ids(report) == {"refresh_token_rotation_matches_expectation"}


def test_a_rotating_bank_passes_when_the_tpp_expects_rotation(
    start_world: Callable[..., DemoPsuWorld],
) -> None:
    expectations = DoctorExpectations(refresh_rotation=RefreshRotation.ROTATED)
    report = doctor(start_world(rotate_refresh_tokens=True), expectations)
    assert {r.outcome for r in report.results} == {Outcome.PASS}


def test_a_bank_with_another_error_body_fails_only_the_error_model_check(
    start_world: Callable[..., DemoPsuWorld],
) -> None:
    report = doctor(start_world(wrap=broken_banks.with_foreign_error_bodies))
    assert failed_ids(report) == {"errors_use_stet_error_model"}


def test_a_bank_without_iss_in_the_callback_fails_only_the_issuer_check(
    start_world: Callable[..., DemoPsuWorld],
) -> None:
    report = doctor(start_world(wrap=broken_banks.without_issuer_in_callback))
    assert failed_ids(report) == {"callback_carries_issuer"}


def test_a_bank_that_accepts_a_replayed_code_fails_only_the_single_use_check(
    start_world: Callable[..., DemoPsuWorld], monkeypatch: pytest.MonkeyPatch
) -> None:
    broken_banks.accept_replayed_codes(monkeypatch)
    report = doctor(start_world())
    assert failed_ids(report) == {"code_is_single_use"}


def test_a_bank_that_skips_signature_verification_fails_only_the_signature_check(
    start_world: Callable[..., DemoPsuWorld], monkeypatch: pytest.MonkeyPatch
) -> None:
    broken_banks.skip_signature_verification(monkeypatch)
    report = doctor(start_world())
    assert failed_ids(report) == {"requests_must_be_signed"}
