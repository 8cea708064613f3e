"""Which store a URL names, for configuration and the CLI: ``postgresql://…`` (psycopg
conninfo), ``redis://…``/``rediss://…``, or a file path (the default store)."""

from __future__ import annotations

from pathlib import Path

from stetgate.tpp.client import default_state_dir
from stetgate.tpp.lifecycle.file_store import FileTokenStore
from stetgate.tpp.lifecycle.postgres_store import DEFAULT_TABLE, PostgresTokenStore
from stetgate.tpp.lifecycle.redis_store import DEFAULT_PREFIX, RedisTokenStore

AnyTokenStore = FileTokenStore | PostgresTokenStore | RedisTokenStore
DEFAULT_FILE_NAME = "tokens.sealed.json"


def default_store_location() -> str:
    """``tokens.sealed.json`` in the kit's state folder (`default_state_dir`)."""
    return str(default_state_dir() / DEFAULT_FILE_NAME)


def open_token_store(
    location: str, *, table: str = DEFAULT_TABLE, prefix: str = DEFAULT_PREFIX
) -> AnyTokenStore:
    """The store at ``location``; each implements `TokenStore` and `RefreshLock`."""
    if location.startswith(("postgresql://", "postgres://")):
        return PostgresTokenStore(location, table=table)
    if location.startswith(("redis://", "rediss://", "unix://")):
        return RedisTokenStore.from_url(location, prefix=prefix)
    if "://" in location:
        raise ValueError(f"unknown token store scheme in {location.split('://')[0]!r}")
    return FileTokenStore(Path(location))
