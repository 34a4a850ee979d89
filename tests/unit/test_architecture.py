"""The layout contract of `src/pwsup`, checked on the source itself.

The supervisor's one rule — a slow or broken outside world never delays process control —
depends on the shape of the code: the parent must not import HTTP, AWS or parsing
libraries; dependencies run one way (the front door to configuration and the supervisor,
the supervisor to messages, the reporter to the API client); and a newcomer finds one
concern per module, small enough to read. These tests read that shape off the source with
`ast` (imports at module level, inside functions, and those only for type checkers), so a
change that breaks it fails here, with the module and line to look at, before it slows a
start or tangles a package. Only the start path and the exception root are checked by
importing, each in a fresh interpreter.
"""

from __future__ import annotations

import ast
import functools
import json
import subprocess
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[2] / "src"
PACKAGE = SRC / "pwsup"

MAX_MODULE_LINES = 400
MODULE_SIZE_EXCEPTIONS = {
    "pwsup.config.params": "the option table: one entry per option, pure data",
}
MAX_FUNCTION_LINES = 60
"""Counted from the first line of the docstring (or body) to the last line of the body."""

HEAVY_FOR_THE_PARENT = (
    "requests", "urllib3", "http.client", "boto3", "botocore", "yaml", "jsonpath_ng", "logging")
"""Never imported by the parent process: HTTP and AWS belong to the reporter and the
resolver, parsing to the resolver, and `logging` costs start-up time pwsup's own log does
not need."""

SLOW_TO_IMPORT = ("signal", "enum", "re", "functools", "collections", "contextlib", "ctypes",
                  "typing", "dataclasses", "subprocess")
"""Not imported by the parent's start path either: each costs a measurable share of
`pwsup -- true` (`signal` builds enums; `ctypes` builds dozens of classes), and the parent
uses `_signal` (util.rawsignal) and `_ctypes` (procs) instead."""

CLI_IMPORTERS = {
    "pwsup.__main__": "`python -m pwsup` is the front door",
}
"""The only modules that may import `pwsup.cli`, and why."""

LAYERS = [
    ("pwsup.config", ("pwsup.supervisor", "pwsup.embedded", "pwsup.cli"),
     "configuration is data, read before any process starts"),
    ("pwsup.ipc", ("pwsup.supervisor", "pwsup.embedded"),
     "the messages are shared by every process; the processes build on them"),
    ("pwsup.api", ("pwsup.supervisor", "pwsup.embedded"),
     "the API client is a library the reporter uses, not a part of it"),
    ("pwsup.secrets", ("pwsup.supervisor", "pwsup.embedded"),
     "secret resolution is a library the resolver process uses"),
    ("pwsup.runtime", ("pwsup.supervisor", "pwsup.embedded"),
     "runtime metadata is a library the reporter uses"),
]
"""(package, packages it must never import, why)."""

LEAVES = {
    "pwsup.util": "small helpers every process uses; they build on nothing else",
    "pwsup.errors": "the exception root every module may import",
    "pwsup.exitcodes": "the exit codes every module may import",
    "pwsup._version": "read by the build and by every report",
    "pwsup.status": "user code imports it to send status updates: it stays light",
}
"""Modules (or packages) that import nothing from the rest of pwsup (but the version and
the exception root, itself a leaf), and why."""
LEAF_ALLOWED = {
    "pwsup.exitcodes": ("pwsup.util.rawsignal", "signal names for `describe`, without the "
                                                "`signal` module's enums; util is a leaf too"),
    "pwsup.status": ("pwsup.ipc", "the default status port, shared with the option table; "
                                  "the package holds only constants"),
}
"""The one thing a leaf may take from elsewhere in pwsup, and why."""

EXCEPTION_ROOT_EXCEPTIONS = {
    "pwsup.errors.RemoteTraceback": "never raised: it carries a worker's formatted traceback "
                                    "as the cause of the exception re-raised in the caller",
}


@dataclass(frozen=True)
class Import:
    """One imported pwsup module: by whom, where, and when it runs."""

    importer: str
    target: str
    kind: str
    """When it runs: "module" (at import time), "function" (when the function runs) or
    "type" (never: only type checkers read it, under `if TYPE_CHECKING:`)."""
    line: int

    def __str__(self) -> str:
        return f"{self.importer}:{self.line} imports {self.target} ({self.kind})"


def within(name: str, package: str) -> bool:
    return name == package or name.startswith(package + ".")


@functools.cache
def modules() -> dict[str, Path]:
    """Every module of the package by dotted name (a package by its own name)."""
    found: dict[str, Path] = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = list(path.relative_to(SRC).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join(parts)] = path
    return found


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _import_nodes(node: ast.AST, kind: str, out: list[tuple[ast.stmt, str]]) -> None:
    """Collect the import statements below `node`, each with when it runs."""
    for child in ast.iter_child_nodes(node):
        if isinstance(child, ast.If) and _is_type_checking(child.test):
            for stmt in child.body:
                _import_node(stmt, "type", out)
            for stmt in child.orelse:
                _import_node(stmt, kind, out)
        else:
            _import_node(child, kind, out)


def _import_node(node: ast.AST, kind: str, out: list[tuple[ast.stmt, str]]) -> None:
    if isinstance(node, (ast.Import, ast.ImportFrom)):
        out.append((node, kind))
        return
    if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and kind == "module":
        kind = "function"
    _import_nodes(node, kind, out)


def _targets(node: ast.stmt, importer: str) -> list[str]:
    """The modules an import statement loads, by dotted name; `from p import name` names
    the module p.name when there is one, else p."""
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    assert isinstance(node, ast.ImportFrom)
    module = node.module or ""
    if node.level:
        is_package = modules()[importer].name == "__init__.py"
        parts = importer.split(".")[:None if is_package else -1]
        base = ".".join(parts[:len(parts) - node.level + 1])
        module = f"{base}.{module}" if module else base
    return [f"{module}.{alias.name}" if f"{module}.{alias.name}" in modules() else module
            for alias in node.names]


@functools.cache
def imports() -> tuple[Import, ...]:
    """Every import of a pwsup module by a pwsup module."""
    found: list[Import] = []
    for name, path in modules().items():
        nodes: list[tuple[ast.stmt, str]] = []
        _import_nodes(ast.parse(path.read_text(), str(path)), "module", nodes)
        found.extend(Import(name, target, kind, node.lineno)
                     for node, kind in nodes for target in _targets(node, name)
                     if within(target, "pwsup"))
    return tuple(found)


def test_the_import_graph_is_read() -> None:
    """The readers above see what is there (so the rules below cannot pass on nothing)."""
    assert {"pwsup.cli", "pwsup.supervisor.parent", "pwsup.config.params"} <= set(modules())
    seen = {(i.importer, i.target, i.kind) for i in imports()}
    assert ("pwsup.__main__", "pwsup.cli", "module") in seen
    assert ("pwsup.cli", "pwsup.supervisor.parent", "function") in seen
    assert any(kind == "type" for _, _, kind in seen)


def test_the_parent_start_path_imports_nothing_heavy_or_slow(
        env: dict[str, str]) -> None:
    """A whole offline start of `pwsup -- true`: what the parent process has imported by
    the time it has its exit code (children fork off and never reach the print)."""
    code = textwrap.dedent("""
        import os, sys
        import pwsup.__main__
        from pwsup.cli import run
        parent = os.getpid()
        code = run(["--", "true"], dict(os.environ))
        if os.getpid() == parent:
            print(repr([code, sorted(sys.modules)]))  # (json would import re)
        """)
    result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                            text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stderr
    exit_code, loaded = ast.literal_eval(result.stdout.splitlines()[-1])
    assert exit_code == 0, result.stderr
    assert "pwsup.supervisor.parent" in loaded
    heavy = [m for m in loaded if any(within(m, name) for name in HEAVY_FOR_THE_PARENT)]
    assert heavy == []
    slow = [m for m in loaded if m in SLOW_TO_IMPORT]
    assert slow == [], "imported on the parent's start path"


@pytest.mark.parametrize(("package", "forbidden", "why"), LAYERS,
                         ids=[layer[0] for layer in LAYERS])
def test_dependencies_run_one_way(package: str, forbidden: tuple[str, ...], why: str) -> None:
    wrong = [str(i) for i in imports() if within(i.importer, package)
             and any(within(i.target, f) for f in forbidden)]
    assert wrong == [], f"{package} must not import {', '.join(forbidden)}: {why}"


def test_only_the_front_door_imports_the_cli() -> None:
    wrong = [str(i) for i in imports()
             if within(i.target, "pwsup.cli") and i.importer not in CLI_IMPORTERS]
    assert wrong == []


@pytest.mark.parametrize(("leaf", "why"), LEAVES.items(), ids=list(LEAVES))
def test_leaves_import_nothing_else_from_pwsup(leaf: str, why: str) -> None:
    wrong = [str(i) for i in imports()
             if within(i.importer, leaf) and not within(i.target, leaf)
             and i.target not in ("pwsup._version", "pwsup.errors",
                                  LEAF_ALLOWED.get(leaf, ("",))[0])]
    assert wrong == [], f"{leaf}: {why}"


def _packages_loaded_with(target: str, importer: str) -> set[str]:
    """Importing `target` runs its packages' __init__ too, except those the importer is
    already inside of."""
    parts = target.split(".")
    loaded = {".".join(parts[:n]) for n in range(1, len(parts) + 1)}
    return {m for m in loaded if m in modules() and not within(importer, m)}


def _cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for nxt in sorted(edges.get(node, ())):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(edges):
        if node not in index:
            visit(node)
    return found


def test_no_import_cycles_not_even_for_type_checkers() -> None:
    """Modules import each other one way, whether the import runs at import time, in a
    function, or only for the type checker: a cycle of any kind means two modules are one
    concern, or a shared piece wants its own module."""
    edges: dict[str, set[str]] = {}
    for i in imports():
        edges.setdefault(i.importer, set()).update(_packages_loaded_with(i.target, i.importer))
    assert _cycles(edges) == []


def test_no_module_over_the_size_limit() -> None:
    large = {name: count for name, path in modules().items()
             if (count := len(path.read_text().splitlines())) > MAX_MODULE_LINES
             and name not in MODULE_SIZE_EXCEPTIONS}
    assert large == {}, f"modules over {MAX_MODULE_LINES} lines"


def test_no_function_over_the_size_limit() -> None:
    long = {}
    for name, path in modules().items():
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                count = (node.end_lineno or node.lineno) - node.body[0].lineno + 1
                if count > MAX_FUNCTION_LINES:
                    long[f"{name}:{node.lineno} {node.name}"] = count
    assert long == {}, f"functions over {MAX_FUNCTION_LINES} lines"


def test_every_exception_class_derives_from_pwsup_error() -> None:
    """Catching PwsupError catches whatever pwsup raises on its own account. Every module
    is imported (in a fresh interpreter), so no exception class is missed."""
    code = textwrap.dedent("""
        import importlib, json, pkgutil
        import pwsup
        from pwsup.errors import PwsupError
        for info in pkgutil.walk_packages(pwsup.__path__, "pwsup."):
            importlib.import_module(info.name)
        def subclasses(cls):
            for sub in cls.__subclasses__():
                yield sub
                yield from subclasses(sub)
        print(json.dumps(sorted(
            (f"{c.__module__}.{c.__qualname__}", issubclass(c, PwsupError))
            for c in set(subclasses(BaseException)) if c.__module__.startswith("pwsup"))))
        """)
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            timeout=120, check=False)
    assert result.returncode == 0, result.stderr
    classes = dict(json.loads(result.stdout))
    assert "pwsup.errors.PwsupError" in classes
    outside = [name for name, rooted in classes.items()
               if not rooted and name not in EXCEPTION_ROOT_EXCEPTIONS]
    assert outside == []
