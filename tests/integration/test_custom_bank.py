"""The seams of `create_app`: a bank plugs in its own core banking, customer directory and SCA
method, and the whole cinematic and the resource API run on them — nothing of the demo bank
is involved (its tables stay empty).

The three implementations below are deliberately minimal and in-memory: they are what a
bank's adapter looks like from stetgate's side (`stetgate.bank.backend.BankBackend`,
`stetgate.bank.psus.PsuDirectory`, `stetgate.bank.sca.ScaMethod`).
"""

from __future__ import annotations

import hmac
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from stetgate.bank.backend import (
    Account,
    Balance,
    Beneficiary,
    CurrencyMismatch,
    EndUserIdentity,
    Money,
    Transaction,
    TransactionPage,
    TransactionQuery,
    UnknownAccount,
)
from stetgate.bank.psus import FailedAttempt, Psu
from stetgate.bank.sca import ScaAttempt, ScaCheck
from stetgate.clock import FrozenClock
from stetgate.store.schema import psu_journeys
from stetgate.store.schema import psus as psus_table
from stetgate.tpp.client import BankError, StetBankClient, TppCredentials
from stetgate.tpp.psu_robot import PsuJourneyError, PsuRobot
from tests.conftest import fresh_database_url
from tests.integration.psd2_support import register_client
from tests.support.bank import RunningBank, start_bank
from tests.support.pki import TestPki

CALLBACK = "https://tpp.example/cb"
PSU_IP = {"PSU-IP-Address": "198.51.100.23"}
IBAN = "FR7630006000011234567890189"
PSU_ID = "c-1001"
PASSWORD = "correct horse battery staple"
CODE = "424242"


# --- a bank's own core banking --------------------------------------------------------------
@dataclass
class LedgerBank:
    """One PSU, one current account, three transactions: the core banking of the test."""

    today: date
    calls: list[str] = field(default_factory=list)

    def _account(self) -> Account:
        return Account(
            resource_id="acc-1",
            bic="BNPAFRPP",
            iban=IBAN,
            other=None,
            currency="EUR",
            name="Compte courant",
            cash_account_type="CACC",
            usage="PRIV",
            product="Compte de dépôt",
            psu_status="Account Holder",
        )

    def _balances(self) -> list[Balance]:
        return [Balance("Solde comptable", Money(123_45, "EUR"), "CLBD")]

    def accounts_of(self, psu_id: str) -> Sequence[Account]:
        self.calls.append("accounts_of")
        return [self._account()] if psu_id == PSU_ID else []

    def accounts_with_balances(
        self, psu_id: str, balance_accounts: Collection[str]
    ) -> Sequence[tuple[Account, Sequence[Balance] | None]]:
        self.calls.append("accounts_with_balances")
        return [
            (account, self._balances() if account.resource_id in balance_accounts else None)
            for account in self.accounts_of(psu_id)
        ]

    def balances_of(
        self, psu_id: str, account_ids: Collection[str]
    ) -> Mapping[str, Sequence[Balance]]:
        self.calls.append("balances_of")
        held = {a.resource_id for a in self.accounts_of(psu_id)}
        return {i: self._balances() for i in account_ids if i in held}

    def transactions_of(
        self, psu_id: str, account_id: str, query: TransactionQuery
    ) -> TransactionPage:
        self.calls.append("transactions_of")
        if account_id not in {a.resource_id for a in self.accounts_of(psu_id)}:
            raise UnknownAccount(account_id)
        entries = [
            Transaction(
                resource_id=f"t{n}",
                entry_reference=n,
                amount=Money(1000 * n, "EUR"),
                credit_debit="DBIT",
                status="BOOK",
                booking_date=self.today - timedelta(days=n),
                value_date=self.today - timedelta(days=n),
                transaction_date=self.today - timedelta(days=n),
                remittance_information=(f"Achat {n}",),
            )
            for n in (3, 2, 1)
        ]
        low, high = query.booked_from or date.min, query.booked_before or date.max
        chosen = [t for t in entries if low <= (t.booking_date or self.today) < high]
        page = chosen[query.offset : query.offset + query.limit]
        return TransactionPage(tuple(page), len(chosen), 3)

    def identity_of(self, psu_id: str) -> EndUserIdentity | None:
        return EndUserIdentity("M. Jean Martin") if psu_id == PSU_ID else None

    def trusted_beneficiaries_of(self, psu_id: str) -> Sequence[Beneficiary]:
        return []

    def funds_available(self, psu_id: str, account_id: str, amount: Decimal, currency: str) -> bool:
        if account_id not in {a.resource_id for a in self.accounts_of(psu_id)}:
            raise UnknownAccount(account_id)
        if currency != "EUR":
            raise CurrencyMismatch(currency)
        return amount <= Decimal("123.45")


# --- a bank's own customer directory --------------------------------------------------------
@dataclass
class CustomerDirectory:
    """The bank's identity store: one customer, failures counted in memory."""

    now: Callable[[], datetime]
    failures: int = 0
    blocked_until: datetime | None = None
    checks: list[str] = field(default_factory=list)

    def find(self, psu_id: str) -> Psu | None:
        if psu_id != PSU_ID:
            return None
        return Psu(
            psu_id=PSU_ID,
            display_name="Jean Martin",
            has_totp=False,
            app_sca=False,
            failed_attempts=self.failures,
            blocked_until=self.blocked_until,
            created_at=self.now() - timedelta(days=400),
        )

    def check_password(self, psu_id: str, password: str) -> bool:
        self.checks.append("password")
        return hmac.compare_digest(f"{psu_id}:{password}".encode(), f"{PSU_ID}:{PASSWORD}".encode())

    def check_totp(self, psu_id: str, code: str, now: datetime) -> bool:
        return False  # this bank has no authenticator app

    def record_failed_attempt(self, psu_id: str, now: datetime) -> FailedAttempt:
        self.failures += 1
        if self.failures >= 5:
            self.blocked_until = now + timedelta(minutes=15)
            self.failures = 0
        return FailedAttempt(self.failures, self.blocked_until)

    def record_successful_authentication(self, psu_id: str) -> None:
        self.failures = 0

    def block(self, psu_id: str, until: datetime) -> bool:
        self.blocked_until = until
        return psu_id == PSU_ID

    def unblock(self, psu_id: str) -> bool:
        self.blocked_until = None
        return psu_id == PSU_ID

    def enrol_totp(self, psu_id: str, secret: str) -> None:
        raise ValueError("no authenticator app at this bank")

    def enrol_app(self, psu_id: str, enabled: bool) -> None:
        raise ValueError("no banking app at this bank")


# --- a bank's own SCA method ------------------------------------------------------------------
@dataclass
class SmsCode:
    """A code "sent by SMS" (the test reads it from here), the only method of this bank."""

    sent: list[str] = field(default_factory=list)
    name: str = "sms"
    template: str = "otp.html"

    def enrolled(self, psu: Psu) -> bool:
        return True

    def begin(self) -> dict[str, Any]:
        self.sent.append(CODE)
        return {}

    def check(
        self, directory: Any, attempt: ScaAttempt, form: Mapping[str, str], now: datetime
    ) -> ScaCheck:
        code = form.get("otp", "").strip()
        if attempt.psu_id == PSU_ID and self.sent and hmac.compare_digest(code, self.sent[-1]):
            return ScaCheck.COMPLETED
        return ScaCheck.FAILED


@dataclass
class CustomBank:
    running: RunningBank
    core: LedgerBank
    directory: CustomerDirectory
    sms: SmsCode


@pytest.fixture
def custom_bank(
    pki: TestPki, tmp_path: Path, request: pytest.FixtureRequest
) -> Iterator[CustomBank]:
    clock = FrozenClock()
    core = LedgerBank(today=clock.now().date())
    directory = CustomerDirectory(now=clock.now)
    sms = SmsCode()
    running = start_bank(
        pki,
        fresh_database_url(request, "sqlite", tmp_path),
        tmp_path / "bank",
        clock,
        ports={"bank": core, "psus": directory, "sca_methods": [sms]},
    )
    yield CustomBank(running, core, directory, sms)
    running.stop()


def _tpp(bank: RunningBank, pki: TestPki, org: str) -> tuple[StetBankClient, Any]:
    certs = pki.issue(org, ("AISP", "CBPII"))
    register_client(bank.services.engine, certs, bank.clock.now())
    client = StetBankClient(
        bank.base_url,
        TppCredentials.from_directory(certs.directory),
        certs.org_id,
        ca_file=pki.ca_pem,
    )
    return client, certs


def test_cinematic_and_accounts_run_on_the_banks_own_systems(
    custom_bank: CustomBank, pki: TestPki
) -> None:
    bank = custom_bank.running
    tpp, _certs = _tpp(bank, pki, "PSDFR-ACPR-48001")
    robot = PsuRobot(PSU_ID, PASSWORD, otp=lambda: custom_bank.sms.sent[-1], method="sms")
    with tpp, bank.client() as browser:
        request = tpp.authorization_request("aisp", CALLBACK)
        callback = robot.walk(browser, request.url, CALLBACK)
        tokens = tpp.exchange_code(request, callback, expected_issuer=bank.services.issuer)

        listed = tpp.api("GET", "accounts", tokens, psu_headers=PSU_IP)
        assert [a["accountId"]["iban"] for a in listed["accounts"]] == [IBAN]
        assert listed["accounts"][0]["name"] == "Compte courant"
        tpp.api(
            "PUT",
            "consents",
            tokens,
            psu_headers=PSU_IP,
            json_body={
                "balances": [{"iban": IBAN}],
                "transactions": [{"iban": IBAN}],
                "psuIdentity": True,
            },
        )
        after = tpp.api("GET", "accounts", tokens, psu_headers=PSU_IP)
        assert after["accounts"][0]["balances"][0]["balanceAmount"]["amount"] == "123.45"
        history = tpp.api("GET", "accounts/acc-1/transactions", tokens, psu_headers=PSU_IP)
        assert [t["entryReference"] for t in history["transactions"]] == ["3", "2", "1"]
        identity = tpp.api("GET", "end-user-identity", tokens, psu_headers=PSU_IP)
        assert identity["connectedPsu"] == "M. Jean Martin"

    assert custom_bank.sms.sent == [CODE]  # the bank's method ran, once
    assert custom_bank.directory.checks == ["password"]
    assert {"accounts_of", "accounts_with_balances", "transactions_of"} <= set(
        custom_bank.core.calls
    )
    with bank.services.engine.connect() as conn:  # the demo bank's PSU table is not involved
        assert conn.execute(select(func.count()).select_from(psus_table)).scalar_one() == 0


def test_wrong_codes_from_the_banks_sca_method_block_the_customer_in_its_directory(
    custom_bank: CustomBank, pki: TestPki
) -> None:
    bank = custom_bank.running
    tpp, _certs = _tpp(bank, pki, "PSDFR-ACPR-48002")
    robot = PsuRobot(PSU_ID, PASSWORD, otp=lambda: "000000", method="sms")
    with tpp, bank.client() as browser:
        request = tpp.authorization_request("aisp", CALLBACK)
        with pytest.raises(PsuJourneyError):
            robot.walk(browser, request.url, CALLBACK)
    # the robot re-submitted the wrong code until the bank's directory blocked the customer
    assert custom_bank.directory.blocked_until == bank.clock.now() + timedelta(minutes=15)
    with bank.services.engine.connect() as conn:
        outcomes = conn.execute(select(psu_journeys.c.outcome)).scalars().all()
    assert outcomes == ["authentication_failed"]


def test_an_unknown_customer_of_the_banks_directory_gets_no_code(
    custom_bank: CustomBank, pki: TestPki
) -> None:
    bank = custom_bank.running
    tpp, _certs = _tpp(bank, pki, "PSDFR-ACPR-48003")
    robot = PsuRobot("c-9999", PASSWORD, otp=lambda: CODE, method="sms")
    with tpp, bank.client() as browser:
        request = tpp.authorization_request("aisp", CALLBACK)
        with pytest.raises(PsuJourneyError):
            robot.walk(browser, request.url, CALLBACK)
    assert custom_bank.sms.sent == []  # no SCA started for an unidentified PSU


def test_funds_confirmation_is_answered_by_the_banks_core_banking(
    custom_bank: CustomBank, pki: TestPki
) -> None:
    bank = custom_bank.running
    tpp, _certs = _tpp(bank, pki, "PSDFR-ACPR-48004")
    robot = PsuRobot(PSU_ID, PASSWORD, otp=lambda: custom_bank.sms.sent[-1], method="sms")
    with tpp, bank.client() as browser:
        request = tpp.authorization_request("cbpii", CALLBACK)
        tokens = tpp.exchange_code(
            request,
            robot.walk(browser, request.url, CALLBACK),
            expected_issuer=bank.services.issuer,
        )

        def confirm(amount: str) -> bool:
            answer = tpp.api(
                "POST",
                "funds-confirmations",
                tokens,
                psu_headers=PSU_IP,
                json_body={
                    "paymentCoverageRequestId": f"req-{amount}",
                    "instructedAmount": {"currency": "EUR", "amount": amount},
                    "accountId": {"iban": IBAN},
                },
            )
            return bool(answer["result"])

        assert confirm("123.45") is True
        assert confirm("123.46") is False
        with pytest.raises(BankError) as refused:
            tpp.api(
                "POST",
                "funds-confirmations",
                tokens,
                psu_headers=PSU_IP,
                json_body={
                    "paymentCoverageRequestId": "req-usd",
                    "instructedAmount": {"currency": "USD", "amount": "1.00"},
                    "accountId": {"iban": IBAN},
                },
            )
        assert refused.value.status == 400
