"""The demo SCA service (`stetgate.sca_http.demo_service`) as a real HTTP server for tests:
uvicorn on 127.0.0.1 and an ephemeral port, in a background thread, sharing the test's clock."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from dataclasses import dataclass
from typing import Any

import httpx
import uvicorn

from stetgate.sca_http.demo_service import DemoScaService, demo_sca_app

SECRET = "s" * 24 + "-test-secret-0123456789"


@dataclass
class RunningScaService:
    url: str
    service: DemoScaService
    _server: uvicorn.Server
    _thread: threading.Thread

    def pending(self, psu_id: str = "alice") -> list[dict[str, Any]]:
        with httpx.Client(base_url=self.url, timeout=10) as http:
            found: list[dict[str, Any]] = http.get(
                "/app/challenges", params={"psu_id": psu_id}
            ).json()["challenges"]
            return found

    def answer(self, challenge_id: str, decision: str) -> httpx.Response:
        """The banking app's button: answer, and (callback mode) deliver the callback."""
        with httpx.Client(base_url=self.url, timeout=10) as http:
            return http.post(f"/app/challenges/{challenge_id}/answer", json={"decision": decision})

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=10)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def start_sca_service(service: DemoScaService) -> RunningScaService:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(demo_sca_app(service), log_level="warning", lifespan="off")
    server = uvicorn.Server(config)
    server.install_signal_handlers = lambda: None  # type: ignore[method-assign]
    thread = threading.Thread(target=lambda: asyncio.run(server.serve(sockets=[sock])), daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("test SCA service did not start")
        time.sleep(0.01)
    return RunningScaService(f"http://127.0.0.1:{port}", service, server, thread)
