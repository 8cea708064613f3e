"""`stetgate sandbox`: one command from a fresh clone to a bank and a TPP a developer can walk.

Idempotent set-up in the data folder — test QTSP and server certificate, schema migrations,
demo PSUs and accounts, a demo TPP's QWAC/QSealC and its Go-Live registration — then the bank
(https://localhost:8443, `stetgate serve`) and the demo TPP (https://localhost:8444, `stetgate
tpp serve-demo`) as child processes of this one, under `stetgate.serving.supervisor`: SIGINT or
SIGTERM stops both (status 0), a child's death stops the other (status 1), and neither outlives
this process. Logs in DATA_DIR/logs.

``--delegated-login`` adds a fourth child: the demo OpenID Provider (node ``oidc-provider``,
`stetgate.demo.openid_provider`, on http://127.0.0.1:8446), installed with ``npm ci`` from the
committed lockfile into DATA_DIR/oidc-op, and configures the bank's ``oidc_*`` settings to it,
so the PSU signs in at "the bank's identity provider" instead of stetgate's password and SCA
pages (docs/operations.md#delegated-psu-login-openid-connect). The client secret between the
two is drawn afresh at each start and given to both through their environment; the OP's
signing key is generated at its start.
"""

from __future__ import annotations

import json
import secrets
import shlex
import sys
from dataclasses import dataclass
from pathlib import Path

import click

from stetgate.clock import SystemClock
from stetgate.demo import openid_provider
from stetgate.eidas import parse_certificate, qtsp
from stetgate.oauth.clients import (
    add_redirect_uris,
    get_client,
    golive_client,
    insert_client,
    stored_certificate,
)
from stetgate.oidc_login.pages import CALLBACK_PATH
from stetgate.serving.server import settings_environment
from stetgate.serving.supervisor import Child, Supervisor
from stetgate.settings import Settings
from stetgate.store.db import make_engine, upgrade

DEMO_TPP_ORG_ID = "PSDFR-ACPR-DEMO01"
DEMO_TPP_NAME = "Demo Budget App"
DEMO_TPP_PORT = 8444
CORE_BANKING_PORT = 8445
OP_PORT = 8446
OP_CLIENT_ID = "stetgate"


@dataclass(frozen=True)
class DelegatedLogin:
    """The sandbox's demo OP: where it listens, and the node that runs it."""

    port: int = OP_PORT
    node: str = "node"
    client_secret: str = ""

    @classmethod
    def on_port(cls, port: int = OP_PORT) -> DelegatedLogin:
        """Raises `OpUnavailable` (node or npm missing) before anything is set up."""
        node, _ = openid_provider.node_and_npm()
        return cls(port, node, secrets.token_urlsafe(32))

    def config(self, settings: Settings) -> openid_provider.OpConfig:
        return openid_provider.OpConfig(
            self.port,
            settings.resolved_issuer + CALLBACK_PATH,
            OP_CLIENT_ID,
            client_secret=self.client_secret,
        )

    def folder(self, settings: Settings) -> Path:
        return settings.data_dir / "oidc-op"


def core_banking_url(port: int = CORE_BANKING_PORT) -> str:
    return f"https://localhost:{port}"


def demo_tpp_url(port: int = DEMO_TPP_PORT) -> str:
    return f"https://localhost:{port}"


CLI_REDIRECT_URI = "https://127.0.0.1/callback"
"""The loopback redirect of `stetgate tpp authorize --listen` (any port, RFC 8252 §7.3)."""


def demo_tpp_redirect_uris(tpp_port: int = DEMO_TPP_PORT) -> list[str]:
    """The demo web app's callback, and the TPP kit's local listener for terminal flows."""
    return [f"{demo_tpp_url(tpp_port)}/callback", CLI_REDIRECT_URI]


def prepare_sandbox(settings: Settings, tpp_port: int = DEMO_TPP_PORT) -> Path:
    """Set everything up (idempotently); returns the demo TPP's certificate folder."""
    from stetgate.demo.seed import seed_demo_bank

    data_dir = settings.data_dir
    qtsp.init_qtsp(data_dir, ["localhost", "127.0.0.1"], f"{settings.resolved_issuer}/qtsp/crl")
    upgrade(settings.resolved_database_url)
    if not (data_dir / "demo-psus.json").exists():
        seed_demo_bank(settings, now=SystemClock().now())
    tpp_dir = data_dir / "demo-tpp"
    if not (tpp_dir / "qsealc.key").exists():
        qtsp.issue_tpp(
            data_dir,
            DEMO_TPP_ORG_ID,
            DEMO_TPP_NAME,
            ["AISP", "CBPII"],
            tpp_dir,
            hostname="localhost",
        )
    engine = make_engine(settings.resolved_database_url, 1)
    try:
        with engine.begin() as conn:
            now = SystemClock().now()
            if get_client(conn, DEMO_TPP_ORG_ID) is None:
                qwac = parse_certificate((tpp_dir / "qwac.pem").read_bytes())
                qsealc = parse_certificate((tpp_dir / "qsealc.pem").read_bytes())
                insert_client(
                    conn,
                    golive_client(
                        DEMO_TPP_ORG_ID,
                        DEMO_TPP_NAME,
                        demo_tpp_redirect_uris(tpp_port),
                        now,
                        certificates=[
                            stored_certificate("qwac", qwac),
                            stored_certificate("qsealc", qsealc),
                        ],
                    ),
                )
            else:
                add_redirect_uris(conn, DEMO_TPP_ORG_ID, demo_tpp_redirect_uris(tpp_port), now)
    finally:
        engine.dispose()
    return tpp_dir


def sandbox_children(
    settings: Settings,
    tpp_port: int = DEMO_TPP_PORT,
    core_banking_port: int = CORE_BANKING_PORT,
    delegated: DelegatedLogin | None = None,
) -> list[Child]:
    """The sandbox's services, each a `stetgate` command of its own, in the deployment shape:
    the gateway reads the demo bank's ledger over HTTP from the core-banking service
    (`HttpBank`, contract ``/core-banking/v1``), and the demo TPP calls the gateway. With
    `delegated`, the demo OP first and the gateway's ``oidc_*`` settings pointing at it."""
    data_dir = settings.data_dir
    oidc: dict[str, object] = {}
    children: list[Child] = []
    if delegated is not None:
        op = delegated.config(settings)
        oidc = {
            "oidc_issuer": op.issuer,
            "oidc_client_id": op.client_id,
            "oidc_client_secret": op.client_secret,
            "oidc_acr_values": [openid_provider.STRONG_ACR],
        }
        children.append(
            Child(
                "openid-provider",
                op.argv(delegated.node, delegated.folder(settings)),
                url=op.issuer,
                ready_url=op.discovery_url,
                port=op.port,
                host="127.0.0.1",  # server.js listens on the loopback only
                env=op.environment(),
            )
        )
    cli = [sys.executable, "-m", "stetgate.cli", "--data-dir", str(data_dir)]
    local = f"https://localhost:{settings.port}"  # the test certificate names localhost
    tls = ["--tls-cert", str(settings.server_cert_path), "--tls-key", str(settings.server_key_path)]
    bank_service = core_banking_url(core_banking_port)
    gateway = settings.model_copy(
        update={
            "bank_url": bank_service,
            # The demo service is on the loopback, over TLS with the sandbox's test CA; a
            # bank's own is authenticated with mTLS or client credentials.
            "bank_auth": "none",
            "bank_ca_file": data_dir / "ca.pem",
            # The test QTSP's distribution point is the gateway's own /qtsp/crl, over TLS with
            # the same test CA (docs/operations.md#revocation-data).
            "revocation_fetch_ca_file": settings.revocation_fetch_ca_file or data_dir / "ca.pem",
            # A sandbox is a developer's: no metrics listener and text logs (DATA_DIR/logs)
            # unless asked for.
            "metrics_port": (
                settings.metrics_port if "metrics_port" in settings.model_fields_set else 0
            ),
            "log_format": (
                settings.log_format if "log_format" in settings.model_fields_set else "text"
            ),
            # Inside the supervisor's grace before SIGKILL (serving/supervisor.py).
            "graceful_shutdown_seconds": min(settings.graceful_shutdown_seconds, 3),
            **oidc,
        }
    )
    return [
        *children,
        Child(
            "core-banking",
            [
                *cli,
                *("demo-bank", "serve", "--host", settings.host),
                *("--port", str(core_banking_port), *tls),
            ],
            url=bank_service,
            ready_url=f"{bank_service}/core-banking/v1/health",
            port=core_banking_port,
            host=settings.host,
        ),
        Child(
            "bank",
            [*cli, "serve"],
            url=settings.resolved_issuer,
            ready_url=f"{local}/health/live",
            port=settings.port,
            host=settings.host,
            env=settings_environment(gateway),
        ),
        Child(
            "demo-tpp",
            [
                *cli,
                *("tpp", "--bank", settings.resolved_issuer, "--client-id", DEMO_TPP_ORG_ID),
                *("--certs", str(data_dir / "demo-tpp"), "--ca", str(data_dir / "ca.pem")),
                *("serve-demo", "--host", settings.host, "--port", str(tpp_port), *tls),
                *("--name", DEMO_TPP_NAME),
            ],
            url=demo_tpp_url(tpp_port),
            ready_url=f"{demo_tpp_url(tpp_port)}/",
            port=tpp_port,
            host=settings.host,
        ),
    ]


def run_sandbox(
    settings: Settings,
    tpp_port: int = DEMO_TPP_PORT,
    core_banking_port: int = CORE_BANKING_PORT,
    delegated: DelegatedLogin | None = None,
) -> int:
    """Set up, then run the services until a stop signal (status 0) or a death (status 1).

    Raises `PortInUse` before any set-up work when a port is taken, and `OpUnavailable` when
    the demo OP cannot be installed (``npm ci``)."""
    supervisor = Supervisor(
        sandbox_children(settings, tpp_port, core_banking_port, delegated),
        log_dir=settings.data_dir / "logs",
        ca_file=settings.data_dir / "ca.pem",
        label="sandbox",
        on_ready=lambda: _print_guide(settings, tpp_port, core_banking_port, delegated),
    )
    supervisor.check_ports()
    prepare_sandbox(settings, tpp_port)
    if delegated is not None:
        folder = delegated.folder(settings)
        supervisor.say(f"installing the demo OpenID Provider in {folder} (npm ci, once)")
        openid_provider.install(folder)
    supervisor.say(f"starting {', '.join(c.name for c in supervisor.children)}")
    return supervisor.run()


def _print_guide(
    settings: Settings,
    tpp_port: int,
    core_banking_port: int,
    delegated: DelegatedLogin | None = None,
) -> None:
    psus_file = settings.data_dir / "demo-psus.json"
    first = json.loads(psus_file.read_text())[0] if psus_file.exists() else None
    issuer = settings.resolved_issuer
    tpp_dir = settings.data_dir / "demo-tpp"
    click.echo(f"""
stetgate sandbox
  bank (ASPSP)   {issuer}   metadata: {issuer}/.well-known/oauth-authorization-server
  demo TPP       {demo_tpp_url(tpp_port)}   <- open this in your browser
  PSU's phone    {issuer}/demo/phone   (one-time codes, app approvals)
  core banking   {core_banking_url(core_banking_port)}/core-banking/v1   (read by the bank)
  demo PSUs      {psus_file}""")
    if delegated is not None:
        op = delegated.config(settings).issuer
        click.echo(
            f"  bank's OP      {op}   delegated PSU login (node oidc-provider): the bank sends\n"
            "                 the PSU there; its form takes a PSU id and asks no password — it\n"
            "                 stands for the bank's own strong authentication"
        )
        if first:
            click.echo(f"  e.g. PSU id {first['id']!r} at the OP")
    elif first:
        click.echo(f"  e.g. PSU id {first['id']!r}, password {first['password']!r}")
    ca = settings.data_dir / "ca.pem"
    click.echo(f"  test CA        {ca} (import it in your browser, or accept the warning)")
    click.echo(f"  logs           {settings.data_dir / 'logs'}")
    click.echo(_cli_hints(issuer, tpp_dir.resolve(), ca.resolve()))


def _stetgate_command() -> str:
    """How to run `stetgate` from any shell: the script next to this Python (the clone's
    .venv/bin is not on PATH), else the module."""
    script = Path(sys.executable).with_name("stetgate")
    if script.exists():
        return shlex.quote(str(script))
    return f"{shlex.quote(sys.executable)} -m stetgate.cli"


def _cli_hints(issuer: str, tpp_dir: Path, ca: Path) -> str:
    """The TPP developer's first terminal session, as printed (docs/tpp-guide.md explains it;
    tests/e2e/test_tpp_journey.py runs it as printed)."""
    env = " ".join(
        f"{name}={shlex.quote(value)}"
        for name, value in (
            ("STETGATE_TPP_BANK", issuer),
            ("STETGATE_TPP_CLIENT_ID", DEMO_TPP_ORG_ID),
            ("STETGATE_TPP_CERTS", str(tpp_dir)),
            ("STETGATE_TPP_CA", str(ca)),
        )
    )
    tpp = f"{_stetgate_command()} tpp"
    return f"""
TPP from a terminal (docs/tpp-guide.md), as the demo TPP:
  export {env}
  {tpp} authorize --listen                  # open the printed URL, sign in as a demo PSU
  {tpp} consent --all-accounts --psu-ip 192.0.2.10      # STET PUT /consents
  {tpp} api GET accounts --psu-ip 192.0.2.10            # accounts with balances
"""
