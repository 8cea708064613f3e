"""PSU page rendering: both languages say everything, every template renders with strict
undefined checks, untrusted text is escaped, and the security headers are set."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from stetgate.oauth.clients import CertifiedOrganization
from stetgate.psu.authorize_frontend import parameter_code
from stetgate.psu.rendering import content_security_policy, render_page
from stetgate.psu.texts import LANGUAGES, TEXTS
from stetgate.psu.theme import load_theme

THEME = load_theme(None, "fr")

EVIL = '<script>alert("x")</script>'
WHEN = datetime(2026, 5, 1, tzinfo=UTC)

CONTEXTS: dict[str, dict[str, Any]] = {
    "login.html": dict(error_key="login_failed", psu_id=EVIL, last_attempt_minutes=15),
    "method.html": dict(methods=["totp", "app"], error_key=None),
    "otp.html": dict(error_key="sca_failed", last_attempt_minutes=15),
    "app_wait.html": dict(error_key=None, reference="ABCDE-FGHJK"),
    "consent.html": dict(
        role_key="role_aisp",
        access_key="access_aisp",
        days=90,
        organization=CertifiedOrganization(EVIL, "PSDFR-ACPR-12345"),
        organization_id="PSDFR-ACPR-12345",
        signed_in=EVIL,
        accounts=[EVIL, "Compte courant (…1234)"],
    ),
    "expired.html": dict(return_url="https://tpp.example/cb?error=x&a=b"),
    "apps_confirm.html": dict(grant_id="g1", app_name=EVIL),
    "blocked.html": dict(
        minutes=15, return_url="https://tpp.example/cb?error=x&a=b", sign_in_url=None
    ),
    "message.html": dict(
        title_key="bad_request_title",
        body_key="bad_request_body",
        detail_key="refusal_not_registered",
        detail_code=parameter_code(EVIL),
    ),
    "apps.html": dict(
        apps=[
            dict(
                id="g1",
                name=EVIL,
                role_key="role_cbpii",
                granted=WHEN,
                expires=WHEN,
                last_used=None,
            )
        ],
        notice=EVIL,
    ),
    "demo_phone.html": dict(
        psu_id="alice",
        code="123456",
        seconds=12,
        pending=[],
        notice="phone_done_missing",
        reference="",
        unknown=False,
    ),
}


def test_both_languages_have_the_same_messages() -> None:
    assert set(TEXTS["fr"]) == set(TEXTS["en"])
    assert set(TEXTS) == set(LANGUAGES)


def test_every_template_is_covered() -> None:
    folder = Path(__file__).parents[3] / "stetgate" / "psu" / "templates"
    pages = {p.name for p in folder.glob("*.html")} - {"base.html", "cancel.html"}
    assert pages == set(CONTEXTS)


@pytest.mark.parametrize("lang", LANGUAGES)
@pytest.mark.parametrize("template", sorted(CONTEXTS))
def test_templates_render_in_both_languages_and_escape_untrusted_text(
    template: str, lang: str
) -> None:
    response = render_page(
        THEME,
        template,
        lang=lang,
        csrf_token="tok",
        deadline_seconds=125,
        lang_toggle="/psu/login",
        authorize=True,
        client_name=EVIL,
        **CONTEXTS[template],
    )
    html = bytes(response.body).decode()
    assert f'<html lang="{lang}">' in html
    assert "<script>alert" not in html
    assert 'data-seconds="125"' in html and ">2:05<" in html
    assert response.headers["cache-control"] == "no-store"
    assert response.headers["x-frame-options"] == "DENY"


def test_pages_without_a_journey_have_no_timer_and_no_form_to_time_out() -> None:
    response = render_page(
        THEME,
        "message.html",
        lang="fr",
        title_key="no_session_title",
        body_key="no_session_body",
        detail="",
    )
    html = bytes(response.body).decode()
    assert "timer.js" not in html and "timeout-form" not in html


def test_content_security_policy() -> None:
    policy = content_security_policy("https://tpp.example")
    directives = dict(part.strip().split(" ", 1) for part in policy.split(";"))
    assert directives == {
        "default-src": "'none'",
        "style-src": "'self'",
        "script-src": "'self'",
        "img-src": "'self'",
        "connect-src": "'self'",
        "form-action": "'self' https://tpp.example",
        "frame-ancestors": "'none'",
        "base-uri": "'none'",
    }
    assert "form-action 'self';" in content_security_policy(None)


def test_the_page_language_is_one_the_pages_speak() -> None:
    assert THEME.language("en") == "en"
    assert THEME.language("de") == "fr"
    assert THEME.language(None, "en") == "en"
    assert THEME.language("de", "xx") == "fr"  # a journey's language the theme lost


def test_failure_messages_never_name_an_element() -> None:
    for lang in LANGUAGES:
        for key in ("login_failed", "sca_failed", "otp_failed", "blocked_body"):
            text = TEXTS[lang][key].lower()
            for word in (
                "mot de passe incorrect",
                "identifiant inconnu",
                "wrong password",
                "unknown",
                "incorrect password",
                "code incorrect",
            ):
                assert word not in text


def test_without_script_the_timer_says_the_minutes_and_the_page_refreshes_at_the_end() -> None:
    """WCAG 2.2.1 without JavaScript: no frozen "5:00", a button to continue, and a meta
    refresh that brings the bank's expired page when the time is up."""
    response = render_page(
        THEME,
        "login.html",
        lang="en",
        csrf_token="tok",
        deadline_seconds=290,
        lang_toggle="/psu/login",
        authorize=True,
        client_name="Budget Facile",
        **CONTEXTS["login.html"],
    )
    html = bytes(response.body).decode()
    assert "your session ends in 5 min." in html
    assert '<noscript><meta http-equiv="refresh" content="291"></noscript>' in html
    assert 'id="session-timer-live" hidden' in html  # the live countdown is the script's
    assert 'action="/psu/session/continue"' in html
    assert 'id="session-warning" role="alert" hidden' in html
    assert html.index('id="session-warning"') < html.index('id="login-form"')  # seen first
    # TPP scripts click a page's first submit button: it stays the page's own form's.
    assert html.index('id="login-form"') < html.index('type="submit"') < html.index("</form>")


def test_the_refusal_detail_is_a_translated_sentence_around_the_escaped_parameter() -> None:
    for lang in LANGUAGES:
        response = render_page(
            THEME,
            "message.html",
            lang=lang,
            title_key="bad_request_title",
            body_key="bad_request_body",
            detail_key="refusal_missing",
            detail_code=parameter_code(EVIL),
        )
        html = bytes(response.body).decode()
        assert '<code class="detail" translate="no">&lt;script&gt;' in html
        assert "{parameter}" not in html and "<script>alert" not in html


def test_the_list_inside_an_authorization_leads_back_to_consent_instead_of_signing_out() -> None:
    context = dict(CONTEXTS["apps.html"], back_url="/psu/consent")
    response = render_page(THEME, "apps.html", lang="en", client_name=EVIL, **context)
    html = bytes(response.body).decode()
    assert 'id="apps-back-to-consent" href="/psu/consent"' in html
    assert 'action="/psu/sign-out"' not in html and "<script>alert" not in html


def test_the_consent_hint_names_the_connected_apps_page_as_a_link_in_both_languages() -> None:
    for lang in LANGUAGES:
        response = render_page(
            THEME, "consent.html", lang=lang, client_name="TPP", **CONTEXTS["consent.html"]
        )
        html = bytes(response.body).decode()
        link = f'<a href="/psu/connected-apps" id="consent-apps-link">{TEXTS[lang]["apps_title"]}'
        assert link in html and "{link}" not in html and "target=" not in html
