"""Which language a PSU page starts in: the browser's ``Accept-Language`` (RFC 9110 §12.5.4),
matched against the languages the bank's theme speaks. After that the PSU's own choice (the
language link, kept in the journey) wins.

A small parser of our own: Starlette has none, and the pages only need the primary subtag
(``fr-CA`` → ``fr``, RFC 4647 §3.4 lookup truncated to the language) with the ``q`` weights
honoured — ``q=0`` means "not this one" — and ties kept in header order.
"""

from __future__ import annotations

from collections.abc import Collection

from starlette.requests import Request

MAX_HEADER = 512
"""Longer headers are cut: a browser sends a few dozen bytes, and the parse stays cheap."""


def accepted_languages(header: str | None) -> list[str]:
    """The primary language subtags of an ``Accept-Language`` value, most wanted first,
    without the refused (``q=0``) or malformed ones and without ``*``."""
    if not header:
        return []
    weighted: list[tuple[float, int, str]] = []
    for position, item in enumerate(header[:MAX_HEADER].split(",")):
        tag, _, params = item.partition(";")
        primary = tag.strip().split("-")[0].lower()
        if not primary.isalpha() or not 1 <= len(primary) <= 8:
            continue
        weight = _quality(params)
        if weight is None or weight <= 0:
            continue
        weighted.append((-weight, position, primary))
    ordered: list[str] = []
    for _, _, primary in sorted(weighted):
        if primary not in ordered:
            ordered.append(primary)
    return ordered


def _quality(params: str) -> float | None:
    """The ``q`` weight (1 when absent), or None when it is not a valid qvalue."""
    for param in params.split(";"):
        name, _, value = param.strip().partition("=")
        if name.strip().lower() != "q":
            continue
        try:
            weight = float(value.strip())
        except ValueError:
            return None
        return weight if 0 <= weight <= 1 else None
    return 1.0


def browser_language(request: Request, spoken: Collection[str]) -> str | None:
    """The first of the browser's languages the pages speak, or None."""
    for code in accepted_languages(request.headers.get("accept-language")):
        if code in spoken:
            return code
    return None
