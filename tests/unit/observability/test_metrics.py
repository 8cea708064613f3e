"""The instruments in one process (no ``PROMETHEUS_MULTIPROC_DIR``: in-memory values): the
request tally's buckets and flush, the backend-call decorator, the counters' labels."""

from __future__ import annotations

import time

import pytest

from stetgate.observability import metrics
from stetgate.observability.metrics import (
    LATENCY_BUCKETS,
    CounterTally,
    RequestTally,
    count_certificate_failure,
    registry,
    timed_backend_call,
)


def _value(name: str, **labels: str) -> float:
    return registry().get_sample_value(name, labels) or 0.0


def _buckets(endpoint: str) -> dict[str, float]:
    labels = {"method": "GET", "endpoint": endpoint, "status": "200"}
    return {
        str(bound): _value("stetgate_http_request_duration_seconds_bucket", le=str(bound), **labels)
        for bound in (*LATENCY_BUCKETS, "+Inf")
    }


def _requests(endpoint: str, method: str = "GET", status: str = "200") -> float:
    labels = {"method": method, "endpoint": endpoint, "status": status}
    return _value("stetgate_http_request_duration_seconds_count", **labels)


def test_observations_wait_in_the_tally_until_it_is_flushed() -> None:
    tally = RequestTally(interval=3600)
    tally.add("GET", "/tally/wait", 200, 0.003)
    assert _requests("/tally/wait") == 0
    tally.flush()
    assert _requests("/tally/wait") == 1
    tally.flush()  # nothing new: nothing added twice
    assert _requests("/tally/wait") == 1


def test_a_value_on_a_bound_is_in_that_bucket_and_beyond_the_last_in_inf() -> None:
    tally = RequestTally(interval=3600)
    for seconds in (0.001, 0.0010001, 10.0, 11.0):
        tally.add("GET", "/tally/bounds", 200, seconds)
    tally.flush()
    cumulative = _buckets("/tally/bounds")
    assert cumulative["0.001"] == 1  # le="0.001" holds 0.001 itself (le: less or equal)
    assert cumulative["0.0025"] == 2
    assert cumulative["10.0"] == 3
    assert cumulative["+Inf"] == 4
    assert _value(
        "stetgate_http_request_duration_seconds_sum",
        method="GET",
        endpoint="/tally/bounds",
        status="200",
    ) == pytest.approx(21.0020001)


def test_each_status_is_its_own_series() -> None:
    tally = RequestTally(interval=3600)
    tally.add("POST", "/tally/status", 200, 0.01)
    tally.add("POST", "/tally/status", 400, 0.01)
    tally.add("POST", "/tally/status", 400, 0.01)
    tally.flush()
    name = "stetgate_http_request_duration_seconds_count"
    assert _value(name, method="POST", endpoint="/tally/status", status="200") == 1
    assert _value(name, method="POST", endpoint="/tally/status", status="400") == 2


def test_the_flusher_thread_writes_within_its_interval() -> None:
    name = "stetgate_http_request_duration_seconds_count"
    labels = {"method": "GET", "endpoint": "/tally/thread", "status": "204"}
    tally = RequestTally(interval=0.05)
    tally.add("GET", "/tally/thread", 204, 0.002)
    deadline = time.monotonic() + 5
    while _value(name, **labels) != 1:
        assert time.monotonic() < deadline, "the flusher never wrote the observation"
        time.sleep(0.02)


def test_observe_request_goes_through_the_module_tally() -> None:
    name = "stetgate_http_request_duration_seconds_count"
    labels = {"method": "GET", "endpoint": "/tally/module", "status": "204"}
    metrics.observe_request("GET", "/tally/module", 204, 0.002)
    metrics.flush_requests()
    assert _value(name, **labels) == 1


def test_grant_counts_wait_in_their_tally_and_add_up_when_flushed() -> None:
    tally = CounterTally(interval=3600)
    for _ in range(3):
        tally.add("grants_issued", "tally_wait")
    tally.add("grants_refused", "tally_wait", "invalid_grant")
    assert _value("stetgate_grants_issued_total", grant_type="tally_wait") == 0
    tally.flush()
    assert _value("stetgate_grants_issued_total", grant_type="tally_wait") == 3
    assert (
        _value("stetgate_grants_refused_total", grant_type="tally_wait", error="invalid_grant") == 1
    )
    tally.flush()  # nothing new: nothing added twice
    assert _value("stetgate_grants_issued_total", grant_type="tally_wait") == 3


def test_the_counter_flusher_thread_writes_within_its_interval() -> None:
    tally = CounterTally(interval=0.05)
    tally.add("grants_issued", "tally_thread")
    deadline = time.monotonic() + 5
    while (
        registry().get_sample_value("stetgate_grants_issued_total", {"grant_type": "tally_thread"})
        != 1
    ):
        assert time.monotonic() < deadline, "the flusher never wrote the count"
        time.sleep(0.02)


def test_reading_the_registry_sees_every_grant_counted_so_far() -> None:
    before = _value("stetgate_grants_issued_total", grant_type="registry_exact")
    metrics.count_grant_issued("registry_exact")
    metrics.count_grant_issued("registry_exact")
    metrics.count_grant_refused("registry_exact", "invalid_client")
    assert _value("stetgate_grants_issued_total", grant_type="registry_exact") == before + 2
    assert (
        _value("stetgate_grants_refused_total", grant_type="registry_exact", error="invalid_client")
        == 1
    )


class _Bank:
    class Missing(Exception):
        """A business answer (unknown account)."""

    class Down(Exception):
        """A failure."""

    @timed_backend_call(answers=(Missing,))
    def call(self, operation: str, outcome: str) -> str:
        if outcome == "missing":
            raise _Bank.Missing()
        if outcome == "down":
            raise _Bank.Down()
        return outcome


def test_a_backend_call_is_timed_by_operation_and_outcome() -> None:
    bank = _Bank()
    before = _value("stetgate_backend_call_duration_seconds_count", operation="t-ok", outcome="ok")
    assert bank.call("t-ok", "fine") == "fine"
    assert (
        _value("stetgate_backend_call_duration_seconds_count", operation="t-ok", outcome="ok")
        == before + 1
    )
    assert _value("stetgate_backend_call_errors_total", operation="t-ok", error="Down") == 0


def test_a_failed_backend_call_is_counted_by_class_and_still_raised() -> None:
    bank = _Bank()
    with pytest.raises(_Bank.Down):
        bank.call("t-down", "down")
    assert _value("stetgate_backend_call_errors_total", operation="t-down", error="Down") == 1
    assert (
        _value("stetgate_backend_call_duration_seconds_count", operation="t-down", outcome="Down")
        == 1
    )
    assert (
        _value("stetgate_backend_call_duration_seconds_count", operation="t-down", outcome="ok")
        == 0
    )


def test_a_business_answer_is_not_a_backend_failure() -> None:
    bank = _Bank()
    with pytest.raises(_Bank.Missing):
        bank.call("t-missing", "missing")
    assert _value("stetgate_backend_call_errors_total", operation="t-missing", error="Missing") == 0
    assert (
        _value("stetgate_backend_call_duration_seconds_count", operation="t-missing", outcome="ok")
        == 1
    )


def test_counters_are_labelled_children_created_once() -> None:
    count_certificate_failure("unit_test_reason")
    count_certificate_failure("unit_test_reason")
    assert _value("stetgate_certificate_failures_total", reason="unit_test_reason") == 2
    instruments = metrics.instruments()
    first = instruments.child(instruments.certificate_failures, "unit_test_reason")
    assert instruments.child(instruments.certificate_failures, "unit_test_reason") is first


def test_without_the_multiprocess_folder_values_stay_in_memory() -> None:
    assert metrics.instruments().multiprocess is False
