"""Reading and checking the files of a theme folder (`stetgate.psu.theme`), one kind each.

Each function reads one file and either returns a checked value or raises `ThemeError` with a
message that starts with the file's path: a bank's operator fixes the file the message names,
and `create_app` never serves a half-valid look. The rules are deliberately narrow — colours
are CSS colour values only, texts keep the placeholders of the built-in text, a logo is a PNG
or an SVG without scripts — because what a theme puts on the page is shown to PSUs next to
their credentials.
"""

from __future__ import annotations

import json
import re
import string
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Final
from xml.etree import ElementTree

COLOR_NAMES: Final = (
    "primary",
    "primary-dark",
    "on-primary",
    "accent",
    "background",
    "surface",
    "text",
    "muted",
    "border",
    "success",
)
"""The CSS custom properties of psu.css a theme may set (``--primary`` …), by their names."""

MAX_LOGO_BYTES: Final = 256 * 1024
PNG_SIGNATURE: Final = b"\x89PNG\r\n\x1a\n"
SVG_NAMESPACE: Final = "{http://www.w3.org/2000/svg}"

_NUMBER = r"\d{1,3}(?:\.\d+)?%?"
_ALPHA = r"(?:\d*\.)?\d+%?"
_COLOR = re.compile(
    r"#(?:[0-9a-f]{3}|[0-9a-f]{4}|[0-9a-f]{6}|[0-9a-f]{8})"
    rf"|rgba?\(\s*{_NUMBER}(?:\s*,\s*{_NUMBER}){{2}}(?:\s*,\s*{_ALPHA})?\s*\)"
    rf"|rgba?\(\s*{_NUMBER}(?:\s+{_NUMBER}){{2}}(?:\s*/\s*{_ALPHA})?\s*\)",
    re.IGNORECASE,
)
_LANGUAGE = re.compile(r"[a-z]{2}")


class ThemeError(ValueError):
    """A theme folder stetgate refuses to serve; the message names the file and the fault."""


def entries(folder: Path) -> list[Path]:
    """A folder's entries, sorted, without hidden ones (``.git``, ``.keep``…)."""
    try:
        return sorted(entry for entry in folder.iterdir() if not entry.name.startswith("."))
    except OSError as exc:
        raise ThemeError(f"{folder}: cannot list the folder ({exc.strerror or exc})") from None


def read_bytes(path: Path, limit: int | None = None) -> bytes:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ThemeError(f"{path}: cannot read the file ({exc.strerror or exc})") from None
    if limit is not None and len(data) > limit:
        raise ThemeError(f"{path}: {len(data)} bytes, at most {limit} allowed")
    return data


def read_text(path: Path) -> str:
    try:
        return read_bytes(path).decode("utf-8")
    except UnicodeDecodeError:
        raise ThemeError(f"{path}: not UTF-8 text") from None


def read_table(path: Path) -> dict[str, Any]:
    """A TOML or JSON file (by its suffix) whose top level is a table."""
    text = read_text(path)
    try:
        data: Any = tomllib.loads(text) if path.suffix == ".toml" else json.loads(text)
    except (tomllib.TOMLDecodeError, json.JSONDecodeError) as exc:
        raise ThemeError(f"{path}: invalid {path.suffix[1:].upper()}: {exc}") from None
    if not isinstance(data, dict):
        raise ThemeError(f"{path}: the top level must be a table of keys")
    return data


def one_of(folder: Path, stem: str, suffixes: tuple[str, ...]) -> Path | None:
    """The one file ``stem.<suffix>`` in `folder`, None if there is none; two is an error (which
    one would win is not obvious)."""
    found = [
        folder / f"{stem}{suffix}" for suffix in suffixes if (folder / f"{stem}{suffix}").exists()
    ]
    if len(found) > 1:
        raise ThemeError(f"{found[1]}: {found[0].name} is there too; keep one of them")
    return found[0] if found else None


def check_color(path: Path, name: str, value: object) -> str:
    if not isinstance(value, str) or _COLOR.fullmatch(value.strip()) is None:
        raise ThemeError(
            f"{path}: colors.{name} = {value!r} is not a CSS colour "
            "(#rgb, #rrggbb, #rrggbbaa, rgb(…) or rgba(…))"
        )
    return value.strip()


def stylesheet(path: Path, colors: object) -> str | None:
    """The ``:root`` rule setting the theme's colours, None when it sets none."""
    if not isinstance(colors, dict):
        raise ThemeError(f'{path}: colors must be a table, e.g. colors.primary = "#005a3c"')
    lines = []
    for name, value in colors.items():
        if name not in COLOR_NAMES:
            raise ThemeError(f"{path}: unknown colour {name!r} (known: {', '.join(COLOR_NAMES)})")
        lines.append(f"  --{name}: {check_color(path, name, value)};\n")
    if not lines:
        return None
    return "/* The bank's colours (theme folder). */\n:root {\n" + "".join(lines) + "}\n"


def check_language_code(path: Path) -> str:
    code = path.stem
    if _LANGUAGE.fullmatch(code) is None:
        raise ThemeError(
            f"{path}: a texts file is named by a two-letter lowercase ISO 639-1 code, "
            "e.g. texts/de.toml"
        )
    return code


def _placeholders(path: Path, key: str, text: str) -> set[str]:
    try:
        fields = [field for _, field, _, _ in string.Formatter().parse(text) if field is not None]
    except ValueError as exc:
        raise ThemeError(f"{path}: text {key!r}: {exc} (write {{{{ and }}}} for braces)") from None
    return set(fields)


def check_texts(
    path: Path, table: Mapping[str, Any], reference: Mapping[str, str]
) -> dict[str, str]:
    """A language's overrides: known keys, string values, and only the placeholders (``{client}``
    …) the built-in text has — the page formats the text with those and nothing else, so a
    theme cannot ask for an attribute or a value the page does not pass."""
    texts: dict[str, str] = {}
    for key, value in table.items():
        if key not in reference:
            raise ThemeError(f"{path}: unknown text key {key!r}")
        if not isinstance(value, str):
            raise ThemeError(f"{path}: text {key!r} must be a string")
        allowed = _placeholders(path, key, reference[key])
        extra = _placeholders(path, key, value) - allowed
        if extra:
            wanted = ", ".join(f"{{{name}}}" for name in sorted(allowed)) or "none"
            raise ThemeError(
                f"{path}: text {key!r} uses {', '.join(f'{{{e}}}' for e in sorted(extra))}; "
                f"its placeholders are: {wanted}"
            )
        texts[key] = value
    return texts


def _local_reference(href: str) -> bool:
    """A fragment or an embedded raster image: nothing fetched, nothing run."""
    href = href.strip().lower()
    return href.startswith("#") or (
        href.startswith("data:image/") and not href.startswith("data:image/svg")
    )


def check_logo(path: Path) -> bytes:
    """A PNG (by its signature) or an SVG document without scripts, event handlers or entity
    declarations. The page shows it with ``<img>``, where a browser runs no script anyway;
    refusing them keeps the file safe when opened on its own too."""
    data = read_bytes(path, MAX_LOGO_BYTES)
    if path.suffix == ".png":
        if not data.startswith(PNG_SIGNATURE):
            raise ThemeError(f"{path}: not a PNG image")
        return data
    if b"<!DOCTYPE" in data.upper() or b"<!ENTITY" in data.upper():
        raise ThemeError(f"{path}: DOCTYPE and entity declarations are not allowed in a logo")
    try:
        # No DTD (refused above), so no entity expansion or external entity to fear; the file
        # is the bank's own, read once at start-up.
        root = ElementTree.fromstring(data)  # noqa: S314
    except ElementTree.ParseError as exc:
        raise ThemeError(f"{path}: not well-formed XML ({exc})") from None
    if root.tag not in ("svg", f"{SVG_NAMESPACE}svg"):
        raise ThemeError(f"{path}: the root element is not <svg>")
    for element in root.iter():
        tag = element.tag.rsplit("}", 1)[-1].lower()
        if tag in ("script", "foreignobject"):
            raise ThemeError(f"{path}: <{tag}> is not allowed in a logo")
        for attribute, value in element.attrib.items():
            name = attribute.rsplit("}", 1)[-1].lower()
            if name.startswith("on"):
                raise ThemeError(f"{path}: event handler attribute {name!r} in a logo")
            if name == "href" and not _local_reference(value):
                raise ThemeError(f"{path}: a logo may not link to {value[:60]!r}")
    return data
