"""`AsyncStetBankClient`: the TPP client over ``httpx.AsyncClient``, for asyncio services (a
token refresher, a web app) that must not block their event loop on a bank.

The operations, their rules and the bank's profile are `stetgate.tpp.flows`, the same flows
`StetBankClient` runs; only the sending differs (``await``). Values and errors are the sync
client's: `TokenSet`, `Registration`, `BankError`, `ProfileGap`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar, Unpack, cast

import httpx

from stetgate.tpp import flows
from stetgate.tpp.client import ClientCore, ClientOptions
from stetgate.tpp.credentials import TppCredentials
from stetgate.tpp.flows import ApiOptions, ConsentChoices, Flow, Outgoing, SignedOptions
from stetgate.tpp.registration import Registration
from stetgate.tpp.tokens import AuthorizationRequest, TokenSet

T = TypeVar("T")


class AsyncStetBankClient(ClientCore):
    """`ClientCore` over ``httpx.AsyncClient`` (mutual TLS with the QWAC). Use it as an
    ``async with`` block or call `aclose`. Each method is the `StetBankClient` one, awaited."""

    def __init__(
        self,
        base_url: str,
        credentials: TppCredentials,
        client_id: str = "",
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        **options: Unpack[ClientOptions],
    ) -> None:
        super().__init__(base_url, credentials, client_id, **options)
        self._http = httpx.AsyncClient(
            verify=self._verify, timeout=self._timeout, transport=transport
        )

    async def aclose(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> AsyncStetBankClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def _run(self, flow: Flow[T]) -> T:
        """Send each request the flow yields, awaiting the answer; its return value is the
        result."""
        try:
            outgoing = next(flow)
            while True:
                outgoing = flow.send(await self._send(outgoing))
        except StopIteration as done:
            return cast(T, done.value)

    async def _send(self, outgoing: Outgoing) -> httpx.Response:
        return await self._http.request(**outgoing.as_httpx())

    async def metadata(self) -> dict[str, Any]:
        return await self._run(flows.metadata(self.at_bank()))

    async def exchange_code(
        self,
        request: AuthorizationRequest,
        callback_url: str,
        *,
        expected_issuer: str | None = None,
    ) -> TokenSet:
        at = self.at_bank()
        return await self._run(
            flows.exchange_code(at, request, callback_url, expected_issuer=expected_issuer)
        )

    async def refresh(self, tokens: TokenSet) -> TokenSet:
        return await self._run(flows.refresh(self.at_bank(), tokens))

    async def ensure_fresh(self, tokens: TokenSet, margin_seconds: int = 60) -> TokenSet:
        return await self._run(flows.ensure_fresh(self.at_bank(), tokens, margin_seconds))

    async def revoke(self, token: str, hint: str | None = None) -> None:
        await self._run(flows.revoke(self.at_bank(), token, hint))

    async def signed_request(
        self, method: str, path: str, token: str | None, **options: Unpack[SignedOptions]
    ) -> httpx.Response:
        return await self._run(flows.signed_request(self.at_bank(), method, path, token, **options))

    async def api(
        self, method: str, path: str, tokens: TokenSet, **options: Unpack[ApiOptions]
    ) -> dict[str, Any]:
        return await self._run(flows.api(self.at_bank(), method, path, tokens, **options))

    async def forward_consent(
        self, tokens: TokenSet, **choices: Unpack[ConsentChoices]
    ) -> dict[str, Any]:
        return await self._run(flows.forward_consent(self.at_bank(), tokens, **choices))

    async def follow(
        self, href: str, tokens: TokenSet, **options: Unpack[SignedOptions]
    ) -> dict[str, Any]:
        return await self._run(flows.follow(self.at_bank(), href, tokens, **options))

    async def registration_token(self) -> str:
        return await self._run(flows.registration_token(self.at_bank()))

    async def register(self, metadata: Mapping[str, Any]) -> Registration:
        return await self._run(flows.register(self.at_bank(), metadata))

    async def read_registration(self, registration: Registration) -> Registration:
        return await self._run(flows.read_registration(self.at_bank(), registration))

    async def update_registration(
        self, registration: Registration, metadata: Mapping[str, Any]
    ) -> Registration:
        return await self._run(flows.update_registration(self.at_bank(), registration, metadata))

    async def delete_registration(self, registration: Registration) -> None:
        await self._run(flows.delete_registration(self.at_bank(), registration))
