"""`stetgate sandbox` as a real process tree: the bank and the demo TPP are child processes that
stop with the sandbox — on SIGTERM or Ctrl-C (exit 0), when the sandbox is SIGKILLed (Linux
PR_SET_PDEATHSIG), and when one of them dies (exit 1, naming it) — and a sandbox on a busy port
starts nothing. "Gone" is checked by pid and by binding every port again.

``--delegated-login`` adds the demo OpenID Provider (node) as a fourth child: a PSU signs in
there and the TPP reads the accounts, a weak ``acr`` is refused, and SIGTERM frees its port too;
without node it fails saying so before any set-up, and on a busy OP port it starts nothing.

Ports are bound with SO_REUSEADDR, as uvicorn does: the connections the readiness checks made
leave TIME_WAIT entries on the server side, which are not a process holding the port.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from stetgate.sandbox import DEMO_TPP_ORG_ID
from stetgate.tpp.client import StetBankClient, TppCredentials
from stetgate.tpp.psu_robot import PsuRobot
from tests.support.openid_provider import WEAK_ACR, ensure_installed, sign_in
from tests.support.servers import free_port as _free_port

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG")

START_SECONDS = 120  # set-up and two interpreters on a loaded 2-core CI machine
STOP_SECONDS = 10  # the sandbox's grace period is 5 s
READY_LINE = "all services answer"


def _port_free(port: int) -> bool:
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _alive(pid: int) -> bool:
    """Running, not a zombie waiting for whoever adopted it."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def _processes_mentioning(text: str) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and int(entry.name) != os.getpid():
            try:
                cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            except OSError:
                continue
            if text in cmdline and _alive(int(entry.name)):
                found.append(int(entry.name))
    return found


def _eventually(check: Callable[[], bool], seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        if time.monotonic() > deadline:
            pytest.fail(f"not within {seconds}s: {what}")
        time.sleep(0.1)


def _default_sigint() -> None:
    """A job started without job control inherits SIGINT ignored, and the sandbox keeps an
    ignored SIGINT ignored (as Python does): make Ctrl-C reach it whatever runs pytest."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


@dataclass
class Sandbox:
    proc: subprocess.Popen[bytes]
    out: Path
    data_dir: Path
    bank_port: int
    tpp_port: int
    core_port: int
    op_port: int | None = None
    """With ``--delegated-login``: the demo OpenID Provider's."""

    @property
    def ports(self) -> tuple[int, ...]:
        return (self.bank_port, self.tpp_port, self.core_port) + (
            (self.op_port,) if self.op_port else ()
        )

    @property
    def children(self) -> set[str]:
        return {"core-banking", "bank", "demo-tpp"} | (
            {"openid-provider"} if self.op_port else set()
        )

    def output(self) -> str:
        return self.out.read_text(errors="replace")

    def pids(self) -> dict[str, int]:
        return {
            name: int(pid)
            for name, pid in re.findall(r"sandbox: (\S+) ready at \S+ \(pid (\d+)", self.output())
        }

    def wait_ready(self) -> dict[str, int]:
        deadline = time.monotonic() + START_SECONDS
        while READY_LINE not in self.output():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"sandbox did not start:\n{self.output()}")
            time.sleep(0.2)
        ca = ssl.create_default_context(cafile=str(self.data_dir / "ca.pem"))
        for url in (
            f"https://localhost:{self.bank_port}/health/live",
            f"https://localhost:{self.tpp_port}/",
            f"https://localhost:{self.core_port}/core-banking/v1/health",
        ):
            response = httpx.get(url, verify=ca, timeout=5, trust_env=False)
            assert response.status_code == 200, url
        if self.op_port:
            url = f"http://127.0.0.1:{self.op_port}/.well-known/openid-configuration"
            assert httpx.get(url, timeout=5, trust_env=False).status_code == 200
        pids = self.pids()
        assert set(pids) == self.children, self.output()
        assert all(_alive(pid) for pid in pids.values())
        return pids

    def wait_exit(self) -> int:
        try:
            return self.proc.wait(timeout=STOP_SECONDS)
        except subprocess.TimeoutExpired:
            pytest.fail(f"sandbox still running {STOP_SECONDS}s later:\n{self.output()}")

    def assert_nothing_left(self, pids: dict[str, int], seconds: float = 2) -> None:
        _eventually(
            lambda: not any(_alive(p) for p in pids.values()), seconds, f"children gone {pids}"
        )
        _eventually(lambda: all(map(_port_free, self.ports)), seconds, f"ports free {self.ports}")
        assert _processes_mentioning(str(self.data_dir)) == []


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One data folder for the module: the first start sets it up, the others reuse it."""
    return tmp_path_factory.mktemp("sandbox")


@pytest.fixture
def start(tmp_path: Path, data_dir: Path) -> Iterator[Callable[..., Sandbox]]:
    started: list[Sandbox] = []

    def run(
        data: Path = data_dir,
        bank_port: int = 0,
        tpp_port: int = 0,
        core_port: int = 0,
        *,
        op_port: int | None = None,
        env: dict[str, str] | None = None,
    ) -> Sandbox:
        """``op_port`` (0: one the OS picks): ``--delegated-login``."""
        bank_port, tpp_port = bank_port or _free_port(), tpp_port or _free_port()
        core_port = core_port or _free_port()
        delegated = []
        if op_port is not None:
            op_port = op_port or _free_port()
            delegated = ["--delegated-login", "--op-port", str(op_port)]
        out = tmp_path / f"sandbox{len(started)}.out"
        with out.open("wb") as sink:
            proc = subprocess.Popen(
                [
                    *(sys.executable, "-m", "stetgate.cli", "--data-dir", str(data), "sandbox"),
                    *("--port", str(bank_port), "--tpp-port", str(tpp_port)),
                    *("--core-banking-port", str(core_port), *delegated),
                ],
                stdout=sink,
                stderr=subprocess.STDOUT,
                env={**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})},
                start_new_session=True,
                preexec_fn=_default_sigint,
            )
        started.append(Sandbox(proc, out, data, bank_port, tpp_port, core_port, op_port))
        return started[-1]

    yield run
    for sandbox in started:  # a failed test leaves nothing running either
        for pid in [sandbox.proc.pid, *sandbox.pids().values()]:
            if _alive(pid):
                os.kill(pid, signal.SIGKILL)
        sandbox.proc.wait()


@pytest.mark.parametrize("stop", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_a_stop_signal_stops_every_child_and_exits_0(
    start: Callable[..., Sandbox], stop: signal.Signals
) -> None:
    sandbox = start()
    pids = sandbox.wait_ready()
    os.kill(sandbox.proc.pid, stop)
    assert sandbox.wait_exit() == 0, sandbox.output()
    assert f"{stop.name} received" in sandbox.output()
    sandbox.assert_nothing_left(pids, seconds=0.5)  # the sandbox waited for them


def test_children_die_with_a_sigkilled_sandbox(start: Callable[..., Sandbox]) -> None:
    sandbox = start()
    pids = sandbox.wait_ready()
    os.kill(sandbox.proc.pid, signal.SIGKILL)
    sandbox.proc.wait(timeout=STOP_SECONDS)
    sandbox.assert_nothing_left(pids, seconds=STOP_SECONDS)  # PR_SET_PDEATHSIG → SIGTERM


@pytest.mark.parametrize(
    ("victim", "kill", "how"),
    [
        ("demo-tpp", signal.SIGKILL, "demo-tpp was killed by SIGKILL"),
        ("core-banking", signal.SIGKILL, "core-banking was killed by SIGKILL"),
        # stopped gracefully from outside (uvicorn then re-raises SIGTERM): unrequested, a death
        ("bank", signal.SIGTERM, "bank was killed by SIGTERM"),
    ],
    ids=["tpp-SIGKILL", "core-banking-SIGKILL", "bank-SIGTERM"],
)
def test_a_child_dying_stops_the_others_and_fails_naming_it(
    start: Callable[..., Sandbox], victim: str, kill: signal.Signals, how: str
) -> None:
    sandbox = start()
    pids = sandbox.wait_ready()
    os.kill(pids[victim], kill)
    assert sandbox.wait_exit() == 1
    output = sandbox.output()
    assert how in output, output
    assert str(sandbox.data_dir / "logs" / f"{victim}.log") in output
    sandbox.assert_nothing_left(pids)


def test_a_busy_port_starts_nothing(start: Callable[..., Sandbox], tmp_path: Path) -> None:
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        busy = int(squatter.getsockname()[1])
        sandbox = start(data=tmp_path / "fresh", tpp_port=busy)  # the *second* child's port
        assert sandbox.wait_exit() == 1
    output = sandbox.output()
    assert f"demo-tpp's port 127.0.0.1:{busy} is already in use" in output, output
    assert "--tpp-port" in output
    assert "ready at" not in output
    assert not (tmp_path / "fresh" / "stetgate.db").exists()  # failed before any set-up
    sandbox.assert_nothing_left({})


def test_a_second_sandbox_on_a_running_ones_port_fails_and_leaves_the_first_alone(
    start: Callable[..., Sandbox], tmp_path: Path
) -> None:
    first = start()
    pids = first.wait_ready()
    second = start(data=tmp_path / "second", bank_port=first.bank_port)
    assert second.wait_exit() == 1
    output = second.output()
    assert f"bank's port 127.0.0.1:{first.bank_port} is already in use" in output, output
    assert _port_free(second.tpp_port)
    assert _processes_mentioning(str(tmp_path / "second")) == []
    assert all(_alive(pid) for pid in pids.values())
    assert first.proc.poll() is None
    os.kill(first.proc.pid, signal.SIGTERM)
    assert first.wait_exit() == 0
    first.assert_nothing_left(pids, seconds=0.5)


# --- --delegated-login: the demo OpenID Provider as a fourth child ------------------------------


def _to_op(browser: httpx.Client, sandbox: Sandbox, tpp: StetBankClient) -> tuple[Any, str]:
    """A demo-TPP authorization request → the bank → the OP's authorization endpoint."""
    request = tpp.authorization_request("aisp", f"https://localhost:{sandbox.tpp_port}/callback")
    response = browser.get(request.url)
    assert response.headers.get("location") == "/psu/login", response.text[:300]
    response = browser.get("/psu/login")
    assert response.status_code == 303, response.text[:300]
    location: str = response.headers["location"]
    assert location.startswith(f"http://127.0.0.1:{sandbox.op_port}/auth?"), location
    return request, location


def test_delegated_login_runs_the_op_as_a_fourth_child_and_a_psu_signs_in_there(
    start: Callable[..., Sandbox], tmp_path: Path
) -> None:
    ensure_installed()  # skips without node/npm unless STETGATE_REQUIRE_OIDC=1
    # A data folder of its own: the demo TPP is registered once per folder, with the callback
    # on the TPP port of that first start.
    sandbox = start(data=tmp_path / "delegated", op_port=0)
    pids = sandbox.wait_ready()
    op = f"http://127.0.0.1:{sandbox.op_port}"
    assert f"openid-provider ready at {op}" in sandbox.output()
    assert f"bank's OP      {op}" in sandbox.output()
    psu = json.loads((sandbox.data_dir / "demo-psus.json").read_text())[0]
    bank = f"https://localhost:{sandbox.bank_port}"
    tpp_callback = f"https://localhost:{sandbox.tpp_port}/callback"
    ca = sandbox.data_dir / "ca.pem"
    tls = ssl.create_default_context(cafile=str(ca))
    with StetBankClient(
        bank,
        TppCredentials.from_directory(sandbox.data_dir / "demo-tpp"),
        DEMO_TPP_ORG_ID,
        ca_file=ca,
    ) as tpp:
        # The PSU signs in at the OP (no password form at the bank), consents, the TPP reads
        # the PSU's accounts: the whole cinematic, through the four processes.
        with httpx.Client(base_url=bank, verify=tls, trust_env=False, timeout=30) as browser:
            request, authorization = _to_op(browser, sandbox, tpp)
            back = sign_in(op, browser, authorization, login=psu["id"])
            assert back.startswith(f"{bank}/psu/oidc/callback?"), back
            response = browser.get(back)
            assert response.headers.get("location") == "/psu/consent", response.text[:300]
            robot = PsuRobot(psu["id"], "")  # only the consent page is left
            callback = robot.walk(browser, f"{bank}/psu/consent", tpp_callback)
        tokens = tpp.exchange_code(request, callback, expected_issuer=bank)
        accounts = tpp.api("GET", "accounts", tokens, psu_headers={"PSU-IP-Address": "192.0.2.1"})
        ibans = [a["accountId"]["iban"] for a in accounts["accounts"] if "iban" in a["accountId"]]
        assert ibans == psu["accounts"]

        # Negative: the OP asserting a weak acr is refused, the TPP gets access_denied.
        with httpx.Client(base_url=bank, verify=tls, trust_env=False, timeout=30) as browser:
            request, authorization = _to_op(browser, sandbox, tpp)
            back = sign_in(op, browser, authorization, login=psu["id"], acr=WEAK_ACR)
            response = browser.get(back)
            assert response.status_code in (302, 303), response.text[:300]
            refused = response.headers["location"]
            assert refused.startswith(tpp_callback + "?"), refused
            assert "error=access_denied" in refused

    os.kill(sandbox.proc.pid, signal.SIGTERM)
    assert sandbox.wait_exit() == 0, sandbox.output()
    sandbox.assert_nothing_left(pids, seconds=0.5)  # the OP's port included


def test_delegated_login_without_node_says_so_and_starts_nothing(
    start: Callable[..., Sandbox], tmp_path: Path
) -> None:
    empty = tmp_path / "bin"
    empty.mkdir()
    sandbox = start(data=tmp_path / "fresh", op_port=0, env={"PATH": str(empty)})
    assert sandbox.wait_exit() == 1
    output = sandbox.output()
    assert "--delegated-login: node and npm not found on PATH" in output, output
    assert "ready at" not in output
    assert not (tmp_path / "fresh" / "stetgate.db").exists()  # failed before any set-up
    sandbox.assert_nothing_left({})


def test_delegated_login_on_a_busy_op_port_starts_nothing(
    start: Callable[..., Sandbox], tmp_path: Path
) -> None:
    ensure_installed()
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        busy = int(squatter.getsockname()[1])
        sandbox = start(data=tmp_path / "fresh", op_port=busy)
        assert sandbox.wait_exit() == 1
    output = sandbox.output()
    assert f"openid-provider's port 127.0.0.1:{busy} is already in use" in output, output
    assert "--op-port" in output
    assert "ready at" not in output
    assert not (tmp_path / "fresh" / "stetgate.db").exists()
    sandbox.assert_nothing_left({})
