"""A PSU's browser without JavaScript: an httpx client that follows the bank's documented forms.

It does exactly what an automated TPP test does against the sandbox: GET /authorize, then
POST the forms by their stable field names (``psu_id``/``password``, ``method``, ``otp``,
``decision``, and the hidden ``csrf_token`` it reads from the last page). Redirects are not
followed, so each step's answer — the next page, or the 303 to the TPP's callback — can be
checked.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import httpx
from sqlalchemy import select, update

from stetgate.demo.psu_directory import DatabasePsuDirectory
from stetgate.oauth.clients import Client
from stetgate.store.schema import psu_journeys, psus
from tests.support.bank import RunningBank
from tests.support.pki import TestPki
from tests.support.token_side import CALLBACK, add_client

AUTHORIZE = "/stet/psd2/oauth/authorize"
PASSWORD = "correct horse battery"

_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
_REFERENCE = re.compile(r'id="challenge-reference">([A-Z0-9-]+)<')
_RETURN_LINK = re.compile(r'id="return-to-tpp" href="([^"]+)"')


def directory(bank: RunningBank) -> DatabasePsuDirectory:
    """The directory instance the bank's pages use."""
    found = bank.services.psus
    assert isinstance(found, DatabasePsuDirectory)
    return found


def add_psu(
    bank: RunningBank,
    psu_id: str = "alice",
    *,
    password: str = PASSWORD,
    app: bool = True,
    totp: bool = True,
) -> DatabasePsuDirectory:
    found = directory(bank)
    found.add_psu(psu_id, password, display_name=psu_id.title(), app_sca=app, now=bank.clock.now())
    if not totp:
        with bank.services.engine.begin() as conn:
            conn.execute(update(psus).where(psus.c.psu_id == psu_id).values(totp_secret_enc=None))
    return found


def add_budget_facile(bank: RunningBank, pki: TestPki, org: str) -> Client:
    """The TPP most PSU-page tests use: "Budget Facile", AISP and CBPII, registered under
    ``org`` with the default callback, and the PSU alice."""
    client = add_client(
        bank.services.engine,
        pki.issue(org, ("AISP", "CBPII")),
        bank.clock.now(),
        name="Budget Facile",
    )
    add_psu(bank, "alice")
    return client


def authorize_params(client_id: str, /, **overrides: str | None) -> dict[str, str]:
    params: dict[str, str | None] = {
        "response_type": "code",
        "client_id": client_id,
        "redirect_uri": CALLBACK,
        "scope": "aisp",
        "state": "st-123",
    }
    params.update(overrides)
    return {k: v for k, v in params.items() if v is not None}


def callback_query(response: httpx.Response, redirect_uri: str = CALLBACK) -> dict[str, str]:
    """The query the TPP's callback receives; fails unless the answer is a 303 there."""
    assert response.status_code == 303, (response.status_code, response.text[:300])
    return callback_params(response.headers["location"], redirect_uri)


def callback_params(location: str, redirect_uri: str = CALLBACK) -> dict[str, str]:
    assert location.startswith(redirect_uri + "?"), location
    pairs = parse_qsl(urlsplit(location).query, keep_blank_values=True)
    names = [name for name, _ in pairs]
    assert len(names) == len(set(names)), names
    return dict(pairs)


def expired_return(response: httpx.Response) -> str:
    """The link back to the TPP on the bank's "session expired" page (a timed-out journey
    shows it instead of redirecting at once)."""
    assert response.status_code == 200, response.status_code
    assert 'id="session-expired"' in response.text, response.text[:800]
    found = _RETURN_LINK.search(response.text)
    assert found, response.text[:800]
    return found.group(1).replace("&amp;", "&")


def callback_keys(location: str) -> list[str]:
    return [name for name, _ in parse_qsl(urlsplit(location).query, keep_blank_values=True)]


class PsuBrowser:
    """One browser (one cookie jar) walking the PSU pages."""

    def __init__(self, bank: RunningBank) -> None:
        self.bank = bank
        self.http = bank.client(follow_redirects=False)
        self.page: httpx.Response | None = None

    def close(self) -> None:
        self.http.close()

    def __enter__(self) -> PsuBrowser:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- plumbing -------------------------------------------------------------------------
    @property
    def csrf(self) -> str:
        assert self.page is not None
        found = _CSRF.search(self.page.text)
        assert found, self.page.text[:500]
        return found.group(1)

    def get(self, path: str, **params: str) -> httpx.Response:
        response = self.http.get(path, params=params or None)
        if response.status_code != 303:
            self.page = response
        return response

    def submit(
        self, path: str, data: Mapping[str, str], *, csrf: str | None = None, with_csrf: bool = True
    ) -> httpx.Response:
        form = dict(data)
        if with_csrf:
            form["csrf_token"] = csrf if csrf is not None else self.csrf
        response = self.http.post(path, data=form)
        if response.status_code != 303:
            self.page = response
        return response

    def follow(self, response: httpx.Response) -> httpx.Response:
        """GET the bank page a 303 points to (never the TPP's callback)."""
        assert response.status_code == 303, (response.status_code, response.text[:300])
        location = response.headers["location"]
        assert location.startswith("/"), location
        return self.get(location)

    # --- the journey ------------------------------------------------------------------------
    def authorize(self, client_id: str, /, **overrides: str | None) -> httpx.Response:
        response = self.http.get(AUTHORIZE, params=authorize_params(client_id, **overrides))
        self.page = response
        return response

    def start(self, client_id: str, /, **overrides: str | None) -> httpx.Response:
        """/authorize, then the identification page."""
        response = self.authorize(client_id, **overrides)
        assert response.headers.get("location") == "/psu/login", response.text[:300]
        return self.follow(response)

    def login(self, psu_id: str = "alice", password: str = PASSWORD) -> httpx.Response:
        return self.submit("/psu/login", {"psu_id": psu_id, "password": password})

    def choose(self, method: str) -> httpx.Response:
        return self.submit("/psu/sca/method", {"method": method})

    def otp(self, code: str) -> httpx.Response:
        return self.submit("/psu/sca", {"otp": code})

    def current_code(self, psu_id: str = "alice", at: datetime | None = None) -> str:
        code = directory(self.bank).current_totp(psu_id, at or self.bank.clock.now())
        assert code is not None
        return code

    def consent(self, decision: str) -> httpx.Response:
        return self.submit("/psu/consent", {"decision": decision})

    def challenge_reference(self) -> str:
        assert self.page is not None
        found = _REFERENCE.search(self.page.text)
        assert found, self.page.text[:500]
        return found.group(1)

    def return_link(self) -> str:
        assert self.page is not None
        found = _RETURN_LINK.search(self.page.text)
        assert found, self.page.text[:800]
        return found.group(1).replace("&amp;", "&")

    def sign_in_with_totp(
        self, client_id: str, psu_id: str = "alice", **overrides: str | None
    ) -> httpx.Response:
        """authorize → login → (method totp) → OTP: returns the answer to the OTP form."""
        self.start(client_id, **overrides)
        response = self.login(psu_id)
        if response.headers.get("location") == "/psu/sca/method":
            self.follow(response)
            response = self.choose("totp")
        self.follow(response)
        return self.otp(self.current_code(psu_id))

    def authorize_fully(
        self, client_id: str, psu_id: str = "alice", **overrides: str | None
    ) -> dict[str, str]:
        """The whole happy path; returns the callback query (``code``, ``state``, ``iss``)."""
        response = self.sign_in_with_totp(client_id, psu_id, **overrides)
        assert response.headers.get("location") == "/psu/consent", response.text[:300]
        self.follow(response)
        return callback_query(self.consent("authorize"))


def journey_rows(bank: RunningBank) -> list[dict[str, Any]]:
    with bank.services.engine.connect() as conn:
        return [dict(row) for row in conn.execute(select(psu_journeys)).mappings()]
