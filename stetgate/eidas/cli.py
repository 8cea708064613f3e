"""`stetgate certs …`: the test QTSP (ETSI TS 119 495 profiles) for sandboxes and tests."""

from __future__ import annotations

from pathlib import Path

import click

from stetgate.cli_context import settings_of
from stetgate.eidas import CertificateError, parse_certificate, qtsp


@click.group()
def certs() -> None:
    """Test QTSP: root CA, bank server certificate, TPP QWAC/QSealC, CRL."""


@certs.command("init")
@click.option(
    "--hostname",
    "hostnames",
    multiple=True,
    help="Server certificate host names (repeatable; default localhost, 127.0.0.1).",
)
@click.pass_context
def init(ctx: click.Context, hostnames: tuple[str, ...]) -> None:
    """Create the test root CA, the trust folder, the CRL and the bank's server certificate."""
    settings = settings_of(ctx)
    names = list(hostnames) or ["localhost", "127.0.0.1"]
    info = qtsp.init_qtsp(settings.data_dir, names, f"{settings.resolved_issuer}/qtsp/crl")
    state = "created" if info.created else "already present"
    click.echo(f"test QTSP {state}: {info.ca_subject}")
    click.echo(f"  root CA        {info.paths.ca_pem}")
    click.echo(f"  trust folder   {info.paths.trust_dir}")
    click.echo(f"  CRL            {info.paths.crl} (served at {info.crl_url})")
    click.echo(f"  server cert    {info.paths.server_pem}")


@certs.command("issue-tpp")
@click.option("--org-id", required=True, help="organizationIdentifier, e.g. PSDFR-ACPR-12345.")
@click.option("--name", required=True, help="Organization name (subject O).")
@click.option("--roles", required=True, help="Comma-separated: AISP,CBPII,PISP,ASPSP.")
@click.option("--out", "out_dir", required=True, type=click.Path(path_type=Path))
@click.option("--days", default=365, show_default=True, type=click.IntRange(1, 3650))
@click.pass_context
def issue_tpp(
    ctx: click.Context, org_id: str, name: str, roles: str, out_dir: Path, days: int
) -> None:
    """Issue a TPP's QWAC and QSealC (qwac.pem/.key, qsealc.pem/.key; keys 0600)."""
    settings = settings_of(ctx)
    try:
        role_set = [r for r in (part.strip() for part in roles.split(",")) if r]
        issued = qtsp.issue_tpp(settings.data_dir, org_id, name, role_set, out_dir, days=days)
    except (ValueError, CertificateError) as exc:
        raise click.ClickException(str(exc)) from None
    except FileNotFoundError:
        raise click.ClickException("no test QTSP here: run `stetgate certs init` first") from None
    for path in (issued.qwac_pem, issued.qwac_key, issued.qsealc_pem, issued.qsealc_key):
        click.echo(str(path))


@certs.command("revoke")
@click.argument("cert_file", type=click.Path(path_type=Path, exists=True, dir_okay=False))
@click.option("--reason", default="keyCompromise", show_default=True)
@click.pass_context
def revoke(ctx: click.Context, cert_file: Path, reason: str) -> None:
    """Revoke a certificate of this QTSP and republish the CRL."""
    settings = settings_of(ctx)
    try:
        crl = qtsp.revoke(settings.data_dir, cert_file, reason)
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"revoked; CRL republished at {crl}")


@certs.command("crl")
@click.pass_context
def crl(ctx: click.Context) -> None:
    """Re-sign the CRL (fresh thisUpdate/nextUpdate); run it before nextUpdate passes."""
    click.echo(str(qtsp.publish_crl(settings_of(ctx).data_dir)))


@certs.command("show")
@click.argument("cert_file", type=click.Path(path_type=Path, exists=True, dir_okay=False))
def show(cert_file: Path) -> None:
    """Print what a QWAC/QSealC says about its TPP (organizationIdentifier, roles, NCA)."""
    try:
        cert = parse_certificate(cert_file.read_bytes())
    except CertificateError as exc:
        raise click.ClickException(f"{exc.reason}: {exc.message}") from None
    click.echo(f"organizationIdentifier  {cert.organization_identifier}")
    click.echo(f"organization            {cert.organization_name}")
    click.echo(f"roles                   {', '.join(sorted(r.name for r in cert.roles)) or '-'}")
    click.echo(f"NCA                     {cert.nca_name} ({cert.nca_id})")
    click.echo(f"QcType                  {', '.join(sorted(t.name for t in cert.qc_types))}")
    click.echo(f"valid                   {cert.not_before:%Y-%m-%d} .. {cert.not_after:%Y-%m-%d}")
    click.echo(f"x5t#S256                {cert.thumbprint_s256}")
