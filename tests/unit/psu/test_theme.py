"""A bank's theme folder: what it changes, and every kind of broken theme refused at load with
a message naming the file (docs/operations.md#theme)."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from pathlib import Path

import pytest
from pydantic import ValidationError

from stetgate.app import create_app
from stetgate.psu.rendering import render_page
from stetgate.psu.texts import TEXTS
from stetgate.psu.theme import Theme, ThemeError, load_theme
from stetgate.settings import Settings

EVIL = '<script>alert("x")</script>'
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 16
SVG = (
    b'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 10 10">'
    b'<rect width="10" height="10"/></svg>'
)

Write = Callable[[str, str | bytes], Path]


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    theme = tmp_path / "theme"
    theme.mkdir()
    return theme


@pytest.fixture
def write(folder: Path) -> Write:
    def put(name: str, content: str | bytes) -> Path:
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content, encoding="utf-8")
        return path

    return put


def _page(theme: Theme, lang: str = "fr") -> str:
    response = render_page(
        theme,
        "login.html",
        lang=lang,
        csrf_token="tok",
        lang_toggle="/psu/login",
        authorize=True,
        client_name="Budget Facile",
        error_key=None,
        psu_id="",
    )
    return bytes(response.body).decode()


def _refused(folder: Path, *fragments: str, default_language: str = "fr") -> str:
    with pytest.raises(ThemeError) as caught:
        load_theme(folder, default_language)
    message = str(caught.value)
    for fragment in fragments:
        assert fragment in message, message
    return message


# --- what a good theme changes --------------------------------------------------------------
def test_the_built_in_look_is_the_default_theme() -> None:
    theme = load_theme(None, "fr")
    assert theme.languages == ("fr", "en") and theme.assets == {}
    html = _page(theme)
    assert 'class="logo" aria-hidden="true">S<' in html and "Banque stetgate" in html
    assert "theme.css" not in html
    assert 'hreflang="en" lang="en">English</a>' in html


def test_a_theme_sets_name_colours_logo_texts_and_a_template(write: Write, folder: Path) -> None:
    write(
        "theme.toml",
        'name = "Banque Exemple"\n[colors]\nprimary = "#005a3c"\n'
        'background = "rgb(240, 244, 242)"\n',
    )
    write("logo.svg", SVG)
    write("texts/fr.toml", 'login_title = "Bienvenue"\n')
    write("texts/en.json", json.dumps({"bank_name": "Example Bank"}))
    write(
        "templates/cancel.html",
        '<p id="theme-cancel">{{ t.cancel.format(client=client_name) }}</p>',
    )
    theme = load_theme(folder, "fr")
    css = theme.assets["theme.css"]
    assert css.media_type == "text/css"
    assert css.body.decode().splitlines()[2:4] == [
        "  --primary: #005a3c;",
        "  --background: rgb(240, 244, 242);",
    ]
    assert theme.assets["logo.svg"].body == SVG
    assert theme.assets["logo.svg"].media_type == "image/svg+xml"
    html = _page(theme)
    assert f'<link rel="stylesheet" href="/psu/static/theme/theme.css?v={css.version}">' in html
    assert f'<img class="logo-image" id="bank-logo" src="{theme.assets["logo.svg"].url}"' in html
    assert "<h1>Bienvenue</h1>" in html and "Banque Exemple" in html
    assert '<p id="theme-cancel">Annuler et revenir à Budget Facile</p>' in html
    assert "Example Bank" in _page(theme, "en")  # a texts file wins over the name
    assert "<h1>Sign in</h1>" in _page(theme, "en")  # untouched texts stay


def test_a_theme_template_can_extend_the_built_in_one(write: Write, folder: Path) -> None:
    write(
        "templates/base.html",
        '{% extends "default/base.html" %}{% block head %}<meta name="bank" content="x">'
        "{% endblock %}",
    )
    write("templates/_unused.html", "<p>{{ t.bank_name }}</p>")
    html = _page(load_theme(folder, "fr"))
    assert '<meta name="bank" content="x">' in html and "<h1>Identification</h1>" in html


def test_theme_texts_are_escaped_like_any_text(write: Write, folder: Path) -> None:
    write("theme.toml", f"name = '{EVIL}'\n")
    write("texts/fr.toml", f"login_intro = '{EVIL} {{client}}'\n")
    html = _page(load_theme(folder, "fr"))
    assert "<script>" not in html
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt; Budget Facile" in html


def test_a_new_language_falls_back_per_key_to_the_themes_english(
    write: Write, folder: Path, caplog: pytest.LogCaptureFixture
) -> None:
    write("texts/en.toml", 'login_submit = "Log in"\n')
    write("texts/de.toml", 'language_name = "Deutsch"\nlogin_title = "Anmeldung"\n')
    with caplog.at_level(logging.WARNING, logger="stetgate.psu.theme"):
        theme = load_theme(folder, "de")
    assert theme.languages == ("fr", "en", "de")
    assert theme.english_fallbacks["de"] == frozenset(TEXTS["en"]) - {
        "language_name",
        "login_title",
    }
    assert "shown in English" in caplog.text and "texts/de" in caplog.text
    html = _page(theme, "de")
    assert '<html lang="de">' in html and "<h1>Anmeldung</h1>" in html
    assert ">Log in</button>" in html  # the theme's English, not the built-in one
    assert 'lang="fr">Français</a>' in html and 'lang="en">English</a>' in html
    assert 'lang="de">Deutsch</a>' in _page(theme, "fr")
    assert theme.language(None) == "de"


def test_a_png_logo(write: Write, folder: Path) -> None:
    write("logo.png", PNG)
    theme = load_theme(folder, "fr")
    assert theme.assets["logo.png"].media_type == "image/png"
    assert "/psu/static/theme/logo.png?v=" in _page(theme)


def test_readme_and_hidden_files_are_left_alone(write: Write, folder: Path) -> None:
    write("README.md", "# our look")
    write(".git/HEAD", "ref")
    write("texts/.keep", "")
    assert load_theme(folder, "fr").assets == {}


# --- broken themes, refused with the file's name ----------------------------------------------
def test_a_missing_folder(tmp_path: Path) -> None:
    _refused(tmp_path / "nope", "nope: theme folder not found")


@pytest.mark.parametrize("name", ["text", "logo.jpg", "style.css"])
def test_an_entry_a_theme_does_not_have(write: Write, folder: Path, name: str) -> None:
    write(name, "x")
    _refused(folder, f"{name}: not part of a theme")


def test_texts_must_be_a_folder(write: Write, folder: Path) -> None:
    write("texts", "x")
    _refused(folder, "texts: must be a folder")


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ("name = ", "theme.toml: invalid TOML"),
        ('nom = "x"\n', "theme.toml: unknown key 'nom' (known: colors, name)"),
        ("name = 3\n", "theme.toml: name must be a non-empty string"),
        ('name = "  "\n', "theme.toml: name must be a non-empty string"),
        ('colors = "blue"\n', "theme.toml: colors must be a table"),
        ('[colors]\nbrand = "#000"\n', "theme.toml: unknown colour 'brand'"),
        ('[colors]\nprimary = "red"\n', "colors.primary = 'red' is not a CSS colour"),
        ('[colors]\nprimary = "#12345"\n', "is not a CSS colour"),
        ('[colors]\ntext = "#000; } body { display: none"\n', "is not a CSS colour"),
        ('[colors]\ntext = "url(https://evil.example/x)"\n', "is not a CSS colour"),
        ('[colors]\ntext = "rgb(0, 0, 0); x"\n', "is not a CSS colour"),
        ("[colors]\ntext = 0x000000\n", "is not a CSS colour"),
    ],
)
def test_bad_theme_settings(write: Write, folder: Path, content: str, expected: str) -> None:
    write("theme.toml", content)
    _refused(folder, expected)


def test_accepted_colour_syntaxes(write: Write, folder: Path) -> None:
    write(
        "theme.toml",
        '[colors]\nprimary = "#AbC"\naccent = "#00000080"\ntext = "rgba(0, 0, 0, .9)"\n'
        'muted = "rgb(10 20 30 / 50%)"\n',
    )
    assert b"--muted: rgb(10 20 30 / 50%);" in load_theme(folder, "fr").assets["theme.css"].body


def test_theme_toml_and_json_together(write: Write, folder: Path) -> None:
    write("theme.toml", 'name = "A"\n')
    write("theme.json", '{"name": "B"}')
    _refused(folder, "theme.json: theme.toml is there too; keep one of them")


def test_a_json_whose_top_level_is_not_a_table(write: Write, folder: Path) -> None:
    write("theme.json", "[1]")
    _refused(folder, "theme.json: the top level must be a table")


def test_an_unreadable_file(write: Write, folder: Path) -> None:
    write("texts/fr.toml", b"login_title = '\xff'\n")
    _refused(folder, "texts/fr.toml: not UTF-8 text")


def test_a_file_that_cannot_be_read(folder: Path) -> None:
    (folder / "theme.toml").mkdir()
    _refused(folder, "theme.toml: cannot read the file")


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ('login_titel = "x"\n', "texts/fr.toml: unknown text key 'login_titel'"),
        ("login_title = 3\n", "text 'login_title' must be a string"),
        (
            'login_intro = "{tpp} asks"\n',
            "text 'login_intro' uses {tpp}; its placeholders are: {client}",
        ),
        ('login_intro = "{client.__class__}"\n', "uses {client.__class__}"),
        ('login_title = "{client}"\n', "its placeholders are: none"),
        ('login_intro = "{client"\n', "text 'login_intro': "),
        ('cancel = "{}"\n', "text 'cancel' uses {}"),
    ],
)
def test_bad_texts(write: Write, folder: Path, content: str, expected: str) -> None:
    write("texts/fr.toml", content)
    _refused(folder, expected)


@pytest.mark.parametrize("name", ["deu.toml", "DE.toml", "pt-BR.toml"])
def test_a_texts_file_not_named_by_a_language_code(write: Write, folder: Path, name: str) -> None:
    write(f"texts/{name}", 'language_name = "x"\n')
    _refused(folder, f"texts/{name}: a texts file is named by a two-letter lowercase ISO 639-1")


def test_a_texts_file_of_another_kind(write: Write, folder: Path) -> None:
    write("texts/de.yaml", "x: y")
    _refused(folder, "texts/de.yaml: expected a texts file <lang>.toml or <lang>.json")


def test_a_new_language_without_its_name(write: Write, folder: Path) -> None:
    write("texts/de.toml", 'login_title = "Anmeldung"\n')
    _refused(folder, "texts/de.toml: a language the theme adds must set 'language_name'")


def test_a_default_language_the_pages_do_not_speak(folder: Path) -> None:
    _refused(folder, "default_language 'de'", "add texts/de.toml", default_language="de")
    with pytest.raises(ThemeError, match="the built-in theme has no such language"):
        load_theme(None, "de")


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (b"<svg", "logo.svg: not well-formed XML"),
        (b"<html></html>", "logo.svg: the root element is not <svg>"),
        (
            b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>',
            "logo.svg: <script> is not allowed",
        ),
        (
            b'<svg xmlns="http://www.w3.org/2000/svg"><foreignObject/></svg>',
            "<foreignobject> is not allowed",
        ),
        (b'<svg xmlns="http://www.w3.org/2000/svg" onload="x()"/>', "event handler attribute"),
        (
            b'<svg xmlns="http://www.w3.org/2000/svg"><image href="https://evil.example/x"/></svg>',
            "a logo may not link to 'https://evil.example/x'",
        ),
        (
            b'<svg xmlns="http://www.w3.org/2000/svg"><a href="javascript:x()"/></svg>',
            "may not link to",
        ),
        (
            b'<!DOCTYPE svg [<!ENTITY a "aaaa">]><svg xmlns="http://www.w3.org/2000/svg">&a;</svg>',
            "DOCTYPE and entity declarations are not allowed",
        ),
        (b"<svg>" + b" " * (256 * 1024) + b"</svg>", "at most 262144 allowed"),
    ],
)
def test_unsafe_or_broken_svg_logos(
    write: Write, folder: Path, content: bytes, expected: str
) -> None:
    write("logo.svg", content)
    _refused(folder, expected)


def test_a_png_logo_that_is_not_a_png(write: Write, folder: Path) -> None:
    write("logo.png", SVG)
    _refused(folder, "logo.png: not a PNG image")


def test_two_logos(write: Write, folder: Path) -> None:
    write("logo.svg", SVG)
    write("logo.png", PNG)
    _refused(folder, "logo.png: logo.svg is there too")


@pytest.mark.parametrize(
    ("name", "content", "expected"),
    [
        ("login.html", "{% block content %}", "templates/login.html:1: template syntax error"),
        ("_part.html", "{{ t.bank_name ", "templates/_part.html:1: template syntax error"),
        ("login.html", b"\xff\xfe", "templates/login.html: not UTF-8 text"),
        ("logn.html", "<p></p>", "templates/logn.html: no built-in template of that name"),
        ("login.txt", "x", "templates/login.txt: a theme template is an .html file"),
        (
            "login.html",
            '{% extends "bas.html" %}',
            "templates/login.html: template 'bas.html' not found",
        ),
        ("login.html", '{% include "_missing.html" %}', "template '_missing.html' not found"),
        (
            "login.html",
            "\n{{ t.login_titel }}",
            "templates/login.html:2: unknown text key t.login_titel",
        ),
    ],
)
def test_bad_templates(
    write: Write, folder: Path, name: str, content: str | bytes, expected: str
) -> None:
    write(f"templates/{name}", content)
    _refused(folder, expected)


def test_a_theme_template_cannot_get_around_the_csp(write: Write, folder: Path) -> None:
    """A theme template is the bank's own code, but the page's policy still allows no inline
    script or style: what it could inject would not run."""
    write("templates/cancel.html", "<script>alert(1)</script>")
    response = render_page(
        load_theme(folder, "fr"),
        "message.html",
        lang="fr",
        title_key="ended_title",
        body_key="ended_body",
        detail="",
    )
    policy = response.headers["content-security-policy"]
    assert "script-src 'self'" in policy and "unsafe-inline" not in policy


def test_create_app_refuses_a_broken_theme_naming_the_file(
    write: Write, folder: Path, tmp_path: Path
) -> None:
    """Before any database or key is opened: the operator sees the file to fix."""
    bad = write("texts/en.toml", 'sign_in = "x"\n')
    settings = Settings(data_dir=tmp_path / "var", theme_dir=folder)
    with pytest.raises(ThemeError) as caught:
        create_app(settings)
    assert str(caught.value) == f"{bad}: unknown text key 'sign_in'"
    assert not (tmp_path / "var").exists()


@pytest.mark.parametrize("code", ["FR", "fra", "f", ""])
def test_default_language_is_a_two_letter_code(code: str) -> None:
    with pytest.raises(ValidationError, match="default_language"):
        Settings(default_language=code)
