"""Alembic environment: migrations run against stetgate's metadata on SQLite or PostgreSQL."""

from __future__ import annotations

from alembic import context

from stetgate.store.db import make_engine
from stetgate.store.schema import metadata

config = context.config
url = config.get_main_option("sqlalchemy.url")
assert url is not None
engine = make_engine(url, pool_size=1)
with engine.connect() as connection:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        render_as_batch=url.startswith("sqlite"),
        transaction_per_migration=True,
    )
    with context.begin_transaction():
        context.run_migrations()
engine.dispose()
