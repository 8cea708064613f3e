"""Run several services as child processes of one command, and stop them all together.

Why a supervisor: the sandbox used to serve the bank in its own process and the demo TPP in a
``multiprocessing`` child, so ``kill -TERM`` of the sandbox left the TPP orphaned on its port and
the next start failed. Containers and service managers stop with SIGTERM and expect everything
under the command to go. Here each service is a plain command (argv) with its own log file,
watched by one parent that owns the life cycle:

- SIGINT (Ctrl-C), SIGTERM or SIGHUP (unless ignored on entry, as under ``nohup``) → SIGTERM
  to every child, a grace period, then SIGKILL;
  the parent exits 0: a requested stop is a success for a service manager.
- A child exiting on its own (even with status 0) → the others are stopped the same way and the
  parent exits 1, naming the child and its log (with the log's last lines).
- The parent SIGKILLed (no chance to clean up) → each child gets SIGTERM from the kernel
  (Linux ``PR_SET_PDEATHSIG``, `die_with_parent`).

Each child runs in its own session (hence its own process group), for three reasons: a terminal's
Ctrl-C reaches only the supervisor, which then stops the children in order — otherwise every
child would get SIGINT at the same moment and the supervisor could not tell a requested stop
from a crash; a signal sent to the child's group also reaches what the child itself started
(e.g. uvicorn's worker processes); and a child never reads from or is stopped by the terminal.
The cost — a signal sent to the supervisor's group no longer reaches the children directly — is
covered by the supervisor forwarding it, and by ``PR_SET_PDEATHSIG`` when it cannot.

The supervisor reports a service once its readiness URL answers over HTTPS (no fixed sleeps),
and refuses to start anything when a service's port is already taken.
"""

from __future__ import annotations

import contextlib
import ctypes
import http.client
import os
import signal
import socket
import ssl
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
PR_SET_PDEATHSIG = 1  # <linux/prctl.h>
LOG_TAIL_LINES = 15


@dataclass(frozen=True)
class Child:
    """One service: the command that runs it in the foreground, and where it answers."""

    name: str
    argv: Sequence[str]
    url: str  # what a person opens
    ready_url: str  # answers 2xx/3xx once the service serves
    port: int  # must be free before anything starts
    host: str = "127.0.0.1"
    env: Mapping[str, str] = field(default_factory=dict)  # added to the supervisor's environment


class PortInUse(RuntimeError):
    """A service's port is taken (often by a previous run still alive); nothing was started."""

    def __init__(self, child: Child) -> None:
        super().__init__(
            f"{child.name}'s port {child.host}:{child.port} is already in use "
            "(another sandbox still running?); nothing was started"
        )
        self.child = child


def die_with_parent(sig: signal.Signals = signal.SIGTERM) -> Callable[[], None] | None:
    """A ``preexec_fn`` asking Linux to send `sig` to the child when the supervisor dies.

    It is the only guard against a SIGKILLed supervisor, which can forward nothing. SIGTERM
    rather than SIGKILL, so that a child that started processes of its own (uvicorn's workers)
    stops them. The setting survives ``exec`` and is tied to the *thread* that forked: spawn from
    the main thread. libc's ``prctl`` is looked up here, in the parent, so the child only makes
    the call between fork and exec. Elsewhere than Linux: None (no such guarantee).
    """
    if not sys.platform.startswith("linux"):
        return None
    prctl = ctypes.CDLL(None, use_errno=True).prctl
    prctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong]
    prctl.restype = ctypes.c_int
    parent = os.getpid()

    def preexec() -> None:
        if prctl(PR_SET_PDEATHSIG, int(sig), 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_SET_PDEATHSIG) failed")
        if os.getppid() != parent:  # the parent died before the call: no signal will come
            os._exit(1)

    return preexec


def https_answers(url: str, ca_file: Path | None, timeout: float = 1.0) -> bool:
    """Whether `url` answers 2xx/3xx over verified HTTPS (direct, ignoring proxy variables);
    an ``http://`` URL is asked over plain HTTP (the sandbox's demo OP, on the loopback)."""
    context = ssl.create_default_context(cafile=str(ca_file) if ca_file else None)
    opener = urllib.request.build_opener(
        urllib.request.ProxyHandler({}), urllib.request.HTTPSHandler(context=context)
    )
    try:
        with opener.open(url, timeout=timeout) as response:
            return 200 <= int(response.status) < 400
    except (OSError, http.client.HTTPException):  # refused, TLS, timeout, 4xx/5xx (URLError)
        return False


def port_is_free(host: str, port: int) -> bool:
    """Whether a server could listen on host:port now (SO_REUSEADDR, as uvicorn binds)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


@dataclass
class _Running:
    child: Child
    proc: subprocess.Popen[bytes]
    log: Path
    ready: bool = False


class Supervisor:
    """Start `children` in order, report each once it answers, stop all on a signal or a death.

    `run` returns the exit status for the command: 0 after a requested stop, 1 when a child died
    or did not answer within `ready_timeout`. `probe` (default: `https_answers` with `ca_file`)
    is replaceable for tests of the life cycle without TLS servers.
    """

    def __init__(
        self,
        children: Sequence[Child],
        *,
        log_dir: Path,
        ca_file: Path | None = None,
        label: str = "supervisor",
        grace_seconds: float = 5.0,
        ready_timeout: float = 90.0,
        poll_seconds: float = 0.2,
        on_ready: Callable[[], None] | None = None,
        probe: Callable[[Child], bool] | None = None,
    ) -> None:
        names = [c.name for c in children]
        if len(set(names)) != len(names):
            raise ValueError(f"child names must be unique: {names}")
        self.children = list(children)
        self.log_dir = log_dir
        self.label = label
        self.grace_seconds = grace_seconds
        self.ready_timeout = ready_timeout
        self.poll_seconds = poll_seconds
        self.on_ready = on_ready
        self.probe = probe or (lambda child: https_answers(child.ready_url, ca_file))
        self._stop: list[signal.Signals] = []

    def say(self, message: str, *, error: bool = False) -> None:
        print(f"{self.label}: {message}", file=sys.stderr if error else sys.stdout, flush=True)

    def check_ports(self) -> None:
        """Raise `PortInUse` for the first child whose port is taken."""
        for child in self.children:
            if not port_is_free(child.host, child.port):
                raise PortInUse(child)

    def run(self) -> int:
        self.check_ports()
        self.log_dir.mkdir(parents=True, exist_ok=True)
        previous = {
            sig: signal.signal(sig, self._on_signal)
            for sig in STOP_SIGNALS
            # SIGINT/SIGHUP ignored on entry (background job, nohup) stay ignored, as in Python
            if sig == signal.SIGTERM or signal.getsignal(sig) != signal.SIG_IGN
        }
        running: list[_Running] = []
        try:
            for child in self.children:
                if self._stop:
                    break
                running.append(self._start(child))
            return self._watch(running)
        finally:
            self._stop_all(running)
            for sig, handler in previous.items():
                signal.signal(sig, handler)

    def _on_signal(self, signum: int, _frame: FrameType | None) -> None:
        self._stop.append(signal.Signals(signum))

    def _start(self, child: Child) -> _Running:
        log = self.log_dir / f"{child.name}.log"
        with log.open("wb") as out:
            proc = subprocess.Popen(  # noqa: S603 - argv built by the caller, no shell
                list(child.argv),
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                env={**os.environ, **child.env},
                start_new_session=True,
                preexec_fn=die_with_parent(),  # no threads here: fork-safe
            )
        return _Running(child, proc, log)

    def _watch(self, running: list[_Running]) -> int:
        deadline = time.monotonic() + self.ready_timeout
        announced = False
        while True:
            if self._stop:
                names = ", ".join(r.child.name for r in running)
                self.say(f"{self._stop[0].name} received, stopping {names}")
                return 0
            for r in running:
                status = r.proc.poll()
                if status is not None:
                    self._report_death(r, status, running)
                    return 1
            for r in running:
                if not r.ready and not self._stop and self.probe(r.child):
                    r.ready = True
                    self.say(
                        f"{r.child.name} ready at {r.child.url} (pid {r.proc.pid}, log {r.log})"
                    )
            waiting = [r for r in running if not r.ready]
            if not waiting and not announced and not self._stop:
                announced = True
                if self.on_ready is not None:
                    self.on_ready()
                self.say("all services answer; Ctrl-C or SIGTERM stops them all")
            if waiting and time.monotonic() > deadline:
                for r in waiting:
                    self.say(
                        f"{r.child.name} did not answer at {r.child.ready_url} within "
                        f"{self.ready_timeout:g}s; its log: {r.log}",
                        error=True,
                    )
                return 1
            time.sleep(self.poll_seconds)

    def _report_death(self, dead: _Running, status: int, running: list[_Running]) -> None:
        how = (
            f"was killed by {signal.Signals(-status).name}"
            if status < 0
            else f"exited with status {status}"
        )
        when = "" if dead.ready else " before it answered"
        others = ", ".join(r.child.name for r in running if r is not dead) or "nothing else"
        self.say(
            f"{dead.child.name} {how}{when}; its log: {dead.log}; stopping {others}", error=True
        )
        for line in _tail(dead.log, LOG_TAIL_LINES):
            print(f"  | {line}", file=sys.stderr, flush=True)

    def _stop_all(self, running: list[_Running]) -> None:
        live = [r for r in running if r.proc.poll() is None]
        for r in live:
            _signal_group(r.proc, signal.SIGTERM)
        deadline = time.monotonic() + self.grace_seconds
        for r in live:
            try:
                r.proc.wait(timeout=max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                self.say(
                    f"{r.child.name} did not stop within {self.grace_seconds:g}s: SIGKILL",
                    error=True,
                )
                _signal_group(r.proc, signal.SIGKILL)
                r.proc.wait()


def _signal_group(proc: subprocess.Popen[bytes], sig: signal.Signals) -> None:
    """Signal the child's process group (its session leader is the child itself)."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, sig)


def _tail(path: Path, lines: int) -> list[str]:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return []
    return text.rstrip().splitlines()[-lines:]
