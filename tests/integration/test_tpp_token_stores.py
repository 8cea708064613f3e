"""The token stores of the TPP lifecycle on their real backends — a file, PostgreSQL, Redis:
compare-and-set versions, listing, the refresh lock, and nothing in clear
(stetgate/tpp/lifecycle/{file,postgres,redis}_store.py)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
import redis
from psycopg import sql

from stetgate.tpp.lifecycle.errors import LockTimeout, VersionConflict
from stetgate.tpp.lifecycle.postgres_store import PostgresTokenStore
from stetgate.tpp.lifecycle.redis_store import RedisTokenStore
from stetgate.tpp.lifecycle.store import ABSENT, EncryptedTokens
from tests.support.lifecycle_values import record, sealer
from tests.support.token_lifecycle import STORE_KINDS, Store, open_store, store_config


@pytest.fixture(params=STORE_KINDS)
def config(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[dict[str, object]]:
    with store_config(request.param, tmp_path) as config:
        yield config


@pytest.fixture
def store(config: dict[str, object]) -> Iterator[Store]:
    opened = open_store(dict(config))
    yield opened
    if isinstance(opened, PostgresTokenStore):
        opened.close()


def test_a_key_is_created_at_version_one(store: Store) -> None:
    assert store.get("psu-1") is None
    assert store.put("psu-1", "v1", ABSENT) == 1
    sealed = store.get("psu-1")
    assert sealed is not None and (sealed.value, sealed.version) == ("v1", 1)


def test_creating_a_key_that_exists_conflicts_and_keeps_it(store: Store) -> None:
    store.put("psu-1", "first", ABSENT)
    with pytest.raises(VersionConflict):
        store.put("psu-1", "second", ABSENT)
    assert store.get("psu-1").value == "first"  # type: ignore[union-attr]


def test_a_write_with_a_stale_version_conflicts_and_keeps_the_newer_value(store: Store) -> None:
    store.put("psu-1", "v1", ABSENT)
    assert store.put("psu-1", "v2", 1) == 2
    with pytest.raises(VersionConflict):
        store.put("psu-1", "stale", 1)
    assert store.get("psu-1").value == "v2"  # type: ignore[union-attr]


def test_updating_a_key_that_does_not_exist_conflicts(store: Store) -> None:
    with pytest.raises(VersionConflict):
        store.put("psu-1", "v", 3)
    assert store.get("psu-1") is None


def test_delete_and_list_only_this_store_s_keys(store: Store) -> None:
    odd = "https://bank.test client*[1]? psu\\x"
    for key in ("b", "a", odd):
        store.put(key, "v", ABSENT)
    assert store.stored_keys() == sorted(["a", "b", odd])
    assert store.delete("a") is True
    assert store.delete("a") is False
    assert store.stored_keys() == sorted(["b", odd])
    assert store.get(odd).value == "v"  # type: ignore[union-attr]


def test_concurrent_read_modify_writes_lose_no_update(config: dict[str, object]) -> None:
    """8 threads, each with its own store object, increment one counter 10 times by
    compare-and-set: every increment survives."""
    open_store(dict(config)).put("counter", "0", ABSENT)

    def increment() -> None:
        mine = open_store(dict(config))
        for _ in range(10):
            while True:
                current = mine.get("counter")
                assert current is not None
                try:
                    mine.put("counter", str(int(current.value) + 1), current.version)
                    break
                except VersionConflict:
                    continue
        if isinstance(mine, PostgresTokenStore):
            mine.close()

    threads = [threading.Thread(target=increment) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    final = open_store(dict(config)).get("counter")
    assert final is not None and (final.value, final.version) == ("80", 81)


def test_a_held_refresh_lock_makes_the_next_holder_wait_then_time_out(store: Store) -> None:
    held = store.acquire("psu-1", timeout=1.0)
    other = open_store_like(store)
    with pytest.raises(LockTimeout):
        other.acquire("psu-1", timeout=0.2)
    unrelated = other.acquire("psu-2", timeout=0.2)  # another PSU is not blocked
    unrelated.release()
    held.release()
    other.acquire("psu-1", timeout=0.2).release()


def open_store_like(store: Store) -> Store:
    """A second, independent handle on the same namespace (another 'process' as far as the
    lock goes: its own descriptors, connections or lock token)."""
    if isinstance(store, PostgresTokenStore):
        return PostgresTokenStore(store.conninfo, table=store.table)
    if isinstance(store, RedisTokenStore):
        return RedisTokenStore(redis.Redis.from_url(_redis_url(store)), prefix=store._prefix)
    return type(store)(store.path)


def _redis_url(store: RedisTokenStore) -> str:
    kwargs = store._client.connection_pool.connection_kwargs
    return f"redis://{kwargs['host']}:{kwargs['port']}/{kwargs['db']}"


def test_nothing_stored_reveals_a_token(config: dict[str, object], store: Store) -> None:
    EncryptedTokens(store, sealer()).put("psu-1", record(), ABSENT)
    raw = _raw_contents(config, store)
    assert "access-secret" not in raw and "refresh-secret" not in raw
    assert "sg1.k1." in raw


def _raw_contents(config: dict[str, object], store: Store) -> str:
    if config["kind"] == "file":
        return Path(str(config["path"])).read_text()
    if config["kind"] == "postgresql":
        with psycopg.connect(str(config["conninfo"])) as conn:
            rows = conn.execute(
                sql.SQL("SELECT * FROM {}").format(sql.Identifier(str(config["table"])))
            ).fetchall()
        return repr(rows)
    assert isinstance(store, RedisTokenStore)
    client = store._client
    return repr([client.hgetall(k) for k in client.scan_iter(match=f"{config['prefix']}*")])


@pytest.mark.parametrize("config", ["file"], indirect=True)
def test_the_token_file_is_private(config: dict[str, object], store: Store) -> None:
    store.put("psu-1", "v", ABSENT)
    path = Path(str(config["path"]))
    assert path.stat().st_mode & 0o077 == 0
    assert path.parent.stat().st_mode & 0o777 == 0o700


@pytest.mark.parametrize("config", ["redis"], indirect=True)
def test_a_redis_holder_whose_lease_ran_out_cannot_release_its_successor(
    config: dict[str, object], store: Store
) -> None:
    assert isinstance(store, RedisTokenStore)
    late = store.acquire("psu-1", timeout=0.2)
    store._client.delete(f"{config['prefix']}l:psu-1")  # the lease expires
    successor = open_store_like(store).acquire("psu-1", timeout=0.2)
    late.release()  # must not delete the successor's lock
    with pytest.raises(LockTimeout):
        open_store_like(store).acquire("psu-1", timeout=0.1)
    successor.release()


@pytest.mark.parametrize("config", ["postgresql"], indirect=True)
def test_postgres_creates_its_table_on_first_use_or_explicitly(
    config: dict[str, object], store: Store
) -> None:
    assert isinstance(store, PostgresTokenStore)
    assert store.stored_keys() == []  # the first use created the table
    store.drop_schema()
    store.create_schema()
    store.put("psu-1", "v", ABSENT)
    assert store.stored_keys() == ["psu-1"]


@pytest.mark.parametrize("config", ["postgresql"], indirect=True)
def test_a_postgres_lock_is_freed_when_its_holder_s_connection_dies(
    config: dict[str, object], store: Store
) -> None:
    assert isinstance(store, PostgresTokenStore)
    held = store.acquire("psu-1", timeout=1.0)
    held._conn.close()  # type: ignore[attr-defined]  # the process holding it died
    open_store_like(store).acquire("psu-1", timeout=1.0).release()


@pytest.mark.parametrize("config", ["postgresql"], indirect=True)
def test_eight_first_uses_at_once_create_the_postgres_table_once(
    config: dict[str, object],
) -> None:
    failures: list[BaseException] = []
    start = threading.Barrier(8)

    def first_use(n: int) -> None:
        store = open_store(dict(config))
        assert isinstance(store, PostgresTokenStore)
        start.wait()
        try:
            store.put(f"psu-{n}", "v", ABSENT)
        except BaseException as exc:
            failures.append(exc)
        store.close()

    threads = [threading.Thread(target=first_use, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert failures == []
    assert len(open_store(dict(config)).stored_keys()) == 8
