"""`stetgate tpp doctor`: run the checks from a terminal and write the reports.

The bank, client, certificates and CA come from the ``stetgate tpp`` group options (``--bank``,
``--client-id``, ``--certs``, ``--ca``, ``--key-id``), as for every TPP command. The PSU is the
robot (``--psu-robot USER:PASSWORD``, on stetgate-style PSU pages; one-time codes asked on the
terminal) or a human in a browser (``--browser``, the callback caught on the loopback).
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import click

from stetgate.tpp.doctor.expectations import DoctorExpectations, RefreshRotation

if TYPE_CHECKING:
    from stetgate.tpp.bank_profile import BankProfile
    from stetgate.tpp.client import TppCredentials
    from stetgate.tpp.doctor.journeys import PsuJourney
    from stetgate.tpp.doctor.model import DoctorReport

LOOPBACK_REDIRECT = "https://127.0.0.1/callback"


class TppOptions(Protocol):
    """What the ``stetgate tpp`` group hands its commands (`stetgate.tpp.cli`)."""

    ca: Path | None
    state_dir: Path

    @property
    def client_id(self) -> str: ...

    def bank(self, *, known: set[str] | None = None) -> str: ...

    def credentials(self) -> TppCredentials: ...

    def profile(self) -> BankProfile: ...


@click.command()
@click.option(
    "--psu-robot",
    metavar="USER:PASSWORD",
    default=None,
    help="Walk the PSU pages as this PSU (stetgate's documented form fields); the one-time "
    "code of each of its three journeys is asked here (a new code each time: a bank accepts "
    "a code once).",
)
@click.option("--psu-method", default=None, help="SCA method the robot picks (default: first).")
@click.option(
    "--browser",
    is_flag=True,
    help="A human walks the PSU pages in a browser; the callback is caught on the loopback.",
)
@click.option(
    "--redirect-uri",
    default=None,
    help="A redirect URI registered for the client (robot: it is never fetched; browser: a "
    f"loopback URI, default {LOOPBACK_REDIRECT}).",
)
@click.option(
    "--refresh-rotation",
    type=click.Choice([r.value for r in RefreshRotation]),
    default=None,
    help="What the bank documents for the refresh token on refresh (default: the bank "
    "profile's tokens.refresh_rotation).",
)
@click.option(
    "--unattended-limit",
    type=int,
    default=None,
    help="Calls without PSU-IP-Address a day; 0: do not probe (the probe uses up the test "
    "PSU's allowance for the day). Default: the bank profile's, else 4.",
)
@click.option("--timeout", type=float, default=600.0, show_default=True, help="Browser wait (s).")
@click.option("--json", "json_out", type=click.Path(path_type=Path, dir_okay=False))
@click.option("--html", "html_out", type=click.Path(path_type=Path, dir_okay=False))
@click.pass_obj
def doctor(
    opts: TppOptions,
    psu_robot: str | None,
    psu_method: str | None,
    browser: bool,
    redirect_uri: str | None,
    refresh_rotation: str | None,
    unattended_limit: int | None,
    timeout: float,
    json_out: Path | None,
    html_out: Path | None,
) -> None:
    """Check the bank's STET v1.4.2 conformance as this TPP: discovery, mTLS token endpoint,
    PSU journey and callback, code, refresh, revocation, every AISP/CBPII endpoint signed and
    schema-checked. Exit status 1 when a check fails."""
    # Imported here: every `stetgate` command builds this group, few run the doctor.
    import httpx

    from stetgate.clock import SystemClock
    from stetgate.tpp.callback_listener import local_tls
    from stetgate.tpp.doctor.context import DoctorContext
    from stetgate.tpp.doctor.journeys import BrowserJourney, RobotJourney
    from stetgate.tpp.doctor.recording import mtls_context
    from stetgate.tpp.doctor.reports import report_html, report_json
    from stetgate.tpp.doctor.runner import run_doctor
    from stetgate.tpp.psu_robot import PsuRobot

    if (psu_robot is None) == (not browser):
        raise click.UsageError("choose the PSU: --psu-robot USER:PASSWORD or --browser")
    bank = opts.bank(known=set())
    profile = opts.profile()
    expectations = DoctorExpectations.from_profile(profile)
    if refresh_rotation is not None:
        expectations = replace(expectations, refresh_rotation=RefreshRotation(refresh_rotation))
    if unattended_limit is not None:
        expectations = replace(expectations, unattended_limit=unattended_limit or None)
    with httpx.Client(verify=mtls_context(None, opts.ca), timeout=15.0) as psu_browser:
        journey: PsuJourney
        if psu_robot is not None:
            if redirect_uri is None:
                raise click.UsageError("--psu-robot needs --redirect-uri (registered, not fetched)")
            user, _, password = psu_robot.partition(":")
            robot = PsuRobot(
                user,
                password,
                otp=lambda: str(click.prompt(f"one-time code of {user}", err=True)),
                method=psu_method,
            )
            journey = RobotJourney(robot, psu_browser, redirect_uri)
        else:
            journey = BrowserJourney(
                local_tls(opts.state_dir),
                redirect_uri or LOOPBACK_REDIRECT,
                lambda url: click.echo(f"open in the PSU's browser:\n{url}", err=True),
                timeout,
            )
        ctx = DoctorContext.open(
            bank,
            opts.credentials(),
            opts.client_id,
            journey,
            clock=SystemClock(),
            ca_file=opts.ca,
            expectations=expectations,
            profile=profile,
        )
        try:
            report = run_doctor(ctx)
        finally:
            ctx.close()
    _print(report)
    if json_out is not None:
        json_out.write_text(report_json(report), encoding="utf-8")
    if html_out is not None:
        html_out.write_text(report_html(report), encoding="utf-8")
    if report.failed:
        raise SystemExit(1)


def _print(report: DoctorReport) -> None:
    from stetgate.tpp.doctor.model import Outcome

    colours = {Outcome.PASS: "green", Outcome.FAIL: "red", Outcome.DIFFERS: "yellow"}
    for result in report.results:
        outcome = click.style(f"{result.outcome.value:7}", fg=colours.get(result.outcome))
        click.echo(f"{outcome} {result.check_id}: {result.detail}  [{result.section}]")
    summary = ", ".join(f"{n} {o}" for o, n in report.counts().items() if n)
    click.echo(f"{report.bank_url}: {summary}")
