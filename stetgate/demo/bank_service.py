"""The demo bank as a core-banking service: `DemoBank` behind the contract ``/core-banking/v1``
(`stetgate.bank_http.contract`, ``stetgate/bank_http/openapi.yaml``), run by
``stetgate demo-bank serve``.

It is what a bank's own core-banking facade would be to stetgate, so the gateway can run with
``bank_url`` against a separate process — the deployment of a real bank — and the contract
tests can compare it with the in-process `DemoBank` call for call. It reads the same ``bank_*``
tables (any database stetgate supports), read-only.

Endpoints are plain synchronous functions (Starlette runs them on its thread pool); each
answer echoes ``X-Request-ID`` and every access is logged with it. Authentication is the
transport's: run it behind TLS with a required client certificate (``--client-ca``) outside a
laptop.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from datetime import date
from decimal import Decimal, InvalidOperation

from pydantic import ValidationError
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Mount, Route

from stetgate.bank.backend import CurrencyMismatch, TransactionQuery, UnknownAccount
from stetgate.bank_http.contract import (
    JSON,
    VERSION_PREFIX,
    AccountList,
    AccountModel,
    BeneficiaryList,
    BeneficiaryModel,
    FundsCheckAnswer,
    FundsCheckRequest,
    IdentityModel,
    ProblemCode,
    ProblemModel,
    TransactionPageModel,
    balances_answer,
    dump,
)
from stetgate.demo.bank import DemoBank

logger = logging.getLogger("stetgate.demo.bank_service")

MAX_PAGE = 500


class _BadRequest(ValueError):
    pass


def _json(request: Request, body: bytes, status: int = 200) -> Response:
    headers = {"Cache-Control": "no-store"}
    request_id = request.headers.get("x-request-id")
    if request_id is not None and request_id.isprintable() and len(request_id) <= 100:
        headers["X-Request-ID"] = request_id
    return Response(body, status_code=status, media_type=JSON, headers=headers)


def _problem(request: Request, status: int, error: ProblemCode, message: str) -> Response:
    return _json(request, dump(ProblemModel(error=error, message=message)), status)


def _int(request: Request, name: str, default: int | None = None) -> int | None:
    raw = request.query_params.get(name)
    if raw is None:
        return default
    if not raw.isdigit() or len(raw) > 18:
        raise _BadRequest(f"{name} must be a non-negative integer")
    return int(raw)


def _date(request: Request, name: str) -> date | None:
    raw = request.query_params.get(name)
    if raw is None:
        return None
    try:
        return date.fromisoformat(raw)
    except ValueError:
        raise _BadRequest(f"{name} must be a date (YYYY-MM-DD)") from None


class BankService:
    """The contract's endpoints over a `DemoBank`."""

    def __init__(self, bank: DemoBank) -> None:
        self.bank = bank

    def _endpoint(
        self, handler: Callable[[Request, bytes], Response]
    ) -> Callable[[Request], Awaitable[Response]]:
        name = handler.__name__

        def guarded(request: Request, body: bytes) -> Response:
            request_id = request.headers.get("x-request-id", "-")
            try:
                response = handler(request, body)
            except _BadRequest as exc:
                response = _problem(request, 400, "bad_request", str(exc))
            except Exception:
                logger.exception("%s failed (X-Request-ID %s)", name, request_id)
                response = _problem(request, 500, "internal", "internal error")
            logger.info(
                "%s %s %d (X-Request-ID %s)", request.method, name, response.status_code, request_id
            )
            return response

        async def endpoint(request: Request) -> Response:
            body = await request.body()
            return await run_in_threadpool(guarded, request, body)

        return endpoint

    def routes(self) -> list[Route]:
        psu = "/psus/{psuId}"
        account = psu + "/accounts/{accountId:path}"
        return [
            Route("/health", self._endpoint(self.health), methods=["GET"]),
            Route(psu + "/accounts", self._endpoint(self.accounts), methods=["GET"]),
            Route(psu + "/balances", self._endpoint(self.balances), methods=["GET"]),
            Route(account + "/transactions", self._endpoint(self.transactions), methods=["GET"]),
            Route(psu + "/identity", self._endpoint(self.identity), methods=["GET"]),
            Route(
                psu + "/trusted-beneficiaries",
                self._endpoint(self.beneficiaries),
                methods=["GET"],
            ),
            Route(account + "/funds-checks", self._endpoint(self.funds), methods=["POST"]),
        ]

    # --- endpoints --------------------------------------------------------------------------
    def health(self, request: Request, _body: bytes) -> Response:
        return _json(request, b'{"status":"ok"}')

    def accounts(self, request: Request, _body: bytes) -> Response:
        psu_id = request.path_params["psuId"]
        wanted = set(request.query_params.getlist("balancesFor"))
        listing = self.bank.accounts_with_balances(psu_id, wanted)
        return _json(
            request, dump(AccountList(accounts=[AccountModel.of(a, b) for a, b in listing]))
        )

    def balances(self, request: Request, _body: bytes) -> Response:
        psu_id = request.path_params["psuId"]
        found = self.bank.balances_of(psu_id, request.query_params.getlist("accountId"))
        return _json(request, dump(balances_answer(found)))

    def transactions(self, request: Request, _body: bytes) -> Response:
        limit = _int(request, "limit", 50)
        assert limit is not None
        if not 1 <= limit <= MAX_PAGE:
            raise _BadRequest(f"limit must be 1-{MAX_PAGE}")
        query = TransactionQuery(
            booked_from=_date(request, "bookedFrom"),
            booked_before=_date(request, "bookedBefore"),
            after_entry=_int(request, "afterEntry"),
            up_to_entry=_int(request, "upToEntry"),
            offset=_int(request, "offset", 0) or 0,
            limit=limit,
        )
        try:
            page = self.bank.transactions_of(
                request.path_params["psuId"], request.path_params["accountId"], query
            )
        except UnknownAccount:
            return _problem(request, 404, "unknown_account", "no such account for this PSU")
        return _json(request, dump(TransactionPageModel.of(page)))

    def identity(self, request: Request, _body: bytes) -> Response:
        identity = self.bank.identity_of(request.path_params["psuId"])
        if identity is None:
            return _problem(request, 404, "unknown_psu", "no such PSU")
        return _json(request, dump(IdentityModel(connected_psu=identity.connected_psu)))

    def beneficiaries(self, request: Request, _body: bytes) -> Response:
        found = self.bank.trusted_beneficiaries_of(request.path_params["psuId"])
        return _json(
            request,
            dump(BeneficiaryList(beneficiaries=[BeneficiaryModel.of(b) for b in found])),
        )

    def funds(self, request: Request, body: bytes) -> Response:
        try:
            wanted = FundsCheckRequest.model_validate_json(body)
            amount = Decimal(wanted.amount)
        except (ValidationError, InvalidOperation):
            raise _BadRequest("the body must be {amount, currency}") from None
        try:
            available = self.bank.funds_available(
                request.path_params["psuId"],
                request.path_params["accountId"],
                amount,
                wanted.currency,
            )
        except UnknownAccount:
            return _problem(request, 404, "unknown_account", "no such account for this PSU")
        except CurrencyMismatch as exc:
            return _problem(request, 422, "currency_mismatch", str(exc))
        return _json(request, dump(FundsCheckAnswer(available=available)))


def bank_service_app(bank: DemoBank) -> Starlette:
    """The ASGI app: the contract under its versioned prefix."""
    return Starlette(routes=[Mount(VERSION_PREFIX, routes=BankService(bank).routes())])


def service_from_environment() -> Starlette:
    """Factory for ``stetgate demo-bank serve`` workers: the database of the ``STETGATE_*``
    settings, read-only, with the serving statement timeouts."""
    from stetgate.settings import load_settings
    from stetgate.store.db import Timeouts, make_engine, require_migrated
    from stetgate.store.reading import read_only_engine

    settings = load_settings()
    timeouts = Timeouts(
        statement_ms=settings.db_statement_timeout_ms, lock_ms=settings.db_lock_timeout_ms
    )
    engine = make_engine(settings.resolved_database_url, settings.db_pool_size, timeouts)
    require_migrated(engine)
    return bank_service_app(DemoBank(read_only_engine(engine, settings.db_pool_size, timeouts)))


__all__ = ["BankService", "bank_service_app", "service_from_environment"]
