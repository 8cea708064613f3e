"""`stetgate tpp tokens …`: look after a lifecycle token store from a terminal.

``--store`` (env ``STETGATE_TPP_TOKEN_STORE``) is a file path (default: ``tokens.sealed.json``
in the kit's state folder, ``tpp --state-dir``), a ``postgresql://`` or a ``redis://`` URL
(`store_url`). The keyring comes from ``--keys-file`` (owner-only) or
``STETGATE_TPP_TOKEN_KEYS`` (`sealing`). No command prints a token.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import click

from stetgate.clock import SystemClock
from stetgate.tpp.lifecycle.limits import BankLimits
from stetgate.tpp.lifecycle.postgres_store import DEFAULT_TABLE
from stetgate.tpp.lifecycle.redis_store import DEFAULT_PREFIX
from stetgate.tpp.lifecycle.report import sca_report
from stetgate.tpp.lifecycle.sealing import Keyring, TokenSealer, new_key_line
from stetgate.tpp.lifecycle.store import EncryptedTokens
from stetgate.tpp.lifecycle.store_url import (
    DEFAULT_FILE_NAME,
    default_store_location,
    open_token_store,
)


class _StoreOptions:
    def __init__(self, store: str | None, table: str, prefix: str, keys_file: Path | None) -> None:
        self.location = store or default_store_location()
        self.table = table
        self.prefix = prefix
        self.keys_file = keys_file

    def tokens(self) -> EncryptedTokens:
        try:
            keyring = (
                Keyring.from_file(self.keys_file) if self.keys_file else Keyring.from_environment()
            )
            store = open_token_store(self.location, table=self.table, prefix=self.prefix)
        except (LookupError, ValueError, PermissionError) as exc:
            raise click.ClickException(f"{exc} (pass --keys-file or set the variable)") from None
        return EncryptedTokens(store, TokenSealer(keyring))


@click.group()
@click.option(
    "--store",
    envvar="STETGATE_TPP_TOKEN_STORE",
    default=None,
    help="File path, postgresql:// or redis:// URL (default: the state folder's "
    "tokens.sealed.json).",
)
@click.option("--table", default=DEFAULT_TABLE, show_default=True, help="PostgreSQL table.")
@click.option("--prefix", default=DEFAULT_PREFIX, show_default=True, help="Redis key prefix.")
@click.option(
    "--keys-file",
    type=click.Path(path_type=Path, dir_okay=False, exists=True),
    default=None,
    help="Keyring file (default: $STETGATE_TPP_TOKEN_KEYS).",
)
@click.pass_context
def tokens(
    ctx: click.Context, store: str | None, table: str, prefix: str, keys_file: Path | None
) -> None:
    """The lifecycle's encrypted token store (docs/tpp-guide.md, "Keeping tokens alive")."""
    state_dir = getattr(ctx.parent.obj if ctx.parent else None, "state_dir", None)
    if store is None and isinstance(state_dir, Path):
        store = str(state_dir / DEFAULT_FILE_NAME)
    ctx.obj = _StoreOptions(store, table, prefix, keys_file)


@tokens.command()
@click.argument("key_id")
def keygen(key_id: str) -> None:
    """Print a keyring line with a new AES-256 key (put it first to seal with it)."""
    try:
        click.echo(new_key_line(key_id))
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None


def _bank_days(values: tuple[str, ...]) -> dict[str, BankLimits]:
    limits: dict[str, BankLimits] = {}
    for value in values:
        bank, sep, days = value.rpartition("=")
        if not sep or not days.isdigit():
            raise click.BadParameter(f"{value!r}: expected BANK_URL=DAYS")
        limits[bank] = BankLimits(sca_validity_days=int(days))
    return limits


@tokens.command()
@click.option(
    "--sca-days",
    "sca_days",
    multiple=True,
    metavar="BANK=DAYS",
    help="A bank's SCA window when not 90 days (repeatable).",
)
@click.option("--within", type=int, default=None, help="Only PSUs with at most this many days.")
@click.pass_obj
def report(opts: _StoreOptions, sca_days: tuple[str, ...], within: int | None) -> None:
    """Days left before each PSU must authenticate again, soonest first."""
    now: datetime = SystemClock().now()
    for status in sca_report(opts.tokens(), _bank_days(sca_days), now):
        if within is not None and status.days_left > within:
            continue
        state = f"ended: {status.ended}" if status.ended else f"{status.days_left} days left"
        click.echo(f"{status.psu_key}\t{status.bank}\t{state}")


@tokens.command()
@click.pass_obj
def reseal(opts: _StoreOptions) -> None:
    """Re-encrypt every entry under the keyring's first key (after adding a key)."""
    click.echo(f"{opts.tokens().reseal_all()} entries resealed")


@tokens.command()
@click.option("--yes", is_flag=True, required=True, help="Confirm the deletion.")
@click.pass_obj
def purge(opts: _StoreOptions, yes: bool) -> None:
    """Delete the entries whose authorization is over (the PSU must authenticate again)."""
    vault = opts.tokens()
    gone = 0
    for key in vault.stored_keys():
        stored = vault.get(key)
        if stored is not None and stored.record.ended is not None and vault.delete(key):
            gone += 1
    click.echo(f"{gone} ended entries deleted")
