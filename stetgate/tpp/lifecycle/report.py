"""Days left before each PSU must authenticate again: what an aggregator mails its users.

The bank refuses the refresh token once the PSU's last SCA is older than its window
(docs/decisions.md#refresh); asking a few days before keeps the data flowing.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from stetgate.tpp.lifecycle.errors import UndecryptableToken
from stetgate.tpp.lifecycle.limits import BankLimits
from stetgate.tpp.lifecycle.store import EncryptedTokens


@dataclass(frozen=True)
class ScaStatus:
    psu_key: str
    bank: str
    sca_expires_at: datetime | None
    days_left: int
    ended: str | None
    """Why the authorization is over (a `ReauthenticationRequired` reason), None if alive."""


def sca_report(
    tokens: EncryptedTokens,
    limits_by_bank: dict[str, BankLimits],
    now: datetime,
    *,
    default: BankLimits | None = None,
) -> list[ScaStatus]:
    """Every stored PSU, soonest to expire first; ended or undecryptable ones with 0 days."""
    statuses: list[ScaStatus] = []
    for key in tokens.stored_keys():
        try:
            stored = tokens.get(key)
        except UndecryptableToken as exc:
            statuses.append(ScaStatus(key, "", None, 0, f"undecryptable: {exc}"))
            continue
        if stored is None:
            continue
        record = stored.record
        limits = limits_by_bank.get(record.bank) or default or BankLimits()
        days = 0 if record.ended else record.days_left(now, limits.sca_validity_days)
        expires = record.sca_expires_at(limits.sca_validity_days)
        statuses.append(ScaStatus(key, record.bank, expires, days, record.ended))
    return sorted(statuses, key=lambda s: (s.days_left, s.psu_key))
