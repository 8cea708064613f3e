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
