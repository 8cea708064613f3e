"""Database access for operator commands (``stetgate clients …``, ``stetgate psu …``)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import click
from sqlalchemy import Engine

from stetgate.settings import Settings
from stetgate.store.db import DatabaseNotMigrated, make_engine, require_migrated


@contextmanager
def operator_database(settings: Settings) -> Iterator[Engine]:
    """A one-connection engine on the instance's migrated database, disposed afterwards; an
    unmigrated database stops the command with the message naming ``stetgate db upgrade``."""
    engine = make_engine(settings.resolved_database_url, 1)
    try:
        try:
            require_migrated(engine)
        except DatabaseNotMigrated as exc:
            raise click.ClickException(str(exc)) from None
        yield engine
    finally:
        engine.dispose()
