"""`stetgate clients …`: the operator's Go-Live registration of TPP clients.

docs/decisions.md#go-live-clients: a Go-Live client's ``client_id`` **is** its
organizationIdentifier (ETSI TS 119 495 §5.2.1), and ``client_name`` is what the PSU sees on the
consent page. Certificates given here must parse as PSD2 certificates, carry that
organizationIdentifier and pass validation now (trusted QTSP, validity, CRL, QcType/EKU for
their use); /authorize re-checks stored ones on every request. Redirect URIs and the name
follow the same policy as the register API (:mod:`stetgate.registry.client_metadata_policy`):
a refusal prints why and writes nothing.

``suspend`` blocks the client (token endpoint and resource API refuse it, tokens are kept for
``resume``); ``remove`` revokes every token pair of the client and deletes it.
"""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

import click
from sqlalchemy import Connection, func, select

from stetgate.cli_context import settings_of
from stetgate.clock import SystemClock
from stetgate.eidas import CertificateError, OrganizationIdentifier, parse_certificate
from stetgate.eidas.model import Purpose
from stetgate.eidas.validation import CertificateValidator
from stetgate.oauth.clients import (
    CLIENT_ACTIVE,
    CLIENT_SUSPENDED,
    ORIGIN_GOLIVE,
    Client,
    DuplicateClient,
    StoredCertificate,
    delete_client,
    get_client,
    golive_client,
    insert_client,
    list_clients,
    replace_certificates,
    set_redirect_uris,
    set_status,
    stored_certificate,
    touch_client,
)
from stetgate.oauth.token_pairs import CLIENT_REMOVED, revoke_all_for_client
from stetgate.registry.client_metadata_policy import (
    client_name_of,
    redirect_uris_of,
    require_free_name,
)
from stetgate.registry.errors import RegistrationError
from stetgate.store import audit_events
from stetgate.store.audit import record_event
from stetgate.store.operator import operator_database
from stetgate.store.schema import grants


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
    settings = settings_of(ctx)
    now = SystemClock().now()
    try:
        OrganizationIdentifier.parse(org_id)
    except CertificateError as exc:
        raise click.ClickException(exc.message) from None
    try:
        name = client_name_of(name)
    except RegistrationError as exc:
        raise click.ClickException(f"--name refused: {exc.description}") from None
    try:
        uris = list(redirect_uris_of(list(redirect_uris)))
    except RegistrationError as exc:
        raise click.ClickException(f"--redirect-uri refused: {exc.description}") from None
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
        with operator_database(settings) as engine, engine.begin() as conn:
            insert_client(conn, client)
            # refuse a name that differs from another client's only by case or spacing, or
            # that another organization's name looks like (raising rolls the insert back)
            require_free_name(conn, name, org_id=org_id, except_client_id=org_id)
            record_event(
                conn,
                now,
                audit_events.CLIENT_ADDED,
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
    except RegistrationError as exc:
        raise click.ClickException(f"--name refused: {exc.description}") from None
    click.echo(f"client {org_id} added ({name}); client_id={org_id}")


@clients.command("list")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.pass_context
def list_(ctx: click.Context, as_json: bool) -> None:
    """List clients, their status, redirect URIs, certificates and active token pairs."""
    settings = settings_of(ctx)
    now = SystemClock().now()
    with operator_database(settings) as engine, engine.connect() as conn:
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


def _existing_client(conn: Connection, client_id: str) -> Client:
    client = get_client(conn, client_id)
    if client is None:
        raise click.ClickException(f"no client {client_id}")
    return client


def _change_status(ctx: click.Context, client_id: str, status: str, event: str) -> None:
    settings = settings_of(ctx)
    now = SystemClock().now()
    with operator_database(settings) as engine, engine.begin() as conn:
        client = _existing_client(conn, client_id)
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
    _change_status(ctx, client_id, CLIENT_SUSPENDED, audit_events.CLIENT_SUSPENDED)


@clients.command("resume")
@click.argument("client_id")
@click.pass_context
def resume(ctx: click.Context, client_id: str) -> None:
    """Lift a suspension; token pairs that have not expired work again."""
    _change_status(ctx, client_id, CLIENT_ACTIVE, audit_events.CLIENT_RESUMED)


@clients.command("remove")
@click.argument("client_id")
@click.pass_context
def remove(ctx: click.Context, client_id: str) -> None:
    """Revoke every token pair of a client and delete it."""
    settings = settings_of(ctx)
    now = SystemClock().now()
    with operator_database(settings) as engine, engine.begin() as conn:
        client = _existing_client(conn, client_id)
        revoked = revoke_all_for_client(conn, client_id, now, reason=CLIENT_REMOVED)
        delete_client(conn, client_id)
        record_event(
            conn,
            now,
            audit_events.CLIENT_REMOVED,
            client_id=client_id,
            org_id=client.org_id,
            reason="operator (CLI)",
            detail={"revoked_pairs": revoked},
        )
    click.echo(f"client {client_id} removed; {revoked} token pair(s) revoked")


def _golive_client(conn: Connection, client_id: str) -> Client:
    client = _existing_client(conn, client_id)
    if client.origin != ORIGIN_GOLIVE:
        raise click.ClickException(
            f"client {client_id} registered itself: it changes its certificates through the "
            "register API (PUT /stet/setting/v1/register/{client_id})"
        )
    return client


@clients.command("add-certificate")
@click.argument("client_id")
@click.option("--qwac", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--qsealc", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.pass_context
def add_certificate(
    ctx: click.Context, client_id: str, qwac: Path | None, qsealc: Path | None
) -> None:
    """Add a renewed QWAC or QSealC to a Go-Live client, next to the old one.

    Certificate renewal without downtime: add the new certificate, let the TPP switch, then
    `remove-certificate` the old one. The certificate is checked like at `add` (chain to a
    trusted QTSP, validity, PSD2 role, this client's organizationIdentifier)."""
    if (qwac is None) == (qsealc is None):
        raise click.UsageError("give exactly one of --qwac and --qsealc")
    settings = settings_of(ctx)
    now = SystemClock().now()
    kind: Purpose = "qwac" if qwac is not None else "qsealc"
    path = qwac or qsealc
    assert path is not None
    validator = CertificateValidator.from_folders(
        settings.trust_path, settings.crl_path, poll_seconds=0
    )
    with operator_database(settings) as engine, engine.begin() as conn:
        client = _golive_client(conn, client_id)
        added = certificate_for_client(path.read_bytes(), kind, client.org_id, validator, now)
        if any(c.thumbprint == added.thumbprint for c in client.certificates):
            raise click.ClickException(f"client {client_id} already has this {kind}")
        replace_certificates(conn, client_id, (*client.certificates, added), now)
        touch_client(conn, client_id, now)
        record_event(
            conn,
            now,
            audit_events.CLIENT_CERTIFICATE_ADDED,
            client_id=client_id,
            org_id=client.org_id,
            reason="operator (CLI)",
            detail={"kind": kind, "thumbprint": added.thumbprint},
        )
    click.echo(f"client {client_id}: {kind} {added.thumbprint} added")


@clients.command("remove-certificate")
@click.argument("client_id")
@click.argument("thumbprint")
@click.pass_context
def remove_certificate(ctx: click.Context, client_id: str, thumbprint: str) -> None:
    """Remove one certificate of a Go-Live client (by its x5t#S256 thumbprint, as `list`
    shows it). A QSealC removed no longer verifies signatures; access tokens bound to a removed
    QWAC keep their binding (RFC 8705 §3) until they expire."""
    settings = settings_of(ctx)
    now = SystemClock().now()
    with operator_database(settings) as engine, engine.begin() as conn:
        client = _golive_client(conn, client_id)
        kept = tuple(c for c in client.certificates if c.thumbprint != thumbprint)
        if len(kept) == len(client.certificates):
            raise click.ClickException(f"client {client_id} has no certificate {thumbprint}")
        (removed,) = (c for c in client.certificates if c.thumbprint == thumbprint)
        replace_certificates(conn, client_id, kept, now)
        touch_client(conn, client_id, now)
        record_event(
            conn,
            now,
            audit_events.CLIENT_CERTIFICATE_REMOVED,
            client_id=client_id,
            org_id=client.org_id,
            reason="operator (CLI)",
            detail={"kind": removed.kind, "thumbprint": thumbprint},
        )
    click.echo(f"client {client_id}: {removed.kind} {thumbprint} removed")


@clients.command("set-redirect-uris")
@click.argument("client_id")
@click.option(
    "--redirect-uri",
    "redirect_uris",
    multiple=True,
    required=True,
    help="Repeat for each URI; the list replaces the current one.",
)
@click.pass_context
def set_redirect_uris_command(
    ctx: click.Context, client_id: str, redirect_uris: tuple[str, ...]
) -> None:
    """Replace a Go-Live client's redirect URIs (checked like at `add`: absolute https, http
    only to a loopback IP). A loopback one such as https://127.0.0.1/callback matches any port
    at /authorize (RFC 8252 §7.3), for `stetgate tpp authorize --listen`. Self-registered
    clients change theirs through the register API."""
    settings = settings_of(ctx)
    now = SystemClock().now()
    try:
        uris = list(redirect_uris_of(list(redirect_uris)))
    except RegistrationError as exc:
        raise click.ClickException(f"--redirect-uri refused: {exc.description}") from None
    with operator_database(settings) as engine, engine.begin() as conn:
        client = _golive_client(conn, client_id)
        set_redirect_uris(conn, client_id, uris, now)
        record_event(
            conn,
            now,
            audit_events.CLIENT_REDIRECT_URIS_SET,
            client_id=client_id,
            org_id=client.org_id,
            reason="operator (CLI)",
            detail={"before": list(client.redirect_uris), "after": uris},
        )
    click.echo(f"client {client_id}: redirect URIs {', '.join(uris)}")


__all__ = ["certificate_for_client", "clients"]
