"""The demo SCA service (`stetgate.sca_http.demo_service`) as a real HTTP server for tests:
uvicorn on 127.0.0.1 and an ephemeral port, in a background thread, sharing the test's clock."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any

import httpx
import uvicorn

from stetgate.sca_http.demo_service import DemoScaService, demo_sca_app
from tests.support.servers import bound_socket, serve_in_thread

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


def start_sca_service(service: DemoScaService) -> RunningScaService:
    sock = bound_socket()
    port = sock.getsockname()[1]
    config = uvicorn.Config(demo_sca_app(service), log_level="warning", lifespan="off")
    server, thread = serve_in_thread(config, sock, "test SCA service")
    return RunningScaService(f"http://127.0.0.1:{port}", service, server, thread)
