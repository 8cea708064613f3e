"""Each audit event is also one ``stetgate.audit`` log line with the row's fields, and the
events that end an authorization journey count it by outcome."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import Engine, create_engine, select

from stetgate.observability.logs import AUDIT_LOGGER
from stetgate.observability.metrics import registry
from stetgate.store.audit import record_event
from stetgate.store.audit_events import (
    AUTHENTICATION_FAILED,
    AUTHORIZATION_FAILED,
    AUTHORIZATION_GRANTED,
    AUTHORIZATION_REFUSED,
    AUTHORIZATION_TIMED_OUT,
    PSU_BLOCKED,
    SESSION_FAILED,
    SESSION_TIMED_OUT,
    TOKEN_ISSUED,
)
from stetgate.store.schema import audit_events

AT = datetime(2026, 5, 4, 3, 2, 1, tzinfo=UTC)


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    made = create_engine(db_url)
    yield made
    made.dispose()


def _journeys() -> dict[str, float]:
    return {
        outcome: registry().get_sample_value("stetgate_psu_journeys_total", {"outcome": outcome})
        or 0.0
        for outcome in ("authorized", "refused", "failed", "timeout", "blocked")
    }


def _record(engine: Engine, event: str, **fields: Any) -> None:
    with engine.begin() as conn:
        record_event(conn, AT, event, **fields)


@pytest.mark.parametrize(
    ("event", "reason", "outcome"),
    [
        (AUTHORIZATION_GRANTED, None, "authorized"),
        (AUTHORIZATION_REFUSED, "refused by the PSU", "refused"),
        (AUTHORIZATION_FAILED, "too_many_failures", "failed"),
        (AUTHORIZATION_FAILED, PSU_BLOCKED, "blocked"),
        (AUTHORIZATION_TIMED_OUT, None, "timeout"),
    ],
)
def test_the_event_that_ends_a_journey_counts_its_outcome(
    engine: Engine, event: str, reason: str | None, outcome: str
) -> None:
    before = _journeys()
    _record(engine, event, client_id="c", reason=reason)
    after = _journeys()
    assert {k: after[k] - before[k] for k in after} == {
        k: (1.0 if k == outcome else 0.0) for k in after
    }


@pytest.mark.parametrize(
    "event", [SESSION_FAILED, SESSION_TIMED_OUT, AUTHENTICATION_FAILED, PSU_BLOCKED, TOKEN_ISSUED]
)
def test_other_events_count_no_journey(engine: Engine, event: str) -> None:
    before = _journeys()
    _record(engine, event, reason=PSU_BLOCKED)
    assert _journeys() == before


def test_the_line_carries_the_rows_fields_and_no_secret_detail(
    engine: Engine, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger=AUDIT_LOGGER)
    _record(
        engine,
        TOKEN_ISSUED,
        client_id="PSDFR-ACPR-1",
        org_id="PSDFR-ACPR-1",
        psu_id="alice",
        request_id="r" * 150,
        reason="x" * 300,
        detail={"grant_id": "g1", "refresh_token": "SECRET-R", "Code": "SECRET-C"},
    )
    (record,) = [r for r in caplog.records if r.name == AUDIT_LOGGER]
    fields = record.fields  # type: ignore[attr-defined]
    with engine.connect() as conn:
        row = conn.execute(select(audit_events)).mappings().one()
    assert fields == {
        "event": "audit",
        "audit_event": TOKEN_ISSUED,
        "request_id": row["request_id"],
        "client_id": row["client_id"],
        "org_id": row["org_id"],
        "psu_id": row["psu_id"],
        "reason": row["reason"],
        "detail": row["detail"],
    }
    assert fields["detail"] == {"grant_id": "g1"}
    assert len(fields["request_id"]) == 100 and len(fields["reason"]) == 200
    assert "SECRET" not in repr(fields)
