"""The demo bank as a core-banking service: `DemoBank` behind the contract ``/core-banking/v1``
(`stetgate.bank_http.contract`, ``stetgate/bank_http/openapi.yaml``), run by
``stetgate demo-bank serve``.

It is what a bank's own core-banking facade would be to stetgate, so the gateway can run with
``bank_url`` against a separate process — the deployment of a real bank — and the contract
tests can compare it with the in-process `DemoBank` call for call. It reads the same ``bank_*``
tables (any database stetgate supports), read-only.

A bare ASGI application rather than a Starlette one: on the reference box the service shares
the two cores with the gateway in the HttpBank benchmark, and a framework router plus anyio's
thread hop cost more than the database read itself (~500 µs against ~85 µs a call). Endpoints
are plain synchronous functions run on a small thread pool of the service's own
(``loop.run_in_executor``), so a slow database never stalls the loop; each answer echoes
``X-Request-ID`` and every access is logged with it. Authentication is the transport's: run it
behind TLS with a required client certificate (``--client-ca``) outside a laptop.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import date
from decimal import Decimal, InvalidOperation
from urllib.parse import parse_qsl, unquote

from pydantic import ValidationError
from starlette.types import Receive, Scope, Send

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
MAX_BODY = 16 * 1024
THREADS = 4


class _BadRequest(ValueError):
    pass


@dataclass(frozen=True, slots=True)
class Call:
    """One request, as the endpoints need it: path parameters (decoded), the query's pairs,
    the request id to echo, the body."""

    method: str
    path_params: dict[str, str]
    query: list[tuple[str, str]]
    request_id: str | None
    body: bytes = b""

    def get(self, name: str) -> str | None:
        for key, value in self.query:
            if key == name:
                return value
        return None

    def getlist(self, name: str) -> list[str]:
        return [value for key, value in self.query if key == name]


@dataclass(frozen=True, slots=True)
class Answer:
    status: int
    body: bytes


@dataclass(frozen=True, slots=True)
class ServiceRoute:
    """``path`` is the contract's template (``{accountId}`` may hold a "/", percent-encoded
    or not)."""

    method: str
    path: str
    endpoint: Callable[[Call], Answer]
    pattern: re.Pattern[str]


def _route(method: str, path: str, endpoint: Callable[[Call], Answer]) -> ServiceRoute:
    regex = re.sub(
        r"\{(\w+)\}",
        lambda m: f"(?P<{m[1]}>.+)" if m[1] == "accountId" else f"(?P<{m[1]}>[^/]+)",
        path,
    )
    return ServiceRoute(method, path, endpoint, re.compile(f"^{regex}$"))


def _problem(status: int, error: ProblemCode, message: str) -> Answer:
    return Answer(status, dump(ProblemModel(error=error, message=message)))


def _int(call: Call, name: str, default: int | None = None) -> int | None:
    raw = call.get(name)
    if raw is None:
        return default
    if not raw.isdigit() or len(raw) > 18:
        raise _BadRequest(f"{name} must be a non-negative integer")
    return int(raw)


def _date(call: Call, name: str) -> date | None:
    raw = call.get(name)
    if raw is None:
        return None
    try:
        return date.fromisoformat(raw)
    except ValueError:
        raise _BadRequest(f"{name} must be a date (YYYY-MM-DD)") from None


class BankService:
    """The contract's endpoints over a `DemoBank`, as an ASGI application."""

    def __init__(self, bank: DemoBank) -> None:
        self.bank = bank
        self._routes = self.routes()
        self._threads = ThreadPoolExecutor(THREADS, thread_name_prefix="demo-bank")

    def routes(self) -> list[ServiceRoute]:
        psu = "/psus/{psuId}"
        account = psu + "/accounts/{accountId}"
        return [
            _route("GET", "/health", self.health),
            _route("GET", psu + "/accounts", self.accounts),
            _route("GET", psu + "/balances", self.balances),
            _route("GET", account + "/transactions", self.transactions),
            _route("GET", psu + "/identity", self.identity),
            _route("GET", psu + "/trusted-beneficiaries", self.beneficiaries),
            _route("POST", account + "/funds-checks", self.funds),
        ]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await _lifespan(receive, send, self._threads)
            return
        if scope["type"] != "http":
            return
        request_id = _request_id(scope)
        answer = await self._answer(scope, receive, request_id)
        headers = [(b"content-type", JSON.encode()), (b"cache-control", b"no-store")]
        headers.append((b"content-length", str(len(answer.body)).encode()))
        if request_id is not None:
            headers.append((b"x-request-id", request_id.encode()))
        await send({"type": "http.response.start", "status": answer.status, "headers": headers})
        await send({"type": "http.response.body", "body": answer.body})

    async def _answer(self, scope: Scope, receive: Receive, request_id: str | None) -> Answer:
        path: str = scope["path"]
        if not path.startswith(VERSION_PREFIX + "/"):
            return _problem(404, "bad_request", "no such resource")
        raw_path = scope.get("raw_path") or path.encode()
        tail = raw_path.decode("latin-1").split("?", 1)[0][len(VERSION_PREFIX) :]
        method: str = scope["method"]
        allowed = False
        for route in self._routes:
            found = route.pattern.match(tail)
            if found is None:
                continue
            if route.method != method:
                allowed = True
                continue
            body = await _body(receive)
            if body is None:
                return _problem(413, "bad_request", "body too large")
            query = parse_qsl(scope["query_string"].decode("latin-1"), keep_blank_values=True)
            params = {key: unquote(value) for key, value in found.groupdict().items()}
            call = Call(method, params, query, request_id, body)
            loop = asyncio.get_running_loop()
            return await loop.run_in_executor(self._threads, self._guarded, route, call)
        if allowed:
            return _problem(405, "bad_request", "method not allowed")
        return _problem(404, "bad_request", "no such resource")

    def _guarded(self, route: ServiceRoute, call: Call) -> Answer:
        name = route.endpoint.__name__
        try:
            answer = route.endpoint(call)
        except _BadRequest as exc:
            answer = _problem(400, "bad_request", str(exc))
        except Exception:
            logger.exception("%s failed (X-Request-ID %s)", name, call.request_id or "-")
            answer = _problem(500, "internal", "internal error")
        if logger.isEnabledFor(logging.INFO):
            logger.info(
                "%s %s %d (X-Request-ID %s)",
                call.method,
                name,
                answer.status,
                call.request_id or "-",
            )
        return answer

    # --- endpoints --------------------------------------------------------------------------
    def health(self, call: Call) -> Answer:
        return Answer(200, b'{"status":"ok"}')

    def accounts(self, call: Call) -> Answer:
        psu_id = call.path_params["psuId"]
        wanted = set(call.getlist("balancesFor"))
        listing = self.bank.accounts_with_balances(psu_id, wanted)
        return Answer(200, dump(AccountList(accounts=[AccountModel.of(a, b) for a, b in listing])))

    def balances(self, call: Call) -> Answer:
        psu_id = call.path_params["psuId"]
        found = self.bank.balances_of(psu_id, call.getlist("accountId"))
        return Answer(200, dump(balances_answer(found)))

    def transactions(self, call: Call) -> Answer:
        limit = _int(call, "limit", 50)
        assert limit is not None
        if not 1 <= limit <= MAX_PAGE:
            raise _BadRequest(f"limit must be 1-{MAX_PAGE}")
        query = TransactionQuery(
            booked_from=_date(call, "bookedFrom"),
            booked_before=_date(call, "bookedBefore"),
            after_entry=_int(call, "afterEntry"),
            up_to_entry=_int(call, "upToEntry"),
            offset=_int(call, "offset", 0) or 0,
            limit=limit,
        )
        try:
            page = self.bank.transactions_of(
                call.path_params["psuId"], call.path_params["accountId"], query
            )
        except UnknownAccount:
            return _problem(404, "unknown_account", "no such account for this PSU")
        return Answer(200, dump(TransactionPageModel.of(page)))

    def identity(self, call: Call) -> Answer:
        identity = self.bank.identity_of(call.path_params["psuId"])
        if identity is None:
            return _problem(404, "unknown_psu", "no such PSU")
        return Answer(200, dump(IdentityModel(connected_psu=identity.connected_psu)))

    def beneficiaries(self, call: Call) -> Answer:
        found = self.bank.trusted_beneficiaries_of(call.path_params["psuId"])
        return Answer(
            200,
            dump(BeneficiaryList(beneficiaries=[BeneficiaryModel.of(b) for b in found])),
        )

    def funds(self, call: Call) -> Answer:
        try:
            wanted = FundsCheckRequest.model_validate_json(call.body)
            amount = Decimal(wanted.amount)
        except (ValidationError, InvalidOperation):
            raise _BadRequest("the body must be {amount, currency}") from None
        try:
            available = self.bank.funds_available(
                call.path_params["psuId"],
                call.path_params["accountId"],
                amount,
                wanted.currency,
            )
        except UnknownAccount:
            return _problem(404, "unknown_account", "no such account for this PSU")
        except CurrencyMismatch as exc:
            return _problem(422, "currency_mismatch", str(exc))
        return Answer(200, dump(FundsCheckAnswer(available=available)))


def _request_id(scope: Scope) -> str | None:
    for name, value in scope["headers"]:
        if name == b"x-request-id":
            text = value.decode("latin-1")
            return text if text.isprintable() and len(text) <= 100 else None
    return None


async def _body(receive: Receive) -> bytes | None:
    """The request body, or None past `MAX_BODY`."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return b""
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > MAX_BODY:
            return None
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


async def _lifespan(receive: Receive, send: Send, threads: ThreadPoolExecutor) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            threads.shutdown(wait=False, cancel_futures=True)
            await send({"type": "lifespan.shutdown.complete"})
            return


def bank_service_app(bank: DemoBank) -> BankService:
    """The ASGI app: the contract under its versioned prefix."""
    return BankService(bank)


def service_from_environment() -> BankService:
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
