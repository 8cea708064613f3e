"""The unattended-access limit: "4 times a day" when the PSU is not there.

RTS (EU) 2018/389 Art. 36(5)(b): without the PSU actively requesting it, an AISP may access
the account data at most four times in 24 hours. STET signals PSU presence with
``PSU-IP-Address``; BPCE counts calls without it per calendar day (Europe/Paris), per TPP,
PSU, account and method, pagination excluded (BPCE "Limits" pages;
docs/decisions.md#unattended-access). stetgate counts per (TPP organization, PSU, endpoint,
account — or "" for PSU-level endpoints) in one of two *settings* windows:

- ``calendar_day``: at most ``unattended_limit`` calls per local day of
  ``unattended_timezone``; the count restarts at local midnight (DST-aware).
- ``rolling_24h``: at most ``unattended_limit`` calls in **any** 24-hour period — a call is
  admitted when fewer than ``limit`` calls happened in the 24 hours before it.

Several workers (and servers) share the counters, so admission is one atomic statement:

- database: ``INSERT … ON CONFLICT DO UPDATE … WHERE <still under the limit> RETURNING``
  (SQLite and PostgreSQL both lock the conflicting row and evaluate the ``WHERE`` on its
  latest version, so two concurrent calls can never both take the last slot). For the rolling
  window the row keeps the last ``limit`` access times as fixed-width epoch milliseconds, and
  the ``WHERE`` tests whether the oldest of them is more than 24 h old;
- Redis (``redis_url`` set): one Lua script, atomic by construction.

A refused call is not counted, so a TPP that retries after a 429 does not push its window.
Times come from the injected clock (``now`` argument), never from the database or Redis.
"""

from __future__ import annotations

import hashlib
import math
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal, Protocol
from zoneinfo import ZoneInfo

from sqlalchemy import BigInteger, Engine, Text, and_, case, cast, delete, func, true

from stetgate.psd2.sql import upsert
from stetgate.settings import Settings
from stetgate.store.schema import psd2_unattended_access

WindowMode = Literal["calendar_day", "rolling_24h"]
ROLLING = timedelta(hours=24)
ROLLING_KEY = "rolling"
HIT_WIDTH = 15
"""Digits per recorded access (epoch milliseconds; enough until the year 33658)."""


@dataclass(frozen=True, slots=True)
class UnattendedKey:
    """What one unattended call is counted against."""

    org_id: str
    psu_id: str
    endpoint: str
    resource: str = ""


@dataclass(frozen=True, slots=True)
class UnattendedPolicy:
    limit: int
    mode: WindowMode
    timezone: ZoneInfo

    @classmethod
    def from_settings(cls, settings: Settings) -> UnattendedPolicy:
        return cls(
            settings.unattended_limit,
            settings.unattended_window,
            ZoneInfo(settings.unattended_timezone),
        )

    def calendar_day(self, now: datetime) -> tuple[str, datetime]:
        """(local date "YYYY-MM-DD", the UTC instant the local day ends)."""
        local = now.astimezone(self.timezone)
        next_day = local.date() + timedelta(days=1)
        end = datetime(next_day.year, next_day.month, next_day.day, tzinfo=self.timezone)
        return local.date().isoformat(), end.astimezone(now.tzinfo)

    def retry_after_seconds(self, now: datetime) -> int:
        """``Retry-After`` of a refused call (RFC 9110 §10.2.3), in whole seconds, rounded up.

        Calendar day: until the local midnight of ``timezone`` that starts the next window.
        Rolling window: the limiter does not return the oldest counted call, so the answer is
        the window's length — an upper bound: a call made then is always admitted."""
        if self.mode == "calendar_day":
            _, ends = self.calendar_day(now)
            return max(1, math.ceil((ends - now).total_seconds()))
        return int(ROLLING.total_seconds())


class UnattendedLimiter(Protocol):
    policy: UnattendedPolicy

    def admit(self, key: UnattendedKey, now: datetime) -> bool:
        """Count one unattended call and return True, or return False (counting nothing)
        when the window already holds ``limit`` calls."""
        ...


def _epoch_ms_ceil(moment: datetime) -> int:
    return math.ceil(moment.timestamp() * 1000)


def _epoch_ms_floor(moment: datetime) -> int:
    return math.floor(moment.timestamp() * 1000)


class DatabaseUnattendedLimiter:
    """Counters in ``psd2_unattended_access`` (shared by every worker on the database)."""

    def __init__(self, engine: Engine, policy: UnattendedPolicy) -> None:
        self._engine = engine
        self.policy = policy

    def admit(self, key: UnattendedKey, now: datetime) -> bool:
        table = psd2_unattended_access
        ids = {
            "org_id": key.org_id,
            "psu_id": key.psu_id,
            "endpoint": key.endpoint,
            "resource": key.resource,
        }
        pk = ("org_id", "psu_id", "endpoint", "resource", "window_key")
        limit = self.policy.limit
        with self._engine.begin() as conn:
            if self.policy.mode == "calendar_day":
                day, ends = self.policy.calendar_day(now)
                statement = upsert(
                    conn,
                    table,
                    {**ids, "window_key": day, "count": 1, "hits": "", "expires_at": ends},
                    keys=pk,
                    update={"count": table.c.count + 1},
                    where=table.c.count < limit,
                )
            else:
                stamp = f"{_epoch_ms_ceil(now):0{HIT_WIDTH}d}"
                cutoff = _epoch_ms_floor(now - ROLLING)
                length = func.length(table.c.hits)
                oldest_kept = func.substr(
                    table.c.hits, length - limit * HIT_WIDTH + 1, HIT_WIDTH, type_=Text
                )
                statement = upsert(
                    conn,
                    table,
                    {
                        **ids,
                        "window_key": ROLLING_KEY,
                        "count": 1,
                        "hits": stamp,
                        "expires_at": now + ROLLING,
                    },
                    keys=pk,
                    update={
                        "count": table.c.count + 1,
                        "hits": case(
                            (
                                length >= limit * HIT_WIDTH,
                                func.substr(
                                    table.c.hits, length - (limit - 1) * HIT_WIDTH + 1, type_=Text
                                ),
                            ),
                            else_=table.c.hits,
                        ).concat(stamp),
                        "expires_at": now + ROLLING,
                    },
                    # CASE, not OR: PostgreSQL may evaluate both sides of an OR, and the
                    # cast of a too-short list would fail.
                    where=case(
                        (length < limit * HIT_WIDTH, true()),
                        else_=cast(oldest_kept, BigInteger) <= cutoff,
                    ),
                )
            counted = conn.execute(statement.returning(table.c.count)).scalar_one_or_none()
            if counted == 1:
                # First call of a window for this key: drop this PSU's expired counters.
                conn.execute(
                    delete(table).where(
                        and_(
                            table.c.org_id == key.org_id,
                            table.c.psu_id == key.psu_id,
                            table.c.expires_at < now,
                        )
                    )
                )
        return counted is not None


_REDIS_SCRIPT = """
if ARGV[1] == 'calendar_day' then
  local count = tonumber(redis.call('GET', KEYS[1]) or '0')
  if count >= tonumber(ARGV[2]) then return 0 end
  redis.call('INCR', KEYS[1])
  redis.call('PEXPIRE', KEYS[1], ARGV[4])
  return 1
end
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[5])
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[2]) then return 0 end
redis.call('ZADD', KEYS[1], ARGV[3], ARGV[6])
redis.call('PEXPIRE', KEYS[1], ARGV[4])
return 1
"""


class RedisUnattendedLimiter:
    """Counters in Redis: a counter per calendar day, or a sorted set of access times for the
    rolling window. Expiry is relative (PEXPIRE), so Redis's own clock never decides."""

    def __init__(
        self, client: Any, policy: UnattendedPolicy, prefix: str = "stetgate:unattended:"
    ) -> None:
        self._script = client.register_script(_REDIS_SCRIPT)
        self.policy = policy
        self._prefix = prefix

    def admit(self, key: UnattendedKey, now: datetime) -> bool:
        name = hashlib.sha256(
            "\x1f".join((key.org_id, key.psu_id, key.endpoint, key.resource)).encode()
        ).hexdigest()
        if self.policy.mode == "calendar_day":
            day, ends = self.policy.calendar_day(now)
            redis_key = f"{self._prefix}{day}:{name}"
            ttl = ends - now + timedelta(hours=1)
        else:
            redis_key = f"{self._prefix}{ROLLING_KEY}:{name}"
            ttl = ROLLING + timedelta(hours=1)
        result = self._script(
            keys=[redis_key],
            args=[
                self.policy.mode,
                self.policy.limit,
                _epoch_ms_ceil(now),
                max(1, int(ttl.total_seconds() * 1000)),
                _epoch_ms_floor(now - ROLLING),
                f"{_epoch_ms_ceil(now)}:{uuid.uuid4().hex}",
            ],
        )
        return int(result) == 1


def limiter_for(settings: Settings, engine: Engine) -> UnattendedLimiter:
    """Redis when ``redis_url`` is set, else the database."""
    policy = UnattendedPolicy.from_settings(settings)
    if settings.redis_url:
        import redis

        return RedisUnattendedLimiter(redis.Redis.from_url(settings.redis_url), policy)
    return DatabaseUnattendedLimiter(engine, policy)
