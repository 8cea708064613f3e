"""`HttpBank`: the bank ports (`stetgate.bank.backend.BankBackend`) over the core-banking
contract ``/core-banking/v1`` (``openapi.yaml``; docs/bank-integration.md).

Synchronous on purpose, over one thread-safe `BankTransport` per adapter (`transport`: a
bounded pool of keep-alive connections): the ports are synchronous and stetgate calls them
off the event loop, on the bounded blocking pool, in the one thread hop each API call makes
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
import re
import time
import uuid
from collections.abc import Callable, Collection, Mapping, Sequence
from decimal import Decimal
from typing import TypeVar
from urllib.parse import quote

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
from stetgate.bank_http.transport import BankAnswer, BankRequest, BankTransport, TlsFailure
from stetgate.observability.metrics import timed_backend_call

logger = logging.getLogger("stetgate.bank_http")

M = TypeVar("M", bound=BaseModel)
_T = TypeVar("_T")

RETRYABLE_STATUSES = frozenset({502, 503, 504})
"""Gateway and availability errors: the request was not processed (RFC 9110 §15.6)."""


_UNRESERVED = re.compile(r"[A-Za-z0-9._~-]*")
"""RFC 3986 §2.3: characters that never need encoding (most ids are made of them only)."""


def _segment(value: str) -> str:
    """A path segment: everything percent-encoded, "/" included (account ids may hold one)."""
    return value if _UNRESERVED.fullmatch(value) else quote(value, safe="")


def _query(params: list[tuple[str, str]]) -> str:
    """``urlencode`` with a shortcut for unreserved values (a quarter of a call's client CPU
    went to quoting the eight ``balancesFor`` ids of a GET /accounts)."""
    return "&".join(f"{name}={_segment(value)}" for name, value in params)


class HttpBank:
    """`BankBackend` over HTTP: see the module docstring."""

    def __init__(
        self,
        transport: BankTransport,
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
        self.transport = transport
        self.timeout = timeout
        self.retries = retries
        self.backoff = backoff
        self.breaker = breaker or CircuitBreaker(5, 10.0)
        self.credentials = credentials
        self._fraction = random_fraction
        self._sleep = sleep
        self._monotonic = monotonic

    def close(self) -> None:
        self.transport.close()

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

        def read(response: BankAnswer) -> list[tuple[Account, Sequence[Balance] | None]]:
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

        def read(response: BankAnswer) -> Mapping[str, Sequence[Balance]]:
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

        def read(response: BankAnswer) -> TransactionPage:
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
        def read(response: BankAnswer) -> EndUserIdentity | None:
            if response.status == 404 and _problem(response).error == "unknown_psu":
                return None
            return _convert(_parse(response, IdentityModel).value)

        return self._call("identity", "GET", f"/psus/{_segment(psu_id)}/identity", read)

    # --- BeneficiarySource ---------------------------------------------------------------
    def trusted_beneficiaries_of(self, psu_id: str) -> Sequence[Beneficiary]:
        def read(response: BankAnswer) -> Sequence[Beneficiary]:
            listing = _parse(response, BeneficiaryList)
            return [_convert(b.value) for b in listing.beneficiaries]

        return self._call(
            "beneficiaries", "GET", f"/psus/{_segment(psu_id)}/trusted-beneficiaries", read
        )

    # --- FundsChecker --------------------------------------------------------------------
    def funds_available(self, psu_id: str, account_id: str, amount: Decimal, currency: str) -> bool:
        body = dump(FundsCheckRequest(amount=format(amount, "f"), currency=currency))

        def read(response: BankAnswer) -> bool:
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
        read: Callable[[BankAnswer], _T],
        *,
        params: list[tuple[str, str]] | None = None,
        content: bytes | None = None,
    ) -> _T:
        self.breaker.admit()
        request_id = current_request_id() or str(uuid.uuid4())
        try:
            target = VERSION_PREFIX + path + ("?" + _query(params) if params else "")
            result = read(self._exchange(method, target, content, request_id))
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
    ) -> BankAnswer:
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
                    headers["Authorization"] = self.credentials.authorization(
                        self.transport, remaining
                    )
                    remaining = deadline - self._monotonic()
                    if remaining <= 0:
                        raise BankTimeout("time budget spent")
                response = self.transport.send(
                    BankRequest(method, target, headers, content), remaining
                )
            except TlsFailure as exc:
                failure, retryable = exc, False
            except BankFailure as exc:
                failure = exc
            else:
                if response.status == 401 and self.credentials is not None and not reauthenticated:
                    self.credentials.invalidate()
                    reauthenticated = True
                    continue
                if response.status not in RETRYABLE_STATUSES:
                    return response
                failure = BankUnavailable(f"HTTP {response.status}")
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


def _check_json(response: BankAnswer) -> None:
    if response.media_type != JSON:
        raise BankUnavailable(f"HTTP {response.status}: not {JSON}")


def _parse(response: BankAnswer, model: type[M]) -> M:
    """The 200 answer as ``model``; anything else is a failure."""
    if response.status != 200:
        raise BankUnavailable(f"HTTP {response.status}")
    _check_json(response)
    try:
        return model.model_validate_json(response.content)
    except ValidationError as exc:
        raise BankUnavailable(_validation_reason(exc)) from None


def _problem(response: BankAnswer) -> ProblemModel:
    _check_json(response)
    try:
        return ProblemModel.model_validate_json(response.content)
    except ValidationError as exc:
        raise BankUnavailable(_validation_reason(exc)) from None


def _business_error(response: BankAnswer, account_id: str) -> None:
    """The contract's "no" answers about an account: 404 ``unknown_account``, 422
    ``currency_mismatch``."""
    if response.status == 404:
        if _problem(response).error == "unknown_account":
            raise UnknownAccount(account_id)
    elif response.status == 422:
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
