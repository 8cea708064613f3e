"""The README's first command: `stetgate sandbox` gives a developer a bank and a demo TPP, and
the whole cinematic can be walked in a real browser (Debian's Chromium) — TPP page → bank login
→ one-time code → consent → back at the TPP, which shows the PSU's accounts and history."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.e2e.demo_psu import sign_in_to_consent
from tests.support.browser import chromium_launch_options, require_chromium
from tests.support.servers import free_port as _free_port

pytestmark = pytest.mark.browser

require_chromium()

from playwright.sync_api import sync_playwright  # noqa: E402


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str, Path]]:
    data_dir = tmp_path_factory.mktemp("sandbox")
    # The sandbox's output (its access log grows with every request) goes to a file, not to
    # a pipe nobody reads.
    log_path = data_dir / "sandbox.log"
    log = log_path.open("wb")
    bank_port, tpp_port, core_port = _free_port(), _free_port(), _free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "stetgate.cli",
            "--data-dir",
            str(data_dir),
            "sandbox",
            "--port",
            str(bank_port),
            "--tpp-port",
            str(tpp_port),
            "--core-banking-port",
            str(core_port),
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    bank, tpp = f"https://localhost:{bank_port}", f"https://localhost:{tpp_port}"
    deadline = time.monotonic() + 90
    while True:
        try:
            ok = [
                httpx.get(url, verify=False, timeout=2).status_code
                for url in (f"{bank}/health/live", f"{tpp}/")
            ]
            if ok == [200, 200]:
                break
        except httpx.HTTPError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            os.killpg(proc.pid, signal.SIGKILL)
            log.close()
            pytest.fail(f"sandbox did not start:\n{log_path.read_text(errors='replace')}")
        time.sleep(0.3)
    yield bank, tpp, data_dir
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
    log.close()


def test_developer_walks_the_whole_cinematic_in_a_browser(sandbox: tuple[str, str, Path]) -> None:
    bank, tpp, data_dir = sandbox
    psu = json.loads((data_dir / "demo-psus.json").read_text())[0]
    started = time.monotonic()
    with sync_playwright() as p:
        browser = p.chromium.launch(**chromium_launch_options())
        page = browser.new_context(ignore_https_errors=True).new_page()
        page.goto(tpp)
        page.click("text=Share my accounts (AISP)")
        page.wait_for_selector("[name=psu_id]")
        assert page.url.startswith(bank)
        sign_in_to_consent(page, psu)
        assert "Demo Budget App" in page.inner_text("body")
        page.click("button[value=authorize]")
        page.wait_for_selector("text=Connected PSU")
        assert page.url.startswith(tpp)
        body = page.inner_text("body")
        browser.close()
    assert psu["accounts"][0] in body.replace(" ", "")
    assert "CLBD" in body
    assert time.monotonic() - started < 60
