"""Step 8 of the seed through the real flow: a demo PSU (credentials from demo-psus.json) goes
through /authorize, login, TOTP SCA and consent; the TPP redeems the code at /token over mTLS
and consumes the resource API with the TPP client library (signed with its QSealC). SQLite
and PostgreSQL."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from stetgate.tpp.client import BankError
from stetgate.tpp.doctor import stet_schemas as schemas
from tests.integration.psd2_support import demo_psu_world
from tests.support.bank import RunningBank
from tests.support.pki import TestPki

CALLBACK = "https://tpp.example/cb"
PSU_IP = {"PSU-IP-Address": "198.51.100.23"}


def test_a_demo_psu_authorizes_and_the_tpp_reads_its_accounts(
    bank_factory: Callable[..., RunningBank], pki: TestPki
) -> None:
    world = demo_psu_world(bank_factory(), pki, "PSDFR-ACPR-47001")
    bank, marie, robot = world.bank, world.marie, world.robot
    with world.tpp_client() as tpp, bank.client() as browser:
        request = tpp.authorization_request("aisp", CALLBACK)
        callback = robot.walk(browser, request.url, CALLBACK)
        tokens = tpp.exchange_code(request, callback, expected_issuer=bank.services.issuer)

        before = tpp.api("GET", "accounts", tokens, psu_headers=PSU_IP)
        schemas.check(before, schemas.ACCOUNTS)
        ibans = [a["accountId"]["iban"] for a in before["accounts"] if "iban" in a["accountId"]]
        assert ibans == marie["accounts"]
        assert all("balances" not in a for a in before["accounts"])

        card = next(a for a in before["accounts"] if a["cashAccountType"] == "CARD")
        tpp.api(
            "PUT",
            "consents",
            tokens,
            psu_headers=PSU_IP,
            json_body={
                "balances": [{"iban": i} for i in ibans],
                "transactions": [{"other": card["accountId"]["other"]}],
                "psuIdentity": True,
            },
        )
        after = tpp.api("GET", "accounts", tokens, psu_headers=PSU_IP)
        schemas.check(after, schemas.ACCOUNTS)
        listed = {a["resourceId"]: a for a in after["accounts"]}
        assert all(
            listed[a["resourceId"]]["balances"]
            for a in before["accounts"]
            if "iban" in a["accountId"]
        )
        card_links = listed[card["resourceId"]]["_links"]
        transactions: dict[str, Any] = tpp.follow(
            card_links["transactions"]["href"], tokens, psu_headers=PSU_IP
        )
        schemas.check(transactions, schemas.TRANSACTIONS)
        following = tpp.follow(transactions["_links"]["next"]["href"], tokens, psu_headers=PSU_IP)
        assert following["transactions"][0]["entryReference"] == str(
            int(transactions["transactions"][-1]["entryReference"]) - 1
        )
        identity = tpp.api("GET", "end-user-identity", tokens, psu_headers=PSU_IP)
        assert identity["connectedPsu"] == "Mme Marie Dupont"

        # the token is an AISP token: funds confirmation is refused
        try:
            tpp.api(
                "POST",
                "funds-confirmations",
                tokens,
                psu_headers=PSU_IP,
                json_body={
                    "paymentCoverageRequestId": "x1",
                    "instructedAmount": {"currency": "EUR", "amount": "1.00"},
                    "accountId": {"iban": ibans[0]},
                },
            )
        except BankError as exc:
            assert exc.status == 403
        else:
            raise AssertionError("an AISP token confirmed funds")


@pytest.mark.postgres  # the consent reset in the code exchange's transaction
def test_a_new_authorization_with_sca_drops_the_consent_forwarded_under_the_previous_one(
    bank_factory: Callable[..., RunningBank], pki: TestPki
) -> None:
    """docs/decisions.md#consent: the AISP forwards the PSU's account choices again after a new
    SCA; a refresh or a CBPII authorization keeps them."""
    world = demo_psu_world(bank_factory(), pki, "PSDFR-ACPR-47002")
    bank, marie, robot = world.bank, world.marie, world.robot
    with world.tpp_client() as tpp, bank.client() as browser:

        def authorize(scope: str) -> Any:
            bank.clock.advance(31)  # a new TOTP step: a code is accepted once
            request = tpp.authorization_request(scope, CALLBACK)
            callback = robot.walk(browser, request.url, CALLBACK)
            return tpp.exchange_code(request, callback, expected_issuer=bank.services.issuer)

        tokens = authorize("aisp")
        first = marie["accounts"][0]
        tpp.api("PUT", "consents", tokens, psu_headers=PSU_IP, json={"balances": [{"iban": first}]})

        def listed(tokens: Any) -> list[dict[str, Any]]:
            accounts: list[dict[str, Any]] = tpp.api("GET", "accounts", tokens, psu_headers=PSU_IP)[
                "accounts"
            ]
            return accounts

        assert [a["accountId"]["iban"] for a in listed(tokens)] == [first]
        tokens = tpp.refresh(tokens)
        authorize("cbpii")
        assert [a["accountId"]["iban"] for a in listed(tokens)] == [first], "kept"

        tpp.revoke(tokens.access_token)
        tokens = authorize("aisp")
        again = listed(tokens)
        assert len(again) > 1, "every account again, as before any consent"
        assert all("balances" not in a for a in again)
        resource = again[0]["resourceId"]
        try:
            tpp.api("GET", f"accounts/{resource}/balances", tokens, psu_headers=PSU_IP)
        except BankError as exc:
            assert exc.status == 403
        else:
            raise AssertionError("balances readable under a consent of an earlier authorization")
