"""Deleting what is no longer needed (data minimisation, GDPR Art. 5(1)(e)).

Short-lived rows — PSU journeys (30 minutes at most) and their logins at the bank's OpenID
Provider, authorization codes (60 s), registration
tokens (10 minutes), unattended-access counters past their window — are kept one more day for
investigations, then deleted. Token pairs are kept ``grant_retention_days`` after they were
revoked or their refresh token expired, so "who accessed what" stays answerable. PSD2
statistics minutes are kept ``statistics_retention_days`` (800 by default): the quarterly
publications of the last two years can be rebuilt from them. The audit trail is never purged
here: its retention is the bank's legal obligation, not a runtime rule.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Connection, delete, or_

from stetgate.store.schema import (
    authorization_codes,
    grants,
    oidc_logins,
    psd2_unattended_access,
    psu_journeys,
    service_tokens,
    statistics_availability,
    statistics_latency,
    statistics_requests,
)

GRACE = timedelta(days=1)


@dataclass(frozen=True)
class PurgeReport:
    journeys: int
    codes: int
    registration_tokens: int
    unattended_counters: int
    token_pairs: int
    oidc_logins: int = 0
    statistics_minutes: int = 0
    """Rows of the three statistics tables."""


def purge_expired(
    conn: Connection,
    now: datetime,
    *,
    grant_retention_days: int = 400,
    statistics_retention_days: int = 800,
) -> PurgeReport:
    """Delete expired rows; returns how many of each were deleted."""
    keep_grants = now - timedelta(days=grant_retention_days)
    keep_statistics = now - timedelta(days=statistics_retention_days)
    return PurgeReport(
        journeys=conn.execute(
            delete(psu_journeys).where(psu_journeys.c.last_activity_at < now - GRACE)
        ).rowcount,
        codes=conn.execute(
            delete(authorization_codes).where(authorization_codes.c.expires_at < now - GRACE)
        ).rowcount,
        registration_tokens=conn.execute(
            delete(service_tokens).where(service_tokens.c.expires_at < now - GRACE)
        ).rowcount,
        unattended_counters=conn.execute(
            delete(psd2_unattended_access).where(psd2_unattended_access.c.expires_at < now)
        ).rowcount,
        token_pairs=conn.execute(
            delete(grants).where(
                or_(grants.c.revoked_at < keep_grants, grants.c.refresh_expires_at < keep_grants)
            )
        ).rowcount,
        oidc_logins=conn.execute(
            delete(oidc_logins).where(oidc_logins.c.created_at < now - GRACE)
        ).rowcount,
        statistics_minutes=sum(
            conn.execute(delete(table).where(table.c.minute < keep_statistics)).rowcount
            for table in (statistics_requests, statistics_latency, statistics_availability)
        ),
    )
