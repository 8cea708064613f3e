"""The unattended-call ledger in Redis: shared by scheduler processes, kept across restarts.

Per account a sorted set of call times (epoch milliseconds) and a block value (the instant a
429's window ends). `take` is one Lua script — atomic by construction — comparing against the
caller's clock (``now`` in the arguments), never Redis's: key expiry only collects garbage.
"""

from __future__ import annotations

import json
import math
import secrets
from datetime import datetime

import redis

from stetgate.tpp.lifecycle.ledger import AccountKey
from stetgate.tpp.lifecycle.limits import DAY, BankLimits

DEFAULT_PREFIX = "stetgate:tpp:ledger:"
KEEP_MS = 3 * int(DAY.total_seconds() * 1000)

# KEYS: calls, block. ARGV: now_ms, window_start_ms, limit, member, keep_ms, take (1/0)
_COUNT_OR_TAKE = """
local blocked = tonumber(redis.call('GET', KEYS[2]) or '0')
if tonumber(ARGV[1]) < blocked then return -1 end
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', tonumber(ARGV[1]) - tonumber(ARGV[5]))
local used = redis.call('ZCOUNT', KEYS[1], ARGV[2], '+inf')
if ARGV[6] == '0' then return used end
if used >= tonumber(ARGV[3]) then return -2 end
redis.call('ZADD', KEYS[1], ARGV[1], ARGV[4])
redis.call('PEXPIRE', KEYS[1], ARGV[5])
return used + 1
"""

# KEYS: block. ARGV: until_ms, keep_ms
_BLOCK = """
local current = tonumber(redis.call('GET', KEYS[1]) or '0')
if tonumber(ARGV[1]) > current then redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2]) end
return 1
"""


def _ms(moment: datetime) -> int:
    return math.ceil(moment.timestamp() * 1000)


class RedisLedger:
    """`UnattendedLedger` in Redis, keys under ``prefix``."""

    def __init__(self, client: redis.Redis, *, prefix: str = DEFAULT_PREFIX) -> None:
        self._prefix = prefix
        self._count_or_take = client.register_script(_COUNT_OR_TAKE)
        self._block = client.register_script(_BLOCK)

    def _keys(self, account: AccountKey) -> list[str]:
        name = json.dumps([account.bank, account.psu_key, account.account])
        return [f"{self._prefix}c:{name}", f"{self._prefix}b:{name}"]

    def _run(self, account: AccountKey, now: datetime, limits: BankLimits, take: bool) -> int:
        member = f"{_ms(now)}:{secrets.token_hex(4)}"
        args: list[int | str] = [
            _ms(now),
            _ms(limits.window_start(now)),
            limits.unattended_per_day,
            member,
            KEEP_MS,
            int(take),
        ]
        return int(self._count_or_take(keys=self._keys(account), args=args))

    def used(self, account: AccountKey, now: datetime, limits: BankLimits) -> int:
        found = self._run(account, now, limits, take=False)
        return limits.unattended_per_day if found < 0 else found

    def take(self, account: AccountKey, now: datetime, limits: BankLimits) -> bool:
        return self._run(account, now, limits, take=True) > 0

    def exhausted(self, account: AccountKey, now: datetime, limits: BankLimits) -> None:
        self._block(keys=self._keys(account)[1:], args=[_ms(limits.window_end(now)), KEEP_MS])
