"""Operational endpoints: liveness, readiness, and a TPP's view of its own certificate.

``/health/live`` answers from the event loop alone — no database, no thread — so it says
whether the worker's loop is serving. The database probe of ``/health/ready`` and the
certificate validation of ``/tpp/certificate`` run on the blocking pool
(`stetgate.serving.blocking`), never on the loop.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine, text
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from stetgate.eidas import CertificateError
from stetgate.services import services_of
from stetgate.store.db import read_connection


async def live(request: Request) -> JSONResponse:
    """Alive when the event loop answers: touches neither the database nor the pool."""
    return JSONResponse({"status": "ok"})


async def ready(request: Request) -> JSONResponse:
    """Ready when the database answers (a load balancer takes the worker out otherwise)."""
    services = services_of(request)
    try:
        await services.blocking.run(_probe, services.engine)
    except Exception as exc:
        return JSONResponse({"status": "unavailable", "database": type(exc).__name__}, 503)
    return JSONResponse({"status": "ok", "database": "ok"})


async def certificate_check(request: Request) -> JSONResponse:
    """How the bank sees the caller's client certificate: identity, roles, and whether it
    passes validation (chain, validity, CRL). Only ever describes the caller's own
    certificate, so it discloses nothing the caller does not already hold."""
    services = services_of(request)
    body: dict[str, Any] = {"presented": False, "valid": False}
    try:
        cert = services.tpp_identity.presented(request.scope)
    except CertificateError as exc:
        body.update(presented=True, error=exc.reason, error_description=exc.message)
        return JSONResponse(body)
    if cert is None:
        return JSONResponse(body)
    body.update(
        presented=True,
        organization_identifier=cert.organization_identifier,
        organization_name=cert.organization_name,
        roles=sorted(r.name for r in cert.roles),
        nca_id=cert.nca_id,
        thumbprint_s256=cert.thumbprint_s256,
        not_after=cert.not_after.isoformat(),
    )
    validator, now = services.tpp_identity.validator, services.clock.now()
    try:
        if validator.cached(cert, "qwac", now) is None:
            await services.blocking.run(validator.validate, cert, "qwac", now)
    except CertificateError as exc:
        body.update(error=exc.reason, error_description=exc.message)
    else:
        body["valid"] = True
    return JSONResponse(body, headers={"Cache-Control": "no-store"})


def _probe(engine: Engine) -> None:
    """One round trip on the read-write engine's pool (blocking: on the pool)."""
    with read_connection(engine) as conn:
        conn.execute(text("SELECT 1"))


def routes() -> list[Route]:
    return [
        Route("/health/live", live, methods=["GET"]),
        Route("/health/ready", ready, methods=["GET"]),
        Route("/tpp/certificate", certificate_check, methods=["GET"]),
    ]
