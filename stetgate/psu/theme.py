"""The bank's look of the PSU pages: logo, colours, texts and templates, from a theme folder.

A bank points the setting ``theme_dir`` at a folder (docs/operations.md#theme) instead of
forking stetgate; without it the pages have the built-in look — the templates, texts and
static files of this package *are* the default theme. A folder may hold:

- ``theme.toml`` (or ``.json``): ``name`` (the bank's name on every page) and ``colors`` (CSS
  custom properties of psu.css, served as a generated stylesheet: the pages' CSP forbids inline
  styles, and stays as it is);
- ``logo.svg`` or ``logo.png``: shown with ``<img>`` from the static path;
- ``texts/<lang>.toml``: any text overridden; a new language falls back per key to English,
  except ``language_name`` (the label of its link), which it must set;
- ``templates/<name>.html``: a built-in template replaced whole (theme folder first, built-in
  second; ``default/<name>.html`` is always the built-in one, to extend it).

The folder is read and checked once, when the app is built (`load_theme` in `create_app`):
a broken theme stops the start with a message naming the file, instead of a broken page in
front of a PSU. Texts stay HTML-escaped (autoescape is on for every template).
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache, cached_property
from pathlib import Path
from typing import Final

from jinja2 import (
    BaseLoader,
    ChoiceLoader,
    Environment,
    FileSystemLoader,
    PackageLoader,
    PrefixLoader,
    StrictUndefined,
    TemplateSyntaxError,
    meta,
    nodes,
    select_autoescape,
)
from starlette.requests import Request

from stetgate.psu import theme_files as files
from stetgate.psu.languages import browser_language
from stetgate.psu.texts import TEXTS
from stetgate.psu.theme_files import ThemeError

log = logging.getLogger(__name__)

ASSETS_PATH: Final = "/psu/static/theme"
"""Where the theme's stylesheet and logo are served: under the pages' static path, same origin
(``img-src 'self'``, ``style-src 'self'``)."""
FALLBACK_LANGUAGE: Final = "en"
REQUIRED_IN_NEW_LANGUAGE: Final = ("language_name",)
DEFAULT_PREFIX: Final = "default"
DATA_SUFFIXES: Final = (".toml", ".json")
THEME_ENTRIES: Final = frozenset(
    {"theme.toml", "theme.json", "logo.svg", "logo.png", "texts", "templates"}
)
MEDIA_TYPES: Final = {".svg": "image/svg+xml", ".png": "image/png", ".css": "text/css"}

__all__ = ["Asset", "Theme", "ThemeError", "load_theme", "theme_of"]


@dataclass(frozen=True)
class Asset:
    """A file of the theme served to browsers, held in memory: what was checked is served."""

    name: str
    body: bytes
    media_type: str

    @cached_property
    def version(self) -> str:
        return hashlib.sha256(self.body).hexdigest()[:16]

    @property
    def url(self) -> str:
        """The URL changes with the content, so a browser may cache it for long."""
        return f"{ASSETS_PATH}/{self.name}?v={self.version}"


@dataclass(frozen=True)
class Theme:
    environment: Environment
    texts: Mapping[str, Mapping[str, str]]
    """Every text of every language the pages speak, complete (fallbacks filled in)."""
    default_language: str
    assets: Mapping[str, Asset]
    english_fallbacks: Mapping[str, frozenset[str]]
    """For each language the theme adds, the keys it shows in English."""

    @property
    def languages(self) -> tuple[str, ...]:
        return tuple(self.texts)

    def language(self, requested: str | None, fallback: str | None = None) -> str:
        """`requested` when the pages speak it, else `fallback` (a journey's language), else the
        bank's default — a language a theme no longer has never reaches a template."""
        for code in (requested, fallback):
            if code is not None and code in self.texts:
                return code
        return self.default_language

    def request_language(self, request: Request, journey_language: str | None = None) -> str:
        """A page's language: the PSU's choice (``?lang=``, then the one its journey keeps),
        else the browser's ``Accept-Language``, else the bank's default."""
        requested = request.query_params.get("lang")
        browser = None
        if requested not in self.texts and journey_language not in self.texts:
            browser = browser_language(request, self.texts)
        return self.language(requested, journey_language or browser)


def theme_of(request: Request) -> Theme:
    """The app's theme, set once by `create_app` (as its services are)."""
    theme: Theme = request.app.state.theme
    return theme


def load_theme(folder: Path | None, default_language: str) -> Theme:
    """The theme in `folder` (None: the built-in look), checked whole; raises `ThemeError`."""
    if folder is None:
        return _builtin_theme(default_language)
    return _folder_theme(folder, default_language)


@cache
def _builtin_theme(default_language: str) -> Theme:
    """Shared by every app without a theme folder (tests build many): templates compile once."""
    texts = {code: dict(values) for code, values in TEXTS.items()}
    _check_default_language(None, texts, default_language)
    environment = _environment(None, texts, {})
    _compile(environment)
    return Theme(environment, texts, default_language, {}, {})


def _folder_theme(folder: Path, default_language: str) -> Theme:
    if not folder.is_dir():
        raise ThemeError(f"{folder}: theme folder not found (setting theme_dir)")
    _check_entries(folder)
    name, stylesheet = _settings(folder)
    texts, fallbacks = _texts(folder, name)
    _check_default_language(folder, texts, default_language)
    assets: dict[str, Asset] = {}
    if stylesheet is not None:
        assets["theme.css"] = Asset("theme.css", stylesheet.encode(), MEDIA_TYPES[".css"])
    logo = files.one_of(folder, "logo", (".svg", ".png"))
    if logo is not None:
        assets[logo.name] = Asset(logo.name, files.check_logo(logo), MEDIA_TYPES[logo.suffix])
    templates = folder / "templates"
    environment = _environment(templates if templates.is_dir() else None, texts, assets)
    _compile(environment, templates)
    if templates.is_dir():
        _check_theme_templates(environment, templates, set(TEXTS[FALLBACK_LANGUAGE]))
    for code, keys in fallbacks.items():
        if keys:
            log.warning(
                "theme %s: texts/%s has no %d of the texts; they are shown in English: %s",
                folder,
                code,
                len(keys),
                ", ".join(sorted(keys)),
            )
    return Theme(environment, texts, default_language, assets, fallbacks)


def _check_entries(folder: Path) -> None:
    """Only what a theme can hold: a misspelt ``text/`` must not be silently ignored."""
    for entry in files.entries(folder):
        if entry.name.upper().startswith("README"):
            continue
        if entry.name not in THEME_ENTRIES:
            raise ThemeError(
                f"{entry}: not part of a theme (a theme folder holds "
                f"{', '.join(sorted(THEME_ENTRIES))})"
            )
        if entry.name in ("texts", "templates") and not entry.is_dir():
            raise ThemeError(f"{entry}: must be a folder")


def _settings(folder: Path) -> tuple[str | None, str | None]:
    """The bank's name and the stylesheet of its colours, from ``theme.toml``/``.json``."""
    path = files.one_of(folder, "theme", DATA_SUFFIXES)
    if path is None:
        return None, None
    table = files.read_table(path)
    unknown = set(table) - {"name", "colors"}
    if unknown:
        raise ThemeError(f"{path}: unknown key {sorted(unknown)[0]!r} (known: colors, name)")
    name = table.get("name")
    if name is not None and (not isinstance(name, str) or not name.strip()):
        raise ThemeError(f"{path}: name must be a non-empty string")
    stylesheet = files.stylesheet(path, table["colors"]) if "colors" in table else None
    return name, stylesheet


def _texts(
    folder: Path, name: str | None
) -> tuple[dict[str, dict[str, str]], dict[str, frozenset[str]]]:
    """Built-in texts, then the theme's ``name`` as ``bank_name``, then ``texts/<lang>``; a
    language the theme adds starts from the theme's English."""
    reference = TEXTS[FALLBACK_LANGUAGE]
    overrides: dict[str, tuple[Path, dict[str, str]]] = {}
    texts_dir = folder / "texts"
    if texts_dir.is_dir():
        for path in files.entries(texts_dir):
            if not path.is_file() or path.suffix not in DATA_SUFFIXES:
                raise ThemeError(f"{path}: expected a texts file <lang>.toml or <lang>.json")
            code = files.check_language_code(path)
            if code in overrides:
                raise ThemeError(f"{path}: {overrides[code][0].name} is there too; keep one")
            overrides[code] = (path, files.check_texts(path, files.read_table(path), reference))
    texts = {code: dict(values) for code, values in TEXTS.items()}
    if name is not None:
        for values in texts.values():
            values["bank_name"] = name
    fallbacks: dict[str, frozenset[str]] = {}
    added = sorted(code for code in overrides if code not in texts)
    for code in [c for c in overrides if c in texts] + added:
        path, own = overrides[code]
        if code not in texts:
            for key in REQUIRED_IN_NEW_LANGUAGE:
                if key not in own:
                    raise ThemeError(
                        f"{path}: a language the theme adds must set {key!r} "
                        "(the language's name in itself, the label of its link)"
                    )
            texts[code] = dict(texts[FALLBACK_LANGUAGE])
            fallbacks[code] = frozenset(reference) - set(own)
        texts[code].update(own)
    return texts, fallbacks


def _check_default_language(
    folder: Path | None, texts: Mapping[str, object], default_language: str
) -> None:
    if default_language not in texts:
        where = "the built-in theme" if folder is None else f"theme {folder}"
        raise ThemeError(
            f"default_language {default_language!r}: {where} has no such language "
            f"(it has {', '.join(texts)}); add texts/{default_language}.toml to a theme folder"
        )


def _environment(
    templates: Path | None, texts: Mapping[str, Mapping[str, str]], assets: Mapping[str, Asset]
) -> Environment:
    builtin = PackageLoader("stetgate.psu", "templates")
    loaders: list[BaseLoader] = [] if templates is None else [FileSystemLoader(templates)]
    loaders += [builtin, PrefixLoader({DEFAULT_PREFIX: builtin})]
    environment = Environment(
        loader=ChoiceLoader(loaders),
        autoescape=select_autoescape(default=True, default_for_string=True),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        auto_reload=False,  # what start-up checked is what PSUs get; restart to change
    )
    stylesheet = assets.get("theme.css")
    logo = assets.get("logo.svg") or assets.get("logo.png")
    environment.globals.update(
        theme_stylesheet=stylesheet.url if stylesheet else None,
        theme_logo=logo.url if logo else None,
        languages=tuple((code, values["language_name"]) for code, values in texts.items()),
    )
    return environment


def _compile(environment: Environment, theme_templates: Path | None = None) -> None:
    """Every template compiled now: a syntax error stops the start, naming file and line."""
    for name in environment.list_templates(extensions=["html"]):
        if name.startswith(f"{DEFAULT_PREFIX}/"):
            continue
        try:
            environment.get_template(name)
        except TemplateSyntaxError as exc:
            raise ThemeError(
                f"{exc.filename or name}:{exc.lineno}: template syntax error: {exc.message}"
            ) from None
        except UnicodeDecodeError:
            raise ThemeError(f"{_where(theme_templates, name)}: not UTF-8 text") from None
        except OSError as exc:
            raise ThemeError(f"{_where(theme_templates, name)}: cannot read ({exc})") from None


def _where(theme_templates: Path | None, name: str) -> Path | str:
    if theme_templates is not None and (theme_templates / name).exists():
        return theme_templates / name
    return name


def _check_theme_templates(environment: Environment, folder: Path, keys: set[str]) -> None:
    """A theme's template replaces a built-in one (or is its own partial, ``_name.html``),
    names only templates that exist and only text keys that exist."""
    builtin = set(PackageLoader("stetgate.psu", "templates").list_templates())
    known = set(environment.list_templates())
    for path in files.entries(folder):
        if not path.is_file() or path.suffix != ".html":
            raise ThemeError(f"{path}: a theme template is an .html file directly in templates/")
        if path.name not in builtin and not path.name.startswith("_"):
            raise ThemeError(
                f"{path}: no built-in template of that name to replace (built-in: "
                f"{', '.join(sorted(builtin))}); a theme's own partial is named _name.html"
            )
        tree = environment.parse(files.read_text(path), path.name, str(path))
        for referenced in meta.find_referenced_templates(tree):
            if referenced is not None and referenced not in known:
                raise ThemeError(f"{path}: template {referenced!r} not found")
        for node in tree.find_all(nodes.Getattr):
            if (
                isinstance(node.node, nodes.Name)
                and node.node.name == "t"
                and node.attr not in keys
            ):
                raise ThemeError(f"{path}:{node.lineno}: unknown text key t.{node.attr}")
