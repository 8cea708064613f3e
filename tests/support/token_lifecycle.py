"""Token stores of the TPP lifecycle on the real backends, and a worker process for the
single-flight tests (``python -m tests.support.token_lifecycle CONFIG_JSON``).

Each store gets its own namespace (a file in the test's folder, a PostgreSQL table, a Redis key
prefix), removed afterwards. PostgreSQL is the ``test`` database at 127.0.0.1:5432, Redis
database 15 at 127.0.0.1:6379; a test skips with the reason when one is unreachable (fails
with ``STETGATE_REQUIRE_POSTGRES=1`` for PostgreSQL), and PostgreSQL is skipped in the
date-shifted pass (``STETGATE_TEST_DATABASES=sqlite``) like every other PostgreSQL test.

The worker: builds a store, the keyring (from ``STETGATE_TPP_TOKEN_KEYS``), a `StetBankClient`
with the TPP's certificates and a `SingleFlightRefresher` on a frozen clock; prints ``ready``,
then for each line on stdin (an ISO instant: the start signal every worker gets at once) sets
its clock there, runs ``tasks`` concurrent `fresh` calls and prints a JSON line with, per task,
the SHA-256 of the access token it got (or the error), never a token. It ends at EOF.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

import psycopg
import pytest

from stetgate.tpp.lifecycle.file_store import FileTokenStore
from stetgate.tpp.lifecycle.ledger import MemoryLedger, UnattendedLedger
from stetgate.tpp.lifecycle.postgres_ledger import PostgresLedger
from stetgate.tpp.lifecycle.postgres_store import PostgresTokenStore
from stetgate.tpp.lifecycle.redis_ledger import RedisLedger
from stetgate.tpp.lifecycle.redis_store import RedisTokenStore

PG_URL = os.environ.get("STETGATE_TEST_TPP_PG_URL", "postgresql://postgres@127.0.0.1:5432/test")
STORE_KINDS = ("file", "postgresql", "redis")
Store = FileTokenStore | PostgresTokenStore | RedisTokenStore


def _check_postgres() -> None:
    databases = os.environ.get("STETGATE_TEST_DATABASES", "sqlite,postgresql")
    if "postgresql" not in databases:
        pytest.skip("PostgreSQL excluded by STETGATE_TEST_DATABASES=sqlite")
    try:
        psycopg.connect(PG_URL, connect_timeout=3).close()
    except psycopg.Error as exc:
        if os.environ.get("STETGATE_REQUIRE_POSTGRES") == "1":
            pytest.fail(f"STETGATE_REQUIRE_POSTGRES=1 but PostgreSQL unreachable: {exc}")
        pytest.skip(f"PostgreSQL unreachable at {PG_URL}: {type(exc).__name__}")


@contextmanager
def store_config(kind: str, directory: Path) -> Iterator[dict[str, Any]]:
    """A fresh namespace of ``kind`` as a JSON-able config (for `open_store`), removed after."""
    name = f"t{uuid.uuid4().hex[:12]}"
    if kind == "file":
        yield {"kind": kind, "path": str(directory / "tpp-state" / f"{name}.json")}
    elif kind == "postgresql":
        _check_postgres()
        config = {"kind": kind, "conninfo": PG_URL, "table": f"tpp_tokens_{name}"}
        try:
            yield config
        finally:
            store = open_store(config)
            assert isinstance(store, PostgresTokenStore)
            store.drop_schema()
            store.close()
    else:
        from tests.integration.psd2_support import REDIS_URL, redis_or_skip

        client = redis_or_skip()
        prefix = f"stetgate-test:{name}:"
        try:
            yield {"kind": kind, "url": REDIS_URL, "prefix": prefix}
        finally:
            for key in client.scan_iter(match=f"{prefix}*"):
                client.delete(key)
            client.close()


@contextmanager
def ledger_factory(kind: str) -> Iterator[Callable[[], UnattendedLedger]]:
    """New ledger objects on one fresh namespace of ``kind`` (``memory``: one shared object,
    as a process has), removed after."""
    name = f"l{uuid.uuid4().hex[:12]}"
    if kind == "memory":
        memory = MemoryLedger()
        yield lambda: memory
    elif kind == "postgresql":
        _check_postgres()
        opened: list[PostgresLedger] = []

        def postgres() -> PostgresLedger:
            opened.append(PostgresLedger(PG_URL, table=f"tpp_calls_{name}"))
            return opened[-1]

        try:
            yield postgres
        finally:
            postgres().drop_schema()
            for ledger in opened:
                ledger.close()
    else:
        from tests.integration.psd2_support import redis_or_skip

        client = redis_or_skip()
        prefix = f"stetgate-test:{name}:"
        try:
            yield lambda: RedisLedger(client, prefix=prefix)
        finally:
            for key in client.scan_iter(match=f"{prefix}*"):
                client.delete(key)
            client.close()


def open_store(config: dict[str, Any]) -> Store:
    if config["kind"] == "file":
        return FileTokenStore(Path(config["path"]))
    if config["kind"] == "postgresql":
        return PostgresTokenStore(config["conninfo"], table=config["table"])
    return RedisTokenStore.from_url(config["url"], prefix=config["prefix"])


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()[:16]


def _work(config: dict[str, Any]) -> None:
    import anyio

    from stetgate.clock import FrozenClock
    from stetgate.tpp.client import StetBankClient, TppCredentials
    from stetgate.tpp.lifecycle.bank_access import ThreadedClient
    from stetgate.tpp.lifecycle.limits import BankLimits
    from stetgate.tpp.lifecycle.sealing import Keyring, TokenSealer
    from stetgate.tpp.lifecycle.single_flight import SingleFlightRefresher
    from stetgate.tpp.lifecycle.store import EncryptedTokens

    clock = FrozenClock()
    store = open_store(config["store"])
    tokens = EncryptedTokens(store, TokenSealer(Keyring.from_environment()))
    client = StetBankClient(
        config["bank"],
        TppCredentials.from_directory(Path(config["certs"])),
        config["client_id"],
        ca_file=Path(config["ca"]),
        clock=clock,
    )
    refresher = SingleFlightRefresher(
        config["bank"], tokens, store, ThreadedClient(client), clock, limits=BankLimits()
    )
    print("ready", flush=True)
    results: list[str] = []

    async def one() -> None:
        try:
            record = await refresher.fresh(config["key"])
            results.append(token_digest(record.tokens.access_token))
        except Exception as exc:  # reported to the test, which fails on it
            results.append(f"error {type(exc).__name__}: {exc}")

    async def all_tasks() -> None:
        async with anyio.create_task_group() as group:
            for _ in range(config["tasks"]):
                group.start_soon(one)

    for line in sys.stdin:
        clock.set(datetime.fromisoformat(line.strip()))
        results.clear()
        anyio.run(all_tasks)
        print(json.dumps(results), flush=True)
    client.close()


if __name__ == "__main__":
    _work(json.loads(sys.argv[1]))
