"""What the lifecycle needs from a bank client, and an adapter for the synchronous one.

The protocol is narrow on purpose (Fosite's per-flow storage interfaces, applied to the
client): `refresh` for `single_flight`, `api` for the scheduler. `StetBankClient` is
synchronous; `ThreadedClient` runs its calls in worker threads (``anyio.to_thread``) so the
event loop keeps serving other PSUs while one waits on the bank. An async client with the same
method names satisfies `BankAccess` as it is.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

import anyio.to_thread

from stetgate.tpp.client import StetBankClient, TokenSet


class TokenRefreshing(Protocol):
    async def refresh(self, tokens: TokenSet) -> TokenSet:
        """RFC 6749 §6; raises `stetgate.tpp.client.BankError` on a refusal."""
        ...


class BankAccess(TokenRefreshing, Protocol):
    async def api(
        self,
        method: str,
        path: str,
        tokens: TokenSet,
        *,
        psu_headers: Mapping[str, str] | None = None,
    ) -> dict[str, Any]:
        """A signed STET call (docs/decisions.md#http-signatures); the JSON answer."""
        ...


class ThreadedClient:
    """`BankAccess` over a `StetBankClient`, each call in a worker thread (httpx's sync
    client is thread-safe for concurrent requests)."""

    def __init__(self, client: StetBankClient) -> None:
        self.client = client

    async def refresh(self, tokens: TokenSet) -> TokenSet:
        return await anyio.to_thread.run_sync(self.client.refresh, tokens)

    async def api(
        self,
        method: str,
        path: str,
        tokens: TokenSet,
        *,
        psu_headers: Mapping[str, str] | None = None,
    ) -> dict[str, Any]:
        def call() -> dict[str, Any]:
            return self.client.api(method, path, tokens, psu_headers=psu_headers)

        return await anyio.to_thread.run_sync(call)
