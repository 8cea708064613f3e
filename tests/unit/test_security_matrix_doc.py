"""docs/security.md stays true: its attack tables list exactly the tests of tests/security/,
each under the heading of its own module, and the matrix keeps at least 80 attacks."""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).parents[2]
DOC = ROOT / "docs" / "security.md"
SECURITY_TESTS = ROOT / "tests" / "security"
_SECTION = re.compile(r"^### .*`(test_\w+\.py)`\s*$")
_ROW = re.compile(r"^\|(?:[^|]*\|){2}\s*`(test_\w+)`\s*\|\s*$")


def documented() -> set[tuple[str, str]]:
    """(module, test) for every table row, from the module heading above it."""
    rows: set[tuple[str, str]] = set()
    module: str | None = None
    for line in DOC.read_text(encoding="utf-8").splitlines():
        heading = _SECTION.match(line)
        if heading:
            module = heading.group(1)
            continue
        row = _ROW.match(line)
        if row:
            assert module is not None, f"row before any module heading: {line}"
            assert (module, row.group(1)) not in rows, f"listed twice: {row.group(1)}"
            rows.add((module, row.group(1)))
    return rows


def collected() -> set[tuple[str, str]]:
    """(module, test) for every test function of tests/security/, read from the source."""
    tests: set[tuple[str, str]] = set()
    for path in sorted(SECURITY_TESTS.glob("test_*.py")):
        for node in ast.parse(path.read_text(encoding="utf-8")).body:
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.name.startswith(
                "test_"
            ):
                tests.add((path.name, node.name))
    return tests


def test_every_security_test_is_in_the_table_and_every_row_is_a_test() -> None:
    in_doc, in_code = documented(), collected()
    assert sorted(in_code - in_doc) == [], "tests missing from docs/security.md"
    assert sorted(in_doc - in_code) == [], "rows of docs/security.md without a test"


def test_the_matrix_has_at_least_80_distinct_attacks() -> None:
    assert len({name for _, name in collected()}) >= 80


def test_rows_give_an_expected_answer() -> None:
    for line in DOC.read_text(encoding="utf-8").splitlines():
        if _ROW.match(line):
            attack, answer = (cell.strip() for cell in line.strip("|").split("|")[:2])
            assert attack and answer, line
