"""The AISP operations of STET v1.4.2 (Part II), on an authenticated `ApiCaller`.

Each operation validates its parameters, checks that the PSU holds the account (404) and
that the consent covers it (403), counts an unattended call (429 when over the limit, never
for a PSU-present call or the continuation of a listing), and only then reads the bank.

Consent (docs/decisions.md#consent; BPCE "AISP-mix"): before the AISP forwards a consent listing
accounts, ``GET /accounts`` lists every account without balances or links and nothing else can
be read; afterwards it lists only the consented accounts, each with its balances and the links
the consent allows. History depth: 90 days back from today (Europe/Paris) unless the token
carries ``extended_transaction_history``, then everything the bank has.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from starlette.datastructures import QueryParams

from stetgate.bank.backend import (
    Account,
    Balance,
    BankBackend,
    TransactionQuery,
    UnknownAccount,
)
from stetgate.observability.metrics import count_unattended_refusal
from stetgate.psd2 import parameters, representations
from stetgate.psd2.callers import ApiCaller
from stetgate.psd2.consents import Consent
from stetgate.psd2.errors import BadRequest, Forbidden, NotFound, TooManyRequests
from stetgate.psd2.limits import UnattendedKey, UnattendedLimiter
from stetgate.psd2.paging import Listing, Page, PagingTokens
from stetgate.psd2.representations import Json, account_path, link

HISTORY_DAYS = 90
ACCOUNTS_PAGE_SIZE = 50
TRANSACTIONS_PAGE_SIZE = 50
BENEFICIARIES_PAGE_SIZE = 50

ACCOUNTS = "accounts"
BALANCES = "balances"
TRANSACTIONS = "transactions"
IDENTITY = "end-user-identity"
BENEFICIARIES = "trusted-beneficiaries"


@dataclass
class AccountInformation:
    """The AISP endpoints over a bank backend."""

    bank: BankBackend
    paging: PagingTokens
    limiter: UnattendedLimiter
    timezone: ZoneInfo
    accounts_page_size: int = ACCOUNTS_PAGE_SIZE
    transactions_page_size: int = TRANSACTIONS_PAGE_SIZE
    beneficiaries_page_size: int = BENEFICIARIES_PAGE_SIZE

    # --- shared rules ----------------------------------------------------------------------
    def _count_unattended(
        self, caller: ApiCaller, endpoint: str, resource: str, now: datetime
    ) -> None:
        if caller.psu.psu_present:
            return
        if not self.limiter.admit(
            UnattendedKey(caller.org_id, caller.psu_id, endpoint, resource), now
        ):
            count_unattended_refusal(endpoint)
            raise TooManyRequests(
                "unattended access limit reached for this PSU, account and endpoint (no "
                "PSU-IP-Address: the PSU is not present); try again in the next window",
                headers={"Retry-After": str(self.limiter.policy.retry_after_seconds(now))},
            )

    def _continuation(
        self, query: QueryParams, listing: Listing, now: datetime
    ) -> dict[str, Any] | None:
        token = parameters.single(query, "page")
        return None if token is None else self.paging.open(token, listing, now)

    def _account_of(self, caller: ApiCaller, account_id: str) -> Account:
        parameters.account_resource_id(account_id)
        account = next(
            (a for a in self.bank.accounts_of(caller.psu_id) if a.resource_id == account_id), None
        )
        if account is None:
            raise NotFound("no account with this accountResourceId for this PSU")
        return account

    def _page_links(
        self, listing: Listing, page: Page, state: dict[str, Any], path: str, now: datetime
    ) -> dict[str, Json]:
        links: dict[str, Json] = {}
        for relation, index in page.neighbours().items():
            token = self.paging.issue(listing, {**state, "p": index}, now)
            links[relation] = link(f"{path}?page={token}")
        return links

    # --- GET /accounts ---------------------------------------------------------------------
    def accounts(
        self, caller: ApiCaller, query: QueryParams, self_href: str, now: datetime
    ) -> Json:
        listing = Listing(caller.org_id, caller.psu_id, ACCOUNTS)
        state = self._continuation(query, listing, now)
        if state is None:
            self._count_unattended(caller, ACCOUNTS, "", now)
        consent = caller.consent
        listed: Sequence[tuple[Account, Sequence[Balance] | None]]
        if consent is not None and consent.accounts:
            listed = [
                (a, b)
                for a, b in self.bank.accounts_with_balances(caller.psu_id, consent.balances)
                if a.resource_id in consent.accounts
            ]
        else:
            listed = [(a, None) for a in self.bank.accounts_of(caller.psu_id)]
        page = Page(_page_index(state), self.accounts_page_size, len(listed))
        items = [
            representations.account(a, balances, _account_links(a, consent))
            for a, balances in listed[page.offset : page.offset + page.size]
        ]
        links: dict[str, Json] = {"self": {"href": self_href}}
        links.update(self._page_links(listing, page, {}, "/accounts", now))
        if consent is not None and consent.psu_identity:
            links["endUserIdentity"] = link("/end-user-identity")
        if consent is not None and consent.trusted_beneficiaries:
            links["beneficiaries"] = link("/trusted-beneficiaries")
        return {"accounts": items, "_links": links}

    # --- GET /accounts/{id}/balances -------------------------------------------------------
    def balances(self, caller: ApiCaller, account_id: str, now: datetime) -> Json:
        account = self._account_of(caller, account_id)
        consent = caller.consent
        if consent is None or account.resource_id not in consent.balances:
            raise Forbidden("the PSU's consent does not cover the balances of this account")
        self._count_unattended(caller, BALANCES, account.resource_id, now)
        found = self.bank.balances_of(caller.psu_id, [account.resource_id])
        base = account_path(account.resource_id)
        links = {"self": link(f"{base}/balances"), "parent-list": link("/accounts")}
        if account.resource_id in consent.transactions:
            links["transactions"] = link(f"{base}/transactions")
        return {
            "balances": [representations.balance(b) for b in found.get(account.resource_id, ())],
            "_links": links,
        }

    # --- GET /accounts/{id}/transactions ---------------------------------------------------
    def transactions(
        self, caller: ApiCaller, account_id: str, query: QueryParams, self_href: str, now: datetime
    ) -> Json:
        account = self._account_of(caller, account_id)
        consent = caller.consent
        if consent is None or account.resource_id not in consent.transactions:
            raise Forbidden("the PSU's consent does not cover the transactions of this account")
        listing = Listing(caller.org_id, caller.psu_id, TRANSACTIONS, account.resource_id)
        oldest = self._history_start(caller, now)
        state = self._continuation(query, listing, now)
        if state is not None:
            if any(
                parameters.single(query, n) is not None
                for n in ("dateFrom", "dateTo", "entryReferenceFrom")
            ):
                raise BadRequest(
                    "a page link already carries the listing's filters: follow it as given"
                )
            booked_from, booked_before, after, snapshot = _frozen_filters(state)
            if oldest is not None and (booked_from is None or booked_from < oldest):
                raise Forbidden(
                    "transactions older than 90 days need the extended_transaction_history scope"
                )
        else:
            booked_from, booked_before, after = _transaction_filters(query, oldest)
            snapshot = None
            self._count_unattended(caller, TRANSACTIONS, account.resource_id, now)
        index = _page_index(state)
        size = self.transactions_page_size
        try:
            result = self.bank.transactions_of(
                caller.psu_id,
                account.resource_id,
                TransactionQuery(
                    booked_from=booked_from,
                    booked_before=booked_before,
                    after_entry=after,
                    up_to_entry=snapshot,
                    offset=index * size,
                    limit=size,
                ),
            )
        except UnknownAccount:
            raise NotFound("no account with this accountResourceId for this PSU") from None
        base = account_path(account.resource_id)
        links: dict[str, Json] = {"self": {"href": self_href}, "parent-list": link("/accounts")}
        if account.resource_id in consent.balances:
            links["balances"] = link(f"{base}/balances")
        frozen = {
            "f": booked_from and booked_from.isoformat(),
            "t": booked_before and booked_before.isoformat(),
            "e": after,
            "s": result.snapshot_entry,
        }
        links.update(
            self._page_links(
                listing, Page(index, size, result.total), frozen, f"{base}/transactions", now
            )
        )
        return {
            "transactions": [representations.transaction(t) for t in result.transactions],
            "_links": links,
        }

    def _history_start(self, caller: ApiCaller, now: datetime) -> date | None:
        """First booking date the token may read (None: the whole history)."""
        if caller.extended_history:
            return None
        return now.astimezone(self.timezone).date() - timedelta(days=HISTORY_DAYS)

    # --- GET /end-user-identity ------------------------------------------------------------
    def end_user_identity(self, caller: ApiCaller, now: datetime) -> Json:
        if caller.consent is None or not caller.consent.psu_identity:
            raise Forbidden("the PSU's consent does not include psuIdentity")
        self._count_unattended(caller, IDENTITY, "", now)
        identity = self.bank.identity_of(caller.psu_id)
        if identity is None:
            raise NotFound("the bank has no identity for this PSU")
        return representations.end_user_identity(identity)

    # --- GET /trusted-beneficiaries --------------------------------------------------------
    def trusted_beneficiaries(
        self, caller: ApiCaller, query: QueryParams, self_href: str, now: datetime
    ) -> Json:
        if caller.consent is None or not caller.consent.trusted_beneficiaries:
            raise Forbidden("the PSU's consent does not include trustedBeneficiaries")
        listing = Listing(caller.org_id, caller.psu_id, BENEFICIARIES)
        state = self._continuation(query, listing, now)
        if state is None:
            self._count_unattended(caller, BENEFICIARIES, "", now)
        found = self.bank.trusted_beneficiaries_of(caller.psu_id)
        page = Page(_page_index(state), self.beneficiaries_page_size, len(found))
        links: dict[str, Json] = {"self": {"href": self_href}}
        links.update(self._page_links(listing, page, {}, "/trusted-beneficiaries", now))
        return {
            "beneficiaries": [
                representations.beneficiary(b) for b in found[page.offset : page.offset + page.size]
            ],
            "_links": links,
        }


def _account_links(account: Account, consent: Consent | None) -> dict[str, Json]:
    """Links the consent allows (none at all before a consent listing accounts)."""
    links: dict[str, Json] = {}
    if consent is None:
        return links
    base = account_path(account.resource_id)
    if account.resource_id in consent.balances:
        links["balances"] = link(f"{base}/balances")
    if account.resource_id in consent.transactions:
        links["transactions"] = link(f"{base}/transactions")
    return links


def _page_index(state: dict[str, Any] | None) -> int:
    if state is None:
        return 0
    index = state.get("p")
    if not isinstance(index, int) or isinstance(index, bool) or index < 0:
        raise BadRequest("the page parameter is not a paging link of this API")
    return index


def _transaction_filters(
    query: QueryParams, oldest: date | None
) -> tuple[date | None, date | None, int | None]:
    raw_from = parameters.single(query, "dateFrom")
    raw_to = parameters.single(query, "dateTo")
    raw_entry = parameters.single(query, "entryReferenceFrom")
    booked_from = None if raw_from is None else parameters.date_bound(raw_from, "dateFrom")
    booked_before = None if raw_to is None else parameters.date_bound(raw_to, "dateTo")
    after = None if raw_entry is None else parameters.entry_reference(raw_entry)
    if booked_from is not None and booked_before is not None and booked_before <= booked_from:
        raise BadRequest("dateTo (exclusive) must be after dateFrom (inclusive)")
    if oldest is not None:
        if booked_from is not None and booked_from < oldest:
            raise Forbidden(
                "transactions older than 90 days need the extended_transaction_history scope"
            )
        booked_from = booked_from or oldest
    return booked_from, booked_before, after


def _frozen_filters(
    state: dict[str, Any],
) -> tuple[date | None, date | None, int | None, int | None]:
    try:
        booked_from = None if state.get("f") is None else date.fromisoformat(state["f"])
        booked_before = None if state.get("t") is None else date.fromisoformat(state["t"])
        after, snapshot = state.get("e"), state.get("s")
        if not all(
            v is None or (isinstance(v, int) and not isinstance(v, bool)) for v in (after, snapshot)
        ):
            raise ValueError
    except (TypeError, ValueError):
        raise BadRequest("the page parameter is not a paging link of this API") from None
    return booked_from, booked_before, after, snapshot
