"""`stetgate psu …`: the demo bank's customers (PSUs) and, in the sandbox, their phone.

``add`` prints the TOTP secret it set (generated when not given) so it can go into an
authenticator app; ``totp`` prints the current code and ``approve``/``reject`` answer a
decoupled challenge — the CLI twins of the demo phone page. With ``sca_http_url`` set, the
challenges are the bank's SCA service's: ``challenges``/``approve``/``reject`` act through the
demo SCA service there (`stetgate.sca_http.demo_app`), which then answers stetgate.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import TypeVar
from urllib.parse import quote

import click
from sqlalchemy import Engine

from stetgate.cli_context import settings_of
from stetgate.clock import SystemClock
from stetgate.demo.psu_directory import DatabasePsuDirectory, InvalidPsu
from stetgate.demo.totp import InvalidTotpSecret, seconds_left_in_step
from stetgate.keys import InstanceKeys, load_master_key
from stetgate.psu.decoupled import PendingChallenge, answer_challenge, pending_for
from stetgate.sca_http.demo_app import DemoApp, DemoAppError
from stetgate.settings import Settings
from stetgate.store.audit import record_event
from stetgate.store.audit_events import PSU_ADDED, PSU_UNBLOCKED
from stetgate.store.operator import operator_database

T = TypeVar("T")


@contextmanager
def _directory(settings: Settings) -> Iterator[tuple[DatabasePsuDirectory, Engine]]:
    with operator_database(settings) as engine:
        keys = InstanceKeys.from_master(load_master_key(settings.secret_key, settings.data_dir))
        yield (
            DatabasePsuDirectory(
                engine,
                keys.totp_fernet,
                max_failed_attempts=settings.max_failed_auth_attempts,
                block_seconds=settings.psu_block_seconds,
            ),
            engine,
        )


def _now() -> datetime:
    """A command line acts now: the system clock (the one the bank's servers use)."""
    return SystemClock().now()


@click.group()
def psu() -> None:
    """The demo bank's customers (PSUs): add, list, unblock; sandbox phone: totp, approve."""


@psu.command("add")
@click.option("--id", "psu_id", required=True, help="PSU id (what the PSU types to sign in).")
@click.option("--password", required=True, help="Password (stored as an argon2id hash).")
@click.option("--name", default=None, help="Display name (default: the id).")
@click.option(
    "--totp-secret", default=None, help="Base32 TOTP secret (RFC 6238); generated when not given."
)
@click.option(
    "--app/--no-app",
    default=True,
    show_default=True,
    help="Enrol the decoupled 'confirm in the banking app' SCA method.",
)
@click.pass_context
def add(
    ctx: click.Context,
    psu_id: str,
    password: str,
    name: str | None,
    totp_secret: str | None,
    app: bool,
) -> None:
    """Create a PSU with a password, a TOTP secret and optionally the banking-app method."""
    with _directory(settings_of(ctx)) as (directory, engine):
        now = _now()
        try:
            secret = directory.add_psu(
                psu_id, password, display_name=name, totp_secret=totp_secret, app_sca=app, now=now
            )
        except (InvalidPsu, InvalidTotpSecret) as exc:
            raise click.ClickException(str(exc)) from None
        with engine.begin() as conn:
            record_event(
                conn, now, PSU_ADDED, psu_id=psu_id, detail={"app_sca": app, "source": "cli"}
            )
    click.echo(f"PSU {psu_id} added")
    click.echo(f"TOTP secret (base32): {secret}")
    click.echo(
        f"otpauth URI: otpauth://totp/stetgate:{quote(psu_id)}?secret={secret}"
        "&issuer=stetgate&algorithm=SHA1&digits=6&period=30"
    )


@psu.command("list")
@click.pass_context
def list_psus(ctx: click.Context) -> None:
    """List PSUs with their SCA methods and block state."""
    with _directory(settings_of(ctx)) as (directory, _):
        now = _now()
        rows = directory.list_psus()
    if not rows:
        click.echo("no PSU (add one with `stetgate psu add`)")
        return
    for item in rows:
        methods = ",".join(m for m, on in (("totp", item.has_totp), ("app", item.app_sca)) if on)
        state = (
            f"blocked until {item.blocked_until.isoformat(timespec='seconds')}"
            if item.blocked_at(now) and item.blocked_until
            else f"active ({item.failed_attempts} failed)"
        )
        click.echo(f"{item.psu_id}\t{item.display_name}\tsca={methods or '-'}\t{state}")


@psu.command("unblock")
@click.argument("psu_id")
@click.pass_context
def unblock(ctx: click.Context, psu_id: str) -> None:
    """Lift a block caused by failed attempts and restart the count."""
    with _directory(settings_of(ctx)) as (directory, engine):
        if not directory.unblock(psu_id):
            raise click.ClickException(f"no PSU {psu_id!r}")
        with engine.begin() as conn:
            record_event(conn, _now(), PSU_UNBLOCKED, psu_id=psu_id, detail={"source": "cli"})
    click.echo(f"PSU {psu_id} unblocked")


@psu.command("totp")
@click.argument("psu_id")
@click.pass_context
def totp(ctx: click.Context, psu_id: str) -> None:
    """Print the PSU's current one-time code (sandbox helper: what its phone shows)."""
    with _directory(settings_of(ctx)) as (directory, _):
        now = _now()
        code = directory.current_totp(psu_id, now)
    if code is None:
        raise click.ClickException(f"no PSU {psu_id!r} with a TOTP secret")
    click.echo(code)
    click.echo(f"valid for {seconds_left_in_step(now)} more seconds", err=True)


@psu.command("challenges")
@click.argument("psu_id")
@click.pass_context
def challenges(ctx: click.Context, psu_id: str) -> None:
    """List the PSU's pending 'confirm in the banking app' challenges."""
    settings = settings_of(ctx)
    pending: list[PendingChallenge]
    if settings.sca_http_url is not None:
        pending = _demo_app_call(lambda app: app.pending(psu_id), settings.sca_http_url)
    else:
        with _directory(settings) as (_, engine):
            pending = pending_for(engine, settings, psu_id, _now())
    if not pending:
        click.echo("no pending challenge")
    for item in pending:
        click.echo(f"{item.reference}\t{item.client_name or 'sign-in (connected apps)'}")


def _demo_app_call(call: Callable[[DemoApp], T], url: str) -> T:
    try:
        return call(DemoApp(url))
    except DemoAppError as exc:
        raise click.ClickException(str(exc)) from None


def _answer(ctx: click.Context, challenge_id: str, approve: bool) -> None:
    settings = settings_of(ctx)
    if settings.sca_http_url is not None:
        done = _demo_app_call(
            lambda app: app.answer(challenge_id, approve=approve), settings.sca_http_url
        )
    else:
        with _directory(settings) as (_, engine):
            done = answer_challenge(engine, settings, challenge_id, approve=approve, now=_now())
    if not done:
        raise click.ClickException(f"no pending challenge {challenge_id!r}")
    click.echo(f"challenge {challenge_id} {'approved' if approve else 'rejected'}")


@psu.command("approve")
@click.argument("challenge_id")
@click.pass_context
def approve(ctx: click.Context, challenge_id: str) -> None:
    """Approve a decoupled SCA challenge, as the PSU's banking app would."""
    _answer(ctx, challenge_id, True)


@psu.command("reject")
@click.argument("challenge_id")
@click.pass_context
def reject(ctx: click.Context, challenge_id: str) -> None:
    """Reject a decoupled SCA challenge, as the PSU's banking app would."""
    _answer(ctx, challenge_id, False)
