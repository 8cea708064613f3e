"""`AsyncStetBankClient` against a real stetgate bank (TLS and mutual TLS with test-QTSP
certificates, the demo PSUs, the PSU robot on the bank's pages): the whole cinematic, the
resource API, the register API, and the errors a TPP service must tell apart — a reused code
(`invalid_grant`), a STET error body, no client certificate, the unattended limit."""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from stetgate.tpp.async_client import AsyncStetBankClient
from stetgate.tpp.client import BankError, TokenSet, TppCredentials
from tests.integration.psd2_support import DemoPsuWorld, demo_psu_world
from tests.support.bank import RunningBank
from tests.support.pki import TestPki

CALLBACK = "https://tpp.example/cb"
PSU_IP = {"PSU-IP-Address": "198.51.100.23"}


@pytest.fixture
def world(bank_factory: Callable[..., RunningBank], pki: TestPki) -> DemoPsuWorld:
    return demo_psu_world(bank_factory(), pki, "PSDFR-ACPR-49001")


def _client(
    world: DemoPsuWorld, client_id: str | None = None, **kwargs: Any
) -> AsyncStetBankClient:
    return AsyncStetBankClient(
        world.bank.base_url,
        TppCredentials.from_directory(world.certs.directory),
        world.certs.org_id if client_id is None else client_id,
        **{"ca_file": world.pki.ca_pem, "clock": world.bank.clock, **kwargs},
    )


def _callback(world: DemoPsuWorld, url: str) -> str:
    world.bank.clock.advance(31)  # a fresh TOTP step for each journey
    with world.bank.client() as browser:
        return str(world.robot.walk(browser, url, CALLBACK))


async def _authorize(world: DemoPsuWorld, client: AsyncStetBankClient) -> TokenSet:
    request = client.authorization_request("aisp", CALLBACK)
    return await client.exchange_code(request, _callback(world, request.url))


def test_the_whole_cinematic_then_the_accounts_with_balances(world: DemoPsuWorld) -> None:
    async def journey() -> None:
        async with _client(world) as bank:
            assert (await bank.metadata())["issuer"] == world.bank.services.issuer
            tokens = await _authorize(world, bank)
            listed = await bank.api("GET", "accounts", tokens, psu_headers=PSU_IP)
            assert all("balances" not in a for a in listed["accounts"])
            sent = await bank.forward_consent(tokens, all_accounts=True, psu_headers=PSU_IP)
            assert sent["balances"] == [a["accountId"] for a in listed["accounts"]]
            accounts = (await bank.api("GET", "accounts", tokens, psu_headers=PSU_IP))["accounts"]
            assert all(a["balances"] for a in accounts if "iban" in a["accountId"])
            card = next(a for a in accounts if a["cashAccountType"] == "CARD")
            page = await bank.follow(
                card["_links"]["transactions"]["href"], tokens, psu_headers=PSU_IP
            )
            following = await bank.follow(
                page["_links"]["next"]["href"], tokens, psu_headers=PSU_IP
            )
            assert following["transactions"] and following != page

            assert await bank.ensure_fresh(tokens) is tokens  # an hour left: no call
            world.bank.clock.advance(3600)
            fresh = await bank.ensure_fresh(tokens)
            assert fresh.access_token != tokens.access_token
            assert fresh.refresh_token == tokens.refresh_token  # the sandbox profile: "same"
            with pytest.raises(BankError) as old:
                await bank.api("GET", "accounts", tokens, psu_headers=PSU_IP)
            assert old.value.status == 401
            await bank.revoke(fresh.access_token)
            with pytest.raises(BankError) as over:
                await bank.refresh(fresh)
            assert over.value.oauth_error == "invalid_grant"

    asyncio.run(journey())


def test_a_code_redeemed_twice_is_invalid_grant(world: DemoPsuWorld) -> None:
    async def twice() -> BankError:
        async with _client(world) as bank:
            request = bank.authorization_request("aisp", CALLBACK)
            callback = _callback(world, request.url)
            await bank.exchange_code(request, callback)
            with pytest.raises(BankError) as caught:
                await bank.exchange_code(request, callback)
            return caught.value

    refused = asyncio.run(twice())
    assert (refused.status, refused.oauth_error) == (400, "invalid_grant")


def test_a_refused_consent_raises_the_callback_error_without_a_token_request(
    world: DemoPsuWorld,
) -> None:
    world.robot.decision = "refuse"

    async def refused() -> BankError:
        async with _client(world) as bank:
            with pytest.raises(BankError) as caught:
                await _authorize(world, bank)
            return caught.value

    error = asyncio.run(refused())
    assert "access_denied: consent_refused" in str(error)


def test_a_stet_error_body_becomes_a_bank_error(world: DemoPsuWorld) -> None:
    async def call() -> BankError:
        async with _client(world) as bank:
            tokens = await _authorize(world, bank)
            with pytest.raises(BankError) as caught:
                await bank.api(
                    "GET", "accounts/no-such-account/balances", tokens, psu_headers=PSU_IP
                )
            return caught.value

    error = asyncio.run(call())
    assert error.status in (403, 404)
    assert error.body["status"] == error.status and error.body["message"]
    assert str(error) == f"HTTP {error.status}: {error.body['message']}"


def test_without_a_client_certificate_the_bank_answers_invalid_client(
    world: DemoPsuWorld,
) -> None:
    no_qwac = ssl.create_default_context(cafile=str(world.pki.ca_pem))

    async def refresh() -> BankError:
        async with _client(world, transport=httpx.AsyncHTTPTransport(verify=no_qwac)) as bank:
            with pytest.raises(BankError) as caught:
                await bank.refresh(TokenSet("A", "R", 3600, "aisp"))
            return caught.value

    error = asyncio.run(refresh())
    assert (error.status, error.oauth_error) == (401, "invalid_client")


def test_a_bank_certificate_not_trusted_is_a_connect_error(world: DemoPsuWorld) -> None:
    async def metadata() -> None:
        async with _client(world, ca_file=None) as bank:
            await bank.metadata()

    with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
        asyncio.run(metadata())


def test_the_fifth_unattended_call_is_429_with_retry_after(world: DemoPsuWorld) -> None:
    async def calls() -> BankError:
        async with _client(world) as bank:
            tokens = await _authorize(world, bank)
            await asyncio.gather(*(bank.api("GET", "accounts", tokens) for _ in range(4)))
            with pytest.raises(BankError) as caught:
                await bank.api("GET", "accounts", tokens)
            await bank.api("GET", "accounts", tokens, psu_headers=PSU_IP)  # the PSU is there
            return caught.value

    error = asyncio.run(calls())
    assert error.status == 429
    assert error.retry_after is not None and 0 < error.retry_after <= 25 * 3600


def test_register_read_update_delete_then_the_client_is_gone(world: DemoPsuWorld) -> None:
    async def lifecycle() -> None:
        async with _client(world, client_id="") as anonymous:
            metadata = anonymous.client_metadata(
                "Async App", [CALLBACK], contacts=["a@tpp.example"]
            )
            registration = await anonymous.register(metadata)
        assert registration.client_id != world.certs.org_id
        async with _client(world, client_id=registration.client_id) as bank:
            read = await bank.read_registration(registration)
            assert read.metadata["client_name"] == "Async App"
            metadata["redirect_uris"] = [CALLBACK, "https://tpp.example/cb2"]
            updated = await bank.update_registration(registration, metadata)
            assert updated.metadata["redirect_uris"] == metadata["redirect_uris"]
            assert updated.registration_access_token == registration.registration_access_token
            tokens = await _authorize(world, bank)  # the registered client runs the cinematic
            await bank.delete_registration(registration)
            with pytest.raises(BankError) as gone:
                await bank.read_registration(registration)
            assert gone.value.status == 401
            with pytest.raises(BankError) as revoked:
                await bank.refresh(tokens)
            assert revoked.value.status in (400, 401)

    asyncio.run(lifecycle())
