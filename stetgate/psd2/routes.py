"""The STET resource API under ``/stet/psd2/v1.4.2``: routes, and one error boundary.

`StetApi` is a small ASGI app mounted at the base path. Every endpoint goes through the same
steps — ``X-Request-ID`` (400), ``Accept`` (406), ``Content-Type`` of a body (415), the call
checks of `stetgate.psd2.callers` (401/403), then the operation — and everything that goes
wrong below the base path, routing included (404 unknown path, 405 method), is answered with
the STET error body and the request's ``X-Request-ID``. An unexpected exception becomes a 500
STET body; the log line names the exception type and the request, never a header value. A
database statement or lock timeout becomes a 503 with ``Retry-After`` (nothing was changed); so
does a failure of the core-banking backend (`stetgate.bank.failures`), a 504 when it timed out
— logged and audited with the request's ``X-Request-ID``, the backend's detail never shown.

Everything an operation waits on — token and seal lookups, consents, the bank backend's reads,
the unattended-access counter — runs in one synchronous function per call, off the event loop
(`stetgate.serving.blocking`): one thread hop per API call.
"""

from __future__ import annotations

import json
import logging
import re
import traceback
from collections.abc import Awaitable, Callable
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Mount, Route, Router
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from stetgate.bank.failures import BankFailure, BankTimeout
from stetgate.bank.request_context import serving_request
from stetgate.oauth.scopes import AISP, CBPII
from stetgate.psd2.aisp import AccountInformation
from stetgate.psd2.callers import ApiCaller, CallAuthenticator, request_target
from stetgate.psd2.cbpii import FundsConfirmation
from stetgate.psd2.consents import parse_consent_request, replace_consent, resolve_consent
from stetgate.psd2.errors import (
    HAL_JSON,
    BadRequest,
    GatewayTimeout,
    InternalError,
    MethodNotAllowed,
    NotFound,
    PayloadTooLarge,
    ServiceUnavailable,
    StetError,
    stet_error_response,
)
from stetgate.psd2.limits import limiter_for
from stetgate.psd2.paging import PagingTokens, paging_key
from stetgate.psd2.representations import BASE_PATH, hal_response
from stetgate.psd2.request_headers import (
    header_map,
    require_acceptable,
    require_json_body,
    require_request_id,
)
from stetgate.services import Services
from stetgate.serving.database_outage import log_unavailable
from stetgate.serving.middleware import BodyTooLarge
from stetgate.serving.request_id import REQUEST_ID_HEADER, request_id_of
from stetgate.store.audit import record_event
from stetgate.store.audit_events import PSD2_BANK_UNAVAILABLE, PSD2_CONSENT_REPLACED
from stetgate.store.db import RETRY_AFTER_SECONDS, DatabaseTimeout, DatabaseUnavailable

logger = logging.getLogger("stetgate.psd2")

OPENAPI_FILE = Path(__file__).with_name("openapi.json")

Operation = Callable[[Request, ApiCaller, bytes, datetime], Response]
"""An operation gets the request, its authenticated caller, the body and the request's instant."""


def _json_body(body: bytes) -> Any:
    def refuse_constant(name: str) -> Any:
        raise ValueError(name)

    try:
        return json.loads(body, parse_constant=refuse_constant)
    except (ValueError, UnicodeDecodeError):
        raise BadRequest("the body is not valid JSON") from None


class StetApi:
    """ASGI app of the resource API (mount it at `BASE_PATH`)."""

    def __init__(self, services: Services) -> None:
        bank = services.bank
        self.services = services
        self.calls = CallAuthenticator(services, services.read_engine)
        self.aisp = AccountInformation(
            bank=bank,
            paging=PagingTokens(paging_key(services.keys.pseudonym_key)),
            limiter=limiter_for(services.settings, services.engine),
            timezone=ZoneInfo(services.settings.unattended_timezone),
        )
        self.funds = FundsConfirmation(bank)
        self.bank = bank
        self._openapi = OPENAPI_FILE.read_bytes()
        self.router = Router(
            redirect_slashes=False,
            routes=[
                Route("/accounts", self._endpoint(AISP, self._accounts), methods=["GET"]),
                # ":path": the STET id pattern allows "/" (sent as %2F, decoded by the server)
                Route(
                    "/accounts/{accountResourceId:path}/balances",
                    self._endpoint(AISP, self._balances),
                    methods=["GET"],
                ),
                Route(
                    "/accounts/{accountResourceId:path}/transactions",
                    self._endpoint(AISP, self._transactions),
                    methods=["GET"],
                ),
                Route(
                    "/consents", self._endpoint(AISP, self._consents, body=True), methods=["PUT"]
                ),
                Route("/end-user-identity", self._endpoint(AISP, self._identity), methods=["GET"]),
                Route(
                    "/trusted-beneficiaries",
                    self._endpoint(AISP, self._beneficiaries),
                    methods=["GET"],
                ),
                Route(
                    "/funds-confirmations",
                    self._endpoint(CBPII, self._funds, body=True),
                    methods=["POST"],
                ),
                Route("/openapi.json", self._openapi_document, methods=["GET"]),
            ],
        )

    # --- ASGI -------------------------------------------------------------------------------
    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.router(scope, receive, send)
            return
        started = False

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.router(scope, receive, tracking_send)
        except HTTPException as exc:
            error: StetError
            if exc.status_code == 405:
                error = MethodNotAllowed(
                    f"method {scope.get('method')} is not allowed here", headers=exc.headers
                )
            else:
                error = NotFound("no such resource in the STET v1.4.2 API")
            await self._render(scope, error)(scope, receive, send)
        except BodyTooLarge:
            raise  # answered 413 in the STET format by the size limit (`too_large_answer`)
        except Exception as exc:
            # Frames and exception type only: a message may quote SQL parameters or PSU data.
            logger.error(
                "unexpected %s on %s %s (X-Request-ID %s)\n%s",
                type(exc).__name__,
                scope.get("method"),
                scope.get("path"),
                request_id_of(Request(scope).headers),
                "".join(traceback.format_tb(exc.__traceback__)),
            )
            if started:
                raise
            await self._render(
                scope,
                InternalError("internal error; the bank has logged it with your X-Request-ID"),
            )(scope, receive, send)

    def _render(self, scope: Scope, error: StetError) -> Response:
        request = Request(scope)
        return stet_error_response(
            error,
            path=request.url.path,
            request_id=request_id_of(request.headers),
            now=self.services.clock.now(),
        )

    def _endpoint(
        self, role: str, operation: Operation, *, body: bool = False
    ) -> Callable[[Request], Awaitable[Response]]:
        async def endpoint(request: Request) -> Response:
            try:
                headers = header_map(request.scope["headers"])
                request_id = require_request_id(headers)
                require_acceptable(headers)
                content = await request.body()
                if body:
                    require_json_body(headers)
                now = self.services.clock.now()

                def authenticated_operation() -> Response:
                    caller = self.calls.authenticate(
                        request, headers, content, role=role, request_id=request_id, now=now
                    )
                    # The bank adapter forwards the request id (`stetgate.bank.request_context`).
                    with serving_request(request_id):
                        try:
                            return operation(request, caller, content, now)
                        except BankFailure as failure:
                            self._audit_bank_failure(caller, failure, now)
                            raise

                # Token, seal and consent lookups, the bank's reads, the unattended-access
                # counter: one hop off the event loop for the whole call.
                return await self.services.blocking.run(authenticated_operation)
            except StetError as exc:
                return self._render(request.scope, exc)
            except BankFailure as failure:
                return self._render(request.scope, self._bank_failure(request, failure))
            except DatabaseUnavailable as exc:
                log_unavailable(request.scope, exc)
                return self._render(
                    request.scope,
                    ServiceUnavailable(
                        "the bank's systems did not answer in time; nothing was changed, retry "
                        "later"
                        if isinstance(exc, DatabaseTimeout)
                        else "the bank's systems are unavailable; retry later",
                        headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
                    ),
                )

        return endpoint

    # --- core-banking failures ----------------------------------------------------------------
    def _bank_failure(self, request: Request, failure: BankFailure) -> StetError:
        """504 for a timeout, 503 otherwise, both retryable; the reason goes to the log (with
        the X-Request-ID), never to the TPP."""
        logger.warning(
            "core banking failed on %s %s: %s %s (X-Request-ID %s)",
            request.method,
            request.url.path,
            type(failure).__name__,
            failure.reason,
            request_id_of(request.headers),
        )
        retry = {"Retry-After": str(RETRY_AFTER_SECONDS)}
        if isinstance(failure, BankTimeout):
            return GatewayTimeout(
                "the bank's systems did not answer in time; nothing was changed, retry later",
                headers=retry,
            )
        return ServiceUnavailable(
            "the bank's systems are unavailable; nothing was changed, retry later", headers=retry
        )

    def _audit_bank_failure(self, caller: ApiCaller, failure: BankFailure, now: datetime) -> None:
        """The audit event of a failed call (its own transaction: the call changed nothing).
        A failure to write it is logged, not raised: the TPP's answer stays the 503/504."""
        try:
            with self.services.engine.begin() as conn:
                record_event(
                    conn,
                    now,
                    PSD2_BANK_UNAVAILABLE,
                    client_id=caller.client_id,
                    org_id=caller.org_id,
                    psu_id=caller.psu_id,
                    request_id=caller.request_id,
                    reason=f"{type(failure).__name__}: {failure.reason}",
                )
        except Exception as exc:
            logger.error(
                "could not audit a core-banking failure: %s (X-Request-ID %s)",
                type(exc).__name__,
                caller.request_id,
            )

    # --- operations -------------------------------------------------------------------------
    @staticmethod
    def _self_href(request: Request) -> str:
        """The request's own path and query, as sent (still percent-encoded)."""
        return request_target(request)

    def _accounts(
        self, request: Request, caller: ApiCaller, _body: bytes, now: datetime
    ) -> Response:
        return hal_response(
            self.aisp.accounts(caller, request.query_params, self._self_href(request), now),
            caller.request_id,
        )

    def _balances(
        self, request: Request, caller: ApiCaller, _body: bytes, now: datetime
    ) -> Response:
        return hal_response(
            self.aisp.balances(caller, request.path_params["accountResourceId"], now),
            caller.request_id,
        )

    def _transactions(
        self, request: Request, caller: ApiCaller, _body: bytes, now: datetime
    ) -> Response:
        return hal_response(
            self.aisp.transactions(
                caller,
                request.path_params["accountResourceId"],
                request.query_params,
                self._self_href(request),
                now,
            ),
            caller.request_id,
        )

    def _identity(
        self, request: Request, caller: ApiCaller, _body: bytes, now: datetime
    ) -> Response:
        return hal_response(self.aisp.end_user_identity(caller, now), caller.request_id)

    def _beneficiaries(
        self, request: Request, caller: ApiCaller, _body: bytes, now: datetime
    ) -> Response:
        return hal_response(
            self.aisp.trusted_beneficiaries(
                caller, request.query_params, self._self_href(request), now
            ),
            caller.request_id,
        )

    def _consents(
        self, request: Request, caller: ApiCaller, body: bytes, now: datetime
    ) -> Response:
        """STET ``PUT /consents``: replace the consent of (PSU, organization); 201, no body."""
        wanted = parse_consent_request(_json_body(body))
        consent = resolve_consent(wanted, self.bank.accounts_of(caller.psu_id))
        with self.services.engine.begin() as conn:
            replace_consent(conn, caller.psu_id, caller.org_id, consent, now)
            record_event(
                conn,
                now,
                PSD2_CONSENT_REPLACED,
                client_id=caller.client_id,
                org_id=caller.org_id,
                psu_id=caller.psu_id,
                request_id=caller.request_id,
                detail={
                    "balances": len(consent.balances),
                    "transactions": len(consent.transactions),
                    "trustedBeneficiaries": consent.trusted_beneficiaries,
                    "psuIdentity": consent.psu_identity,
                },
            )
        return Response(
            status_code=201,
            headers={REQUEST_ID_HEADER: caller.request_id, "Cache-Control": "no-store"},
        )

    def _funds(self, request: Request, caller: ApiCaller, body: bytes, now: datetime) -> Response:
        return hal_response(self.funds.confirm(caller, _json_body(body)), caller.request_id)

    async def _openapi_document(self, request: Request) -> Response:
        return Response(self._openapi, media_type="application/json")


def too_large_answer(services: Services) -> Callable[[Scope], Response]:
    """The resource API's 413: the STET error body with the request's X-Request-ID, for the
    body-size limit (`stetgate.serving.middleware.BodySizeLimit`)."""

    def answer(scope: Scope) -> Response:
        request = Request(scope)
        return stet_error_response(
            PayloadTooLarge(
                f"the body is larger than {services.settings.max_body_bytes} bytes; nothing was "
                "read further"
            ),
            path=request.url.path,
            request_id=request_id_of(request.headers),
            now=services.clock.now(),
        )

    return answer


class _WholePrefix(Mount):
    """A mount that takes every path under its prefix. Starlette's pattern for the rest of the
    path is ``.*``, which stops at a newline: a resource id with an encoded ``%0A`` fell out of
    the API to the app's plain-text 404 instead of the STET error body (found by
    scripts/fuzz.py)."""

    def __init__(self, path: str, app: ASGIApp) -> None:
        super().__init__(path, app=app)
        self.path_regex = re.compile(self.path_regex.pattern, re.DOTALL)


def routes(services: Services) -> list[BaseRoute]:
    """The resource API, served by the bank backend of ``services``."""
    return [_WholePrefix(BASE_PATH, StetApi(services))]


__all__ = ["BASE_PATH", "HAL_JSON", "StetApi", "routes", "too_large_answer"]
