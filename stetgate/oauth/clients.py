"""TPP clients and their certificates (the client store).

Two registration paths (docs/decisions.md#client-identification; step 4 of
docs/decisions.md#the-cinematic): Go-Live, where the operator adds the client and ``client_id``
**is** the organizationIdentifier, and the API register (`stetgate.registry` API), where
``client_id`` is opaque and linked to the organizationIdentifier of the certificates given at
registration.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, RowMapping, delete, insert, select, update

from stetgate.eidas import Psd2Certificate, parse_certificate
from stetgate.store.schema import client_certificates, clients

CLIENT_ACTIVE = "active"
CLIENT_SUSPENDED = "suspended"
ORIGIN_GOLIVE = "golive"
ORIGIN_REGISTER = "register"


@dataclass(frozen=True)
class StoredCertificate:
    kind: str  # qwac | qsealc
    pem: str
    thumbprint: str
    serial_hex: str
    issuer_dn: str
    kid: str | None
    url: str | None
    not_after: datetime


@dataclass(frozen=True)
class Client:
    client_id: str
    org_id: str
    name: str
    origin: str  # golive | register
    status: str
    redirect_uris: tuple[str, ...]
    require_pkce: bool
    contacts: tuple[str, ...]
    grant_types: tuple[str, ...]
    response_types: tuple[str, ...]
    certificates: tuple[StoredCertificate, ...]
    created_at: datetime
    updated_at: datetime

    @property
    def active(self) -> bool:
        return self.status == CLIENT_ACTIVE

    def certificates_of(self, kind: str) -> tuple[StoredCertificate, ...]:
        return tuple(c for c in self.certificates if c.kind == kind)


@dataclass(frozen=True, slots=True)
class CertifiedOrganization:
    """Who a client is by its eIDAS certificate, not by the name it chose: the subject's
    organizationName (its legal name) and organizationIdentifier (ETSI TS 119 495 §5.1)."""

    legal_name: str
    organization_identifier: str


def certified_organization(client: Client) -> CertifiedOrganization | None:
    """The organization of the client's registered QWAC that expires last, or None for a
    Go-Live client added without certificates. The consent page shows it beside the client
    name, which any TPP picks (a look-alike name cannot borrow another TPP's legal identity).
    Read from the stored certificate itself, so it always matches the certificate the token
    endpoint binds to; `parse_certificate` caches the parse."""
    qwacs = sorted(client.certificates_of("qwac"), key=lambda c: c.not_after)
    if not qwacs:
        return None
    cert = parse_certificate(qwacs[-1].pem.encode("ascii"))
    return CertifiedOrganization(cert.organization_name, cert.organization_identifier)


def golive_client(
    org_id: str,
    name: str,
    redirect_uris: Sequence[str],
    now: datetime,
    *,
    certificates: Sequence[StoredCertificate] = (),
    require_pkce: bool = False,
    grant_types: Sequence[str] = ("authorization_code", "refresh_token"),
) -> Client:
    """A client added by the operator (the old BPCE "Go Live" procedure): its ``client_id``
    **is** the organizationIdentifier of its certificates (docs/decisions.md#go-live-clients)."""
    return Client(
        client_id=org_id,
        org_id=org_id,
        name=name,
        origin=ORIGIN_GOLIVE,
        status=CLIENT_ACTIVE,
        redirect_uris=tuple(redirect_uris),
        require_pkce=require_pkce,
        contacts=(),
        grant_types=tuple(grant_types),
        response_types=("code",),
        certificates=tuple(certificates),
        created_at=now,
        updated_at=now,
    )


class DuplicateClient(ValueError):
    """A client with this id or name already exists."""


def stored_certificate(
    kind: str, cert: Psd2Certificate, *, kid: str | None = None, url: str | None = None
) -> StoredCertificate:
    from cryptography.hazmat.primitives.serialization import Encoding
    from cryptography.x509 import load_der_x509_certificate

    pem = load_der_x509_certificate(cert.der).public_bytes(Encoding.PEM).decode()
    return StoredCertificate(
        kind=kind,
        pem=pem,
        thumbprint=cert.thumbprint_s256,
        serial_hex=cert.serial_hex,
        issuer_dn=cert.issuer_dn,
        kid=kid or cert.thumbprint_s256,
        url=url,
        not_after=cert.not_after,
    )


def get_client(conn: Connection, client_id: str) -> Client | None:
    row = conn.execute(select(clients).where(clients.c.client_id == client_id)).mappings().first()
    if row is None:
        return None
    certs = (
        conn.execute(
            select(client_certificates)
            .where(client_certificates.c.client_id == client_id)
            .order_by(client_certificates.c.id)
        )
        .mappings()
        .all()
    )
    return _client_from_rows(row, certs)


def list_clients(conn: Connection) -> list[Client]:
    rows = conn.execute(select(clients).order_by(clients.c.created_at)).mappings().all()
    certs = (
        conn.execute(select(client_certificates).order_by(client_certificates.c.id))
        .mappings()
        .all()
    )
    by_client: dict[str, list[RowMapping]] = {}
    for cert in certs:
        by_client.setdefault(cert["client_id"], []).append(cert)
    return [_client_from_rows(row, by_client.get(row["client_id"], [])) for row in rows]


def _client_from_rows(row: RowMapping, certs: Sequence[RowMapping]) -> Client:
    r = row
    return Client(
        client_id=r["client_id"],
        org_id=r["org_id"],
        name=r["name"],
        origin=r["origin"],
        status=r["status"],
        redirect_uris=tuple(r["redirect_uris"] or ()),
        require_pkce=bool(r["require_pkce"]),
        contacts=tuple(r["contacts"] or ()),
        grant_types=tuple(r["grant_types"] or ()),
        response_types=tuple(r["response_types"] or ()),
        certificates=tuple(
            StoredCertificate(
                kind=c["kind"],
                pem=c["pem"],
                thumbprint=c["thumbprint"],
                serial_hex=c["serial_hex"],
                issuer_dn=c["issuer_dn"],
                kid=c["kid"],
                url=c["url"],
                not_after=c["not_after"],
            )
            for c in certs
        ),
        created_at=r["created_at"],
        updated_at=r["updated_at"],
    )


def insert_client(conn: Connection, client: Client) -> None:
    """Insert a client and its certificates; raises DuplicateClient on id or name clash."""
    clash = conn.execute(
        select(clients.c.client_id).where(
            (clients.c.client_id == client.client_id) | (clients.c.name == client.name)
        )
    ).first()
    if clash is not None:
        raise DuplicateClient(
            f"a client with id {client.client_id!r} or name {client.name!r} exists"
        )
    conn.execute(
        insert(clients).values(
            client_id=client.client_id,
            org_id=client.org_id,
            name=client.name,
            origin=client.origin,
            status=client.status,
            redirect_uris=list(client.redirect_uris),
            require_pkce=client.require_pkce,
            contacts=list(client.contacts),
            grant_types=list(client.grant_types),
            response_types=list(client.response_types),
            created_at=client.created_at,
            updated_at=client.updated_at,
        )
    )
    replace_certificates(conn, client.client_id, client.certificates, client.created_at)


def replace_certificates(
    conn: Connection, client_id: str, certificates: Sequence[StoredCertificate], now: datetime
) -> None:
    conn.execute(delete(client_certificates).where(client_certificates.c.client_id == client_id))
    for cert in certificates:
        conn.execute(
            insert(client_certificates).values(
                client_id=client_id,
                kind=cert.kind,
                pem=cert.pem,
                thumbprint=cert.thumbprint,
                serial_hex=cert.serial_hex,
                issuer_dn=cert.issuer_dn,
                kid=cert.kid,
                url=cert.url,
                not_after=cert.not_after,
                created_at=now,
            )
        )


def set_status(conn: Connection, client_id: str, status: str, now: datetime) -> bool:
    result = conn.execute(
        update(clients)
        .where(clients.c.client_id == client_id)
        .values(status=status, updated_at=now)
    )
    return result.rowcount > 0


def touch_client(conn: Connection, client_id: str, now: datetime) -> None:
    """Record that the client changed (its certificates, say)."""
    conn.execute(update(clients).where(clients.c.client_id == client_id).values(updated_at=now))


def delete_client(conn: Connection, client_id: str) -> bool:
    conn.execute(delete(client_certificates).where(client_certificates.c.client_id == client_id))
    return conn.execute(delete(clients).where(clients.c.client_id == client_id)).rowcount > 0


def set_redirect_uris(
    conn: Connection, client_id: str, redirect_uris: Sequence[str], now: datetime
) -> bool:
    """Replace the client's redirect URIs (checked by the caller); False when no such client."""
    result = conn.execute(
        update(clients)
        .where(clients.c.client_id == client_id)
        .values(redirect_uris=list(redirect_uris), updated_at=now)
    )
    return result.rowcount > 0


def add_redirect_uris(
    conn: Connection, client_id: str, redirect_uris: Sequence[str], now: datetime
) -> bool:
    """Add the URIs the client lacks (kept in order, nothing removed); True when it changed.
    For set-up code whose URIs are fixed by the product (the sandbox's demo TPP), not for
    user input: it does not apply the register API's URI rules."""
    client = get_client(conn, client_id)
    if client is None:
        return False
    missing = [uri for uri in redirect_uris if uri not in client.redirect_uris]
    if not missing:
        return False
    return set_redirect_uris(conn, client_id, [*client.redirect_uris, *missing], now)
