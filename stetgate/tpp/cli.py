"""`stetgate tpp …`: the TPP side from a terminal, against any STET v1.4.2 bank.

Tokens are kept in a 0600 JSON file (``--tokens``, default ``DATA_DIR/tpp-tokens.json``) keyed
by bank, client and scope, so `tpp refresh` and `tpp api` keep an authorization alive for its
90 days (step 8 of docs/decisions.md#the-cinematic) and say clearly when a new SCA is needed.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import TypeVar

import click

from stetgate.clock import SystemClock
from stetgate.tpp.client import (
    AuthorizationRequest,
    BankError,
    StetBankClient,
    TokenFile,
    TokenSet,
    TppCredentials,
)

T = TypeVar("T")


class _TppOptions:
    def __init__(
        self,
        bank: str,
        client_id: str,
        certs: Path,
        ca: Path | None,
        tokens: Path,
        key_id: str | None,
    ) -> None:
        self.bank = bank.rstrip("/")
        self.client_id = client_id
        self.certs = certs
        self.ca = ca
        self.tokens = TokenFile(tokens)
        self.key_id = key_id

    def client(self) -> StetBankClient:
        creds = TppCredentials.from_directory(self.certs, self.key_id)
        return StetBankClient(self.bank, creds, self.client_id, ca_file=self.ca)

    def key(self, scope: str) -> str:
        return f"{self.bank} {self.client_id} {scope.split()[0]}"


pass_tpp = click.make_pass_decorator(_TppOptions)


@click.group()
@click.option(
    "--bank",
    envvar="STETGATE_TPP_BANK",
    default="https://localhost:8443",
    show_default=True,
    help="Bank base URL.",
)
@click.option(
    "--client-id",
    envvar="STETGATE_TPP_CLIENT_ID",
    required=True,
    help="client_id at that bank (organizationIdentifier or register id).",
)
@click.option(
    "--certs",
    envvar="STETGATE_TPP_CERTS",
    required=True,
    type=click.Path(path_type=Path, file_okay=False, exists=True),
    help="Folder with qwac.pem/.key and qsealc.pem/.key.",
)
@click.option(
    "--ca",
    envvar="STETGATE_TPP_CA",
    type=click.Path(path_type=Path, exists=True),
    default=None,
    help="CA bundle to trust for the bank (default: system store).",
)
@click.option(
    "--tokens",
    "tokens_file",
    envvar="STETGATE_TPP_TOKENS",
    type=click.Path(path_type=Path),
    default=Path("tpp-tokens.json"),
    show_default=True,
)
@click.option("--key-id", default=None, help="Signature keyId (default SN=…,CA=… of the QSealC).")
@click.pass_context
def tpp(
    ctx: click.Context,
    bank: str,
    client_id: str,
    certs: Path,
    ca: Path | None,
    tokens_file: Path,
    key_id: str | None,
) -> None:
    """TPP client: authorize, exchange, refresh, revoke, and signed API calls."""
    ctx.obj = _TppOptions(bank, client_id, certs, ca, tokens_file, key_id)


@tpp.command("authorize-url")
@click.option("--scope", default="aisp", show_default=True)
@click.option("--redirect-uri", required=True)
@click.option("--pkce/--no-pkce", default=True, show_default=True)
@click.option(
    "--save",
    "save_to",
    type=click.Path(path_type=Path),
    default=Path("tpp-pending.json"),
    show_default=True,
    help="Where to keep state/verifier for `tpp exchange`.",
)
@pass_tpp
def authorize_url(
    opts: _TppOptions, scope: str, redirect_uri: str, pkce: bool, save_to: Path
) -> None:
    """Print the URL to send the PSU's browser to (step 2 of the cinematic)."""
    with opts.client() as client:
        request = client.authorization_request(scope, redirect_uri, use_pkce=pkce)
    save_to.touch(mode=0o600)
    save_to.write_text(json.dumps(request.__dict__))
    click.echo(request.url)


@tpp.command()
@click.argument("callback_url")
@click.option(
    "--pending",
    type=click.Path(path_type=Path, exists=True),
    default=Path("tpp-pending.json"),
    show_default=True,
)
@pass_tpp
def exchange(opts: _TppOptions, callback_url: str, pending: Path) -> None:
    """Redeem the callback URL the bank redirected the PSU to (steps 4-7 of the cinematic)."""
    request = AuthorizationRequest(**json.loads(pending.read_text()))
    with opts.client() as client:
        tokens = _or_fail(lambda: client.exchange_code(request, callback_url))
    opts.tokens.put(opts.key(request.scope), tokens)
    pending.unlink()
    click.echo(
        f"tokens stored for scope {tokens.scope!r}, access token valid {tokens.expires_in} s"
    )


@tpp.command()
@click.option("--scope", default="aisp", show_default=True)
@pass_tpp
def refresh(opts: _TppOptions, scope: str) -> None:
    """Get a new access token with the stored refresh token."""
    tokens = _stored(opts, scope)
    with opts.client() as client:
        fresh = _or_fail(lambda: client.refresh(tokens))
    opts.tokens.put(opts.key(scope), fresh)
    click.echo(f"new access token valid {fresh.expires_in} s")


@tpp.command()
@click.option("--scope", default="aisp", show_default=True)
@pass_tpp
def revoke(opts: _TppOptions, scope: str) -> None:
    """Revoke the stored authorization (both tokens)."""
    tokens = _stored(opts, scope)
    with opts.client() as client:
        _or_fail(lambda: client.revoke(tokens.refresh_token or tokens.access_token))
    opts.tokens.delete(opts.key(scope))
    click.echo("revoked")


@tpp.command()
@click.argument("method", type=click.Choice(["GET", "PUT", "POST"], case_sensitive=False))
@click.argument("path")
@click.option("--scope", default="aisp", show_default=True)
@click.option("--json", "json_body", default=None, help="JSON request body.")
@click.option("--psu-ip", default=None, help="PSU-IP-Address: the PSU is present (no 4/day limit).")
@pass_tpp
def api(
    opts: _TppOptions, method: str, path: str, scope: str, json_body: str | None, psu_ip: str | None
) -> None:
    """Signed call to the STET API, e.g. `tpp api GET accounts --psu-ip 192.0.2.1`."""
    tokens = _stored(opts, scope)
    body = json.loads(json_body) if json_body else None
    psu = {"PSU-IP-Address": psu_ip} if psu_ip else None
    with opts.client() as client:
        if tokens.needs_refresh(_now()):
            tokens = _or_fail(lambda: client.refresh(tokens))
            opts.tokens.put(opts.key(scope), tokens)
        result = _or_fail(
            lambda: client.api(method.upper(), path, tokens, json_body=body, psu_headers=psu)
        )
    click.echo(json.dumps(result, indent=2, ensure_ascii=False))


@tpp.command("serve-demo")
@click.option("--host", default="127.0.0.1", show_default=True, help="Bind address.")
@click.option("--port", type=int, default=8444, show_default=True)
@click.option(
    "--public-url",
    default=None,
    help="Base URL browsers use (default https://localhost:PORT); PUBLIC_URL/callback must be "
    "a registered redirect URI.",
)
@click.option(
    "--tls-cert", type=click.Path(path_type=Path, exists=True, dir_okay=False), required=True
)
@click.option(
    "--tls-key", type=click.Path(path_type=Path, exists=True, dir_okay=False), required=True
)
@click.option("--name", default="Demo TPP", show_default=True, help="Name shown on its pages.")
@pass_tpp
def serve_demo(
    opts: _TppOptions,
    host: str,
    port: int,
    public_url: str | None,
    tls_cert: Path,
    tls_key: Path,
    name: str,
) -> None:
    """Serve the demo TPP web app over HTTPS against --bank (the sandbox runs it this way, as a
    process of its own, so that it can be stopped and restarted like any service)."""
    import ssl

    import uvicorn

    from stetgate.tpp.demo_app import DemoTppConfig, create_demo_tpp_app

    app = create_demo_tpp_app(
        DemoTppConfig(
            bank_url=opts.bank,
            client_id=opts.client_id,
            credentials=TppCredentials.from_directory(opts.certs, opts.key_id),
            public_url=public_url or f"https://localhost:{port}",
            ca_file=opts.ca,
            name=name,
        )
    )
    uvicorn.run(
        app,
        host=host,
        port=port,
        log_level="info",
        ssl_certfile=str(tls_cert),
        ssl_keyfile=str(tls_key),
        ssl_cert_reqs=ssl.CERT_NONE,
        timeout_graceful_shutdown=3,  # idle TLS peers never send close_notify
    )


def _now() -> datetime:
    """A command line acts now: the system clock."""
    return SystemClock().now()


def _stored(opts: _TppOptions, scope: str) -> TokenSet:
    tokens = opts.tokens.get(opts.key(scope))
    if tokens is None:
        raise click.ClickException(
            f"no stored tokens for scope {scope!r}: run authorize-url and exchange first"
        )
    return tokens


def _or_fail(action: Callable[[], T]) -> T:
    try:
        return action()
    except BankError as exc:
        hint = ""
        if exc.oauth_error == "invalid_grant":
            hint = " (the authorization is over: run the cinematic again with a new SCA)"
        raise click.ClickException(f"{exc}{hint}") from None
