"""`stetgate serve` as a real process: the app sees the TPP's QWAC through the uvicorn TLS hook
(docs/decisions.md#client-certificate-in-the-asgi-scope) and reports bad certificates as bad."""

from __future__ import annotations

import os
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from tests.support.pki import TestPki
from tests.support.servers import free_port as _free_port


@pytest.fixture(scope="module")
def served(pki: TestPki, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    data_dir = tmp_path_factory.mktemp("served")
    port = _free_port()
    env = dict(os.environ)
    env.update(
        STETGATE_DATA_DIR=str(data_dir),
        STETGATE_TLS_CERT_FILE=str(pki.server_pem),
        STETGATE_TLS_KEY_FILE=str(pki.server_key),
        STETGATE_TRUST_DIR=str(pki.trust_dir),
        STETGATE_CRL_DIR=str(pki.crl_dir),
        STETGATE_CRL_POLL_SECONDS="0",
        # The session QTSP's CRL is in crl_dir already (fetching: test_revocation_fetch.py).
        STETGATE_REVOCATION_FETCH="false",
        STETGATE_METRICS_PORT=str(_free_port()),
    )
    proc, log = _start(env, data_dir, port)
    base = f"https://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    ctx = ssl.create_default_context(cafile=str(pki.ca_pem))
    while True:
        try:
            if httpx.get(f"{base}/health/live", verify=ctx, timeout=2).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            pytest.fail(f"stetgate serve did not start:\n{log.read_text()[-4000:]}")
        time.sleep(0.2)
    yield base
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()


def _start(env: dict[str, str], data_dir: Path, port: int) -> tuple[subprocess.Popen[bytes], Path]:
    """`stetgate db upgrade`, then `stetgate serve` with 2 workers, its output in a file (a
    pipe nobody reads fills up with access lines and stalls the workers)."""
    cli = [sys.executable, "-m", "stetgate.cli"]
    subprocess.run([*cli, "db", "upgrade"], env=env, check=True, capture_output=True)
    log = data_dir / "serve.log"
    with log.open("wb") as output:
        proc = subprocess.Popen(
            [*cli, "serve", "--host", "127.0.0.1", "--port", str(port), "--workers", "2"],
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    return proc, log


def _check(base: str, pki: TestPki, cert: tuple[Path, Path] | None) -> dict[str, object]:
    ctx = ssl.create_default_context(cafile=str(pki.ca_pem))
    if cert:
        ctx.load_cert_chain(str(cert[0]), str(cert[1]))
    response = httpx.get(f"{base}/tpp/certificate", verify=ctx, timeout=5)
    assert response.status_code == 200
    body: dict[str, object] = response.json()
    return body


def test_app_sees_organization_identifier_and_roles_of_the_presented_qwac(
    served: str, pki: TestPki
) -> None:
    tpp = pki.issue("PSDFR-ACPR-77777", ("AISP", "CBPII"))
    body = _check(served, pki, (tpp.qwac_pem, tpp.qwac_key))
    assert body["presented"] is True
    assert body["valid"] is True
    assert body["organization_identifier"] == "PSDFR-ACPR-77777"
    assert body["roles"] == ["PSP_AI", "PSP_IC"]


def test_without_certificate_the_app_sees_none(served: str, pki: TestPki) -> None:
    body = _check(served, pki, None)
    assert body == {"presented": False, "valid": False}


def test_revoked_qwac_is_reported_revoked(served: str, pki: TestPki) -> None:
    tpp = pki.issue("PSDFR-ACPR-66666", ("AISP",), fresh=True)
    assert _check(served, pki, (tpp.qwac_pem, tpp.qwac_key))["valid"] is True
    pki.revoke(tpp.qwac_pem)
    body = _check(served, pki, (tpp.qwac_pem, tpp.qwac_key))
    assert body["valid"] is False
    assert body["error"] == "certificate_revoked"


def test_expired_qwac_is_never_accepted(served: str, pki: TestPki) -> None:
    past = datetime.now(UTC) - timedelta(days=30)
    tpp = pki.issue(
        "PSDFR-ACPR-55555",
        ("AISP",),
        fresh=True,
        not_before=past - timedelta(days=365),
        not_after=past,
    )
    try:
        body = _check(served, pki, (tpp.qwac_pem, tpp.qwac_key))
    except (httpx.ConnectError, httpx.ReadError, httpx.RemoteProtocolError, ssl.SSLError):
        return  # refused by the TLS layer: never accepted
    assert body["valid"] is False
    assert body["error"] == "certificate_expired"


def test_qwac_from_a_foreign_ca_is_refused(served: str, pki: TestPki) -> None:
    tpp = pki.issue("PSDFR-ACPR-44444", ("AISP",), foreign=True)
    try:
        body = _check(served, pki, (tpp.qwac_pem, tpp.qwac_key))
    except (httpx.ConnectError, httpx.ReadError, httpx.RemoteProtocolError, ssl.SSLError):
        return
    assert body["valid"] is False
    assert body["error"] == "unknown_issuer"


def test_serve_refuses_an_unmigrated_database(tmp_path: Path, pki: TestPki) -> None:
    env = dict(
        os.environ,
        STETGATE_DATA_DIR=str(tmp_path),
        STETGATE_TLS_CERT_FILE=str(pki.server_pem),
        STETGATE_TLS_KEY_FILE=str(pki.server_key),
        STETGATE_TRUST_DIR=str(pki.trust_dir),
    )
    result = subprocess.run(
        [sys.executable, "-m", "stetgate.cli", "serve", "--port", str(_free_port())],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0
    assert "stetgate db upgrade" in result.stderr


def test_invalid_setting_is_named_at_start(tmp_path: Path) -> None:
    env = dict(os.environ, STETGATE_DATA_DIR=str(tmp_path), STETGATE_SCA_VALIDITY_DAYS="365")
    result = subprocess.run(
        [sys.executable, "-m", "stetgate.cli", "db", "upgrade"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0
    assert "sca_validity_days" in result.stderr


def test_serve_refuses_a_broken_theme_naming_the_file(tmp_path: Path) -> None:
    """Checked once before any worker starts: one clear line, not a traceback per worker."""
    theme = tmp_path / "theme"
    theme.mkdir()
    (theme / "theme.toml").write_text('[colors]\nprimary = "red"\n')
    env = dict(os.environ, STETGATE_DATA_DIR=str(tmp_path), STETGATE_THEME_DIR=str(theme))
    result = subprocess.run(
        [sys.executable, "-m", "stetgate.cli", "serve", "--port", str(_free_port())],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0
    assert f"{theme / 'theme.toml'}: colors.primary = 'red' is not a CSS colour" in result.stderr
    assert "Traceback" not in result.stderr


def test_sigterm_stops_serve_promptly_while_a_client_keeps_an_idle_tls_connection(
    pki: TestPki, tmp_path: Path
) -> None:
    """A TPP's HTTP client keeps idle keep-alive connections open and reads nothing while idle;
    on SIGTERM the server must not wait for that peer's TLS close_notify (30 s in asyncio):
    service managers and the sandbox send SIGTERM and SIGKILL a few seconds later."""
    port = _free_port()
    env = dict(os.environ)
    env.update(
        STETGATE_DATA_DIR=str(tmp_path),
        STETGATE_TLS_CERT_FILE=str(pki.server_pem),
        STETGATE_TLS_KEY_FILE=str(pki.server_key),
        STETGATE_TRUST_DIR=str(pki.trust_dir),
        STETGATE_CRL_DIR=str(pki.crl_dir),
        STETGATE_REVOCATION_FETCH="false",
        STETGATE_METRICS_PORT="0",
        STETGATE_GRACEFUL_SHUTDOWN_SECONDS="2",
    )
    proc, log = _start(env, tmp_path, port)
    ctx = ssl.create_default_context(cafile=str(pki.ca_pem))
    deadline = time.monotonic() + 30
    idle: list[ssl.SSLSocket] = []
    try:
        while True:
            try:
                if (
                    httpx.get(f"https://127.0.0.1:{port}/health/live", verify=ctx).status_code
                    == 200
                ):
                    break
            except httpx.HTTPError:
                pass
            assert proc.poll() is None and time.monotonic() < deadline, log.read_text()[-4000:]
            time.sleep(0.2)
        for _ in range(4):  # on both workers, most likely
            sock = ctx.wrap_socket(
                socket.create_connection(("127.0.0.1", port)), server_hostname="127.0.0.1"
            )
            sock.sendall(b"GET /health/live HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
            assert sock.recv(65536).startswith(b"HTTP/1.1 200")
            idle.append(sock)  # kept open, never read again
        started = time.monotonic()
        proc.terminate()
        proc.wait(timeout=15)
        elapsed = time.monotonic() - started
    finally:
        if proc.poll() is None:
            proc.kill()
        for sock in idle:
            sock.close()
    assert proc.returncode == 0, log.read_text()[-4000:]
    assert elapsed < 5, (elapsed, log.read_text()[-4000:])
