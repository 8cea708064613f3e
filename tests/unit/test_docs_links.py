"""The repository stands alone: every reference to the product decisions is a link to a section
of the decisions page that exists (docs/decisions.md#how-to-read-this-page), links to other
``docs/*.md`` sections resolve, and nothing points outside the repository (the research folder
it was built from) or cites an issue number.

Anchors are computed the way GitHub renders Markdown headings: lower case, punctuation other
than ``-`` and ``_`` dropped, spaces turned into ``-``, and ``-1``, ``-2``… appended to repeats.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
DECISIONS = DOCS / ("decisions" + ".md")
SCANNED = ("stetgate", "tests", "benchmarks", "docs")
TEXT_SUFFIXES = frozenset(
    {".py", ".md", ".html", ".js", ".css", ".txt", ".toml", ".json", ".sh", ".mako", ".ini"}
)

# Built from pieces so this file does not trip its own checks.
_DECISIONS_NAME = "decisions" + ".md"
_DECISIONS_REF = re.compile(
    r"(?P<prefix>[\w./-]*)" + re.escape(_DECISIONS_NAME) + r"(?P<fragment>#[\w-]*)?"
)
_DOC_LINK = re.compile(r"(?<![\w./-])docs/(?P<name>[\w-]+\.md)#(?P<anchor>[\w-]*)")
_RELATIVE_DOC_LINK = re.compile(
    r"(?<![\w./-])(?:docs/|\./)?(?P<name>[\w-]+\.md)#(?P<anchor>[\w-]*)"
)
"""Inside docs/, pages link to each other by file name."""
_SEED_STEP = re.compile(r"\bseed(?:'s)?,?\s+(?:steps?|whole|cinematic)\b", re.IGNORECASE)
_OUTSIDE = re.compile(r"\.\./" + "shared" + r"|\b" + "shared" + r"/(?:spec|seed)/")
_ISSUE_NUMBER = re.compile(r"\b" + "issue" + r"s?\s*#?\s*\d+\b|\(#\d+\)", re.IGNORECASE)


def github_anchors(markdown: str) -> set[str]:
    """The anchors GitHub generates for the headings of a Markdown document."""
    anchors: set[str] = set()
    seen: dict[str, int] = {}
    in_fence = False
    for line in markdown.splitlines():
        if line.lstrip().startswith(("```", "~~~")):
            in_fence = not in_fence
            continue
        heading = re.match(r"#{1,6}\s+(.*?)\s*#*\s*$", line)
        if in_fence or heading is None:
            continue
        text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading.group(1))  # link → its text
        slug = re.sub(r"[^\w\- ]", "", text.strip().lower()).replace(" ", "-")
        count = seen.get(slug, 0)
        seen[slug] = count + 1
        anchors.add(slug if count == 0 else f"{slug}-{count}")
    return anchors


def scanned_files() -> Iterator[Path]:
    yield ROOT / "README.md"
    for top in SCANNED:
        for path in sorted((ROOT / top).rglob("*")):
            parts = path.parts
            if "__pycache__" in parts or "node_modules" in parts:  # built or third-party
                continue
            if path.is_file() and path.suffix in TEXT_SUFFIXES:
                yield path


_MARKDOWN_LINK = re.compile(r"\[[^\]]*\]\(([^)\s]*)\)")


def _lines(path: Path) -> Iterator[tuple[int, str]]:
    """Numbered lines; in Markdown a link counts by its target (``[label](page.md#anchor)``:
    the label is just text)."""
    text = path.read_text(encoding="utf-8", errors="replace")
    for number, line in enumerate(text.splitlines(), start=1):
        yield number, _MARKDOWN_LINK.sub(r" \1 ", line) if path.suffix == ".md" else line


def _where(path: Path, number: int) -> str:
    return f"{path.relative_to(ROOT)}:{number}"


def test_anchor_rules_match_github() -> None:
    assert github_anchors("# Token rules\n## Token rules\n### PKCE (RFC 7636)\n") == {
        "token-rules",
        "token-rules-1",
        "pkce-rfc-7636",
    }
    assert github_anchors("```\n# not a heading\n```\n## One pair per PSU, organization\n") == {
        "one-pair-per-psu-organization"
    }


def test_decisions_are_in_the_repository() -> None:
    assert DECISIONS.is_file()
    assert "the-cinematic" in github_anchors(DECISIONS.read_text(encoding="utf-8"))


def test_every_decisions_reference_is_a_link_to_an_existing_section() -> None:
    anchors = github_anchors(DECISIONS.read_text(encoding="utf-8"))
    problems = []
    for path in scanned_files():
        in_docs = DOCS in path.resolve().parents
        for number, line in _lines(path):
            for match in _DECISIONS_REF.finditer(line):
                prefix, fragment = match.group("prefix"), match.group("fragment")
                allowed = {"docs/"} | ({"", "./"} if in_docs else set())
                if prefix not in allowed:
                    problems.append(f"{_where(path, number)}: write docs/{_DECISIONS_NAME}#…")
                elif not fragment or fragment[1:] not in anchors:
                    problems.append(
                        f"{_where(path, number)}: {match.group(0)!r} needs an anchor of an "
                        "existing heading"
                    )
    assert not problems, "\n".join(problems)


def test_links_to_doc_sections_resolve() -> None:
    cache: dict[str, set[str] | None] = {}
    problems = []
    for path in scanned_files():
        link = _RELATIVE_DOC_LINK if DOCS in path.resolve().parents else _DOC_LINK
        for number, line in _lines(path):
            for match in link.finditer(line):
                name, anchor = match.group("name"), match.group("anchor")
                if name not in cache:
                    target = DOCS / name
                    cache[name] = (
                        github_anchors(target.read_text(encoding="utf-8"))
                        if target.is_file()
                        else None
                    )
                known = cache[name]
                if known is None:
                    problems.append(f"{_where(path, number)}: docs/{name} does not exist")
                elif anchor not in known:
                    problems.append(f"{_where(path, number)}: docs/{name} has no #{anchor}")
        if path.suffix == ".md":  # links to a section of the same page: [label](#anchor)
            text = path.read_text(encoding="utf-8")
            own = github_anchors(text)
            for number, line in enumerate(text.splitlines(), start=1):
                for anchor in re.findall(r"\]\(#([\w-]+)\)", line):
                    if anchor not in own:
                        problems.append(f"{_where(path, number)}: no #{anchor} on this page")
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize(
    ("pattern", "advice"),
    [
        (_SEED_STEP, "cite a step of docs/decisions.md#the-cinematic instead"),
        (_OUTSIDE, "nothing outside the repository may be cited"),
        (_ISSUE_NUMBER, "say why, not which issue asked for it"),
    ],
    ids=["seed-step", "outside-repository", "issue-number"],
)
def test_no_reference_outside_the_repository(pattern: re.Pattern[str], advice: str) -> None:
    problems = [
        f"{_where(path, number)}: {line.strip()[:100]}"
        for path in scanned_files()
        for number, line in _lines(path)
        if pattern.search(line)
    ]
    assert not problems, advice + ":\n" + "\n".join(problems)
