"""Command-line entry points (`stetgate …`).

Every command takes ``--data-dir`` (env ``STETGATE_DATA_DIR``, default ``./var``): all state of
one instance — SQLite file, generated certificates and keys, CRLs — lives there. Domain packages
contribute their own click groups; this module only assembles them.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import click
from pydantic import ValidationError

from stetgate.settings import Settings, load_settings


class CliContext:
    def __init__(self, data_dir: Path | None, config: Path | None) -> None:
        self.data_dir = data_dir
        if config is not None:
            os.environ["STETGATE_CONFIG"] = str(config)

    def settings(self, **overrides: Any) -> Settings:
        try:
            return load_settings(data_dir=self.data_dir, **overrides)
        except ValidationError as exc:
            lines = [
                f"  {'.'.join(str(p) for p in err['loc']) or 'settings'}: {err['msg']}"
                for err in exc.errors()
            ]
            raise click.ClickException("invalid settings:\n" + "\n".join(lines)) from None


pass_cli = click.make_pass_decorator(CliContext)


@click.group()
@click.option(
    "--data-dir",
    type=click.Path(path_type=Path),
    default=None,
    help="Instance state folder (env STETGATE_DATA_DIR, default ./var).",
)
@click.option(
    "--config",
    type=click.Path(path_type=Path, exists=True),
    default=None,
    help="TOML settings file (env STETGATE_CONFIG).",
)
@click.pass_context
def main(ctx: click.Context, data_dir: Path | None, config: Path | None) -> None:
    """stetgate: STET v1.4.2 PSD2 authorization server, resource API, test QTSP and TPP client."""
    ctx.obj = CliContext(data_dir, config)


@main.command()
@click.option("--host", default=None, help="Bind address (default 127.0.0.1).")
@click.option("--port", type=int, default=None, help="Port (default 8443).")
@click.option("--workers", type=int, default=None, help="Worker processes (default 1).")
@click.option("--plain-http", is_flag=True, help="Serve HTTP behind a trusted TLS proxy.")
@click.option(
    "--access-log/--no-access-log",
    default=None,
    help="One structured line per request (default: setting access_log, on).",
)
@pass_cli
def serve(
    cli: CliContext,
    host: str | None,
    port: int | None,
    workers: int | None,
    plain_http: bool,
    access_log: bool | None,
) -> None:
    """Serve the bank over HTTPS with optional client certificates (mTLS for TPPs)."""
    from stetgate.psu.theme import ThemeError, load_theme
    from stetgate.serving.server import ServeError
    from stetgate.serving.server import serve as run
    from stetgate.store.db import DatabaseNotMigrated

    settings = cli.settings(host=host, port=port, workers=workers, access_log=access_log)
    try:
        load_theme(settings.theme_dir, settings.default_language)  # before any worker starts
        run(settings, plain_http=plain_http)
    except (ServeError, DatabaseNotMigrated, ThemeError) as exc:
        raise click.ClickException(str(exc)) from None


@main.group()
def db() -> None:
    """Database schema management."""


@db.command("upgrade")
@pass_cli
def db_upgrade(cli: CliContext) -> None:
    """Apply migrations up to the latest schema."""
    from stetgate.store.db import upgrade

    settings = cli.settings()
    upgrade(settings.resolved_database_url)
    click.echo(f"database at latest schema ({_redacted(settings.resolved_database_url)})")


@main.command()
@click.option("--port", type=int, default=None, help="Bank port (default 8443).")
@click.option("--tpp-port", type=int, default=8444, show_default=True, help="Demo TPP port.")
@click.option(
    "--core-banking-port",
    type=int,
    default=8445,
    show_default=True,
    help="Demo core-banking service port.",
)
@click.option(
    "--delegated-login",
    is_flag=True,
    help="Add the demo OpenID Provider (node oidc-provider; needs node and npm) and let the "
    "PSU sign in there instead of on the bank's password and SCA pages.",
)
@click.option(
    "--op-port",
    type=int,
    default=8446,
    show_default=True,
    help="Demo OpenID Provider port (with --delegated-login).",
)
@pass_cli
def sandbox(
    cli: CliContext,
    port: int | None,
    tpp_port: int,
    core_banking_port: int,
    delegated_login: bool,
    op_port: int,
) -> None:
    """Set up (idempotently) and start the sandbox: a bank (test QTSP, schema, demo PSUs and
    accounts, demo phone pages) reading its core banking over HTTP from the demo
    core-banking service, and a demo TPP registered with it, as child processes that
    Ctrl-C or SIGTERM stops together (exit 0); if one dies the others stop (exit 1).
    With --delegated-login, also the demo OpenID Provider the bank sends the PSU to."""
    from stetgate.demo.openid_provider import OpUnavailable
    from stetgate.sandbox import DelegatedLogin, run_sandbox
    from stetgate.serving.supervisor import PortInUse

    try:
        delegated = DelegatedLogin.on_port(op_port) if delegated_login else None
        status = run_sandbox(
            cli.settings(port=port, enable_demo_pages=True),
            tpp_port,
            core_banking_port,
            delegated,
        )
    except PortInUse as exc:
        raise click.ClickException(
            f"{exc}. Stop what holds it, or choose other ports with --port / --tpp-port / "
            "--core-banking-port / --op-port"
        ) from None
    except OpUnavailable as exc:
        raise click.ClickException(
            f"--delegated-login: {exc}. Install Node.js and npm, or start the sandbox without "
            "--delegated-login"
        ) from None
    if status:
        raise SystemExit(status)


@db.command("purge")
@click.option(
    "--grant-retention-days",
    type=click.IntRange(1, 3650),
    default=400,
    show_default=True,
    help="Keep revoked/expired token pairs this long.",
)
@pass_cli
def db_purge(cli: CliContext, grant_retention_days: int) -> None:
    """Delete expired journeys, codes, registration tokens, counters, old token pairs and
    statistics minutes older than ``statistics_retention_days`` (the audit trail is kept).
    Safe to run from cron on any one server."""
    from stetgate.clock import SystemClock
    from stetgate.store.db import make_engine, require_migrated
    from stetgate.store.retention import purge_expired

    settings = cli.settings()
    engine = make_engine(settings.resolved_database_url, 1)
    try:
        require_migrated(engine)
        with engine.begin() as conn:
            report = purge_expired(
                conn,
                SystemClock().now(),
                grant_retention_days=grant_retention_days,
                statistics_retention_days=settings.statistics_retention_days,
            )
    finally:
        engine.dispose()
    click.echo(
        ", ".join(f"{name.replace('_', ' ')}: {count}" for name, count in vars(report).items())
    )


def _redacted(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


def _register_groups() -> None:
    from stetgate.eidas.cli import certs

    main.add_command(certs)
    from stetgate.tpp.cli import tpp

    main.add_command(tpp)
    # --- domain command groups (one line per domain) ---
    from stetgate.registry.cli import clients

    main.add_command(clients)
    from stetgate.demo.psu_cli import psu

    main.add_command(psu)
    from stetgate.demo.cli import demo, demo_bank

    main.add_command(demo)
    main.add_command(demo_bank)
    from stetgate.sca_http.cli import demo_sca

    main.add_command(demo_sca)
    from stetgate.statistics.cli import report

    main.add_command(report)


_register_groups()


def run() -> None:  # pragma: no cover - console script shim
    main(prog_name="stetgate")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
