"""HTTP endpoints of the register API (BPCE "API register", RFC 7591 / RFC 7592 style).

``POST /stet/setting/v1/register`` (bearer: registration token, mTLS QWAC it is bound to,
signed with the QSealC of the body) and ``GET``/``PUT``/``DELETE
/stet/setting/v1/register/{client_id}`` (bearer: the ``registration_access_token``, mTLS QWAC of
the owning organization; ``PUT`` signed like ``POST``). The handlers only translate HTTP:
authenticate, read the body, call the rules (:mod:`metadata_rules`, :mod:`signed_requests`)
and then act in one transaction (:mod:`registrations`), so a refused request changes nothing
but an audit row saying why. ``X-Request-ID`` is required and echoed on every response.

Nothing waits on the event loop (`stetgate.serving.blocking`): each step's database and
certificate work is one hop to the blocking pool — authentication (token lookup and QWAC
validation; for DELETE, the deletion too), then, once the body is read on the loop and its
signature checked, the QSealC's validation when it is new, and the transaction; a refusal's
audit row is one more. A database statement or lock timeout is 503 ``temporarily_unavailable``
with ``Retry-After``, nothing changed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route
from starlette.types import Scope

from stetgate.eidas import CertificateError, Psd2Certificate
from stetgate.oauth.clients import ORIGIN_REGISTER, Client
from stetgate.oauth.errors import NO_STORE
from stetgate.registry.errors import (
    ForeignRegistration,
    InvalidClientMetadata,
    InvalidRequest,
    InvalidToken,
    PayloadTooLarge,
    RegistrationError,
    TemporarilyUnavailable,
    UnsupportedMediaType,
    registration_error_response,
)
from stetgate.registry.metadata_rules import (
    ClientMetadata,
    SealKey,
    client_metadata_of,
    parse_json_object,
    seal_key_of,
)
from stetgate.registry.registration_token import find_registration_token
from stetgate.registry.registrations import (
    REGISTER_PATH,
    NewRegistration,
    client_by_registration_token,
    client_information,
    create_registration,
    registration_client_uri,
    remove_registration,
    replace_registration,
)
from stetgate.registry.signed_requests import (
    SealSignature,
    require_trusted_seal,
    verify_registration_signature,
)
from stetgate.services import Services, services_of
from stetgate.serving.database_outage import log_unavailable
from stetgate.serving.request_id import (
    REQUEST_ID_HEADER,
    REQUEST_ID_MAX_LENGTH,
    request_id_of,
    request_id_sent,
)
from stetgate.store.audit import record_event
from stetgate.store.audit_events import (
    CLIENT_REGISTERED,
    CLIENT_REGISTRATION_DELETED,
    CLIENT_REGISTRATION_REFUSED,
    CLIENT_REGISTRATION_UPDATED,
)
from stetgate.store.db import DatabaseTimeout, DatabaseUnavailable, read_connection

MAX_REGISTER_BODY_BYTES = 32 * 1024
"""A QSealC with its chain is a few kB; 32 KiB leaves room and bounds JSON parsing work."""
_BEARER = re.compile(r"Bearer +([A-Za-z0-9\-._~+/]+=*)", re.IGNORECASE)
"""RFC 6750 §2.1 ``b64token``."""


@dataclass(frozen=True, slots=True)
class _Caller:
    """An authenticated caller: the QWAC of the session and the bearer token it presented."""

    qwac: Psd2Certificate
    bearer: str


@dataclass(frozen=True, slots=True)
class _SignedMetadata:
    metadata: ClientMetadata
    seal: SealKey
    signature: SealSignature
    document: dict[str, Any]


def routes() -> list[BaseRoute]:
    return [
        Route(REGISTER_PATH, register_client, methods=["POST"]),
        Route(
            REGISTER_PATH + "/{client_id}", manage_registration, methods=["GET", "PUT", "DELETE"]
        ),
    ]


async def register_client(request: Request) -> Response:
    """RFC 7591 §3.1 client registration; 201 with the client information (§3.2.1)."""
    services = services_of(request)
    now = services.clock.now()
    request_id = request_id_of(request.headers)
    caller: _Caller | None = None
    try:
        request_id = _require_request_id(request, request_id)
        caller = await services.blocking.run(_registration_token_caller, request, services, now)
        signed = await _signed_metadata(request, services, caller.qwac, now)
        created = await services.blocking.run(
            _create, services, signed, caller.qwac, now, request_id
        )
    except RegistrationError as exc:
        return await _refused(request, services, now, exc, request_id, caller)
    except DatabaseUnavailable as exc:
        return _unavailable(request, exc, request_id)
    body = client_information(created.client, created.registration_access_token, services.issuer)
    return _json(
        body,
        201,
        request_id,
        location=registration_client_uri(services.issuer, created.client.client_id),
    )


async def manage_registration(request: Request) -> Response:
    """RFC 7592 §2: read (GET), replace (PUT) or delete (DELETE) one registration."""
    services = services_of(request)
    now = services.clock.now()
    request_id = request_id_of(request.headers)
    caller: _Caller | None = None
    method = request.method

    def authenticate_then_delete(request_id: str) -> Client:
        """One hop: authenticate the caller; for DELETE, then delete the registration."""
        nonlocal caller
        caller, client = _registration_access_caller(request, services, now)
        if method == "DELETE":
            _delete(services, client, now, request_id)
        return client

    try:
        request_id = _require_request_id(request, request_id)
        client = await services.blocking.run(authenticate_then_delete, request_id)
        authenticated = _authenticated(caller)
        if method == "DELETE":
            return Response(status_code=204, headers={**NO_STORE, REQUEST_ID_HEADER: request_id})
        if method in ("GET", "HEAD"):
            return _json(
                client_information(client, authenticated.bearer, services.issuer), 200, request_id
            )
        signed = await _signed_metadata(request, services, authenticated.qwac, now)
        _require_same_client_id(signed.document, client)
        updated = await services.blocking.run(
            _replace, services, client, signed, authenticated.qwac, now, request_id
        )
    except RegistrationError as exc:
        return await _refused(request, services, now, exc, request_id, caller)
    except DatabaseUnavailable as exc:
        return _unavailable(request, exc, request_id)
    return _json(
        client_information(updated, authenticated.bearer, services.issuer), 200, request_id
    )


def _authenticated(caller: _Caller | None) -> _Caller:
    """The caller `_registration_access_caller` set (it raises when there is none)."""
    if caller is None:
        raise RuntimeError("no authenticated caller after authentication")
    return caller


# --------------------------------------------------------------------------- transactions
# Each runs on the blocking pool (`stetgate.serving.blocking`), in one transaction.


def _create(
    services: Services,
    signed: _SignedMetadata,
    qwac: Psd2Certificate,
    now: datetime,
    request_id: str,
) -> NewRegistration:
    with services.engine.begin() as conn:
        created = create_registration(
            conn,
            metadata=signed.metadata,
            seal=signed.seal,
            signature=signed.signature,
            qwac=qwac,
            now=now,
        )
        record_event(
            conn,
            now,
            CLIENT_REGISTERED,
            client_id=created.client.client_id,
            org_id=created.client.org_id,
            request_id=request_id,
            detail={"name": created.client.name},
        )
    return created


def _replace(
    services: Services,
    client: Client,
    signed: _SignedMetadata,
    qwac: Psd2Certificate,
    now: datetime,
    request_id: str,
) -> Client:
    with services.engine.begin() as conn:
        updated = replace_registration(
            conn,
            client,
            metadata=signed.metadata,
            seal=signed.seal,
            signature=signed.signature,
            qwac=qwac,
            now=now,
        )
        record_event(
            conn,
            now,
            CLIENT_REGISTRATION_UPDATED,
            client_id=client.client_id,
            org_id=client.org_id,
            request_id=request_id,
            detail={
                "name": updated.name,
                "qwac": qwac.thumbprint_s256,
                "qsealc": signed.seal.certificate.thumbprint_s256,
            },
        )
    return updated


def _delete(services: Services, client: Client, now: datetime, request_id: str) -> None:
    with services.engine.begin() as conn:
        revoked = remove_registration(conn, client, now)
        record_event(
            conn,
            now,
            CLIENT_REGISTRATION_DELETED,
            client_id=client.client_id,
            org_id=client.org_id,
            request_id=request_id,
            detail={"revoked_pairs": revoked},
        )


# --------------------------------------------------------------------------- authentication


def _registration_token_caller(request: Request, services: Services, now: datetime) -> _Caller:
    """POST: the registration token, used over the very QWAC it was issued to (RFC 8705 §3).
    A token of another organization is 403; the same organization over another certificate
    (e.g. a renewed QWAC) is 401 ``invalid_token`` — get a new token with it. Blocking (the
    token lookup, then the QWAC's validation when it is not cached): run it on the pool."""
    bearer = _bearer(request)
    with read_connection(services.engine) as conn:
        token = find_registration_token(conn, bearer, now)
    if token is None:
        raise InvalidToken(
            "the registration token is unknown or expired; get one with "
            "grant_type=client_credentials and scope=manageRegistration",
            reason="unknown_token",
        )
    qwac = _session_qwac(request, services, now)
    if token.org_id != qwac.organization_identifier:
        raise ForeignRegistration(
            "the registration token was issued to another organization",
            reason="token_of_other_organization",
        )
    if token.cnf != qwac.thumbprint_s256:
        raise InvalidToken(
            "the registration token is bound to another certificate "
            "(RFC 8705 §3): use the QWAC it was issued to",
            reason="certificate_binding_mismatch",
        )
    return _Caller(qwac=qwac, bearer=bearer)


def _registration_access_caller(
    request: Request, services: Services, now: datetime
) -> tuple[_Caller, Client]:
    """GET/PUT/DELETE: the registration access token of *this* client (RFC 7592 §3) and a
    QWAC of the organization that owns it. The token is not bound to one certificate, so a
    TPP can rotate its QWAC with PUT. Blocking, like `_registration_token_caller`."""
    bearer = _bearer(request)
    client_id = request.path_params["client_id"]
    with read_connection(services.engine) as conn:
        client = client_by_registration_token(conn, bearer)
    if client is None or client.client_id != client_id or client.origin != ORIGIN_REGISTER:
        raise InvalidToken(
            "the registration access token is not valid for this client (RFC 7592 §2)",
            reason="unknown_token",
        )
    qwac = _session_qwac(request, services, now)
    if qwac.organization_identifier != client.org_id:
        raise ForeignRegistration(
            "this registration belongs to another organization",
            reason="registration_of_other_organization",
        )
    return _Caller(qwac=qwac, bearer=bearer), client


def _bearer(request: Request) -> str:
    values = request.headers.getlist("authorization")
    if not values:
        raise InvalidToken(
            "an Authorization: Bearer token is required (RFC 6750 §2.1)",
            reason="no_token",
            presented=False,
        )
    match = _BEARER.fullmatch(values[0].strip()) if len(values) == 1 else None
    if match is None:
        raise InvalidToken(
            "the Authorization header must be one 'Bearer <token>' (RFC 6750 §2.1)",
            reason="malformed_authorization",
        )
    return match.group(1)


def _session_qwac(request: Request, services: Services, now: datetime) -> Psd2Certificate:
    """The validated QWAC of the TLS session (`TppIdentity.authenticate`: a cache lookup for a
    known certificate, path validation for a new one — in the thread of the token lookup that
    precedes it, so the step stays one hop)."""
    try:
        return services.tpp_identity.authenticate(request.scope, now, "qwac")
    except CertificateError as exc:
        raise InvalidToken(
            f"the token must be used over mutual TLS with a valid QWAC "
            f"(RFC 8705 §3): {exc.message}",
            reason=exc.reason,
        ) from None


# --------------------------------------------------------------------------- body


async def _signed_metadata(
    request: Request, services: Services, qwac: Psd2Certificate, now: datetime
) -> _SignedMetadata:
    """Read the body, prove it with the QSealC it carries, then check its metadata and the
    QSealC's trust. The signature comes first: the rest of the body is only worth reading
    once it is known to come from the holder of the seal."""
    body = await _json_body(request, services)
    document = parse_json_object(body)
    seal = seal_key_of(document)
    signature = verify_registration_signature(
        request.method,
        _request_target(request),
        request.headers.items(),
        body,
        seal,
        now=now,
        max_skew_seconds=services.settings.signature_max_skew_seconds,
    )
    metadata = client_metadata_of(document)
    await require_trusted_seal(seal, qwac, services.tpp_identity.validator, now, services.blocking)
    return _SignedMetadata(metadata=metadata, seal=seal, signature=signature, document=document)


async def _json_body(request: Request, services: Services) -> bytes:
    """RFC 7591 §3.1: ``application/json`` (415 otherwise), at most the register limit (413)."""
    media_type, _, params = request.headers.get("content-type", "").partition(";")
    charset = params.strip().lower().replace(" ", "")
    if media_type.strip().lower() != "application/json" or charset not in (
        "",
        "charset=utf-8",
        'charset="utf-8"',
    ):
        raise UnsupportedMediaType(
            "the body must be application/json (UTF-8), RFC 7591 §3.1",
            reason="unsupported_media_type",
        )
    limit = min(MAX_REGISTER_BODY_BYTES, services.settings.max_body_bytes)
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise _too_large(limit)
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise _too_large(limit)
        chunks.append(chunk)
    return b"".join(chunks)


def too_large_answer(scope: Scope) -> Response:
    """The register API's 413 for the body-size limit in front of it
    (`stetgate.serving.middleware.BodySizeLimit`): RFC 7591 §3.2.2 body, X-Request-ID echoed
    as on every register answer."""
    request = Request(scope)
    limit = services_of(request).settings.max_body_bytes
    return registration_error_response(_too_large(limit), request_id_of(request.headers))


def _too_large(limit: int) -> PayloadTooLarge:
    return PayloadTooLarge(f"the body is larger than {limit} bytes", reason="body_too_large")


def _request_target(request: Request) -> str:
    """The request target as received (draft-cavage-12 §2.3: not re-encoded)."""
    raw = request.scope.get("raw_path") or request.scope["path"].encode("utf-8")
    target: str = raw.decode("latin-1")
    query: bytes = request.scope.get("query_string") or b""
    return f"{target}?{query.decode('latin-1')}" if query else target


def _require_same_client_id(document: dict[str, Any], client: Client) -> None:
    """RFC 7592 §2.2: a ``client_id`` in the body must be the one in the URL."""
    sent = document.get("client_id")
    if sent is not None and sent != client.client_id:
        raise InvalidClientMetadata(
            "client_id in the body differs from the one in the URL (RFC 7592 §2.2)",
            reason="client_id_mismatch",
        )


def _require_request_id(request: Request, request_id: str | None) -> str:
    """``request_id`` is what `request_id_of` read: None when the header is missing or
    malformed. Either way the answer is 400 ``invalid_request`` without an ``X-Request-ID``
    (a malformed value is never echoed, nor written to the audit trail)."""
    if request_id is not None:
        return request_id
    raise InvalidRequest(
        f"{REQUEST_ID_HEADER} is required: 1-{REQUEST_ID_MAX_LENGTH} visible ASCII characters, "
        "e.g. a UUID",
        reason="malformed_request_id" if request_id_sent(request.headers) else "missing_request_id",
    )


# --------------------------------------------------------------------------- responses


def _json(
    body: dict[str, Any], status: int, request_id: str, *, location: str | None = None
) -> JSONResponse:
    headers = {**NO_STORE, REQUEST_ID_HEADER: request_id}
    if location:
        headers["Location"] = location
    return JSONResponse(body, status_code=status, headers=headers)


async def _refused(
    request: Request,
    services: Services,
    now: datetime,
    exc: RegistrationError,
    request_id: str | None,
    caller: _Caller | None,
) -> JSONResponse:
    """Render the error and record why the request was refused (the audit row is the only
    write a refused request makes; one hop to the blocking pool). Before authentication, the
    organization is read from the presented certificate when it parses — identity only, it
    says nothing about trust. ``request_id`` is well formed or None (`request_id_of`), so it
    is safe to echo."""
    if caller is not None:
        org_id: str | None = caller.qwac.organization_identifier
    else:
        try:
            presented = services.tpp_identity.presented(request.scope)
        except CertificateError:
            presented = None
        org_id = presented.organization_identifier if presented else None
    client_id = request.path_params.get("client_id")
    try:
        await services.blocking.run(
            _audit_refusal,
            services,
            now,
            exc,
            client_id=client_id[:100] if client_id else None,
            org_id=org_id,
            request_id=request_id,
            method=request.method,
        )
    except DatabaseUnavailable as outage:
        return _unavailable(request, outage, request_id)
    return registration_error_response(exc, request_id)


def _audit_refusal(
    services: Services,
    now: datetime,
    exc: RegistrationError,
    *,
    client_id: str | None,
    org_id: str | None,
    request_id: str | None,
    method: str,
) -> None:
    with services.engine.begin() as conn:
        record_event(
            conn,
            now,
            CLIENT_REGISTRATION_REFUSED,
            client_id=client_id,
            org_id=org_id,
            request_id=request_id,
            reason=exc.reason,
            detail={"method": method, "status": exc.status_code},
        )


def _unavailable(
    request: Request, exc: DatabaseUnavailable, request_id: str | None
) -> JSONResponse:
    """A database statement or lock timeout, or an unreachable database: 503, nothing
    half-written, nothing audited; the request's one log line."""
    log_unavailable(request.scope, exc)
    return registration_error_response(
        TemporarilyUnavailable(
            exc.public_description,
            reason="database_timeout" if isinstance(exc, DatabaseTimeout) else "database_down",
        ),
        request_id,
    )


__all__ = ["MAX_REGISTER_BODY_BYTES", "manage_registration", "register_client", "routes"]
