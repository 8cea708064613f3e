"""Snapshots of the tables a register request may change, to prove a refusal changed nothing."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine, select

from stetgate.store.schema import (
    audit_events,
    authorization_codes,
    client_certificates,
    clients,
    grants,
    service_tokens,
)

STATE_TABLES = (clients, client_certificates, service_tokens, grants, authorization_codes)
"""Everything a register request or a registration token could create, change or delete."""


def state_snapshot(engine: Engine) -> dict[str, list[tuple[Any, ...]]]:
    with engine.connect() as conn:
        return {
            table.name: sorted((tuple(row) for row in conn.execute(select(table))), key=repr)
            for table in STATE_TABLES
        }


def audit_events_after(engine: Engine, last_id: int) -> list[tuple[str, str | None]]:
    """(event, reason) of the audit rows written after ``last_id``."""
    with engine.connect() as conn:
        rows = conn.execute(
            select(audit_events.c.event, audit_events.c.reason)
            .where(audit_events.c.id > last_id)
            .order_by(audit_events.c.id)
        ).all()
    return [(row.event, row.reason) for row in rows]


def last_audit_id(engine: Engine) -> int:
    with engine.connect() as conn:
        value = conn.execute(
            select(audit_events.c.id).order_by(audit_events.c.id.desc()).limit(1)
        ).scalar()
    return int(value or 0)
