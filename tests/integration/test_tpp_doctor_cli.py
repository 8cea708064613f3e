"""`stetgate tpp doctor` from the terminal against a real bank: the reports it writes, its exit
status, and the PSU modes it insists on."""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from stetgate.demo.totp import decode_totp_secret, totp_at
from stetgate.tpp.cli import tpp
from tests.integration.psd2_support import DemoPsuWorld, demo_psu_world
from tests.support.bank import RunningBank
from tests.support.pki import TestPki

CALLBACK = "https://tpp.example/cb"


class OneTimeCodes(io.RawIOBase):
    """The terminal's answers to the code prompts: each line is read when the doctor asks
    and is the code of the next TOTP step on the bank's clock (a step is accepted once)."""

    def __init__(self, world: DemoPsuWorld) -> None:
        self._secret = decode_totp_secret(world.marie["totp_secret"])
        self._clock = world.bank.clock

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        line = f"{totp_at(self._secret, self._clock.advance(30))}\n".encode()
        buffer[: len(line)] = line
        return len(line)


def run(world: DemoPsuWorld, *args: str, stdin: io.RawIOBase | None = None) -> Result:
    options = [
        "--bank",
        world.bank.base_url,
        "--ca",
        str(world.pki.ca_pem),
        "--certs",
        str(world.certs.directory),
        "--client-id",
        world.certs.org_id,
    ]
    return CliRunner().invoke(tpp, [*options, "doctor", *args], input=stdin)


@pytest.fixture
def world(bank_factory: Callable[..., RunningBank], pki: TestPki) -> DemoPsuWorld:
    return demo_psu_world(bank_factory(), pki, "PSDFR-ACPR-49001")


def test_doctor_on_a_healthy_bank_writes_both_reports_and_exits_0(
    world: DemoPsuWorld, tmp_path: Path
) -> None:
    marie = world.marie
    result = run(
        world,
        "--psu-robot",
        f"{marie['id']}:{marie['password']}",
        "--psu-method",
        "totp",
        "--redirect-uri",
        CALLBACK,
        "--json",
        str(tmp_path / "report.json"),
        "--html",
        str(tmp_path / "report.html"),
        stdin=OneTimeCodes(world),
    )
    assert result.exit_code == 0, result.output
    document = json.loads((tmp_path / "report.json").read_text())
    assert {c["outcome"] for c in document["checks"]} == {"pass"}
    page = (tmp_path / "report.html").read_text()
    assert 'id="code_is_single_use"' in page
    assert "http://" not in page and "https://cdn" not in page  # self-contained
    assert marie["password"] not in result.output + page + json.dumps(document)


def test_doctor_with_a_psu_the_bank_refuses_exits_1_and_skips_what_needs_tokens(
    world: DemoPsuWorld, tmp_path: Path
) -> None:
    result = run(
        world,
        "--psu-robot",
        f"{world.marie['id']}:not-the-password",
        "--redirect-uri",
        CALLBACK,
        "--json",
        str(tmp_path / "report.json"),
    )
    assert result.exit_code == 1, result.output
    outcomes = {
        c["id"]: c["outcome"] for c in json.loads((tmp_path / "report.json").read_text())["checks"]
    }
    assert outcomes["psu_journey_reaches_callback"] == "fail"
    assert outcomes["token_endpoint_requires_client_certificate"] == "pass"
    assert outcomes["code_exchange_over_mtls"] == "skipped"
    assert outcomes["accounts_follow_schema"] == "skipped"
    assert [i for i, o in outcomes.items() if o == "fail"] == ["psu_journey_reaches_callback"]


@pytest.mark.parametrize(
    "args",
    [
        pytest.param((), id="no PSU"),
        pytest.param(("--browser", "--psu-robot", "u:p"), id="both PSUs"),
    ],
)
def test_doctor_refuses_to_guess_who_the_psu_is(world: DemoPsuWorld, args: tuple[str, ...]) -> None:
    result = run(world, *args)
    assert result.exit_code == 2
    assert "--psu-robot USER:PASSWORD or --browser" in result.output


def test_doctor_robot_needs_the_registered_redirect_uri(world: DemoPsuWorld) -> None:
    result = run(world, "--psu-robot", "u:p")
    assert result.exit_code == 2
    assert "--redirect-uri" in result.output
