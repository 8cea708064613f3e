"""Run the app under uvicorn with optional mutual TLS on one port.

PSU browsers connect without a certificate and TPPs present their QWAC on the same port, so the
client certificate is *optional* at the TLS layer (``CERT_OPTIONAL``) and required by each
endpoint that needs it (RFC 8705 §2). Python's ssl still verifies a certificate that is presented
against ``ssl_ca_certs``, so the bundle is built from the trust folder at start.
"""

from __future__ import annotations

import json
import os
import ssl
from pathlib import Path
from typing import Any

import uvicorn

from stetgate.observability.logs import log_config
from stetgate.observability.metrics import MULTIPROCESS_DIR_VARIABLE
from stetgate.settings import Settings

HTTP_PROTOCOL = "stetgate.serving.tls_uvicorn:TLSHttpToolsProtocol"


class ServeError(RuntimeError):
    """A precondition for serving is missing; the message says how to fix it."""


def client_ca_bundle(settings: Settings) -> Path:
    """Concatenate the trusted QTSP CA certificates into one PEM bundle for the TLS layer."""
    trust = settings.trust_path
    pems = sorted(trust.glob("*.pem")) if trust.is_dir() else []
    if not pems:
        raise ServeError(
            f"no trusted QTSP CA certificate in {trust}: run `stetgate certs init` "
            "or put the QTSP roots (PEM) there"
        )
    run_dir = settings.data_dir / "run"
    run_dir.mkdir(parents=True, exist_ok=True)
    bundle = run_dir / "client-ca-bundle.pem"
    tmp = bundle.with_suffix(".tmp")
    tmp.write_text("".join(p.read_text() for p in pems))
    tmp.replace(bundle)
    return bundle


def settings_environment(settings: Settings) -> dict[str, str]:
    """The validated settings as STETGATE_* variables, which `load_settings` reads back: how a
    child process (a uvicorn worker, the sandbox's bank) gets exactly these settings."""
    return {
        f"STETGATE_{name.upper()}": (
            json.dumps(value)
            if isinstance(value, list | dict)
            else (str(value).lower() if isinstance(value, bool) else str(value))
        )
        for name, value in settings.model_dump(mode="json", exclude_none=True).items()
    }


def export_settings(settings: Settings) -> None:
    """Hand the validated settings to worker processes through STETGATE_* variables."""
    os.environ.update(settings_environment(settings))


TLS12_CIPHERS = ":".join(
    (
        "ECDHE-ECDSA-AES128-GCM-SHA256",
        "ECDHE-RSA-AES128-GCM-SHA256",
        "ECDHE-ECDSA-AES256-GCM-SHA384",
        "ECDHE-RSA-AES256-GCM-SHA384",
        "DHE-RSA-AES128-GCM-SHA256",
        "DHE-RSA-AES256-GCM-SHA384",
    )
)
"""The TLS 1.2 cipher suites served (TLS 1.3 suites are not affected by this list): FAPI 1.0
Advanced §8.5 permits only the four ``(EC)DHE-RSA`` AES-GCM suites; their ``ECDHE-ECDSA``
twins are added for ECDSA server certificates (RFC 9325 §4.2 recommends the same AEAD
suites). uvicorn's default (``TLSv1``) also served CBC suites such as
``ECDHE-ECDSA-AES256-SHA384``; no TLS 1.0/1.1 suite is left."""


def connection_options(settings: Settings, *, plain_http: bool = False) -> dict[str, Any]:
    """The uvicorn options that decide what the app learns about a connection; `serve` and the
    test servers (tests/support/bank.py) use these same options.

    - ``http``: `stetgate.serving.tls_uvicorn`'s protocol, with TLS *and* with ``--plain-http``:
      it records the direct peer, on which the trusted-proxy decision is taken
      (`stetgate.serving.client_cert`).
    - ``proxy_headers``/``forwarded_allow_ips``: uvicorn rewrites ``scope["client"]`` and
      ``scope["scheme"]`` from ``X-Forwarded-For``/``X-Forwarded-Proto`` sent by a trusted
      proxy, for the access log only; off without ``trusted_proxies`` (uvicorn's default would
      trust 127.0.0.1).
    - TLS with an optional client certificate and `TLS12_CIPHERS`, unless ``plain_http``.
    """
    options: dict[str, Any] = dict(
        http=HTTP_PROTOCOL,
        proxy_headers=bool(settings.trusted_proxies),
        forwarded_allow_ips=",".join(settings.trusted_proxies) or None,
    )
    if plain_http:
        if not settings.trusted_proxies:
            raise ServeError(
                "--plain-http is only for running behind a trusted TLS proxy: "
                "set trusted_proxies (STETGATE_TRUSTED_PROXIES)"
            )
        return options
    cert, key = settings.server_cert_path, settings.server_key_path
    if not cert.exists() or not key.exists():
        raise ServeError(f"no server certificate at {cert}: run `stetgate certs init` first")
    options.update(
        ssl_certfile=str(cert),
        ssl_keyfile=str(key),
        ssl_ca_certs=str(client_ca_bundle(settings)),
        ssl_cert_reqs=ssl.CERT_OPTIONAL,
        ssl_ciphers=TLS12_CIPHERS,
    )
    return options


def serve(settings: Settings, *, plain_http: bool = False) -> None:
    """Check the database, start the metrics listener (`stetgate.serving.metrics_listener`)
    and run uvicorn's workers with stetgate's logging (`stetgate.observability.logs`) until a
    signal stops them."""
    from stetgate.clock import SystemClock
    from stetgate.serving.metrics_listener import (
        multiprocess_dir,
        prepare_multiprocess_dir,
        start_metrics_listener,
    )
    from stetgate.store.db import make_engine, require_migrated

    options = connection_options(settings, plain_http=plain_http)
    engine = make_engine(settings.resolved_database_url, 1)
    try:
        require_migrated(engine)
    finally:
        engine.dispose()
    if settings.metrics_port:
        prepare_multiprocess_dir(multiprocess_dir(settings))
    else:  # no listener: workers keep their values in memory, whatever the environment says
        os.environ.pop(MULTIPROCESS_DIR_VARIABLE, None)
    try:
        listener = start_metrics_listener(settings, SystemClock())
    except OSError as exc:
        raise ServeError(
            f"metrics listener on {settings.metrics_host}:{settings.metrics_port}: {exc} "
            "(set metrics_port, or 0 to turn it off)"
        ) from None
    export_settings(settings)
    try:
        uvicorn.run(
            "stetgate.app:app_from_environment",
            factory=True,
            host=settings.host,
            port=settings.port,
            workers=settings.workers,
            access_log=False,  # stetgate writes its own (`stetgate.serving.access`)
            log_config=log_config(settings.log_format),
            log_level="info",
            timeout_keep_alive=30,
            # Without it a worker waits for every TLS peer's close_notify (asyncio: 30 s), and
            # TPP clients idle in their pools never send one: a rolling restart would hang.
            timeout_graceful_shutdown=settings.graceful_shutdown_seconds,
            **options,
        )
    finally:
        if listener is not None:
            listener.stop()
