"""`stetgate demo …`: the demo bank's data."""

from __future__ import annotations

from datetime import datetime

import click

from stetgate.cli_context import settings_of


@click.group()
def demo() -> None:
    """Demo bank data (PSUs, accounts, transactions, beneficiaries)."""


@demo.command("seed")
@click.option(
    "--seed",
    "seed",
    type=int,
    default=1,
    show_default=True,
    help="Seed number: the same seed gives the same PSUs, credentials and data.",
)
@click.option(
    "--anchor-date",
    type=click.DateTime(formats=["%Y-%m-%d"]),
    default=None,
    help="Last day of the 400-day history (default: today, Europe/Paris).",
)
@click.pass_context
def seed_command(ctx: click.Context, seed: int, anchor_date: datetime | None) -> None:
    """Create or replace the demo PSUs and their accounts; write DATA_DIR/demo-psus.json."""
    from stetgate.clock import SystemClock
    from stetgate.demo.seed import seed_demo_bank
    from stetgate.store.db import DatabaseNotMigrated

    try:
        summary = seed_demo_bank(
            settings_of(ctx),
            seed,
            now=SystemClock().now(),
            anchor=anchor_date.date() if anchor_date else None,
        )
    except DatabaseNotMigrated as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(
        f"demo bank seeded: {summary.psus} PSUs, {summary.accounts} accounts, "
        f"{summary.transactions} transactions, {summary.beneficiaries} trusted beneficiaries\n"
        f"PSU credentials (keep private): {summary.credentials_file}"
    )


@click.group("demo-bank")
def demo_bank() -> None:
    """The demo bank as a separate core-banking service (contract /core-banking/v1)."""


@demo_bank.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True, help="Bind address.")
@click.option("--port", type=int, default=8480, show_default=True, help="Port.")
@click.option("--workers", type=int, default=1, show_default=True, help="Worker processes.")
@click.option("--tls-cert", type=click.Path(exists=True), default=None, help="Server cert (PEM).")
@click.option("--tls-key", type=click.Path(exists=True), default=None, help="Its key (PEM).")
@click.option(
    "--client-ca",
    type=click.Path(exists=True),
    default=None,
    help="Require a client certificate from these CAs (mTLS, bank_auth = mtls).",
)
@click.pass_context
def demo_bank_serve(
    ctx: click.Context,
    host: str,
    port: int,
    workers: int,
    tls_cert: str | None,
    tls_key: str | None,
    client_ca: str | None,
) -> None:
    """Serve the demo bank's ledger (this instance's database, read-only) over HTTP for a
    gateway configured with bank_url; plain HTTP unless --tls-cert is given."""
    import os
    import ssl

    import uvicorn

    if (tls_cert is None) != (tls_key is None) or (client_ca and not tls_cert):
        raise click.UsageError("--tls-cert and --tls-key go together; --client-ca needs them")
    settings = settings_of(ctx)
    # Workers are separate processes: they read the settings from the environment.
    os.environ["STETGATE_DATA_DIR"] = str(settings.data_dir)
    os.environ["STETGATE_DATABASE_URL"] = settings.resolved_database_url
    tls: dict[str, object] = {}
    if tls_cert:
        tls = {"ssl_certfile": tls_cert, "ssl_keyfile": tls_key}
        if client_ca:
            tls.update(ssl_ca_certs=client_ca, ssl_cert_reqs=ssl.CERT_REQUIRED)
    uvicorn.run(
        "stetgate.demo.bank_service:service_from_environment",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_level="warning",
        access_log=False,
        **tls,  # type: ignore[arg-type]
        timeout_graceful_shutdown=3,  # idle TLS peers never send close_notify
    )
