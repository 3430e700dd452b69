"""The layout rules, checked on the import graph (every ``import`` statement, read with ``ast``,
including imports inside functions, so a lazy import cannot hide an edge):

* no service package imports another: services/ingest, services/depersonalise and
  services/router share code only through the shared libraries (services/core, services/protocols,
  schemas);
* the shared libraries import no service, no CLI and no demo code, and no service imports the demo;
* pure-logic packages reach no Kafka client, directly or through any module they import;
* no service code tells errors apart by the module that defined them (``__module__``): the
  Kafka glue maps client errors into the hub's tree (``services/core/kafka/errors.py``);
* a module over 400 lines says why in its docstring, on a line starting ``Over 400 lines because``.
"""

from __future__ import annotations

import ast
from functools import cache
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
TREES = ("services", "schemas", "bench", "demo", "scripts", "tests")
SERVICES = ("services.ingest", "services.depersonalise", "services.router")
SHARED = ("services.core", "services.protocols", "schemas")
#: Not services: the CLI and the demo may use any package; nothing but themselves uses them.
TOOLS = ("services.cli", "demo")
#: Pure logic: testable in microseconds, so nothing here may pull in a broker client.
PURE = ("schemas", "services.protocols", "services.router.hotspots",
        "services.depersonalise.engine", "services.depersonalise.risk_gate",
        "services.depersonalise.stage", "services.router.subscriptions",
        "services.core.audit.chain", "services.core.crypto", "services.core.crypto.canonical",
        "services.core.areas")
KAFKA_CLIENTS = ("aiokafka", "kafka", "confluent_kafka", "faust")
MAX_LINES = 400
REASON = "Over 400 lines because"


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


@cache
def _modules() -> dict[str, Path]:
    out: dict[str, Path] = {}
    for tree in TREES:
        if (ROOT / tree).is_dir():
            for path in sorted((ROOT / tree).rglob("*.py")):
                out[_module_name(path)] = path
    return out


def _within(name: str, packages: tuple[str, ...]) -> bool:
    return any(name == p or name.startswith(p + ".") for p in packages)


@cache
def _imports(name: str) -> frozenset[str]:
    """Every module ``name`` imports by absolute name (relative imports resolved)."""
    path = _modules()[name]
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                up = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base = ".".join([*up, base] if base else up)
            found.add(base)
            # ``from pkg import mod`` imports the module pkg.mod when there is one.
            found.update(f"{base}.{a.name}" for a in node.names
                         if f"{base}.{a.name}" in _modules())
    return frozenset(found)


def _reach(name: str) -> set[str]:
    """Everything ``name`` imports, transitively through the project's own modules."""
    seen: set[str] = set()
    todo = [name]
    while todo:
        for imp in _imports(todo.pop()):
            if imp in seen:
                continue
            seen.add(imp)
            if imp in _modules():
                todo.append(imp)
    return seen


def _service_of(name: str) -> str | None:
    return next((s for s in SERVICES if _within(name, (s,))), None)


def test_the_graph_is_read() -> None:
    # A walk that finds nothing would pass every rule below.
    mods = _modules()
    assert "services.router.app" in mods
    assert "services.router.routing_view" in _imports("services.router.app")
    assert "services.protocols.in_force" in _reach("services.router.app")


def test_no_service_package_imports_another() -> None:
    bad = []
    for name in _modules():
        own = _service_of(name)
        if own is None:
            continue
        bad += [f"{name} imports {imp}" for imp in _imports(name)
                if _service_of(imp) not in (None, own)]
    assert bad == []


def test_shared_libraries_import_no_service_and_services_import_no_tool() -> None:
    bad = []
    for name in _modules():
        if _within(name, SHARED):
            bad += [f"{name} imports {imp}" for imp in _imports(name)
                    if _within(imp, SERVICES + TOOLS)]
        elif _service_of(name) is not None:
            bad += [f"{name} imports {imp}" for imp in _imports(name) if _within(imp, TOOLS)]
    assert bad == []


def test_pure_logic_reaches_no_kafka_client() -> None:
    pure = [n for n in _modules() if _within(n, PURE)]
    assert len(pure) > 20  # the list above names real packages
    bad = [f"{name} reaches {imp}" for name in pure for imp in _reach(name)
           if _within(imp, KAFKA_CLIENTS)]
    assert bad == []


def test_no_service_code_reads_an_exception_module_name() -> None:
    bad = []
    for name, path in _modules().items():
        if not _within(name, ("services",)):
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        bad += [f"{name}:{node.lineno}" for node in ast.walk(tree)
                if isinstance(node, ast.Attribute) and node.attr == "__module__"]
    assert bad == []


def _docstring_says_why(path: Path) -> bool:
    doc = ast.get_docstring(ast.parse(path.read_text(encoding="utf-8"))) or ""
    return any(line.strip().startswith(REASON) for line in doc.splitlines())


@pytest.mark.parametrize("tree", TREES)
def test_long_modules_say_why(tree: str) -> None:
    bad = []
    for name, path in _modules().items():
        if not _within(name, (tree,)):
            continue
        lines = path.read_text(encoding="utf-8").count("\n")
        if lines > MAX_LINES and not _docstring_says_why(path):
            bad.append(f"{path.relative_to(ROOT)}: {lines} lines, no '{REASON} ...' line")
    assert bad == []
