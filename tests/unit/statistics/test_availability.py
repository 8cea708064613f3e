"""When a minute counts as down (EBA/GL/2018/07 GL 2.2 and 2.4, module docstring of
`stetgate.statistics.availability`)."""

from __future__ import annotations

import pytest

from stetgate.statistics.availability import (
    FAILURE_RUN_LENGTH,
    FailureRuns,
    MinuteSample,
    minute_is_down,
    request_failed,
)


@pytest.mark.parametrize(
    ("sample", "down"),
    [
        (None, True),  # no row at all: nobody proved the interface up
        (MinuteSample(0, 0, 0), True),
        (MinuteSample(0, 0, 1), True),
        (MinuteSample(12, 1, 0), True),  # one failed probe is enough
        (MinuteSample(0, 3, 0), True),
        (MinuteSample(6, 0, 1), True),  # a failure run touched it
        (MinuteSample(1, 0, 0), False),
        (MinuteSample(12, 0, 0), False),
    ],
)
def test_down_minutes(sample: MinuteSample | None, down: bool) -> None:
    assert minute_is_down(sample) is down


@pytest.mark.parametrize(
    ("status", "seconds", "failed"),
    [
        (200, 0.01, False),
        (204, 29.99, False),
        (302, 0.5, False),
        (400, 0.01, False),  # the TPP's mistake, not the interface's failure
        (401, 0.01, False),
        (429, 0.01, False),
        (200, 30.0, True),  # replied to, but not within 30 s
        (404, 31.0, True),
        (500, 0.01, True),
        (503, 0.01, True),
        (504, 0.5, True),
    ],
)
def test_a_request_fails_with_a_server_error_or_an_answer_after_30_seconds(
    status: int, seconds: float, failed: bool
) -> None:
    assert request_failed(status, seconds) is failed


def test_four_failures_in_a_row_are_not_yet_downtime() -> None:
    runs = FailureRuns()
    assert [list(runs.observe(100, True)) for _ in range(FAILURE_RUN_LENGTH - 1)] == [[]] * 4


def test_the_fifth_failure_makes_every_minute_since_the_first_down() -> None:
    runs = FailureRuns()
    for minute in (100, 100, 101, 103):
        assert not runs.observe(minute, True)
    assert list(runs.observe(103, True)) == [100, 101, 102, 103]


def test_a_success_in_between_resets_the_run() -> None:
    runs = FailureRuns()
    for _ in range(4):
        runs.observe(100, True)
    assert not runs.observe(100, False)
    for _ in range(4):
        assert not runs.observe(101, True)
    assert list(runs.observe(102, True)) == [101, 102]


def test_a_continuing_run_marks_each_minute_once() -> None:
    runs = FailureRuns()
    for _ in range(5):
        runs.observe(100, True)
    assert not runs.observe(100, True)  # minute 100 is down already
    assert list(runs.observe(101, True)) == [101]
    assert not runs.observe(101, True)
    assert list(runs.observe(104, True)) == [102, 103, 104]


def test_a_new_run_after_a_success_marks_its_own_minutes() -> None:
    runs = FailureRuns()
    for _ in range(5):
        runs.observe(100, True)
    runs.observe(100, False)
    for _ in range(4):
        runs.observe(100, True)
    assert list(runs.observe(100, True)) == [100]  # a second run over the same minute
