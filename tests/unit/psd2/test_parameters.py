"""Path and query parameters of the AISP endpoints."""

from __future__ import annotations

from datetime import date

import pytest
from starlette.datastructures import QueryParams

from stetgate.psd2.errors import BadRequest
from stetgate.psd2.parameters import account_resource_id, date_bound, entry_reference, single


@pytest.mark.parametrize(
    "value, expected",
    [
        ("2026-11-26", date(2026, 11, 26)),
        ("2026-11-26T00:00:00Z", date(2026, 11, 26)),
        ("2026-11-26t23:59:59.999+01:00", date(2026, 11, 26)),
        ("2026-11-26 10:00:00-05:00", date(2026, 11, 26)),
        ("2016-12-31T23:59:60Z", date(2016, 12, 31)),  # leap second
    ],
)
def test_dates_and_date_times_give_the_booking_date(value: str, expected: date) -> None:
    assert date_bound(value, "dateFrom") == expected


@pytest.mark.parametrize(
    "value",
    [
        "26/11/2026",
        "2026-13-01",
        "2026-02-30",
        "2026-11-26T25:00:00Z",
        "2026-11-26T10:00",
        "0000-01-01",
        "",
        "yesterday",
    ],
)
def test_bad_dates_are_refused(value: str) -> None:
    with pytest.raises(BadRequest):
        date_bound(value, "dateTo")


@pytest.mark.parametrize("value", ["A1B2", "my account 1", "a/b", "(x)", "x" * 35, "it's"])
def test_account_resource_ids_follow_the_stet_pattern(value: str) -> None:
    assert account_resource_id(value) == value


@pytest.mark.parametrize("value", ["", "x" * 36, "a;b", "é", "a\nb"])
def test_other_account_resource_ids_are_refused(value: str) -> None:
    with pytest.raises(BadRequest):
        account_resource_id(value)


def test_entry_reference_and_repeated_parameters() -> None:
    assert entry_reference("42") == 42
    for bad in ("-1", "4.2", "x", "1" * 19):
        with pytest.raises(BadRequest):
            entry_reference(bad)
    assert single(QueryParams("a=1"), "a") == "1" and single(QueryParams(""), "a") is None
    with pytest.raises(BadRequest, match="more than once"):
        single(QueryParams("a=1&a=2"), "a")
