"""`add_redirect_uris`: how the sandbox gives an existing demo TPP the loopback redirect URI
(a data folder made before it existed) — additions only, in order, idempotent."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import create_engine

from stetgate.oauth.clients import add_redirect_uris, get_client, golive_client, insert_client

NOW = datetime(2031, 5, 1, tzinfo=UTC)


def test_missing_uris_are_appended_once(db_url: str) -> None:
    engine = create_engine(db_url)
    try:
        with engine.begin() as conn:
            insert_client(conn, golive_client("PSDFR-X-1", "X", ["https://a.example/cb"], NOW))
            later = NOW + timedelta(hours=1)
            assert add_redirect_uris(
                conn, "PSDFR-X-1", ["https://a.example/cb", "https://127.0.0.1/callback"], later
            )
            assert not add_redirect_uris(conn, "PSDFR-X-1", ["https://127.0.0.1/callback"], later)
            client = get_client(conn, "PSDFR-X-1")
            assert client is not None
            assert client.redirect_uris == ("https://a.example/cb", "https://127.0.0.1/callback")
            assert client.updated_at == later
            assert not add_redirect_uris(conn, "unknown", ["https://b.example/cb"], later)
    finally:
        engine.dispose()
