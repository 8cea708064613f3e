"""A real bank server for integration tests: `create_app` under uvicorn, over real TLS with
optional client certificates (the same connection options `stetgate serve` uses:
`connection_options`), on 127.0.0.1 and an ephemeral port, in a background thread — so the test
can inject a `FrozenClock` and reach the app's services. ``plain_http=True`` starts it as
`stetgate serve --plain-http` does, for tests behind a TLS-terminating proxy."""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import uvicorn
from starlette.applications import Starlette
from starlette.types import ASGIApp

from stetgate.app import create_app
from stetgate.clock import FrozenClock
from stetgate.services import Services
from stetgate.serving.server import connection_options
from stetgate.settings import Settings
from tests.support.pki import TestPki, TppCerts
from tests.support.servers import bound_socket, serve_in_thread


@dataclass
class RunningBank:
    base_url: str
    app: Starlette
    settings: Settings
    clock: FrozenClock
    pki: TestPki
    _server: uvicorn.Server
    _thread: threading.Thread

    @property
    def services(self) -> Services:
        services: Services = self.app.state.services
        return services

    def client(
        self, tpp: TppCerts | None = None, *, cert: tuple[Path, Path] | None = None, **kwargs: Any
    ) -> httpx.Client:
        """An httpx client trusting the bank, presenting `tpp`'s QWAC (or `cert`) if given."""
        kwargs.setdefault("timeout", 10.0)
        return httpx.Client(
            base_url=self.base_url, verify=self.pki.client_ssl_context(tpp, cert), **kwargs
        )

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=10)
        self.services.close()


def start_bank(
    pki: TestPki,
    db_url: str,
    data_dir: Path,
    clock: FrozenClock | None = None,
    *,
    ports: Mapping[str, Any] | None = None,
    plain_http: bool = False,
    wrap: Callable[[ASGIApp], ASGIApp] | None = None,
    **overrides: Any,
) -> RunningBank:
    """Start a bank on an ephemeral port; `ports` are `create_app`'s seams (``bank``, ``psus``,
    ``sca_methods``), `overrides` are Settings fields. ``plain_http`` needs
    ``trusted_proxies``, like `stetgate serve --plain-http`. ``wrap`` puts an ASGI middleware
    around the app (a test bank with a defect injected from outside)."""
    sock = bound_socket()
    port = sock.getsockname()[1]
    values: dict[str, Any] = dict(
        data_dir=data_dir,
        database_url=db_url,
        host="127.0.0.1",
        port=port,
        issuer=f"https://127.0.0.1:{port}",
        tls_cert_file=pki.server_pem,
        tls_key_file=pki.server_key,
        trust_dir=pki.trust_dir,
        crl_dir=pki.crl_dir,
        crl_poll_seconds=0,
        db_pool_size=4,
        # The session QTSP publishes its CRL straight into crl_dir; the tests of fetching
        # (tests/integration/test_revocation_fetch.py) turn the fetcher on with a QTSP of their own.
        revocation_fetch=False,
    )
    values.update(overrides)
    settings = Settings(**values)
    clock = clock or FrozenClock()
    app = create_app(settings, clock=clock, **(ports or {}))
    config = uvicorn.Config(
        wrap(app) if wrap is not None else app,
        log_level="warning",
        lifespan="off",
        **connection_options(settings, plain_http=plain_http),
    )
    server, thread = serve_in_thread(config, sock, "test bank")
    scheme = "http" if plain_http else "https"
    return RunningBank(f"{scheme}://127.0.0.1:{port}", app, settings, clock, pki, server, thread)
