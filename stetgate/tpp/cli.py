"""`stetgate tpp …`: the TPP side from a terminal, against any STET v1.4.2 bank.

State lives in the TPP kit's own folder (``--state-dir``, env ``STETGATE_TPP_HOME``, default
``~/.local/state/stetgate-tpp``, see `default_state_dir`), never the working directory, all 0600:

- ``tokens.json``: tokens keyed by bank, client and scope, so `tpp refresh` and `tpp api` keep an
  authorization alive for its 90 days (step 8 of docs/decisions.md#the-cinematic) and say when a
  new SCA is needed;
- ``pending.json``: authorizations started by `tpp authorize-url`, keyed by ``state``, so
  `tpp exchange` finds the bank, client and PKCE verifier from the callback URL alone;
- ``registrations.json``: what the register API answered to `tpp register` (the registration
  access token is shown once);
- ``callback.pem``/``.key``: the certificate of `tpp authorize --listen`'s local listener.

A command given no ``--bank`` uses the one bank the stored state knows for the client, so a
command does not silently talk to another bank than the previous one.

``--profile NAME|PATH`` says how the bank differs from stetgate's own behaviour (paths, keyId
form, signed headers, PKCE; `stetgate.tpp.bank_profile`); `tpp profiles` lists, shows and checks
profiles.
"""

from __future__ import annotations

import json
import ssl
import webbrowser
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

import click
import httpx

from stetgate.clock import SystemClock
from stetgate.tpp.bank_profile import (
    UNKNOWN,
    BankProfile,
    ProfileError,
    builtin_profile,
    builtin_profile_names,
    default_profile,
    load_profile,
    resolve_profile,
)
from stetgate.tpp.client import (
    AuthorizationRequest,
    BankError,
    ProfileGap,
    Registration,
    StetBankClient,
    TokenFile,
    TokenSet,
    TppCredentials,
    default_state_dir,
    write_private_json,
)
from stetgate.tpp.doctor.cli import doctor
from stetgate.tpp.lifecycle.cli import tokens

T = TypeVar("T")

DEFAULT_BANK = "https://localhost:8443"
LOOPBACK_REDIRECT = "https://127.0.0.1/callback"
CODE_LIFETIME_HINT = "an authorization code works once, within 60 s of the callback"


class _TppOptions:
    def __init__(
        self,
        bank: str | None,
        client_id: str | None,
        certs: Path | None,
        ca: Path | None,
        state_dir: Path,
        tokens: Path | None,
        key_id: str | None,
        profile: str | None = None,
    ) -> None:
        self.explicit_bank = bank.rstrip("/") if bank else None
        self.profile_reference = profile
        self.explicit_client_id = client_id
        self.certs = certs
        self.ca = ca
        self.state_dir = state_dir
        self.tokens = TokenFile(tokens or state_dir / "tokens.json")
        self.pending_file = state_dir / "pending.json"
        self.registrations_file = state_dir / "registrations.json"
        self.key_id = key_id

    # --- who and where ------------------------------------------------------------------------
    @property
    def client_id(self) -> str:
        if not self.explicit_client_id:
            raise click.UsageError(
                "pass --client-id (or STETGATE_TPP_CLIENT_ID): your client_id at the bank"
            )
        return self.explicit_client_id

    def bank(self, *, known: set[str] | None = None) -> str:
        """--bank, else the only bank the stored state knows for this client, else the
        default. Several known banks and no --bank is an error, not a guess."""
        if self.explicit_bank:
            return self.explicit_bank
        banks = known if known is not None else self._known_banks()
        if len(banks) == 1:
            return next(iter(banks))
        if len(banks) > 1:
            raise click.UsageError(
                f"tokens are stored for several banks ({', '.join(sorted(banks))}): pass --bank"
            )
        base_url = self.profile().endpoints.base_url
        return DEFAULT_BANK if base_url == UNKNOWN else base_url

    def profile(self) -> BankProfile:
        """--profile: a built-in name or a file; without it, stetgate's own (``sandbox``)."""
        if self.profile_reference is None:
            return default_profile()
        try:
            return resolve_profile(self.profile_reference)
        except ProfileError as exc:
            raise click.BadParameter(str(exc), param_hint="--profile") from None

    def _known_banks(self) -> set[str]:
        client_id = self.explicit_client_id
        banks = set()
        for key in self.tokens.stored_keys():
            bank, _, rest = key.partition(" ")
            if client_id is None or rest.split(" ")[0] == client_id:
                banks.add(bank)
        return banks

    def credentials(self) -> TppCredentials:
        if self.certs is None:
            raise click.UsageError(
                "pass --certs (or STETGATE_TPP_CERTS): the folder with qwac.pem/.key and "
                "qsealc.pem/.key"
            )
        return TppCredentials.from_directory(self.certs, self.key_id)

    def client(self, *, bank: str | None = None, client_id: str | None = None) -> StetBankClient:
        try:
            return StetBankClient(
                bank or self.bank(),
                self.credentials(),
                self.client_id if client_id is None else client_id,
                ca_file=self.ca,
                profile=self.profile(),
            )
        except ProfileGap as exc:
            raise click.ClickException(str(exc)) from None

    def key(self, scope: str, *, bank: str | None = None, client_id: str | None = None) -> str:
        return f"{bank or self.bank()} {client_id or self.client_id} {scope.split()[0]}"

    # --- pending authorizations ------------------------------------------------------------
    def _pending(self) -> dict[str, Any]:
        if not self.pending_file.exists():
            return {}
        data: dict[str, Any] = json.loads(self.pending_file.read_text())
        return data

    def remember(self, bank: str, client_id: str, request: AuthorizationRequest) -> None:
        pending = self._pending()
        pending[request.state] = {"bank": bank, "client_id": client_id, **request.__dict__}
        write_private_json(self.pending_file, pending)

    def take_pending(self, state: str) -> tuple[str, str, AuthorizationRequest] | None:
        pending = self._pending()
        entry = pending.pop(state, None)
        if entry is None:
            return None
        write_private_json(self.pending_file, pending)
        bank, client_id = entry.pop("bank"), entry.pop("client_id")
        return bank, client_id, AuthorizationRequest(**entry)

    # --- registrations ------------------------------------------------------------------------
    def registrations(self) -> dict[str, Any]:
        if not self.registrations_file.exists():
            return {}
        data: dict[str, Any] = json.loads(self.registrations_file.read_text())
        return data

    def save_registration(
        self, bank: str, registration: Registration | None, client_id: str
    ) -> None:
        data = self.registrations()
        key = f"{bank} {client_id}"
        if registration is None:
            data.pop(key, None)
        else:
            data[key] = registration.to_json()
        write_private_json(self.registrations_file, data)

    def registration(self, bank: str) -> Registration:
        entry = self.registrations().get(f"{bank} {self.client_id}")
        if entry is None:
            raise click.ClickException(
                f"no registration of client {self.client_id!r} at {bank} in "
                f"{self.registrations_file}: only clients made with `tpp register` can be "
                "updated or deleted from here (Go-Live clients through the bank's operator)"
            )
        return Registration.from_json(entry)


pass_tpp = click.make_pass_decorator(_TppOptions)


@click.group()
@click.option(
    "--bank",
    envvar="STETGATE_TPP_BANK",
    default=None,
    help=f"Bank base URL (default: the one bank stored tokens know, else {DEFAULT_BANK}).",
)
@click.option(
    "--client-id",
    envvar="STETGATE_TPP_CLIENT_ID",
    default=None,
    help="client_id at that bank (organizationIdentifier, or the id `tpp register` printed).",
)
@click.option(
    "--certs",
    envvar="STETGATE_TPP_CERTS",
    type=click.Path(path_type=Path, file_okay=False, exists=True),
    default=None,
    help="Folder with qwac.pem/.key and qsealc.pem/.key.",
)
@click.option(
    "--ca",
    envvar="STETGATE_TPP_CA",
    type=click.Path(path_type=Path, exists=True, dir_okay=False),
    default=None,
    help="CA file to trust for the bank's TLS certificate (the sandbox prints its own); "
    "default: the system store.",
)
@click.option(
    "--state-dir",
    envvar="STETGATE_TPP_HOME",
    type=click.Path(path_type=Path, file_okay=False),
    default=None,
    help="Where tokens, pending authorizations and registrations are kept "
    "(default ~/.local/state/stetgate-tpp).",
)
@click.option(
    "--tokens",
    "tokens_file",
    envvar="STETGATE_TPP_TOKENS",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="Token file (default STATE_DIR/tokens.json).",
)
@click.option(
    "--key-id",
    default=None,
    help="Signature keyId: the kid or certificate URL you registered (default SN=…,CA=… of the "
    "QSealC, where the bank's profile accepts it).",
)
@click.option(
    "--profile",
    envvar="STETGATE_TPP_PROFILE",
    default=None,
    metavar="NAME|PATH",
    help="The bank's profile: a built-in name (`tpp profiles`) or a .toml/.json file "
    "(default: sandbox, stetgate's own behaviour).",
)
@click.pass_context
def tpp(
    ctx: click.Context,
    bank: str | None,
    client_id: str | None,
    certs: Path | None,
    ca: Path | None,
    state_dir: Path | None,
    tokens_file: Path | None,
    key_id: str | None,
    profile: str | None,
) -> None:
    """TPP client: register, authorize, exchange, refresh, revoke, and signed API calls.

    Start with docs/tpp-guide.md; the sandbox prints ready-to-run commands."""
    ctx.obj = _TppOptions(
        bank, client_id, certs, ca, state_dir or default_state_dir(), tokens_file, key_id, profile
    )


tpp.add_command(tokens)


# --- the authorization (steps 2 to 7) ---------------------------------------------------------
@tpp.command("authorize-url")
@click.option("--scope", default="aisp", show_default=True)
@click.option("--redirect-uri", required=True, help="A redirect URI registered for the client.")
@click.option(
    "--pkce/--no-pkce",
    default=None,
    help="PKCE S256 (default: on where the profile says the bank supports it).",
)
@pass_tpp
def authorize_url(opts: _TppOptions, scope: str, redirect_uri: str, pkce: bool | None) -> None:
    """Print the URL to send the PSU's browser to; finish with `tpp exchange CALLBACK_URL`."""
    bank = opts.bank()
    with opts.client(bank=bank) as client:
        request = client.authorization_request(scope, redirect_uri, use_pkce=pkce)
    opts.remember(bank, opts.client_id, request)
    click.echo(request.url)
    click.echo(
        f"then: stetgate tpp exchange 'CALLBACK_URL' with the URL the browser lands on "
        f"({CODE_LIFETIME_HINT})",
        err=True,
    )


@tpp.command()
@click.argument("callback_url")
@pass_tpp
def exchange(opts: _TppOptions, callback_url: str) -> None:
    """Redeem the callback URL the bank redirected the PSU's browser to (copy it from the
    address bar). Bank, client and PKCE verifier come from `tpp authorize-url`."""
    from urllib.parse import parse_qs, urlsplit

    state = parse_qs(urlsplit(callback_url).query).get("state", [""])[0]
    found = opts.take_pending(state)
    if found is None:
        raise click.ClickException(
            "no pending authorization has this callback's state: it was already exchanged, or "
            f"was not started with `tpp authorize-url` here ({opts.pending_file}); "
            f"{CODE_LIFETIME_HINT}, so run `tpp authorize-url` again"
        )
    bank, client_id, request = found
    with opts.client(bank=bank, client_id=client_id) as client:
        tokens = _or_fail(lambda: client.exchange_code(request, callback_url), bank)
    opts.tokens.put(opts.key(request.scope, bank=bank, client_id=client_id), tokens)
    _stored_message(tokens, bank)


@tpp.command()
@click.option("--scope", default="aisp", show_default=True)
@click.option(
    "--redirect-uri",
    default=LOOPBACK_REDIRECT,
    show_default=True,
    help="The registered loopback redirect URI; the bank accepts any port for it (RFC 8252 "
    "§7.3), the listener takes one from the system.",
)
@click.option("--listen", is_flag=True, required=True, help="Catch the callback locally.")
@click.option("--port", type=int, default=0, show_default=True, help="0: the system picks.")
@click.option("--open-browser/--no-open-browser", default=False, show_default=True)
@click.option("--timeout", type=float, default=600.0, show_default=True, help="Seconds to wait.")
@click.option(
    "--pkce/--no-pkce",
    default=None,
    help="PKCE S256 (default: on where the profile says the bank supports it).",
)
@pass_tpp
def authorize(
    opts: _TppOptions,
    scope: str,
    redirect_uri: str,
    listen: bool,
    port: int,
    open_browser: bool,
    timeout: float,
    pkce: bool | None,
) -> None:
    """The whole cinematic from a terminal: listen on the loopback, print the URL for the PSU,
    catch the callback, check its state and exchange the code."""
    from urllib.parse import urlsplit

    from stetgate.tpp.callback_listener import CallbackListener, local_tls

    parts = urlsplit(redirect_uri)
    if parts.scheme != "https" or parts.hostname not in ("127.0.0.1", "::1"):
        raise click.UsageError("--redirect-uri must be https://127.0.0.1/… or https://[::1]/…")
    tls = local_tls(opts.state_dir)
    bank = opts.bank()
    host = parts.hostname or "127.0.0.1"
    with (
        CallbackListener(tls, host=host, port=port, path=parts.path or "/") as listener,
        opts.client(bank=bank) as client,
    ):
        request = client.authorization_request(
            scope, listener.redirect_uri(redirect_uri), use_pkce=pkce
        )
        listener.start(request.state)
        click.echo(f"listening on {listener.redirect_uri(redirect_uri)}")
        click.echo(f"  (its certificate: {tls.cert}; accept it in the browser or import it)")
        click.echo("open this URL in the PSU's browser:")
        click.echo(request.url, nl=True)
        if open_browser:
            webbrowser.open(request.url)
        callback = listener.wait(timeout)
        if callback is None:
            listener.answer("the terminal stopped waiting")
            raise click.ClickException(f"no callback within {timeout:g} s")
        try:
            tokens = _or_fail(lambda: client.exchange_code(request, callback), bank)
        except click.ClickException as exc:
            listener.answer(f"not connected: {exc.message}")
            raise
        opts.tokens.put(opts.key(request.scope, bank=bank), tokens)
        listener.answer(f"connected: tokens for {tokens.scope!r} stored by the terminal")
    _stored_message(tokens, bank)


# --- keeping it alive and using it --------------------------------------------------------------
@tpp.command()
@click.option("--scope", default="aisp", show_default=True)
@pass_tpp
def refresh(opts: _TppOptions, scope: str) -> None:
    """Get a new access token with the stored refresh token."""
    bank = opts.bank()
    tokens = _stored(opts, scope, bank)
    with opts.client(bank=bank) as client:
        fresh = _or_fail(lambda: client.refresh(tokens), bank)
    opts.tokens.put(opts.key(scope, bank=bank), fresh)
    click.echo(f"new access token valid {fresh.expires_in} s")


@tpp.command()
@click.option("--scope", default="aisp", show_default=True)
@pass_tpp
def revoke(opts: _TppOptions, scope: str) -> None:
    """Revoke the stored authorization (both tokens)."""
    bank = opts.bank()
    tokens = _stored(opts, scope, bank)
    with opts.client(bank=bank) as client:
        _or_fail(lambda: client.revoke(tokens.refresh_token or tokens.access_token), bank)
    opts.tokens.delete(opts.key(scope, bank=bank))
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
    try:
        body = json.loads(json_body) if json_body else None
    except ValueError as exc:
        raise click.BadParameter(f"not JSON: {exc}", param_hint="--json") from None
    result = _call(
        opts,
        scope,
        psu_ip,
        lambda c, t, psu: c.api(method.upper(), path, t, json=body, psu_headers=psu),
    )
    click.echo(json.dumps(result, indent=2, ensure_ascii=False))


@tpp.command()
@click.option("--all-accounts", is_flag=True, help="Every account GET accounts lists.")
@click.option("--balances", multiple=True, help="IBAN whose balances the PSU shares.")
@click.option("--transactions", multiple=True, help="IBAN whose transactions the PSU shares.")
@click.option("--psu-identity", is_flag=True, help="The PSU's name (GET end-user-identity).")
@click.option("--trusted-beneficiaries", is_flag=True)
@click.option("--psu-ip", required=True, help="PSU-IP-Address: the PSU is choosing, so present.")
@pass_tpp
def consent(
    opts: _TppOptions,
    all_accounts: bool,
    balances: tuple[str, ...],
    transactions: tuple[str, ...],
    psu_identity: bool,
    trusted_beneficiaries: bool,
    psu_ip: str,
) -> None:
    """Forward the PSU's choices with STET `PUT /consents` (needed before balances or
    transactions can be read; replaces the previous consent; a new authorization starts
    without one)."""

    if not (all_accounts or balances or transactions or psu_identity or trusted_beneficiaries):
        raise click.UsageError("choose --all-accounts, --balances IBAN or --transactions IBAN")

    def forward(client: StetBankClient, tokens: TokenSet, psu: dict[str, str]) -> dict[str, Any]:
        return client.forward_consent(
            tokens,
            balances=[{"iban": iban} for iban in balances],
            transactions=[{"iban": iban} for iban in transactions],
            all_accounts=all_accounts,
            psu_identity=psu_identity,
            trusted_beneficiaries=trusted_beneficiaries,
            psu_headers=psu,
        )

    body = _call(opts, "aisp", psu_ip, forward)
    click.echo(
        f"consent forwarded: balances of {len(body['balances'])} account(s), transactions of "
        f"{len(body['transactions'])}"
    )


# --- the register API (RFC 7591/7592, docs/register-api.md) ------------------------------------
def _metadata_options(function: Callable[..., Any]) -> Callable[..., Any]:
    for option in reversed(
        [
            click.option("--name", "client_name", default=None, help="client_name PSUs see."),
            click.option("--redirect-uri", "redirect_uris", multiple=True, help="Repeatable."),
            click.option("--contact", "contacts", multiple=True, help="E-mail; repeatable."),
            click.option("--require-pkce/--no-require-pkce", default=None),
        ]
    ):
        function = option(function)
    return function


@tpp.command()
@_metadata_options
@pass_tpp
def register(
    opts: _TppOptions,
    client_name: str | None,
    redirect_uris: tuple[str, ...],
    contacts: tuple[str, ...],
    require_pkce: bool | None,
) -> None:
    """Register a client with the bank's register API (QWAC on the connection, request signed
    with the QSealC). Prints the client_id; keeps the registration access token."""
    if not client_name or not redirect_uris:
        raise click.UsageError("register needs --name and at least one --redirect-uri")
    bank = opts.bank(known=set())
    with opts.client(bank=bank, client_id="") as client:
        metadata = client.client_metadata(
            client_name, redirect_uris, contacts=contacts, require_pkce=require_pkce
        )
        registration = _or_fail(lambda: client.register(metadata), bank)
    opts.save_registration(bank, registration, registration.client_id)
    click.echo(registration.client_id)


@tpp.command("show-registration")
@pass_tpp
def show_registration(opts: _TppOptions) -> None:
    """What the bank has registered for --client-id (RFC 7592 §2.1)."""
    bank = opts.bank(known=_registered_banks(opts))
    with opts.client(bank=bank) as client:
        current = _or_fail(lambda: client.read_registration(opts.registration(bank)), bank)
    shown = {k: v for k, v in current.metadata.items() if k != "registration_access_token"}
    click.echo(json.dumps(shown, indent=2, ensure_ascii=False))


@tpp.command()
@_metadata_options
@click.option("--add-redirect-uri", "added_uris", multiple=True, help="Keep the others.")
@pass_tpp
def update(
    opts: _TppOptions,
    client_name: str | None,
    redirect_uris: tuple[str, ...],
    contacts: tuple[str, ...],
    require_pkce: bool | None,
    added_uris: tuple[str, ...],
) -> None:
    """Replace the registration (RFC 7592 §2.2): what is not given is kept from the current
    one. Also rotates certificates: run it with --certs of the NEW QWAC and QSealC."""
    bank = opts.bank(known=_registered_banks(opts))
    stored = opts.registration(bank)
    with opts.client(bank=bank) as client:
        current = _or_fail(lambda: client.read_registration(stored), bank).metadata
        uris = list(redirect_uris or current.get("redirect_uris") or [])
        uris += [uri for uri in added_uris if uri not in uris]
        keep_pkce = current.get("require_pkce")
        metadata = client.client_metadata(
            client_name or str(current.get("client_name", "")),
            uris,
            contacts=contacts or tuple(current.get("contacts") or ()),
            require_pkce=require_pkce if require_pkce is not None else keep_pkce,
            grant_types=tuple(
                current.get("grant_types") or ("authorization_code", "refresh_token")
            ),
        )
        updated = _or_fail(lambda: client.update_registration(stored, metadata), bank)
    opts.save_registration(bank, updated, updated.client_id)
    click.echo(f"updated {updated.client_id}: redirect URIs {', '.join(uris)}")


@tpp.command()
@click.confirmation_option(prompt="Delete the registration? Every token it holds is revoked.")
@pass_tpp
def delete(opts: _TppOptions) -> None:
    """Delete the registration: the bank removes the client and revokes all its tokens."""
    bank = opts.bank(known=_registered_banks(opts))
    stored = opts.registration(bank)
    with opts.client(bank=bank) as client:
        _or_fail(lambda: client.delete_registration(stored), bank)
    opts.save_registration(bank, None, stored.client_id)
    for key in opts.tokens.stored_keys():
        if key.startswith(f"{bank} {stored.client_id} "):
            opts.tokens.delete(key)
    click.echo(f"deleted {stored.client_id}")


def _registered_banks(opts: _TppOptions) -> set[str]:
    return {
        key.rsplit(" ", 1)[0]
        for key in opts.registrations()
        if key.rsplit(" ", 1)[1] == opts.client_id
    }


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
    import uvicorn

    from stetgate.tpp.demo_app import DemoTppConfig, create_demo_tpp_app

    app = create_demo_tpp_app(
        DemoTppConfig(
            bank_url=opts.bank(known=set()),
            client_id=opts.client_id,
            credentials=opts.credentials(),
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


tpp.add_command(doctor)


# --- bank profiles ------------------------------------------------------------------------------
@tpp.command()
@click.option("--show", "show", metavar="NAME|PATH", default=None, help="Print a profile as TOML.")
@click.option(
    "--check",
    "check",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="Validate a profile file; exit status 1 with every error.",
)
def profiles(show: str | None, check: Path | None) -> None:
    """List the built-in bank profiles, print one (--show) or validate a file (--check).

    A profile says where a STET bank differs: endpoints, discovery, keyId form, signed headers,
    PKCE, refresh rotation, lifetimes, SCA validity, unattended limit, register API; what its
    documentation does not say is "unknown" (docs/tpp-guide.md#bank-profiles)."""
    if show and check:
        raise click.UsageError("--show or --check, not both")
    try:
        if check is not None:
            checked = load_profile(check)
            click.echo(f"{check}: valid profile {checked.name!r}")
        elif show is not None:
            click.echo(resolve_profile(show).to_toml(), nl=False)
        else:
            for name in builtin_profile_names():
                click.echo(f"{name:10} {builtin_profile(name).description}")
    except ProfileError as exc:
        raise click.ClickException(str(exc)) from None


# --- helpers ------------------------------------------------------------------------------------
def _now() -> datetime:
    """A command line acts now: the system clock."""
    return SystemClock().now()


def _stored(opts: _TppOptions, scope: str, bank: str) -> TokenSet:
    tokens = opts.tokens.get(opts.key(scope, bank=bank))
    if tokens is None:
        others = sorted(opts._known_banks() - {bank})
        elsewhere = f"; tokens exist for {', '.join(others)} (pass --bank)" if others else ""
        raise click.ClickException(
            f"no stored tokens for client {opts.client_id!r}, scope {scope!r} at {bank}"
            f"{elsewhere}: run `tpp authorize --listen` (or authorize-url and exchange) first"
        )
    return tokens


def _call(
    opts: _TppOptions,
    scope: str,
    psu_ip: str | None,
    action: Callable[[StetBankClient, TokenSet, dict[str, str]], T],
) -> T:
    """Run ``action`` with fresh stored tokens (refreshed and stored first when expiring)."""
    bank = opts.bank()
    psu = {"PSU-IP-Address": psu_ip} if psu_ip else {}
    with opts.client(bank=bank) as client:
        with opts.tokens.locked():  # one refresh across concurrent runs (`TokenFile.locked`)
            tokens = _stored(opts, scope, bank)
            if tokens.needs_refresh(_now()):
                tokens = _or_fail(lambda: client.refresh(tokens), bank)
                opts.tokens.put(opts.key(scope, bank=bank), tokens)
        fresh = tokens
        return _or_fail(lambda: action(client, fresh, psu), bank)


def _stored_message(tokens: TokenSet, bank: str) -> None:
    click.echo(
        f"tokens stored for scope {tokens.scope!r} at {bank}, access token valid "
        f"{tokens.expires_in} s; next: stetgate tpp api GET accounts --psu-ip 192.0.2.10"
    )


def _or_fail(action: Callable[[], T], bank: str) -> T:
    """The bank's refusal or an unreachable bank as one line (exit status 1), never a
    traceback."""
    try:
        return action()
    except ProfileGap as exc:
        raise click.ClickException(str(exc)) from None
    except BankError as exc:
        hint = ""
        if exc.oauth_error == "invalid_grant":
            hint = " (the authorization is over: run the cinematic again with a new SCA)"
        if exc.status == 429:
            after = f"; the bank says retry in {exc.retry_after} s" if exc.retry_after else ""
            hint = f" (the unattended limit: pass --psu-ip when the PSU is present{after})"
        raise click.ClickException(f"{exc}{hint}") from None
    except httpx.ConnectError as exc:
        cause = str(exc)
        if "CERTIFICATE_VERIFY_FAILED" in cause:
            raise click.ClickException(
                f"{bank}: its TLS certificate is not trusted ({cause}); pass --ca with the "
                "bank's CA file (the sandbox prints it: DATA_DIR/ca.pem)"
            ) from None
        raise click.ClickException(f"cannot reach {bank}: {cause} (check --bank)") from None
    except httpx.HTTPError as exc:
        raise click.ClickException(f"{bank}: {exc.__class__.__name__}: {exc}") from None
