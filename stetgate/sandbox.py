"""`stetgate sandbox`: one command from a fresh clone to a bank and a TPP a developer can walk.

Idempotent set-up in the data folder — test QTSP and server certificate, schema migrations,
demo PSUs and accounts, a demo TPP's QWAC/QSealC and its Go-Live registration — then the demo
TPP (https://localhost:8444) in a child process and the bank (https://localhost:8443) in this one.
"""

from __future__ import annotations

import json
import multiprocessing
import ssl
from pathlib import Path

import click
import uvicorn

from stetgate.clock import SystemClock
from stetgate.eidas import parse_certificate, qtsp
from stetgate.oauth.clients import get_client, golive_client, insert_client, stored_certificate
from stetgate.serving.server import serve
from stetgate.settings import Settings
from stetgate.store.db import make_engine, upgrade

DEMO_TPP_ORG_ID = "PSDFR-ACPR-DEMO01"
DEMO_TPP_NAME = "Demo Budget App"
DEMO_TPP_PORT = 8444


def demo_tpp_url(port: int = DEMO_TPP_PORT) -> str:
    return f"https://localhost:{port}"


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
            if get_client(conn, DEMO_TPP_ORG_ID) is None:
                now = SystemClock().now()
                qwac = parse_certificate((tpp_dir / "qwac.pem").read_bytes())
                qsealc = parse_certificate((tpp_dir / "qsealc.pem").read_bytes())
                insert_client(
                    conn,
                    golive_client(
                        DEMO_TPP_ORG_ID,
                        DEMO_TPP_NAME,
                        [f"{demo_tpp_url(tpp_port)}/callback"],
                        now,
                        certificates=[
                            stored_certificate("qwac", qwac),
                            stored_certificate("qsealc", qsealc),
                        ],
                    ),
                )
    finally:
        engine.dispose()
    return tpp_dir


def _run_demo_tpp(settings: Settings, tpp_dir: Path, port: int) -> None:
    from stetgate.tpp.client import TppCredentials
    from stetgate.tpp.demo_app import DemoTppConfig, create_demo_tpp_app

    app = create_demo_tpp_app(
        DemoTppConfig(
            bank_url=settings.resolved_issuer,
            client_id=DEMO_TPP_ORG_ID,
            credentials=TppCredentials.from_directory(tpp_dir),
            public_url=demo_tpp_url(port),
            ca_file=settings.data_dir / "ca.pem",
            name=DEMO_TPP_NAME,
        )
    )
    uvicorn.run(
        app,
        host=settings.host,
        port=port,
        log_level="warning",
        ssl_certfile=str(settings.server_cert_path),
        ssl_keyfile=str(settings.server_key_path),
        ssl_cert_reqs=ssl.CERT_NONE,
    )


def run_sandbox(settings: Settings, tpp_port: int = DEMO_TPP_PORT) -> None:
    tpp_dir = prepare_sandbox(settings, tpp_port)
    demo = multiprocessing.get_context("spawn").Process(
        target=_run_demo_tpp, args=(settings, tpp_dir, tpp_port), daemon=True
    )
    demo.start()
    psus_file = settings.data_dir / "demo-psus.json"
    first = json.loads(psus_file.read_text())[0] if psus_file.exists() else None
    issuer = settings.resolved_issuer
    click.echo(f"""
stetgate sandbox
  bank (ASPSP)   {issuer}   metadata: {issuer}/.well-known/oauth-authorization-server
  demo TPP       {demo_tpp_url(tpp_port)}   <- open this in your browser
  PSU's phone    {issuer}/demo/phone   (one-time codes, app approvals)
  demo PSUs      {psus_file}""")
    if first:
        click.echo(f"  e.g. PSU id {first['id']!r}, password {first['password']!r}")
    ca = settings.data_dir / "ca.pem"
    click.echo(f"  test CA        {ca} (import it in your browser, or accept the warning)")
    click.echo(
        f"  TPP CLI        stetgate tpp --client-id {DEMO_TPP_ORG_ID} --certs {tpp_dir} "
        f"--ca {ca} authorize-url --redirect-uri {demo_tpp_url(tpp_port)}/callback"
    )
    try:
        serve(settings)
    finally:
        demo.terminate()
