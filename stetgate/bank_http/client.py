"""`HttpBank`: the bank ports (`stetgate.bank.backend.BankBackend`) over the core-banking
contract ``/core-banking/v1`` (``openapi.yaml``; docs/bank-integration.md).

Synchronous on purpose, with one thread-safe `httpx.Client` per adapter (a bounded pool of
keep-alive connections): the ports are synchronous and stetgate calls them off the event loop,
on the bounded blocking pool, in the one thread hop each API call makes
(`stetgate.serving.blocking`, `stetgate.psd2.routes`). So a slow or hung backend holds a pool
thread — never the event loop: ``/health/live`` and every other request of the worker go on.

What each call gets, in order:

- the circuit breaker (`stetgate.bank_http.breaker`): while open, fail at once;
- one time budget (``bank_timeout_ms``) for the whole call, retries included; each attempt
  gets what is left of it;
- retries only for GET (idempotent and safe, RFC 9110 §9.2.1-§9.2.2), on a connection failure
  or a 502/503/504, after a full-jitter exponential backoff (``backoff × 2^n × U(0,1)``), never
  past the budget. The funds check is a POST and is never retried; a TLS verification failure
  is never retried (it will not heal in milliseconds);
- ``X-Request-ID`` of the API call being served (`stetgate.bank.request_context`; a fresh
  UUID when there is none), ``Accept: application/json``, and the bearer token of the
  client-credentials grant when configured (`stetgate.bank_http.auth`; one re-try after a
  401 with a fresh token);
- strict answers: the status the contract defines, ``Content-Type: application/json``, the
  JSON shape of `stetgate.bank_http.contract` (required members, types, amount formats), and a
  transaction page that is exactly the page asked for.

Every failure is a `BankUnavailable` or `BankTimeout` (`stetgate.bank.failures`) with a short
reason free of PSU data; the business answers of the contract become the port's own
exceptions (`UnknownAccount`, `CurrencyMismatch`) or empty results.
"""

from __future__ import annotations

import logging
import random
import ssl
import time
import uuid
from collections.abc import Callable, Collection, Mapping, Sequence
from decimal import Decimal
from typing import TypeVar
from urllib.parse import quote, urlencode

import httpx
from pydantic import BaseModel, ValidationError

from stetgate.bank.backend import (
    Account,
    Balance,
    Beneficiary,
    CurrencyMismatch,
    EndUserIdentity,
    TransactionPage,
    TransactionQuery,
    UnknownAccount,
)
from stetgate.bank.failures import BankFailure, BankTimeout, BankUnavailable
from stetgate.bank.request_context import current_request_id
from stetgate.bank_http.auth import ClientCredentials
from stetgate.bank_http.breaker import CircuitBreaker
from stetgate.bank_http.contract import (
    JSON,
    VERSION_PREFIX,
    AccountList,
    BalancesAnswer,
    BeneficiaryList,
    FundsCheckAnswer,
    FundsCheckRequest,
    IdentityModel,
    ProblemModel,
    TransactionPageModel,
    dump,
)
from stetgate.observability.metrics import timed_backend_call

logger = logging.getLogger("stetgate.bank_http")

M = TypeVar("M", bound=BaseModel)
_T = TypeVar("_T")

RETRYABLE_STATUSES = frozenset({502, 503, 504})
"""Gateway and availability errors: the request was not processed (RFC 9110 §15.6)."""


def _segment(value: str) -> str:
    """A path segment: everything percent-encoded, "/" included (account ids may hold one)."""
    return quote(value, safe="")


class HttpBank:
    """`BankBackend` over HTTP: see the module docstring."""

    def __init__(
        self,
        http: httpx.Client,
        *,
        timeout: float = 2.0,
        retries: int = 2,
        backoff: float = 0.05,
        breaker: CircuitBreaker | None = None,
        credentials: ClientCredentials | None = None,
        random_fraction: Callable[[], float] = random.random,
        sleep: Callable[[float], None] = time.sleep,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.http = http
        self.timeout = timeout
        self.retries = retries
        self.backoff = backoff
        self.breaker = breaker or CircuitBreaker(5, 10.0)
        self.credentials = credentials
        self._fraction = random_fraction
        self._sleep = sleep
        self._monotonic = monotonic

    def close(self) -> None:
        self.http.close()

    # --- AccountDirectory ----------------------------------------------------------------
    def accounts_of(self, psu_id: str) -> Sequence[Account]:
        return [account for account, _ in self._accounts(psu_id, ())]

    def accounts_with_balances(
        self, psu_id: str, balance_accounts: Collection[str]
    ) -> Sequence[tuple[Account, Sequence[Balance] | None]]:
        return self._accounts(psu_id, balance_accounts)

    def _accounts(
        self, psu_id: str, balance_accounts: Collection[str]
    ) -> list[tuple[Account, Sequence[Balance] | None]]:
        wanted = sorted(balance_accounts)

        def read(response: httpx.Response) -> list[tuple[Account, Sequence[Balance] | None]]:
            listing = _parse(response, AccountList)
            result: list[tuple[Account, Sequence[Balance] | None]] = []
            for item in listing.accounts:
                account = _convert(item.value)
                balances: Sequence[Balance] | None = None
                if account.resource_id in balance_accounts:
                    if item.balances is None:
                        raise BankUnavailable("invalid answer: balances missing")
                    balances = [_convert(b.value) for b in item.balances]
                result.append((account, balances))
            return result

        return self._call(
            "accounts",
            "GET",
            f"/psus/{_segment(psu_id)}/accounts",
            read,
            params=[("balancesFor", account_id) for account_id in wanted],
        )

    # --- BalanceSource -------------------------------------------------------------------
    def balances_of(
        self, psu_id: str, account_ids: Collection[str]
    ) -> Mapping[str, Sequence[Balance]]:
        if not account_ids:
            return {}
        asked = set(account_ids)

        def read(response: httpx.Response) -> Mapping[str, Sequence[Balance]]:
            answer = _parse(response, BalancesAnswer)
            if not set(answer.balances) <= asked:
                raise BankUnavailable("invalid answer: balances of accounts not asked for")
            return {
                key: [_convert(b.value) for b in value] for key, value in answer.balances.items()
            }

        return self._call(
            "balances",
            "GET",
            f"/psus/{_segment(psu_id)}/balances",
            read,
            params=[("accountId", account_id) for account_id in sorted(asked)],
        )

    # --- TransactionSource ---------------------------------------------------------------
    def transactions_of(
        self, psu_id: str, account_id: str, query: TransactionQuery
    ) -> TransactionPage:
        params: list[tuple[str, str]] = [("offset", str(query.offset)), ("limit", str(query.limit))]
        if query.booked_from is not None:
            params.append(("bookedFrom", query.booked_from.isoformat()))
        if query.booked_before is not None:
            params.append(("bookedBefore", query.booked_before.isoformat()))
        if query.after_entry is not None:
            params.append(("afterEntry", str(query.after_entry)))
        if query.up_to_entry is not None:
            params.append(("upToEntry", str(query.up_to_entry)))

        def read(response: httpx.Response) -> TransactionPage:
            _business_error(response, account_id)
            page = _parse(response, TransactionPageModel)
            return _convert(lambda: page.value(query.offset, query.limit))

        return self._call(
            "transactions",
            "GET",
            f"/psus/{_segment(psu_id)}/accounts/{_segment(account_id)}/transactions",
            read,
            params=params,
        )

    # --- IdentitySource ------------------------------------------------------------------
    def identity_of(self, psu_id: str) -> EndUserIdentity | None:
        def read(response: httpx.Response) -> EndUserIdentity | None:
            if response.status_code == 404 and _problem(response).error == "unknown_psu":
                return None
            return _convert(_parse(response, IdentityModel).value)

        return self._call("identity", "GET", f"/psus/{_segment(psu_id)}/identity", read)

    # --- BeneficiarySource ---------------------------------------------------------------
    def trusted_beneficiaries_of(self, psu_id: str) -> Sequence[Beneficiary]:
        def read(response: httpx.Response) -> Sequence[Beneficiary]:
            listing = _parse(response, BeneficiaryList)
            return [_convert(b.value) for b in listing.beneficiaries]

        return self._call(
            "beneficiaries", "GET", f"/psus/{_segment(psu_id)}/trusted-beneficiaries", read
        )

    # --- FundsChecker --------------------------------------------------------------------
    def funds_available(self, psu_id: str, account_id: str, amount: Decimal, currency: str) -> bool:
        body = dump(FundsCheckRequest(amount=format(amount, "f"), currency=currency))

        def read(response: httpx.Response) -> bool:
            _business_error(response, account_id)
            return _parse(response, FundsCheckAnswer).available

        return self._call(
            "funds",
            "POST",
            f"/psus/{_segment(psu_id)}/accounts/{_segment(account_id)}/funds-checks",
            read,
            content=body,
        )

    # --- one call: breaker, budget, retries ------------------------------------------------
    @timed_backend_call(answers=(UnknownAccount, CurrencyMismatch))
    def _call(
        self,
        operation: str,
        method: str,
        path: str,
        read: Callable[[httpx.Response], _T],
        *,
        params: list[tuple[str, str]] | None = None,
        content: bytes | None = None,
    ) -> _T:
        self.breaker.admit()
        request_id = current_request_id() or str(uuid.uuid4())
        try:
            # The query is encoded here, once: httpx's own ``params`` merging costs ~100 µs a
            # call on the hot path (measured: GET /accounts with three balancesFor ids).
            target = VERSION_PREFIX + path + ("?" + urlencode(params) if params else "")
            response = self._exchange(method, target, content, request_id)
            try:
                result = read(response)
            finally:
                response.close()
        except BankFailure as failure:
            self.breaker.failed()
            logger.warning(
                "core banking %s failed: %s (X-Request-ID %s)",
                operation,
                failure.reason,
                request_id,
            )
            raise
        except (UnknownAccount, CurrencyMismatch):
            self.breaker.succeeded()
            raise
        except Exception:
            self.breaker.failed()  # never leave a half-open probe hanging
            raise
        self.breaker.succeeded()
        return result

    def _exchange(
        self,
        method: str,
        target: str,
        content: bytes | None,
        request_id: str,
    ) -> httpx.Response:
        deadline = self._monotonic() + self.timeout
        idempotent = method == "GET"
        attempt = 0
        reauthenticated = False
        while True:
            remaining = deadline - self._monotonic()
            if remaining <= 0:
                raise BankTimeout("time budget spent")
            headers = {"X-Request-ID": request_id, "Accept": JSON}
            if content is not None:
                headers["Content-Type"] = JSON
            failure: BankFailure
            retryable = idempotent
            try:
                if self.credentials is not None:
                    headers["Authorization"] = self.credentials.authorization(self.http, remaining)
                    remaining = deadline - self._monotonic()
                    if remaining <= 0:
                        raise BankTimeout("time budget spent")
                response = self.http.request(
                    method,
                    target,
                    content=content,
                    headers=headers,
                    timeout=httpx.Timeout(remaining),
                )
            except httpx.TimeoutException as exc:
                failure = BankTimeout(_transport_reason(exc))
            except httpx.HTTPError as exc:
                failure = BankUnavailable(_transport_reason(exc))
                retryable = retryable and not _is_tls_failure(exc)
            else:
                if (
                    response.status_code == 401
                    and self.credentials is not None
                    and not reauthenticated
                ):
                    response.close()
                    self.credentials.invalidate()
                    reauthenticated = True
                    continue
                if response.status_code not in RETRYABLE_STATUSES:
                    return response
                response.close()
                failure = BankUnavailable(f"HTTP {response.status_code}")
            if not retryable or attempt >= self.retries:
                raise failure
            delay = self.backoff * (2**attempt) * self._fraction()
            if self._monotonic() + delay >= deadline:
                raise failure
            logger.info(
                "core banking %s %s: %s; retry %d in %.0f ms (X-Request-ID %s)",
                method,
                target.split("?")[0].rsplit("/", 1)[-1],
                failure.reason,
                attempt + 1,
                delay * 1000,
                request_id,
            )
            self._sleep(delay)
            attempt += 1


def _is_tls_failure(exc: BaseException) -> bool:
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, ssl.SSLError):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def _transport_reason(exc: httpx.HTTPError) -> str:
    """A loggable cause: the exception class, and which kind of connection failure."""
    if _is_tls_failure(exc):
        return "TLS failure"
    if isinstance(exc, httpx.ConnectError):
        seen: BaseException | None = exc
        while seen is not None:
            if isinstance(seen, ConnectionRefusedError):
                return "connection refused"
            seen = seen.__cause__ or seen.__context__
        return "connection failed"
    return type(exc).__name__


def _check_json(response: httpx.Response) -> None:
    media_type = response.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if media_type != JSON:
        raise BankUnavailable(f"HTTP {response.status_code}: not {JSON}")


def _parse(response: httpx.Response, model: type[M]) -> M:
    """The 200 answer as ``model``; anything else is a failure."""
    if response.status_code != 200:
        raise BankUnavailable(f"HTTP {response.status_code}")
    _check_json(response)
    try:
        return model.model_validate_json(response.content)
    except ValidationError as exc:
        raise BankUnavailable(_validation_reason(exc)) from None


def _problem(response: httpx.Response) -> ProblemModel:
    _check_json(response)
    try:
        return ProblemModel.model_validate_json(response.content)
    except ValidationError as exc:
        raise BankUnavailable(_validation_reason(exc)) from None


def _business_error(response: httpx.Response, account_id: str) -> None:
    """The contract's "no" answers about an account: 404 ``unknown_account``, 422
    ``currency_mismatch``."""
    if response.status_code == 404:
        if _problem(response).error == "unknown_account":
            raise UnknownAccount(account_id)
    elif response.status_code == 422:
        problem = _problem(response)
        if problem.error == "currency_mismatch":
            raise CurrencyMismatch(problem.message[:100] or "currency mismatch")


def _validation_reason(exc: ValidationError) -> str:
    """Where the answer breaks the contract: member paths only, never the values (which may
    be PSU data)."""
    errors = exc.errors(include_url=False, include_input=False)
    where = ", ".join(
        ".".join(str(part) for part in error["loc"]) or "body" for error in errors[:3]
    )
    return f"invalid answer ({where})"


def _convert(build: Callable[[], _T]) -> _T:
    """A contract model's port value; a value the model's own rules refuse (amount digits,
    partial page) is a failure of the answer."""
    try:
        return build()
    except ValueError as exc:
        raise BankUnavailable(f"invalid answer ({exc})") from None


__all__ = ["HttpBank"]
