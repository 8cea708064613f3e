"""Registrations made through the register API: create, read, replace, remove (storage side).

Each function runs inside the caller's transaction and checks what only the database can tell
(the ``client_name`` is free, the client still exists) *before* writing, so a refused change
writes nothing (docs/decisions.md#errors). The client store itself is
:mod:`stetgate.oauth.clients`; this module adds what is specific to API registrations:
the opaque ``client_id`` linked to the organizationIdentifier, the hashed
``registration_access_token`` (RFC 7592 §3) and the client information response (RFC 7591
§3.2.1).
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicKey
from cryptography.hazmat.primitives.serialization import Encoding
from sqlalchemy import Connection, select, update
from sqlalchemy.exc import IntegrityError

from stetgate.eidas import Psd2Certificate
from stetgate.oauth.clients import (
    CLIENT_ACTIVE,
    ORIGIN_REGISTER,
    Client,
    DuplicateClient,
    StoredCertificate,
    delete_client,
    get_client,
    insert_client,
    replace_certificates,
    stored_certificate,
)
from stetgate.oauth.token_pairs import revoke_all_for_client
from stetgate.registry.client_metadata_policy import name_taken, require_free_name
from stetgate.registry.errors import InvalidToken
from stetgate.registry.metadata_rules import TLS_CLIENT_AUTH, ClientMetadata, SealKey
from stetgate.registry.signed_requests import SealSignature
from stetgate.secrets import new_id, new_secret, secret_hash
from stetgate.store.schema import clients

REGISTER_PATH = "/stet/setting/v1/register"
REGISTRATION_DELETED = "registration_deleted"
"""``grants.revoked_reason`` of the pairs of a client deleted through the register API."""


@dataclass(frozen=True, slots=True)
class NewRegistration:
    client: Client
    registration_access_token: str


def create_registration(
    conn: Connection,
    *,
    metadata: ClientMetadata,
    seal: SealKey,
    signature: SealSignature,
    qwac: Psd2Certificate,
    now: datetime,
) -> NewRegistration:
    """Insert a new ``register`` client for the organization of ``qwac``, keeping the QWAC of
    the session and the QSealC of the body as its certificates; raise InvalidClientMetadata
    when the name is taken or looks like another organization's."""
    require_free_name(
        conn, metadata.client_name, org_id=qwac.organization_identifier, except_client_id=None
    )
    token = new_secret()
    client = Client(
        client_id=new_id(),
        org_id=qwac.organization_identifier,
        name=metadata.client_name,
        origin=ORIGIN_REGISTER,
        status=CLIENT_ACTIVE,
        redirect_uris=metadata.redirect_uris,
        require_pkce=metadata.require_pkce,
        contacts=metadata.contacts,
        grant_types=metadata.grant_types,
        response_types=metadata.response_types,
        certificates=_certificates(qwac, seal, signature),
        created_at=now,
        updated_at=now,
    )
    try:
        insert_client(conn, client)
    except (DuplicateClient, IntegrityError):
        # IntegrityError: a concurrent registration took the name between check and insert.
        raise name_taken(metadata.client_name) from None
    conn.execute(
        update(clients)
        .where(clients.c.client_id == client.client_id)
        .values(registration_token_hash=secret_hash(token))
    )
    return NewRegistration(client=client, registration_access_token=token)


def replace_registration(
    conn: Connection,
    client: Client,
    *,
    metadata: ClientMetadata,
    seal: SealKey,
    signature: SealSignature,
    qwac: Psd2Certificate,
    now: datetime,
) -> Client:
    """RFC 7592 §2.2: the new metadata replaces the old one entirely; the QWAC of this session
    and the QSealC of the body replace the stored certificates (certificate rotation)."""
    require_free_name(
        conn, metadata.client_name, org_id=client.org_id, except_client_id=client.client_id
    )
    changed = conn.execute(
        update(clients)
        .where(clients.c.client_id == client.client_id)
        .values(
            name=metadata.client_name,
            redirect_uris=list(metadata.redirect_uris),
            require_pkce=metadata.require_pkce,
            contacts=list(metadata.contacts),
            grant_types=list(metadata.grant_types),
            response_types=list(metadata.response_types),
            updated_at=now,
        )
    )
    if changed.rowcount == 0:
        raise _gone()
    replace_certificates(conn, client.client_id, _certificates(qwac, seal, signature), now)
    updated = get_client(conn, client.client_id)
    if updated is None:
        raise LookupError(f"client {client.client_id} vanished inside its own update")
    return updated


def remove_registration(conn: Connection, client: Client, now: datetime) -> int:
    """RFC 7592 §2.3: delete the client and make every token issued to it unusable at once;
    returns how many token pairs were revoked."""
    revoked = revoke_all_for_client(conn, client.client_id, now, reason=REGISTRATION_DELETED)
    if not delete_client(conn, client.client_id):
        raise _gone()
    return revoked


def client_by_registration_token(conn: Connection, token: str) -> Client | None:
    """The ``register`` client whose registration access token this is (lookup by hash)."""
    client_id = conn.execute(
        select(clients.c.client_id).where(clients.c.registration_token_hash == secret_hash(token))
    ).scalar()
    return None if client_id is None else get_client(conn, client_id)


def client_information(
    client: Client, registration_access_token: str, issuer: str
) -> dict[str, Any]:
    """RFC 7591 §3.2.1 / RFC 7592 §3 client information response."""
    body: dict[str, Any] = {
        "client_id": client.client_id,
        "client_id_issued_at": int(client.created_at.timestamp()),
        "client_name": client.name,
        "redirect_uris": list(client.redirect_uris),
        "token_endpoint_auth_method": TLS_CLIENT_AUTH,
        "grant_types": list(client.grant_types),
        "response_types": list(client.response_types),
        "contacts": list(client.contacts),
        "require_pkce": client.require_pkce,
        "jwks": {"keys": [_jwk(c) for c in client.certificates_of("qsealc")]},
        "registration_access_token": registration_access_token,
        "registration_client_uri": registration_client_uri(issuer, client.client_id),
    }
    return body


def registration_client_uri(issuer: str, client_id: str) -> str:
    return f"{issuer}{REGISTER_PATH}/{client_id}"


def _certificates(
    qwac: Psd2Certificate, seal: SealKey, signature: SealSignature
) -> tuple[StoredCertificate, ...]:
    return (
        stored_certificate("qwac", qwac),
        stored_certificate(
            "qsealc", seal.certificate, kid=seal.effective_kid, url=signature.certificate_url
        ),
    )


def _gone() -> InvalidToken:
    """RFC 7592 §2: a client that no longer exists (deleted by a concurrent request) answers
    401, as an unknown registration access token does."""
    return InvalidToken(
        "the registration no longer exists (RFC 7592 §2)", reason="registration_gone"
    )


def _jwk(certificate: StoredCertificate) -> dict[str, Any]:
    cert = x509.load_pem_x509_certificate(certificate.pem.encode("ascii"))
    key = cert.public_key()
    if not isinstance(key, RSAPublicKey):
        raise TypeError("a registered QSealC holds an RSA key (metadata_rules checks it)")
    numbers = key.public_numbers()
    der = cert.public_bytes(Encoding.DER)
    jwk: dict[str, Any] = {
        "kty": "RSA",
        "use": "sig",
        "alg": "RS256",
        "kid": certificate.kid,
        "n": _b64url(numbers.n),
        "e": _b64url(numbers.e),
        "x5c": [base64.b64encode(der).decode("ascii")],
    }
    if certificate.url:
        jwk["x5u"] = certificate.url
    return jwk


def _b64url(value: int) -> str:
    raw = value.to_bytes((value.bit_length() + 7) // 8, "big")
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")
