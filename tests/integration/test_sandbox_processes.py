"""`stetgate sandbox` as a real process tree: the bank and the demo TPP are child processes that
stop with the sandbox — on SIGTERM or Ctrl-C (exit 0), when the sandbox is SIGKILLed (Linux
PR_SET_PDEATHSIG), and when one of them dies (exit 1, naming it) — and a sandbox on a busy port
starts nothing. "Gone" is checked by pid and by binding every port again.

Ports are bound with SO_REUSEADDR, as uvicorn does: the connections the readiness checks made
leave TIME_WAIT entries on the server side, which are not a process holding the port.
"""

from __future__ import annotations

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

import httpx
import pytest

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

    @property
    def ports(self) -> tuple[int, int, int]:
        return self.bank_port, self.tpp_port, self.core_port

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
        pids = self.pids()
        assert set(pids) == {"core-banking", "bank", "demo-tpp"}, self.output()
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
        data: Path = data_dir, bank_port: int = 0, tpp_port: int = 0, core_port: int = 0
    ) -> Sandbox:
        bank_port, tpp_port = bank_port or _free_port(), tpp_port or _free_port()
        core_port = core_port or _free_port()
        out = tmp_path / f"sandbox{len(started)}.out"
        with out.open("wb") as sink:
            proc = subprocess.Popen(
                [
                    *(sys.executable, "-m", "stetgate.cli", "--data-dir", str(data), "sandbox"),
                    *("--port", str(bank_port), "--tpp-port", str(tpp_port)),
                    *("--core-banking-port", str(core_port)),
                ],
                stdout=sink,
                stderr=subprocess.STDOUT,
                env={**os.environ, "PYTHONUNBUFFERED": "1"},
                start_new_session=True,
                preexec_fn=_default_sigint,
            )
        started.append(Sandbox(proc, out, data, bank_port, tpp_port, core_port))
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
