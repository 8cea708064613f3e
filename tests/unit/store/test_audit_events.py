"""Every audit event the code writes is named by a constant of `stetgate.store.audit_events`.

The check reads the source with `ast`: an *event sink* is any function of stetgate with a
parameter called ``event`` (`record_event`, `Visit.audit`, the clients CLI's status helper…);
at each call of a sink, the event argument must be a constant imported from
`stetgate.store.audit_events` (or ``audit_events.NAME``), a conditional choosing between such
constants, or the enclosing function's own ``event`` parameter passed on — never a string
literal or a local variable.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from sqlalchemy import String

from stetgate.store import audit_events
from stetgate.store.schema import audit_events as audit_table

PACKAGE = Path(__file__).resolve().parents[3] / "stetgate"
EVENTS_MODULE = "stetgate.store.audit_events"
EVENT_NAMES = {
    name: value
    for name, value in vars(audit_events).items()
    if name.isupper() and isinstance(value, str)
}


@dataclass(frozen=True)
class Sink:
    position: int
    """Index of ``event`` among the positional arguments a caller passes (``self`` excluded)."""


def _modules() -> list[tuple[Path, ast.Module]]:
    paths = sorted(PACKAGE.rglob("*.py"))
    return [(path, ast.parse(path.read_text(), str(path))) for path in paths]


def _sinks(modules: list[tuple[Path, ast.Module]]) -> dict[str, Sink]:
    sinks: dict[str, Sink] = {}
    for _, tree in modules:
        for node in ast.walk(tree):
            if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                continue
            positional = [a.arg for a in node.args.posonlyargs + node.args.args]
            if positional[:1] in (["self"], ["cls"]):
                positional = positional[1:]
            if "event" in positional:
                sinks[node.name] = Sink(positional.index("event"))
            elif any(a.arg == "event" for a in node.args.kwonlyargs):
                sinks[node.name] = Sink(-1)
    return sinks


def _event_imports(tree: ast.Module) -> tuple[set[str], set[str]]:
    """(names imported from the events module, local names of the events module itself)."""
    names: set[str] = set()
    modules: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module == EVENTS_MODULE:
            names.update(alias.asname or alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module == "stetgate.store":
            modules.update(
                alias.asname or alias.name for alias in node.names if alias.name == "audit_events"
            )
    return names, modules


def _parents(tree: ast.Module) -> dict[ast.AST, ast.AST]:
    return {child: parent for parent in ast.walk(tree) for child in ast.iter_child_nodes(parent)}


def _enclosing_event_parameter(node: ast.AST, parents: dict[ast.AST, ast.AST]) -> bool:
    while node in parents:
        node = parents[node]
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            every = node.args.posonlyargs + node.args.args + node.args.kwonlyargs
            return any(a.arg == "event" for a in every)
    return False


def _problem(
    arg: ast.expr,
    names: set[str],
    modules: set[str],
    passes_on: bool,
) -> str | None:
    if isinstance(arg, ast.IfExp):
        return _problem(arg.body, names, modules, passes_on) or _problem(
            arg.orelse, names, modules, passes_on
        )
    if isinstance(arg, ast.Name) and arg.id in names:
        return None if arg.id in EVENT_NAMES else f"{arg.id} is not an event constant"
    if isinstance(arg, ast.Name) and arg.id == "event" and passes_on:
        return None
    if (
        isinstance(arg, ast.Attribute)
        and isinstance(arg.value, ast.Name)
        and arg.value.id in modules
    ):
        return None if arg.attr in EVENT_NAMES else f"audit_events has no {arg.attr}"
    return f"{ast.unparse(arg)} is not a constant of {EVENTS_MODULE}"


@cache
def _event_arguments() -> list[tuple[str, ast.expr, set[str], set[str], bool]]:
    modules = _modules()
    sinks = _sinks(modules)
    found: list[tuple[str, ast.expr, set[str], set[str], bool]] = []
    for path, tree in modules:
        names, event_modules = _event_imports(tree)
        parents = _parents(tree)
        for node in ast.walk(tree):
            if not isinstance(node, ast.Call):
                continue
            func = node.func
            called = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            args: list[ast.expr] = [kw.value for kw in node.keywords if kw.arg == "event"]
            sink = sinks.get(called)
            if sink is not None and 0 <= sink.position < len(node.args):
                candidate = node.args[sink.position]
                if not isinstance(candidate, ast.Starred):
                    args.append(candidate)
            where = f"{path.relative_to(PACKAGE.parent)}:{node.lineno}"
            passes_on = _enclosing_event_parameter(node, parents)
            found.extend((where, arg, names, event_modules, passes_on) for arg in args)
    return found


def test_every_recorded_event_is_a_constant_of_the_audit_events_module() -> None:
    arguments = _event_arguments()
    assert len(arguments) >= 30, "the scan no longer finds the record_event calls"
    problems = [
        f"{where}: {problem}"
        for where, arg, names, modules, passes_on in arguments
        if (problem := _problem(arg, names, modules, passes_on)) is not None
    ]
    assert problems == []


def test_every_event_constant_is_written_somewhere() -> None:
    used: set[str] = set()
    for _, arg, _, _, _ in _event_arguments():
        for node in ast.walk(arg):
            if isinstance(node, ast.Name) and node.id in EVENT_NAMES:
                used.add(node.id)
            elif isinstance(node, ast.Attribute) and node.attr in EVENT_NAMES:
                used.add(node.attr)
    # TOKEN_REFRESHED's row is written by the refresh statement itself (INSERT … SELECT), its
    # log line by `log_audit_event` (a sink too): every constant is used.
    assert set(EVENT_NAMES) - used == set()


def test_event_names_are_distinct_and_fit_the_column() -> None:
    values = list(EVENT_NAMES.values())
    assert len(values) == len(set(values))
    column_type = audit_table.c.event.type
    assert isinstance(column_type, String) and column_type.length is not None
    width = column_type.length
    assert all(0 < len(value) <= width for value in values)
