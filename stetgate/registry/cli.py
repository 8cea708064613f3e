"""`stetgate clients …`: the operator's Go-Live registration of TPP clients.

decisions.md "Who the client is": a Go-Live client's ``client_id`` **is** its
organizationIdentifier (ETSI TS 119 495 §5.2.1), and ``client_name`` is what the PSU sees on the
consent page. Certificates given here must parse as PSD2 certificates, carry that
organizationIdentifier and pass validation now (trusted QTSP, validity, CRL, QcType/EKU for
their use); /authorize re-checks stored ones on every request. Redirect URIs follow RFC 6749
§3.1.2 (absolute, no fragment) and RFC 9700 §2.1 / §4.1 (exact match, so they are stored
verbatim): ``https`` only, except ``http`` on the loopback interface for local TPP
development (RFC 8252 §7.3, §8.3).

``suspend`` blocks the client (token endpoint and resource API refuse it, tokens are kept for
``resume``); ``remove`` revokes every token pair of the client and deletes it.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from urllib.parse import urlsplit

import click
from sqlalchemy import Engine, func, select

from stetgate.clock import SystemClock
from stetgate.eidas import CertificateError, OrganizationIdentifier, parse_certificate
from stetgate.eidas.model import Purpose
from stetgate.eidas.validation import CertificateValidator
from stetgate.oauth.clients import (
    CLIENT_ACTIVE,
    CLIENT_SUSPENDED,
    DuplicateClient,
    StoredCertificate,
    delete_client,
    get_client,
    golive_client,
    insert_client,
    list_clients,
    set_status,
    stored_certificate,
)
from stetgate.oauth.token_pairs import CLIENT_REMOVED, revoke_all_for_client
from stetgate.settings import Settings
from stetgate.store.audit import record_event
from stetgate.store.db import DatabaseNotMigrated, make_engine, require_migrated
from stetgate.store.schema import grants

LOOPBACK_HOSTS = frozenset({"127.0.0.1", "::1", "localhost"})


class InvalidRedirectUri(ValueError):
    """A redirect URI stetgate will not register, with the rule it breaks."""


def check_redirect_uri(uri: str) -> str:
    """Return ``uri`` unchanged if it may be registered, else raise `InvalidRedirectUri`."""
    parts = urlsplit(uri)
    if not parts.scheme or not parts.netloc:
        raise InvalidRedirectUri(f"{uri!r} is not an absolute URI (RFC 6749 §3.1.2)")
    if "#" in uri:
        raise InvalidRedirectUri(f"{uri!r} has a fragment (RFC 6749 §3.1.2)")
    if parts.username is not None or parts.password is not None:
        raise InvalidRedirectUri(f"{uri!r} carries user information")
    if any(ch.isspace() for ch in uri) or not uri.isascii():
        raise InvalidRedirectUri(f"{uri!r} has spaces or non-ASCII characters (RFC 3986)")
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").lower()
    if not host:
        raise InvalidRedirectUri(f"{uri!r} has no host")
    if scheme == "https":
        return uri
    if scheme == "http" and host in LOOPBACK_HOSTS:
        return uri
    raise InvalidRedirectUri(
        f"{uri!r}: redirect URIs must be https (http only on the loopback interface, RFC 8252 §7.3)"
    )


def certificate_for_client(
    pem: bytes, kind: Purpose, org_id: str, validator: CertificateValidator, now: datetime
) -> StoredCertificate:
    """Parse, match the organization and validate a QWAC/QSealC given at Go-Live."""
    label = "QWAC" if kind == "qwac" else "QSealC"
    try:
        cert = parse_certificate(pem)
    except CertificateError as exc:
        raise click.ClickException(f"{label}: {exc.message}") from None
    if cert.organization_identifier != org_id:
        raise click.ClickException(
            f"{label} organizationIdentifier {cert.organization_identifier} does not match "
            f"--org-id {org_id}"
        )
    try:
        validator.validate(cert, kind, now)
    except CertificateError as exc:
        raise click.ClickException(f"{label} refused ({exc.reason}): {exc.message}") from None
    return stored_certificate(kind, cert)


def _settings(ctx: click.Context) -> Settings:
    settings: Settings = ctx.find_root().obj.settings()
    return settings


@contextmanager
def _database(settings: Settings) -> Iterator[Engine]:
    """A one-connection engine on the instance's migrated database, disposed afterwards."""
    engine = make_engine(settings.resolved_database_url, 1)
    try:
        try:
            require_migrated(engine)
        except DatabaseNotMigrated as exc:
            raise click.ClickException(str(exc)) from None
        yield engine
    finally:
        engine.dispose()


@click.group()
def clients() -> None:
    """TPP clients registered by the operator (Go-Live): add, list, suspend, resume, remove."""


@clients.command("add")
@click.option(
    "--org-id",
    required=True,
    help="organizationIdentifier, e.g. PSDFR-ACPR-12345; it becomes the client_id.",
)
@click.option("--name", required=True, help="Name shown to the PSU on the consent page.")
@click.option(
    "--redirect-uri",
    "redirect_uris",
    required=True,
    multiple=True,
    help="Callback URL, exact match at /authorize (repeatable).",
)
@click.option(
    "--qwac",
    type=click.Path(path_type=Path, exists=True, dir_okay=False),
    help="The TPP's QWAC (PEM or DER).",
)
@click.option(
    "--qsealc",
    type=click.Path(path_type=Path, exists=True, dir_okay=False),
    help="The TPP's QSealC (PEM or DER), for HTTP signatures.",
)
@click.option("--require-pkce", is_flag=True, help="Refuse authorizations without PKCE S256.")
@click.pass_context
def add(
    ctx: click.Context,
    org_id: str,
    name: str,
    redirect_uris: tuple[str, ...],
    qwac: Path | None,
    qsealc: Path | None,
    require_pkce: bool,
) -> None:
    """Register a client whose client_id is its organizationIdentifier."""
    settings = _settings(ctx)
    now = SystemClock().now()
    try:
        OrganizationIdentifier.parse(org_id)
    except CertificateError as exc:
        raise click.ClickException(exc.message) from None
    name = name.strip()
    if not name or len(name) > 200:
        raise click.ClickException("--name must be 1 to 200 characters")
    uris: list[str] = []
    for uri in redirect_uris:
        try:
            check_redirect_uri(uri)
        except InvalidRedirectUri as exc:
            raise click.ClickException(str(exc)) from None
        if uri not in uris:
            uris.append(uri)
    certificates: list[StoredCertificate] = []
    if qwac is not None or qsealc is not None:
        validator = CertificateValidator.from_folders(
            settings.trust_path, settings.crl_path, poll_seconds=0
        )
        given: tuple[tuple[Path | None, Purpose], ...] = ((qwac, "qwac"), (qsealc, "qsealc"))
        for path, kind in given:
            if path is not None:
                certificates.append(
                    certificate_for_client(path.read_bytes(), kind, org_id, validator, now)
                )
    client = golive_client(
        org_id, name, uris, now, certificates=certificates, require_pkce=require_pkce
    )
    try:
        with _database(settings) as engine, engine.begin() as conn:
            insert_client(conn, client)
            record_event(
                conn,
                now,
                "client_added",
                client_id=org_id,
                org_id=org_id,
                reason="operator (Go-Live)",
                detail={
                    "redirect_uris": uris,
                    "require_pkce": require_pkce,
                    "certificates": [c.kind for c in certificates],
                },
            )
    except DuplicateClient as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"client {org_id} added ({name}); client_id={org_id}")


@clients.command("list")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.pass_context
def list_(ctx: click.Context, as_json: bool) -> None:
    """List clients, their status, redirect URIs, certificates and active token pairs."""
    settings = _settings(ctx)
    now = SystemClock().now()
    with _database(settings) as engine, engine.connect() as conn:
        found = list_clients(conn)
        counts = conn.execute(
            select(grants.c.client_id, func.count())
            .where(grants.c.revoked_at.is_(None), grants.c.refresh_expires_at > now)
            .group_by(grants.c.client_id)
        ).all()
        active: dict[str, int] = {client_id: int(n) for client_id, n in counts}
    if as_json:
        rows = [
            {
                "client_id": c.client_id,
                "org_id": c.org_id,
                "name": c.name,
                "origin": c.origin,
                "status": c.status,
                "require_pkce": c.require_pkce,
                "redirect_uris": list(c.redirect_uris),
                "certificates": [
                    {
                        "kind": s.kind,
                        "thumbprint": s.thumbprint,
                        "not_after": s.not_after.isoformat(),
                    }
                    for s in c.certificates
                ],
                "active_token_pairs": active.get(c.client_id, 0),
            }
            for c in found
        ]
        click.echo(json.dumps(rows, indent=2))
        return
    if not found:
        click.echo("no clients")
        return
    for c in found:
        pkce = "required" if c.require_pkce else "optional"
        click.echo(
            f"{c.client_id}  {c.status}  {c.origin}  {c.name!r}  "
            f"pairs={active.get(c.client_id, 0)}  pkce={pkce}"
        )
        for uri in c.redirect_uris:
            click.echo(f"    redirect_uri {uri}")
        for cert in c.certificates:
            click.echo(f"    {cert.kind} {cert.thumbprint} until {cert.not_after:%Y-%m-%d}")


def _change_status(ctx: click.Context, client_id: str, status: str, event: str) -> None:
    settings = _settings(ctx)
    now = SystemClock().now()
    with _database(settings) as engine, engine.begin() as conn:
        client = get_client(conn, client_id)
        if client is None:
            raise click.ClickException(f"no client {client_id}")
        if client.status == status:
            click.echo(f"client {client_id} is already {status}")
            return
        set_status(conn, client_id, status, now)
        record_event(
            conn, now, event, client_id=client_id, org_id=client.org_id, reason="operator (CLI)"
        )
    click.echo(f"client {client_id} {status}")


@clients.command("suspend")
@click.argument("client_id")
@click.pass_context
def suspend(ctx: click.Context, client_id: str) -> None:
    """Block a client: its token requests and API calls are refused until `resume`."""
    _change_status(ctx, client_id, CLIENT_SUSPENDED, "client_suspended")


@clients.command("resume")
@click.argument("client_id")
@click.pass_context
def resume(ctx: click.Context, client_id: str) -> None:
    """Lift a suspension; token pairs that have not expired work again."""
    _change_status(ctx, client_id, CLIENT_ACTIVE, "client_resumed")


@clients.command("remove")
@click.argument("client_id")
@click.pass_context
def remove(ctx: click.Context, client_id: str) -> None:
    """Revoke every token pair of a client and delete it."""
    settings = _settings(ctx)
    now = SystemClock().now()
    with _database(settings) as engine, engine.begin() as conn:
        client = get_client(conn, client_id)
        if client is None:
            raise click.ClickException(f"no client {client_id}")
        revoked = revoke_all_for_client(conn, client_id, now, reason=CLIENT_REMOVED)
        delete_client(conn, client_id)
        record_event(
            conn,
            now,
            "client_removed",
            client_id=client_id,
            org_id=client.org_id,
            reason="operator (CLI)",
            detail={"revoked_pairs": revoked},
        )
    click.echo(f"client {client_id} removed; {revoked} token pair(s) revoked")


__all__ = ["InvalidRedirectUri", "certificate_for_client", "check_redirect_uri", "clients"]
