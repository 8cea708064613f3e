"""A circuit breaker for the core-banking backend (closed → open → half-open → closed).

Why: when the backend is down, every API call would otherwise spend its whole time budget
(connect attempts, retries) before failing, holding a thread of the bounded blocking pool
(`stetgate.serving.blocking`) the whole time — a dead backend would starve the gateway. After
``failures`` consecutive failed calls the breaker *opens*: calls fail at once with
`BankUnavailable` for ``cooldown`` seconds. Then it lets exactly one call through
(*half-open*): its success closes the breaker, its failure opens it for another cool-down.
Business answers (unknown account, currency mismatch) are successes: the backend worked.

Thread-safe (one lock, held for a few instructions, never during a call); the clock is
injectable for tests.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Literal

from stetgate.bank.failures import BankUnavailable

State = Literal["closed", "open", "half-open"]


class CircuitBreaker:
    def __init__(
        self,
        failures: int,
        cooldown: float,
        *,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        if failures < 1 or cooldown < 0:
            raise ValueError("failures must be ≥ 1 and cooldown ≥ 0")
        self.failures = failures
        self.cooldown = cooldown
        self._monotonic = monotonic
        self._lock = threading.Lock()
        self._consecutive = 0
        self._opened_at: float | None = None
        self._probing = False

    @property
    def state(self) -> State:
        with self._lock:
            return self._state()

    def _state(self) -> State:
        if self._opened_at is None:
            return "closed"
        if self._probing or self._monotonic() - self._opened_at < self.cooldown:
            return "open"
        return "half-open"

    def admit(self) -> None:
        """Let the call through, or raise `BankUnavailable` while the circuit is open (and
        while the one half-open probe is under way)."""
        with self._lock:
            state = self._state()
            if state == "open":
                raise BankUnavailable("circuit open")
            if state == "half-open":
                self._probing = True

    def succeeded(self) -> None:
        with self._lock:
            self._consecutive = 0
            self._opened_at = None
            self._probing = False

    def failed(self) -> None:
        with self._lock:
            self._consecutive += 1
            if self._probing or self._consecutive >= self.failures:
                self._opened_at = self._monotonic()
            self._probing = False

    def reset(self) -> None:
        """Back to closed (operator action, tests)."""
        self.succeeded()


__all__ = ["CircuitBreaker", "State"]
