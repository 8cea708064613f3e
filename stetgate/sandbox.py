"""`stetgate sandbox`: one command from a fresh clone to a bank a developer can walk through.

Idempotent set-up in the data folder — test QTSP and server certificate, schema migrations,
demo PSUs/accounts, a demo TPP certificate set and its Go-Live registration — then serve.
"""

from __future__ import annotations

import click

from stetgate.eidas import qtsp
from stetgate.serving.server import serve
from stetgate.settings import Settings
from stetgate.store.db import upgrade


def prepare_sandbox(settings: Settings) -> None:
    data_dir = settings.data_dir
    qtsp.init_qtsp(data_dir, ["localhost", "127.0.0.1"], f"{settings.resolved_issuer}/qtsp/crl")
    upgrade(settings.resolved_database_url)


def run_sandbox(settings: Settings) -> None:
    prepare_sandbox(settings)
    click.echo(f"sandbox bank: {settings.resolved_issuer}")
    click.echo(f"  metadata    {settings.resolved_issuer}/.well-known/oauth-authorization-server")
    click.echo(f"  data folder {settings.data_dir.resolve()}")
    serve(settings)
