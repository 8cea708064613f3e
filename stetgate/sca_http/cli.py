"""`stetgate demo-sca serve`: the sandbox's SCA service as its own process.

It reads the same settings as the bank (``--config``/``STETGATE_*``): the shared
``sca_http_secret``, and ``sca_http_url`` for where to listen unless ``--host``/``--port`` say
otherwise. Callbacks go to the URL stetgate puts in each challenge; ``--callback-ca`` names the
CA file that signed stetgate's TLS certificate (the sandbox's own), or the system's trust is
used.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

import click

from stetgate.cli_context import settings_of


@click.group("demo-sca")
def demo_sca() -> None:
    """The demo SCA service: the bank's side of the 'confirm in your banking app' contract."""


@demo_sca.command("serve")
@click.option("--host", default=None, help="Listen address (default: sca_http_url's host).")
@click.option("--port", type=int, default=None, help="Listen port (default: sca_http_url's).")
@click.option(
    "--callback-ca",
    type=click.Path(path_type=Path, exists=True, dir_okay=False),
    default=None,
    help="CA file trusted for stetgate's callback URL (default: the system's trust store).",
)
@click.pass_context
def serve(ctx: click.Context, host: str | None, port: int | None, callback_ca: Path | None) -> None:
    """Serve the demo SCA service (in-memory challenges; a restart forgets them)."""
    import uvicorn

    from stetgate.sca_http.demo_service import DemoScaService, demo_sca_app

    settings = settings_of(ctx)
    if settings.sca_http_secret is None:
        raise click.ClickException("set sca_http_secret (STETGATE_SCA_HTTP_SECRET) first")
    url = urlsplit(settings.sca_http_url or "http://127.0.0.1:8700")
    service = DemoScaService(
        settings.sca_http_secret,
        callback_verify=str(callback_ca) if callback_ca is not None else True,
    )
    click.echo(f"demo SCA service on http://{host or url.hostname}:{port or url.port or 80}")
    uvicorn.run(
        demo_sca_app(service),
        host=host or url.hostname or "127.0.0.1",
        port=port or url.port or 80,
        log_level="warning",
        timeout_graceful_shutdown=3,  # idle TLS peers never send close_notify
    )
