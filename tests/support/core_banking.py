"""Core banking over HTTP in tests: the demo bank's service as a real separate process
(``stetgate demo-bank serve``), and a small misbehaving backend (`FaultyBackend`, a threaded
``http.server`` on 127.0.0.1) whose behaviour a test switches between calls."""

from __future__ import annotations

import json
import os
import socket
import ssl
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx

from tests.support.servers import free_port


@dataclass
class DemoBankService:
    url: str
    process: subprocess.Popen[bytes]
    log: Path

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)


def start_demo_bank_service(
    db_url: str, data_dir: Path, *, tls: tuple[Path, Path, Path | None] | None = None
) -> DemoBankService:
    """``stetgate demo-bank serve`` on a free port of 127.0.0.1 over ``db_url``; ``tls`` is
    (server certificate, key, client CA or None). Waits until ``/health`` answers."""
    data_dir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    command = [sys.executable, "-m", "stetgate.cli", "--data-dir", str(data_dir)]
    command += ["demo-bank", "serve", "--host", "127.0.0.1", "--port", str(port)]
    scheme = "http"
    if tls is not None:
        cert, key, client_ca = tls
        command += ["--tls-cert", str(cert), "--tls-key", str(key)]
        if client_ca is not None:
            command += ["--client-ca", str(client_ca)]
        scheme = "https"
    env = dict(os.environ, STETGATE_DATABASE_URL=db_url, STETGATE_DATA_DIR=str(data_dir))
    log = data_dir / "demo-bank.log"
    with log.open("wb") as output:
        process = subprocess.Popen(command, env=env, stdout=output, stderr=subprocess.STDOUT)
    url = f"{scheme}://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            raise RuntimeError(f"demo-bank serve did not start:\n{log.read_text()[-3000:]}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                pass
            if tls is None:
                if httpx.get(f"{url}/core-banking/v1/health", timeout=2).status_code == 200:
                    break
            else:
                break
        except (OSError, httpx.HTTPError):
            pass
        time.sleep(0.1)
    return DemoBankService(url, process, log)


# --- a backend that misbehaves on demand -----------------------------------------------------


@dataclass
class FaultyBackend:
    """Answers every request according to ``mode``; records what it received."""

    mode: str = "ok"
    delay: float = 0.0
    requests: list[tuple[str, str, str | None]] = field(default_factory=list)
    """(method, path, X-Request-ID) of each request received."""
    server: ThreadingHTTPServer | None = None
    tls: ssl.SSLContext | None = None

    @property
    def url(self) -> str:
        assert self.server is not None
        scheme = "https" if self.tls is not None else "http"
        return f"{scheme}://127.0.0.1:{self.server.server_address[1]}"

    def answer(self, path: str) -> tuple[int, str, bytes]:
        """(status, content type, body) for ``path`` in the current mode."""
        accounts = {
            "accounts": [
                {
                    "resourceId": "acc-1",
                    "bic": "BNPAFRPP",
                    "iban": "FR7630006000011234567890189",
                    "currency": "EUR",
                    "name": "Compte courant",
                    "cashAccountType": "CACC",
                    "usage": "PRIV",
                    "product": "Compte de dépôt",
                    "psuStatus": "Account Holder",
                    "balances": [
                        {
                            "name": "Solde",
                            "amount": {"amount": "12.30", "currency": "EUR"},
                            "balanceType": "CLBD",
                        }
                    ],
                }
            ]
        }
        ok = json.dumps(accounts).encode()
        if "/transactions" in path:
            if self.mode == "partial_page":
                page = {"transactions": [], "total": 3, "snapshotEntry": 3}
                return 200, "application/json", json.dumps(page).encode()
            return 200, "application/json", b'{"transactions":[],"total":0,"snapshotEntry":null}'
        mode = self.mode
        if mode in ("ok", "slow", "partial_page"):
            return 200, "application/json", ok
        if mode == "error_500":
            return 500, "application/json", b'{"error":"internal","message":"db down at 10.0.0.7"}'
        if mode == "unavailable_503":
            return 503, "application/json", b'{"error":"internal"}'
        if mode == "malformed_json":
            return 200, "application/json", b'{"accounts": [{"resourceId": "acc-1",'
        if mode == "wrong_content_type":
            return 200, "text/html; charset=utf-8", b"<html>login</html>"
        if mode == "missing_field":
            broken = json.loads(ok)
            del broken["accounts"][0]["currency"]
            return 200, "application/json", json.dumps(broken).encode()
        if mode == "bad_amount":
            broken = json.loads(ok)
            broken["accounts"][0]["balances"][0]["amount"]["amount"] = "12.345"
            return 200, "application/json", json.dumps(broken).encode()
        raise AssertionError(mode)

    def start(self) -> FaultyBackend:
        backend = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _serve(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                if length:
                    self.rfile.read(length)
                backend.requests.append((self.command, self.path, self.headers.get("x-request-id")))
                if backend.mode == "slow" or backend.delay:
                    time.sleep(backend.delay or 5.0)
                status, media_type, body = backend.answer(self.path)
                self.send_response(status)
                self.send_header("Content-Type", media_type)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_GET = _serve
            do_POST = _serve

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        if self.tls is not None:
            self.server.socket = self.tls.wrap_socket(self.server.socket, server_side=True)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()


@contextmanager
def faulty_backend(tls: ssl.SSLContext | None = None) -> Iterator[FaultyBackend]:
    backend = FaultyBackend(tls=tls).start()
    try:
        yield backend
    finally:
        backend.stop()


def refused_url() -> str:
    """An http URL on 127.0.0.1 where nothing listens (connection refused)."""
    return f"http://127.0.0.1:{free_port()}"
