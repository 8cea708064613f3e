"""How a core-banking adapter says "the bank's systems failed", as opposed to "no such account".

`UnknownAccount` and `CurrencyMismatch` (`stetgate.bank.backend`) are *answers*: the backend
worked and said no. The exceptions here are *failures*: the backend could not be reached, did
not answer in time, or answered something that is not the contract. The resource API maps them
to STET errors the TPP may retry — `BankTimeout` to 504, every other `BankFailure` to 503,
both with ``Retry-After`` (RFC 9110 §15.6.4, §15.6.5, §10.2.3) — logs the reason with the
request's ``X-Request-ID``, audits it, and never shows the backend's detail to the TPP.

An in-process adapter (the demo bank) never raises them; an adapter that talks to another
system (`stetgate.bank_http.HttpBank`) raises nothing else on failure, so a broken backend
can never surface as a 500 with a traceback.
"""

from __future__ import annotations


class BankFailure(RuntimeError):
    """The core-banking backend failed; ``reason`` is a short, loggable cause (no PSU data,
    no response body): e.g. ``"connection refused"``, ``"HTTP 500"``, ``"invalid JSON"``."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class BankUnavailable(BankFailure):
    """Unreachable (connection refused, TLS failure), an error status, an answer outside the
    contract, or the circuit breaker is open (fail fast while the backend recovers)."""


class BankTimeout(BankFailure):
    """No answer within the call's time budget (retries included)."""


__all__ = ["BankFailure", "BankTimeout", "BankUnavailable"]
