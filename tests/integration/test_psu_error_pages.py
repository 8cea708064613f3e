"""The PSU's error pages say what went wrong in the page's language, and every one has the
language links and the way to the bank's help (EN 301 549 §9.3.1.2 / WCAG 3.1.2 language of
parts: no English sentence inside a French page). The "invalid request" page (RFC 6749
§4.1.2.1: no redirect to an untrusted callback) takes its detail from a message catalogue
keyed by the refusal, never the English exception text, which stays in the audit. Real TLS."""

from __future__ import annotations

import html
import re

import httpx
import pytest

from stetgate.store.audit_events import AUTHORIZE_REQUEST_REJECTED
from tests.support.bank import RunningBank
from tests.support.pki import TestPki
from tests.support.psu_flow import (
    AUTHORIZE,
    PASSWORD,
    PsuBrowser,
    add_budget_facile,
    authorize_params,
)
from tests.support.token_side import audit_trail, database_state

ORG = "PSDFR-ACPR-40032"
INVALID = "/psu/invalid-request"
_LANG_LINK = re.compile(r'<a class="lang" href="([^"]+)" hreflang="(\w+)"')


@pytest.fixture
def client_id(bank: RunningBank, pki: TestPki) -> str:
    add_budget_facile(bank, pki, ORG)
    return ORG


def _text(page: httpx.Response) -> str:
    return html.unescape(page.text)


def _lang_links(page: httpx.Response) -> dict[str, str]:
    return {lang: html.unescape(href) for href, lang in _LANG_LINK.findall(page.text)}


def _get(bank: RunningBank, path: str, **headers: str) -> httpx.Response:
    with bank.client(follow_redirects=False) as http:
        return http.get(path, headers=headers)


# --- the invalid-request page ----------------------------------------------------------------
REFUSALS = [
    pytest.param(
        {"redirect_uri": "https://elsewhere.example/cb"},
        "redirect_uri.not_registered",
        "redirect_uri is not registered for this client",
        "l'adresse de retour (redirect_uri) n'est pas enregistrée pour ce prestataire.",
        id="not-registered",
    ),
    pytest.param(
        {"client_id": "PSDFR-ACPR-99999"},
        "client_id.unknown_client",
        "unknown client_id",
        "la valeur de client_id ne correspond à aucun prestataire",
        id="unknown-client",
    ),
    pytest.param(
        {"client_id": None},
        "client_id.missing",
        "client_id is missing",
        "le paramètre client_id est absent.",
        id="no-client-id",
    ),
    pytest.param(
        {"redirect_uri": None},
        "redirect_uri.missing",
        "redirect_uri is missing",
        "le paramètre redirect_uri est absent.",
        id="no-redirect-uri",
    ),
    pytest.param(
        {"redirect_uri": "https://tpp.example/cb\x7f"},
        "redirect_uri.bad_characters",
        "redirect_uri has characters outside %x20-7E",
        "le paramètre redirect_uri contient des caractères non autorisés.",
        id="bad-characters",
    ),
    pytest.param(
        {"redirect_uri": "https://tpp.example/" + "a" * 2100},
        "redirect_uri.too_long",
        "redirect_uri is too long",
        "le paramètre redirect_uri est trop long.",
        id="too-long",
    ),
]


@pytest.mark.parametrize(("query", "code", "english", "french"), REFUSALS)
def test_the_refusal_detail_is_translated_and_the_audit_keeps_the_english_reason(
    bank: RunningBank,
    client_id: str,
    query: dict[str, str | None],
    code: str,
    english: str,
    french: str,
) -> None:
    with bank.client(follow_redirects=False) as http:
        page = http.get(AUTHORIZE, params=authorize_params(client_id, **query))
    text = _text(page)
    assert page.status_code == 400 and '<html lang="fr">' in page.text
    assert french in re.sub(r"<[^>]+>", "", text)
    assert english not in text and "Detail" not in text and "(en anglais)" not in text
    (event,) = audit_trail(bank.services.engine, AUTHORIZE_REQUEST_REJECTED)
    assert event["reason"] == english
    assert _lang_links(page) == {"en": f"{INVALID}?reason={code}&lang=en"}
    assert 'id="help"' in page.text


def test_the_parameter_name_is_marked_as_code_not_translated(
    bank: RunningBank, client_id: str
) -> None:
    params = authorize_params(client_id, redirect_uri="https://elsewhere.example/cb")
    with bank.client(follow_redirects=False) as http:
        page = http.get(AUTHORIZE, params=params)
    assert '<code class="detail" translate="no">redirect_uri</code>' in page.text
    assert "elsewhere.example" not in page.text  # the language link repeats no parameter


def test_the_language_link_shows_the_same_refusal_in_english_and_changes_nothing(
    bank: RunningBank, client_id: str
) -> None:
    params = authorize_params(client_id, redirect_uri="https://elsewhere.example/cb")
    with bank.client(follow_redirects=False) as http:
        french = http.get(AUTHORIZE, params=params)
    before = database_state(bank.services.engine)
    english = _get(bank, _lang_links(french)["en"])
    text = _text(english)
    assert english.status_code == 400 and '<html lang="en">' in english.text
    assert "Invalid authorization request" in text
    assert "is not registered for this provider" in re.sub(r"<[^>]+>", "", text)
    assert "Need help?" in text and 'id="help"' in english.text
    links = _lang_links(english)
    assert links == {"fr": f"{INVALID}?reason=redirect_uri.not_registered&lang=fr"}
    back = _get(bank, links["fr"])
    assert '<html lang="fr">' in back.text and "n'est pas enregistrée" in _text(back)
    assert database_state(bank.services.engine) == before  # no journey, no audit row


def test_the_refusal_page_follows_the_browsers_language(bank: RunningBank, client_id: str) -> None:
    params = authorize_params(client_id, redirect_uri="https://elsewhere.example/cb")
    with bank.client(follow_redirects=False) as http:
        http.headers["Accept-Language"] = "en-GB,en;q=0.9,fr;q=0.5"
        page = http.get(AUTHORIZE, params=params)
        again = http.get(f"{INVALID}?reason=redirect_uri.not_registered")
    assert '<html lang="en">' in page.text and '<html lang="en">' in again.text
    assert "is not registered for this provider" in _text(again)


@pytest.mark.parametrize(
    "reason",
    ["", "state.missing", "redirect_uri.exploded", "redirect_uri", "<script>alert(1)</script>"],
)
def test_a_hand_made_reason_gets_the_general_page_without_detail(
    bank: RunningBank, reason: str
) -> None:
    page = _get(bank, f"{INVALID}?reason={reason}")
    assert page.status_code == 400 and "Demande d'autorisation invalide" in _text(page)
    assert 'id="technical-detail"' not in page.text and "<script>alert" not in page.text
    assert _lang_links(page) == {"en": f"{INVALID}?lang=en"}
    assert page.headers["cache-control"] == "no-store"


def test_the_invalid_request_page_accepts_no_form(bank: RunningBank) -> None:
    with bank.client(follow_redirects=False) as http:
        assert http.post(INVALID, data={"reason": "client_id.missing"}).status_code == 405


# --- the other error pages ---------------------------------------------------------------------
def test_the_no_session_page_has_language_links_and_help(bank: RunningBank) -> None:
    page = _get(bank, "/psu/consent", **{"Accept-Language": "en"})
    assert page.status_code == 400 and '<html lang="en">' in page.text
    assert _lang_links(page) == {"fr": "/psu/login?lang=fr"} and 'id="help"' in page.text
    french = _get(bank, "/psu/login?lang=fr", **{"Accept-Language": "en"})
    assert '<html lang="fr">' in french.text and "Session introuvable" in _text(french)


def test_the_bad_form_language_link_reaches_the_current_screen_in_that_language(
    bank: RunningBank, client_id: str, browser: PsuBrowser
) -> None:
    browser.start(client_id)
    browser.follow(browser.login())
    refused = browser.submit("/psu/sca/method", {"method": "totp"}, csrf="forged")
    assert refused.status_code == 400 and "Requête refusée" in _text(refused)
    assert 'id="help"' in refused.text
    link = _lang_links(refused)["en"]
    assert link == "/psu/login?lang=en"
    moved = browser.http.get(link)
    assert moved.status_code == 303 and moved.headers["location"] == "/psu/sca/method?lang=en"
    screen = browser.get("/psu/sca/method", lang="en")
    assert '<html lang="en">' in screen.text
    assert '<html lang="en">' in browser.get("/psu/sca/method").text  # kept in the journey


def test_a_parser_refused_form_page_has_language_links_too(
    bank: RunningBank, client_id: str, browser: PsuBrowser
) -> None:
    browser.start(client_id)
    response = browser.http.post(
        "/psu/login",
        content="--x\r\nbroken",
        headers={"Content-Type": "multipart/form-data; boundary=x"},
    )
    assert response.status_code == 400
    assert _lang_links(response) == {"en": "/psu/login?lang=en"}
    assert 'id="help"' in response.text


def test_a_language_link_to_an_unknown_language_keeps_the_plain_redirect(
    bank: RunningBank, client_id: str, browser: PsuBrowser
) -> None:
    browser.start(client_id)
    browser.follow(browser.login("alice", PASSWORD))
    moved = browser.http.get("/psu/login?lang=xx")
    assert moved.status_code == 303 and moved.headers["location"] == "/psu/sca/method"
