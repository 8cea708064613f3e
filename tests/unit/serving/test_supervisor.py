"""The supervisor's life cycle with tiny Python children and a file-based readiness probe: the
edges that the real sandbox (tests/integration/test_sandbox_processes.py) rarely reaches — a
child ignoring SIGTERM, one that never answers, one that dies before answering, a busy port."""

from __future__ import annotations

import os
import re
import signal
import socket
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from stetgate.serving.supervisor import Child, PortInUse, Supervisor, port_is_free
from tests.support.servers import free_port as _free_port

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux processes")

SLEEPER = """
import pathlib, signal, sys, time
if sys.argv[2] == "ignore-term":
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
if sys.argv[2] == "crash":
    print("boom: cannot start", flush=True)
    sys.exit(3)
if sys.argv[2] == "quit-after-start":
    pathlib.Path(sys.argv[1]).touch()
    time.sleep(2)
    sys.exit(0)
if sys.argv[2] != "never-ready":
    pathlib.Path(sys.argv[1]).touch()
time.sleep(60)
"""


def _child(tmp_path: Path, name: str, mode: str = "plain") -> Child:
    marker = tmp_path / f"{name}.ready"
    return Child(
        name,
        [sys.executable, "-c", SLEEPER, str(marker), mode],
        url=f"file://{marker}",
        ready_url=str(marker),
        port=_free_port(),
    )


def _supervisor(tmp_path: Path, children: list[Child], **kwargs: Any) -> Supervisor:
    return Supervisor(
        children,
        log_dir=tmp_path / "logs",
        label="test",
        poll_seconds=0.05,
        probe=lambda child: Path(child.ready_url).exists(),
        **kwargs,
    )


def _pids(output: str) -> list[int]:
    return [int(pid) for pid in re.findall(r"\(pid (\d+)", output)]


def _gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


def test_a_child_ignoring_sigterm_is_killed_after_the_grace_period(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    children = [_child(tmp_path, "stubborn", "ignore-term"), _child(tmp_path, "polite")]
    supervisor = _supervisor(
        tmp_path,
        children,
        grace_seconds=0.5,
        on_ready=lambda: os.kill(os.getpid(), signal.SIGTERM),  # a stop request once all answer
    )
    before = signal.getsignal(signal.SIGTERM)
    started = time.monotonic()
    assert supervisor.run() == 0
    assert time.monotonic() - started < 10
    out, err = capsys.readouterr()
    assert "SIGTERM received, stopping stubborn, polite" in out
    assert "stubborn did not stop within 0.5s: SIGKILL" in err
    assert "polite did not stop" not in err
    assert len(_pids(out)) == 2
    assert all(_gone(pid) for pid in _pids(out))
    assert signal.getsignal(signal.SIGTERM) == before  # handlers restored


def test_a_child_that_never_answers_fails_the_start_naming_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    children = [_child(tmp_path, "fine"), _child(tmp_path, "mute", "never-ready")]
    assert _supervisor(tmp_path, children, ready_timeout=1.0).run() == 1
    out, err = capsys.readouterr()
    assert f"mute did not answer at {children[1].ready_url} within 1s" in err
    assert str(tmp_path / "logs" / "mute.log") in err
    assert all(_gone(pid) for pid in _pids(out))


def test_a_child_dying_before_it_answers_fails_with_its_log_tail(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    children = [_child(tmp_path, "fine"), _child(tmp_path, "broken", "crash")]
    assert _supervisor(tmp_path, children).run() == 1
    out, err = capsys.readouterr()
    assert "broken exited with status 3 before it answered" in err
    assert "stopping fine" in err
    assert "  | boom: cannot start" in err
    assert all(_gone(pid) for pid in _pids(out))


def test_a_child_leaving_by_itself_even_with_status_0_stops_the_others_and_fails(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    children = [_child(tmp_path, "steady"), _child(tmp_path, "quitter", "quit-after-start")]
    assert _supervisor(tmp_path, children).run() == 1
    out, err = capsys.readouterr()
    assert "all services answer" in out
    assert "quitter exited with status 0; its log:" in err
    assert all(_gone(pid) for pid in _pids(out))


def test_a_busy_port_starts_nothing(tmp_path: Path) -> None:
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        busy = Child("late", ["false"], url="", ready_url="", port=squatter.getsockname()[1])
        supervisor = _supervisor(tmp_path, [_child(tmp_path, "first"), busy])
        with pytest.raises(PortInUse, match=r"late's port 127\.0\.0\.1:\d+ is already in use"):
            supervisor.run()
        assert not port_is_free("127.0.0.1", busy.port)
    assert not (tmp_path / "logs").exists()  # not even the first child was started


def test_child_names_must_be_unique(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unique"):
        _supervisor(tmp_path, [_child(tmp_path, "twin"), _child(tmp_path, "twin")])
