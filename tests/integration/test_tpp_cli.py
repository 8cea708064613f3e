"""`stetgate tpp` against a real bank (TLS with test-QTSP certificates, SQLite and PostgreSQL):
the defects a new TPP developer met — a TLS traceback without --ca, tokens not found
without the --bank of `exchange`, a usage error on a second `exchange`, no way to register — and
the callback listener of `tpp authorize --listen`."""

from __future__ import annotations

import json
import ssl
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner, Result

from stetgate.tpp.cli import tpp
from stetgate.tpp.psu_robot import PsuRobot
from tests.integration.psd2_support import demo_psu_world
from tests.support.bank import RunningBank
from tests.support.pki import TestPki, TppCerts

CALLBACK = "https://tpp.example/cb"
PSU_IP = "198.51.100.23"


@dataclass
class World:
    bank: RunningBank
    pki: TestPki
    certs: TppCerts
    state: Path
    robot: PsuRobot

    def run(
        self,
        *args: str,
        bank: bool | str = True,
        ca: bool = True,
        input: str | None = None,
        **kwargs: str,
    ) -> Result:
        options = ["--state-dir", str(self.state), "--certs", str(self.certs.directory)]
        if bank:
            options += ["--bank", bank if isinstance(bank, str) else self.bank.base_url]
        if ca:
            options += ["--ca", str(self.pki.ca_pem)]
        for name, value in kwargs.items():
            options += [f"--{name.replace('_', '-')}", value]
        return CliRunner().invoke(tpp, [*options, *args], input=input, catch_exceptions=False)

    def walk(self, url: str, prefix: str = CALLBACK) -> str:
        self.bank.clock.advance(31)  # a fresh TOTP step for each journey
        with self.bank.client() as browser:
            return self.robot.walk(browser, url, prefix)

    def authorize(self, **kwargs: str) -> str:
        started = self.run(
            "authorize-url", "--redirect-uri", CALLBACK, client_id=self.certs.org_id, **kwargs
        )
        assert started.exit_code == 0, started.output
        return self.walk(started.stdout.strip().splitlines()[0])


@pytest.fixture
def world(
    bank_factory: Callable[..., RunningBank], pki: TestPki, tmp_path: Path
) -> Iterator[World]:
    demo = demo_psu_world(bank_factory(), pki, "PSDFR-ACPR-48001")
    yield World(demo.bank, pki, demo.certs, tmp_path / "tpp-state", demo.robot)


def _failed(result: Result, *fragments: str) -> str:
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    for fragment in fragments:
        assert fragment in result.output, result.output
    return result.output


def test_exchange_then_api_without_bank_uses_the_bank_of_the_exchange(world: World) -> None:
    callback = world.authorize()
    exchanged = world.run("exchange", callback, bank=False)  # bank and client from `state`
    assert exchanged.exit_code == 0, exchanged.output
    assert world.bank.base_url in exchanged.output
    listed = world.run(
        "api", "GET", "accounts", "--psu-ip", PSU_IP, bank=False, client_id=world.certs.org_id
    )
    assert listed.exit_code == 0, listed.output
    assert json.loads(listed.stdout)["accounts"]
    tokens = json.loads((world.state / "tokens.json").read_text())
    assert list(tokens) == [f"{world.bank.base_url} {world.certs.org_id} aisp"]
    assert (world.state / "tokens.json").stat().st_mode & 0o077 == 0


def test_a_second_exchange_of_the_same_callback_explains_instead_of_a_usage_error(
    world: World,
) -> None:
    callback = world.authorize()
    assert world.run("exchange", callback).exit_code == 0
    _failed(world.run("exchange", callback), "already exchanged", "60 s")


def test_an_exchange_of_a_callback_nobody_started_is_refused_locally(world: World) -> None:
    _failed(world.run("exchange", f"{CALLBACK}?code=x&state=forged"), "no pending authorization")


def test_a_refused_callback_reports_the_bank_s_error(world: World) -> None:
    started = world.run("authorize-url", "--redirect-uri", CALLBACK, client_id=world.certs.org_id)
    world.robot.decision = "refuse"
    callback = world.walk(started.stdout.strip().splitlines()[0])
    _failed(world.run("exchange", callback), "access_denied", "consent_refused")


def test_without_ca_the_bank_s_certificate_is_refused_in_one_line(world: World) -> None:
    callback = world.authorize()
    assert world.run("exchange", callback).exit_code == 0
    output = _failed(
        world.run(
            "api", "GET", "accounts", "--psu-ip", PSU_IP, ca=False, client_id=world.certs.org_id
        ),
        "not trusted",
        "--ca",
    )
    assert len(output.strip().splitlines()) == 1


def test_without_ca_even_before_any_token(world: World) -> None:
    result = world.run("register", "--name", "X", "--redirect-uri", CALLBACK, ca=False)
    _failed(result, "not trusted", "--ca")


def test_an_unreachable_bank_is_one_line(world: World) -> None:
    result = world.run(
        "register",
        "--name",
        "X",
        "--redirect-uri",
        CALLBACK,
        bank="https://127.0.0.1:9",
    )
    _failed(result, "cannot reach https://127.0.0.1:9")


def test_api_without_tokens_or_with_two_banks_asks_what_to_do(world: World) -> None:
    _failed(
        world.run("api", "GET", "accounts", client_id=world.certs.org_id),
        "no stored tokens",
        "authorize --listen",
    )
    callback = world.authorize()
    assert world.run("exchange", callback).exit_code == 0
    data = json.loads((world.state / "tokens.json").read_text())
    (entry,) = data.values()
    data[f"https://other.example {world.certs.org_id} aisp"] = entry
    (world.state / "tokens.json").write_text(json.dumps(data))
    ambiguous = world.run("api", "GET", "accounts", bank=False, client_id=world.certs.org_id)
    assert ambiguous.exit_code == 2 and "pass --bank" in ambiguous.output


def test_bad_json_and_an_empty_consent_are_refused_before_any_call(world: World) -> None:
    callback = world.authorize()
    assert world.run("exchange", callback).exit_code == 0
    bad = world.run("api", "PUT", "consents", "--json", "{oops", client_id=world.certs.org_id)
    assert bad.exit_code == 2 and "not JSON" in bad.output
    empty = world.run("consent", "--psu-ip", PSU_IP, client_id=world.certs.org_id)
    assert empty.exit_code == 2 and "--all-accounts" in empty.output


def test_balances_need_a_consent_and_tpp_consent_forwards_it(world: World) -> None:
    callback = world.authorize()
    assert world.run("exchange", callback).exit_code == 0
    org = world.certs.org_id
    listed = json.loads(
        world.run("api", "GET", "accounts", "--psu-ip", PSU_IP, client_id=org).stdout
    )
    resource = listed["accounts"][0]["resourceId"]
    _failed(
        world.run("api", "GET", f"accounts/{resource}/balances", "--psu-ip", PSU_IP, client_id=org),
        "HTTP 403",
    )
    forwarded = world.run("consent", "--all-accounts", "--psu-ip", PSU_IP, client_id=org)
    assert forwarded.exit_code == 0, forwarded.output
    balances = world.run(
        "api", "GET", f"accounts/{resource}/balances", "--psu-ip", PSU_IP, client_id=org
    )
    assert json.loads(balances.stdout)["balances"]


@pytest.mark.postgres  # registrations, code claims and revocation through the register API
def test_register_show_update_delete_then_the_client_is_gone(world: World) -> None:
    registered = world.run(
        "register", "--name", "CLI App", "--redirect-uri", "https://127.0.0.1/callback"
    )
    assert registered.exit_code == 0, registered.output
    client_id = registered.stdout.strip()
    assert client_id != world.certs.org_id
    shown = world.run("show-registration", client_id=client_id)
    assert json.loads(shown.stdout)["redirect_uris"] == ["https://127.0.0.1/callback"]
    updated = world.run(
        "update", "--add-redirect-uri", CALLBACK, "--name", "CLI App 2", client_id=client_id
    )
    assert updated.exit_code == 0, updated.output
    again = json.loads(world.run("show-registration", client_id=client_id).stdout)
    assert again["redirect_uris"] == ["https://127.0.0.1/callback", CALLBACK]
    assert again["client_name"] == "CLI App 2"
    # a full flow with the new client id, through the URI added by the update
    started = world.run("authorize-url", "--redirect-uri", CALLBACK, client_id=client_id)
    assert world.run("exchange", world.walk(started.stdout.splitlines()[0])).exit_code == 0
    assert world.run("refresh", client_id=client_id).exit_code == 0

    assert world.run("delete", client_id=client_id, input="n\n").exit_code == 1  # not confirmed
    assert world.run("show-registration", client_id=client_id).exit_code == 0
    assert world.run("delete", "--yes", client_id=client_id).exit_code == 0
    _failed(world.run("show-registration", client_id=client_id), "no registration")
    assert not [k for k in json.loads((world.state / "tokens.json").read_text()) if client_id in k]


def test_update_and_delete_of_a_client_not_registered_here_are_refused(world: World) -> None:
    _failed(world.run("update", client_id=world.certs.org_id), "no registration", "Go-Live")
    _failed(world.run("delete", "--yes", client_id=world.certs.org_id), "no registration")


def test_a_refused_registration_is_the_bank_s_message(world: World) -> None:
    refused = world.run("register", "--name", "X", "--redirect-uri", "http://tpp.example/cb")
    _failed(refused, "HTTP 400")
    assert not (world.state / "registrations.json").exists()
    usage = world.run("register", "--name", "X")
    assert usage.exit_code == 2


def test_authorize_listen_catches_the_callback_and_exchanges_it(world: World) -> None:
    client_id = world.run(
        "register", "--name", "Listener", "--redirect-uri", "https://127.0.0.1/callback"
    ).stdout.strip()
    argv = [
        *(sys.executable, "-m", "stetgate.cli", "tpp", "--state-dir", str(world.state)),
        *("--bank", world.bank.base_url, "--ca", str(world.pki.ca_pem)),
        *("--certs", str(world.certs.directory), "--client-id", client_id),
        *("authorize", "--listen", "--timeout", "60"),
    ]
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        assert proc.stdout is not None
        printed: list[str] = []
        while not printed or "/authorize?" not in printed[-1]:
            line = proc.stdout.readline().decode()
            assert line, printed
            printed.append(line.strip())
        listening = next(line for line in printed if line.startswith("listening on "))
        callback = world.walk(printed[-1], listening.removeprefix("listening on "))
        listener = ssl.create_default_context(cafile=str(world.state / "callback.pem"))
        # a forged state and another path are refused; the listener keeps waiting
        base = callback.split("/callback")[0]
        assert httpx.get(f"{base}/callback?code=x&state=forged", verify=listener).status_code == 400
        assert httpx.get(f"{base}/other", verify=listener).status_code == 404
        page = httpx.get(callback, verify=listener, timeout=30)
        assert page.status_code == 200 and "connected" in page.text
        out, _ = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, out
    assert b"tokens stored for scope 'aisp'" in out
    listed = world.run("api", "GET", "accounts", "--psu-ip", PSU_IP, client_id=client_id)
    assert listed.exit_code == 0, listed.output


def test_authorize_listen_gives_up_after_its_timeout(world: World) -> None:
    result = world.run("authorize", "--listen", "--timeout", "0.2", client_id=world.certs.org_id)
    _failed(result, "no callback within 0.2 s")


def test_authorize_listen_refuses_a_redirect_that_is_not_loopback_https(world: World) -> None:
    for uri in ("https://tpp.example/cb", "http://127.0.0.1/callback", "https://localhost/cb"):
        result = world.run("authorize", "--listen", "--redirect-uri", uri, client_id="x")
        assert result.exit_code == 2 and "127.0.0.1" in result.output


def test_the_fifth_unattended_call_says_when_to_retry(world: World) -> None:
    callback = world.authorize()
    assert world.run("exchange", callback).exit_code == 0
    org = world.certs.org_id
    for _ in range(4):
        assert world.run("api", "GET", "accounts", client_id=org).exit_code == 0
    refused = _failed(world.run("api", "GET", "accounts", client_id=org), "HTTP 429", "--psu-ip")
    assert "the bank says retry in" in refused
    seconds = int(refused.split("retry in ")[1].split(" s")[0])
    assert 0 < seconds <= 25 * 3600  # until the next Europe/Paris midnight
    assert world.run("api", "GET", "accounts", "--psu-ip", PSU_IP, client_id=org).exit_code == 0
