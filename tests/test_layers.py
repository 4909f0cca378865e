"""The package's import graph: no cycle, and no arrow from a lower layer up to a higher one.

Every ``import`` counts, at module top or inside a function: a function-level import is still a
dependency. ``from package import name`` is an arrow to ``package.name`` where that is a module,
else to ``package``. The implicit import of a module's parent packages does not count.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "hwdse"

# Lowest first: a module may import its own layer and the layers before it. The DESIGN.md flow, with
# the shared base modules under it and the public facade (``hwdse/__init__.py``) over it.
LAYERS = (
    ("base", ("hwdse._version", "hwdse._errors", "hwdse._params", "hwdse._array", "hwdse._catalog")),
    ("formats", ("hwdse.formats",)),
    ("workload", ("hwdse.workload",)),
    # hardware: the shared pieces, then one subpackage per device kind, systems of devices above the
    # kinds they combine; the catalog's union of kinds (the package itself) on top.
    ("hardware shared", ("hwdse.hardware._base", "hwdse.hardware.memory", "hwdse.hardware.power",
                         "hwdse.hardware.energy", "hwdse.hardware.cost", "hwdse.hardware.pe",
                         "hwdse.hardware.dequant")),
    ("gpu", ("hwdse.hardware.gpu",)),
    ("accelerator", ("hwdse.hardware.accelerator",)),
    ("systems", ("hwdse.hardware.systems",)),
    ("spatial and pim", ("hwdse.hardware.spatial", "hwdse.hardware.pim")),
    ("hardware", ("hwdse.hardware",)),
    ("perf", ("hwdse.perf",)),
    ("serving", ("hwdse.serving",)),
    ("search", ("hwdse.search",)),
    ("report", ("hwdse.report",)),
    ("calibration", ("hwdse.calibration",)),
    ("cli", ("hwdse.cli",)),
    ("api", ("hwdse",)),
)


def _modules() -> dict[str, Path]:
    out = {}
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        out[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return out


MODULES = _modules()


def _target(name: str) -> str | None:
    """The package module ``name`` refers to (its longest known prefix), or None outside the package."""
    while name and name not in MODULES:
        name = name.rpartition(".")[0]
    return name or None


def _imports(module: str, path: Path) -> set[str]:
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    out = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join([*package.split(".")[: len(package.split(".")) - node.level + 1], *filter(None, [base])])
            names = [f"{base}.{a.name}" if f"{base}.{a.name}" in MODULES else base for a in node.names]
        else:
            continue
        out |= {t for t in map(_target, names) if t is not None and t != module}
    return out


GRAPH = {module: _imports(module, path) for module, path in MODULES.items()}


def _layer(module: str) -> int:
    """Index in LAYERS of the longest prefix of ``module`` named there."""
    best, depth = None, -1
    for i, (_, prefixes) in enumerate(LAYERS):
        for prefix in prefixes:
            if (module == prefix or module.startswith(prefix + ".")) and prefix.count(".") > depth:
                best, depth = i, prefix.count(".")
    assert best is not None, f"{module} is in no layer of LAYERS: add it"
    return best


def test_every_module_has_a_layer() -> None:
    for module in MODULES:
        _layer(module)


def test_no_arrow_points_up_the_layers() -> None:
    upward = [f"{a} ({LAYERS[_layer(a)][0]}) imports {b} ({LAYERS[_layer(b)][0]})"
              for a, targets in GRAPH.items() for b in sorted(targets) if _layer(b) > _layer(a)]
    assert not upward, "\n".join(upward)


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_no_import_cycle() -> None:
    cycles = _cycles(GRAPH)
    assert not cycles, "\n".join(" <-> ".join(c) for c in cycles)


@pytest.mark.parametrize("graph, cycle", [({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}, ["a", "b", "c"]),
                                          ({"a": {"b"}, "b": set()}, None)])
def test_the_cycle_finder_finds_a_cycle_and_only_that(graph: dict[str, set[str]], cycle: list[str] | None) -> None:
    assert _cycles(graph) == ([cycle] if cycle else [])


def test_calibration_is_imported_by_nothing_below_it() -> None:
    below = [a for a, targets in GRAPH.items() if any(t.startswith("hwdse.calibration") for t in targets)
             and not a.startswith(("hwdse.calibration", "hwdse.cli"))]
    assert not below, below
