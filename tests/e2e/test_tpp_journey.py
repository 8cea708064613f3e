"""A new TPP developer's journey, followed literally: start the sandbox, copy the
terminal commands it prints, sign in as a demo PSU in a real browser (Debian's Chromium), and
read accounts with balances — by the CLI as printed, and by the library as docs/tpp-guide.md
shows it. Then a client of one's own: certificates from the sandbox's test QTSP, `tpp
register`, a full flow with the new client_id, `tpp update` (another redirect URI, then
certificate rotation) and `tpp delete`."""

from __future__ import annotations

import json
import os
import re
import shlex
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import pytest

from tests.e2e.demo_psu import sign_in_to_consent
from tests.support.browser import chromium_launch_options, require_chromium
from tests.support.servers import free_port

pytestmark = pytest.mark.browser

require_chromium()

from playwright.sync_api import Page, sync_playwright  # noqa: E402

PSU_IP = "192.0.2.10"
HINTS_END = "accounts with balances"


@dataclass
class Sandbox:
    bank: str
    data_dir: Path
    printed: list[str]
    home: Path

    def env(self, extra: dict[str, str] | None = None) -> dict[str, str]:
        """The developer's shell: HOME of their own (the kit keeps its state under it)."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("STETGATE_TPP_")}
        return {**env, "HOME": str(self.home), **(extra or {})}


def _read_until(stream: IO[bytes], marker: str, seen: list[str], deadline: float) -> None:
    while time.monotonic() < deadline:
        line = stream.readline()
        if not line:
            raise AssertionError("the process ended:\n" + "\n".join(seen))
        seen.append(line.decode().rstrip("\n"))
        if marker in seen[-1]:
            return
    raise AssertionError(f"{marker!r} not printed:\n" + "\n".join(seen))


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sandbox]:
    data_dir = tmp_path_factory.mktemp("sandbox")
    bank_port, tpp_port, core_port = free_port(), free_port(), free_port()
    proc = subprocess.Popen(
        [
            *(sys.executable, "-m", "stetgate.cli", "--data-dir", str(data_dir), "sandbox"),
            *("--port", str(bank_port), "--tpp-port", str(tpp_port)),
            *("--core-banking-port", str(core_port)),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    printed: list[str] = []
    try:
        assert proc.stdout is not None
        _read_until(proc.stdout, HINTS_END, printed, time.monotonic() + 120)
        # The hints are read; the rest (the access log) is drained so the pipe never fills.
        threading.Thread(target=proc.stdout.read, daemon=True).start()
        yield Sandbox(
            f"https://localhost:{bank_port}",
            data_dir,
            printed,
            tmp_path_factory.mktemp("developer-home"),
        )
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)


def _hints(sandbox: Sandbox) -> tuple[dict[str, str], list[list[str]]]:
    """The printed ``export`` line as variables, and the printed commands as argv lists."""
    start = next(i for i, line in enumerate(sandbox.printed) if "TPP from a terminal" in line)
    lines = [line.strip() for line in sandbox.printed[start + 1 :] if line.strip()]
    exported = shlex.split(lines[0], comments=True)
    assert exported[0] == "export"
    env = dict(item.split("=", 1) for item in exported[1:])
    commands = [shlex.split(line, comments=True) for line in lines[1:4]]
    return env, commands


def _psus(sandbox: Sandbox) -> list[dict[str, Any]]:
    psus: list[dict[str, Any]] = json.loads((sandbox.data_dir / "demo-psus.json").read_text())
    return psus


def _sign_in(page: Page, psu: dict[str, Any], url: str, *, wait_after: bool = True) -> None:
    """What the PSU does on the bank's pages (login, one-time code, consent). The listener
    holds its page until the code is exchanged: a test thread doing both must not wait."""
    page.goto(url)
    sign_in_to_consent(page, psu)
    page.click("button[value=authorize]", no_wait_after=not wait_after)


class Listening:
    """`tpp authorize --listen` running, with what it printed so far."""

    def __init__(self, argv: list[str], env: dict[str, str]) -> None:
        self.proc = subprocess.Popen(
            argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env
        )
        self.printed: list[str] = []
        assert self.proc.stdout is not None
        _read_until(self.proc.stdout, "/authorize?", self.printed, time.monotonic() + 60)
        self.url = self.printed[-1].strip()

    def finish(self) -> str:
        out, _ = self.proc.communicate(timeout=60)
        text = "\n".join(self.printed) + out.decode()
        assert self.proc.returncode == 0, text
        return text


def _walk_in_browser(listening: Listening, psu: dict[str, Any]) -> str:
    with sync_playwright() as p:
        browser = p.chromium.launch(**chromium_launch_options())
        page = browser.new_context(ignore_https_errors=True).new_page()
        _sign_in(page, psu, listening.url)
        page.wait_for_selector("#result")
        shown = page.inner_text("#result")
        landed = page.url
        browser.close()
    assert landed.startswith("https://127.0.0.1:"), landed
    return shown


def _run(argv: list[str], env: dict[str, str], *, ok: bool = True) -> str:
    done = subprocess.run(argv, capture_output=True, env=env, timeout=60, check=False)
    text = done.stdout.decode() + done.stderr.decode()
    assert (done.returncode == 0) == ok, text
    return text


def test_the_printed_hints_lead_to_accounts_with_balances(sandbox: Sandbox) -> None:
    variables, (authorize, consent, accounts) = _hints(sandbox)
    assert variables["STETGATE_TPP_BANK"] == sandbox.bank, "the hint names the sandbox's port"
    assert Path(authorize[0]).is_absolute() or authorize[:2] == [sys.executable, "-m"]
    env = sandbox.env(variables)
    psu = _psus(sandbox)[0]

    # before any authorization: a clear message, no traceback
    refused = _run(accounts, env, ok=False)
    assert "no stored tokens" in refused and "Traceback" not in refused

    listening = Listening(authorize, env)
    assert "listening on https://127.0.0.1:" in "\n".join(listening.printed)
    assert "connected" in _walk_in_browser(listening, psu)
    assert "tokens stored for scope 'aisp'" in listening.finish()
    state_files = {p.name for p in (sandbox.home / ".local" / "state" / "stetgate-tpp").iterdir()}
    assert "tokens.json" in state_files, "kept in the kit's folder, not the working directory"

    before = json.loads(_run(accounts, env))
    assert all("balances" not in a for a in before["accounts"]), "no consent yet"
    assert "consent forwarded" in _run(consent, env)
    listed = json.loads(_run(accounts, env))["accounts"]
    ibans = {a["accountId"].get("iban") for a in listed}
    assert set(psu["accounts"]) <= ibans
    assert listed and all(a["balances"] for a in listed)


def test_the_library_as_the_guide_shows_it(sandbox: Sandbox) -> None:
    from stetgate.tpp.callback_listener import CallbackListener, local_tls
    from stetgate.tpp.client import StetBankClient, TppCredentials

    variables, _ = _hints(sandbox)
    psu = _psus(sandbox)[1]
    creds = TppCredentials.from_directory(Path(variables["STETGATE_TPP_CERTS"]))
    tls = local_tls(sandbox.home / "listener")
    with (
        StetBankClient(
            variables["STETGATE_TPP_BANK"],
            creds,
            variables["STETGATE_TPP_CLIENT_ID"],
            ca_file=Path(variables["STETGATE_TPP_CA"]),
        ) as bank,
        CallbackListener(tls) as listener,
        sync_playwright() as p,
    ):
        request = bank.authorization_request(
            "aisp", listener.redirect_uri("https://127.0.0.1/callback")
        )
        listener.start(request.state)
        browser = p.chromium.launch(**chromium_launch_options())
        page = browser.new_context(ignore_https_errors=True).new_page()
        _sign_in(page, psu, request.url, wait_after=False)
        callback = listener.wait(60)
        assert callback is not None
        tokens = bank.exchange_code(request, callback)
        listener.answer("done")
        page.wait_for_selector("#result")
        browser.close()
        headers = {"PSU-IP-Address": PSU_IP}
        listed = bank.api("GET", "accounts", tokens, psu_headers=headers)["accounts"]
        ids = [a["accountId"] for a in listed]
        bank.api(
            "PUT",
            "consents",
            tokens,
            psu_headers=headers,
            json={"balances": ids, "transactions": ids},
        )
        after = bank.api("GET", "accounts", tokens, psu_headers=headers)["accounts"]
        assert after and all(a["balances"] for a in after)
        link = after[0]["_links"]["transactions"]["href"]
        history = bank.follow(link, tokens, psu_headers=headers)
        if "next" in history["_links"]:
            bank.follow(history["_links"]["next"]["href"], tokens, psu_headers=headers)
        assert bank.ensure_fresh(tokens) is tokens


def test_a_client_of_ones_own_registered_updated_rotated_and_deleted(sandbox: Sandbox) -> None:
    variables, (authorize, _consent, _accounts) = _hints(sandbox)
    stetgate = authorize[: authorize.index("tpp")]
    mine, renewed = sandbox.home / "my-tpp", sandbox.home / "my-tpp-2027"
    base = sandbox.env(
        {"STETGATE_TPP_BANK": sandbox.bank, "STETGATE_TPP_CA": variables["STETGATE_TPP_CA"]}
    )
    for folder in (mine, renewed):
        _run(
            [
                *stetgate,
                *("--data-dir", str(sandbox.data_dir), "certs", "issue-tpp"),
                *("--org-id", "PSDFR-ACPR-77001", "--name", "My Budget App"),
                *("--roles", "AISP", "--out", str(folder)),
            ],
            base,
        )
    tpp = [*stetgate, "tpp", "--certs", str(mine)]
    # negative first: nothing to update or delete yet; a bad redirect URI is the bank's 400
    assert "no registration" in _run([*tpp, "--client-id", "nope", "update"], base, ok=False)
    refused = _run(
        [*tpp, "register", "--name", "My Budget App", "--redirect-uri", "http://tpp.example/cb"],
        base,
        ok=False,
    )
    assert "HTTP 400" in refused and "Traceback" not in refused

    client_id = _run(
        [
            *(*tpp, "register", "--name", "My Budget App"),
            *("--redirect-uri", "https://127.0.0.1/callback", "--contact", "dev@tpp.example"),
        ],
        base,
    ).strip()
    assert re.fullmatch(r"[A-Za-z0-9_-]{8,}", client_id), client_id
    env = {**base, "STETGATE_TPP_CLIENT_ID": client_id, "STETGATE_TPP_CERTS": str(mine)}
    shown = json.loads(_run([*stetgate, "tpp", "show-registration"], env))
    assert shown["client_name"] == "My Budget App" and "registration_access_token" not in shown

    listening = Listening([*stetgate, "tpp", "authorize", "--listen"], env)
    assert "connected" in _walk_in_browser(listening, _psus(sandbox)[2])
    listening.finish()
    assert json.loads(_run([*stetgate, "tpp", "api", "GET", "accounts", "--psu-ip", PSU_IP], env))[
        "accounts"
    ]

    added = _run(
        [*stetgate, "tpp", "update", "--add-redirect-uri", "https://tpp.example/callback"], env
    )
    assert "https://127.0.0.1/callback, https://tpp.example/callback" in added
    # rotation: the new QWAC on the connection, the new QSealC in jwks and on the signature
    rotated = {**env, "STETGATE_TPP_CERTS": str(renewed)}
    _run([*stetgate, "tpp", "update"], rotated)
    assert "new access token" in _run([*stetgate, "tpp", "refresh"], rotated)
    assert json.loads(
        _run([*stetgate, "tpp", "api", "GET", "accounts", "--psu-ip", PSU_IP], rotated)
    )["accounts"]

    kept = sandbox.home / "tokens-before-delete.json"
    kept.write_text((sandbox.home / ".local/state/stetgate-tpp/tokens.json").read_text())
    assert client_id in _run([*stetgate, "tpp", "delete", "--yes"], rotated)
    gone = _run([*stetgate, "tpp", "show-registration"], rotated, ok=False)
    assert "no registration" in gone
    # the bank revoked its tokens with it: a copy of them is refused
    after = _run(
        [*stetgate, "tpp", "--tokens", str(kept), "api", "GET", "accounts", "--psu-ip", PSU_IP],
        rotated,
        ok=False,
    )
    assert "HTTP 401" in after and "Traceback" not in after


class _CodesOnPrompt:
    """Answers the doctor's one-time-code prompts as the PSU's authenticator would: each
    answer is read when the prompt appears, and is the code of the oldest TOTP step still
    accepted that is newer than the last one used (the bank takes a step once; ±1 step)."""

    def __init__(self, proc: subprocess.Popen[bytes], secret: bytes) -> None:
        self.proc, self.secret = proc, secret
        self.last_step: int | None = None
        self.prompts = 0
        self.seen = b""
        self.thread = threading.Thread(target=self._answer, daemon=True)
        self.thread.start()

    def _answer(self) -> None:
        from datetime import UTC, datetime

        from stetgate.demo.totp import hotp, time_step

        assert self.proc.stderr is not None and self.proc.stdin is not None
        while chunk := os.read(self.proc.stderr.fileno(), 4096):
            self.seen += chunk
            while self.seen.count(b"one-time code of") > self.prompts:
                self.prompts += 1
                now = time_step(datetime.now(UTC))
                step = now - 1 if self.last_step is None else max(now - 1, self.last_step + 1)
                self.last_step = step
                self.proc.stdin.write(f"{hotp(self.secret, step)}\n".encode())
                self.proc.stdin.flush()


def test_the_doctor_finds_the_sandbox_conformant(sandbox: Sandbox, tmp_path: Path) -> None:
    """Issue acceptance: `stetgate tpp doctor` against the sandbox, as its hints configure the
    kit, with the robot playing a demo PSU: every check passes, exit status 0, both reports."""
    from stetgate.demo.totp import decode_totp_secret

    variables, (authorize, _consent, _accounts) = _hints(sandbox)
    stetgate = authorize[: authorize.index("tpp")]
    psu = _psus(sandbox)[3]  # a PSU no other test here signs in as: its code steps are ours
    report, page = tmp_path / "doctor.json", tmp_path / "doctor.html"
    proc = subprocess.Popen(
        [
            *stetgate,
            *("tpp", "doctor", "--psu-robot", f"{psu['id']}:{psu['password']}"),
            *("--psu-method", "totp", "--redirect-uri", "https://127.0.0.1:9/callback"),
            *("--json", str(report), "--html", str(page)),
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=sandbox.env(variables),
    )
    codes = _CodesOnPrompt(proc, decode_totp_secret(psu["totp_secret"]))
    assert proc.stdout is not None
    out = proc.stdout.read().decode()
    assert proc.wait(timeout=120) == 0, out + codes.seen.decode(errors="replace")
    codes.thread.join(timeout=5)
    results = json.loads(report.read_text())["checks"]
    assert len(results) > 20 and {r["outcome"] for r in results} == {"pass"}, [
        (r["id"], r["outcome"], r["detail"]) for r in results if r["outcome"] != "pass"
    ]
    assert codes.prompts == 3, "one code per journey: refused, CBPII, AISP"
    assert "<html" in page.read_text().lower()
