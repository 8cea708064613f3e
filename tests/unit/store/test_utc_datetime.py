"""`UtcDateTime` on SQLite writes exactly the text SQLAlchemy's own ``DATETIME`` writes for the
same instant in UTC (rows written before and after its one-step processor compare and sort
alike), and still refuses a naive datetime."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from sqlalchemy.dialects import postgresql, sqlite

from stetgate.store.schema import UtcDateTime

SQLITE = sqlite.dialect()
STOCK = sqlite.DATETIME().bind_processor(SQLITE)
OURS = UtcDateTime().bind_processor(SQLITE)

INSTANTS = [
    datetime(2026, 11, 26, 12, 30, 15, 250_000, tzinfo=UTC),
    datetime(2026, 11, 26, 12, 30, 15, tzinfo=UTC),  # no microseconds: still six digits
    datetime(2026, 1, 1, 0, 0, 0, 1, tzinfo=UTC),
    datetime(9999, 12, 31, 23, 59, 59, 999_999, tzinfo=UTC),
    datetime(999, 3, 4, 5, 6, 7, 8, tzinfo=UTC),  # a year below 1000 is zero-padded
    datetime(2026, 3, 29, 2, 30, tzinfo=timezone(timedelta(hours=2))),
    datetime(2026, 11, 26, 0, 15, tzinfo=timezone(timedelta(hours=-9, minutes=-30))),
]


@pytest.mark.parametrize("instant", INSTANTS, ids=str)
def test_the_text_is_sqlalchemys_datetime_text_of_the_utc_instant(instant: datetime) -> None:
    expected = STOCK(instant.astimezone(UTC).replace(tzinfo=None))
    assert OURS(instant) == expected


def test_none_stays_null() -> None:
    assert OURS(None) is None


def test_a_naive_datetime_is_refused() -> None:
    with pytest.raises(ValueError, match="naive datetime"):
        OURS(datetime(2026, 11, 26, 12, 30))


def test_postgresql_keeps_the_aware_value_for_the_driver() -> None:
    processor = UtcDateTime().bind_processor(postgresql.psycopg.dialect())
    assert processor is not None
    paris = datetime(2026, 11, 26, 13, 30, tzinfo=timezone(timedelta(hours=1)))
    value = processor(paris)
    assert value == paris and value.tzinfo is not None
    with pytest.raises(ValueError, match="naive datetime"):
        processor(datetime(2026, 1, 1))
