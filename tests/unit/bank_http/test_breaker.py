"""The circuit breaker's states, on a fake clock."""

from __future__ import annotations

import pytest

from stetgate.bank.failures import BankUnavailable
from stetgate.bank_http.breaker import CircuitBreaker


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_it_opens_after_n_consecutive_failures_only() -> None:
    breaker = CircuitBreaker(3, 10, monotonic=Clock())
    for _ in range(2):
        breaker.admit()
        breaker.failed()
    breaker.admit()
    breaker.succeeded()  # a success resets the count
    for _ in range(2):
        breaker.failed()
    assert breaker.state == "closed"
    breaker.failed()
    assert breaker.state == "open"
    with pytest.raises(BankUnavailable, match="circuit open"):
        breaker.admit()


def test_after_the_cooldown_one_probe_goes_through_and_its_success_closes() -> None:
    clock = Clock()
    breaker = CircuitBreaker(1, 10, monotonic=clock)
    breaker.failed()
    clock.now = 9.9
    with pytest.raises(BankUnavailable):
        breaker.admit()
    clock.now = 10.0
    assert breaker.state == "half-open"
    breaker.admit()  # the probe
    with pytest.raises(BankUnavailable):  # others fail fast while it runs
        breaker.admit()
    breaker.succeeded()
    assert breaker.state == "closed"
    breaker.admit()


def test_a_failed_probe_opens_for_another_cooldown() -> None:
    clock = Clock()
    breaker = CircuitBreaker(5, 10, monotonic=clock)
    for _ in range(5):
        breaker.failed()
    clock.now = 10
    breaker.admit()
    breaker.failed()
    assert breaker.state == "open"
    clock.now = 19.9
    with pytest.raises(BankUnavailable):
        breaker.admit()
    clock.now = 20
    breaker.admit()


def test_bad_parameters_are_refused() -> None:
    with pytest.raises(ValueError):
        CircuitBreaker(0, 1)
    with pytest.raises(ValueError):
        CircuitBreaker(1, -1)
