"""What every ``stetgate`` sub-command reads from the root command: the instance's settings
(``--data-dir``, ``--config``, environment), so each command group stays a plain Click group."""

from __future__ import annotations

from typing import Any, Protocol

import click

from stetgate.settings import Settings


class SettingsSource(Protocol):
    def settings(self, **overrides: Any) -> Settings: ...


def settings_of(ctx: click.Context) -> Settings:
    """The root command's settings."""
    source: SettingsSource = ctx.find_root().obj
    return source.settings()
