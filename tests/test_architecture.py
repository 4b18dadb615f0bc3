"""The layering of the house, checked from the source with ``ast`` (no import is executed):

- the module import graph of ``pose3d_rt`` (runtime/, engines/, export/) has no cycle, counting lazy imports
  inside functions too;
- ``engines/`` imports nothing from ``runtime/`` or ``export/``;
- ``runtime/`` reaches ``export/`` (torch) in one module only, the model cache of the hub;
- no file in ``runtime/`` is over 500 lines and no function over 60 lines (the argparse builder excepted).
"""
from __future__ import annotations

import ast
from pathlib import Path
from typing import Dict, List, Set

import pytest
from conftest import REPO

ROOTS = {"runtime": "pose3d_rt", "engines": "pose3d_rt.engines", "export": "pose3d_rt.export"}
MAX_FILE_LINES = 500
MAX_FUNCTION_LINES = 60
LONG_FUNCTIONS_ALLOWED = {("pose3d_rt.cli.parser", "build_parser")}  # the argparse builder: a table of flags
EXPORT_GATEWAY = "pose3d_rt.hub.cache"  # the one runtime module that imports the exporter (lazily)


def _module_files() -> Dict[str, Path]:
    out: Dict[str, Path] = {}
    for folder, package in ROOTS.items():
        for path in sorted((REPO / folder).rglob("*.py")):
            rel = path.relative_to(REPO / folder).with_suffix("").parts
            if rel[-1] == "__init__":
                rel = rel[:-1]
            out[".".join((package, *rel))] = path
    return out


MODULES = _module_files()


def _is_package(name: str) -> bool:
    return MODULES[name].name == "__init__.py"


def _target(name: str, node: ast.ImportFrom) -> str:
    if not node.level:
        return node.module or ""
    base = name.split(".") if _is_package(name) else name.split(".")[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def _known(module: str) -> str | None:
    """The longest prefix of ``module`` that is a module of ours."""
    parts = module.split(".")
    while parts:
        cand = ".".join(parts)
        if cand in MODULES:
            return cand
        parts.pop()
    return None


def _imports(name: str) -> Set[str]:
    tree = ast.parse(MODULES[name].read_text(encoding="utf-8"))
    out: Set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = _target(name, node)
            targets = [f"{base}.{a.name}" for a in node.names]  # a name may be a submodule
        else:
            continue
        for t in targets:
            hit = _known(t)
            if hit is not None and hit != name:
                out.add(hit)
    return out


GRAPH = {name: _imports(name) for name in MODULES}


def _cycle(graph: Dict[str, Set[str]]) -> List[str]:
    """One cycle of ``graph`` as a list of modules, or [] (iterative DFS with colours)."""
    colour = dict.fromkeys(graph, 0)
    for start in graph:
        if colour[start]:
            continue
        stack = [(start, iter(sorted(graph[start])))]
        path = [start]
        colour[start] = 1
        while stack:
            node, it = stack[-1]
            nxt = next(it, None)
            if nxt is None:
                colour[node] = 2
                stack.pop()
                path.pop()
            elif colour[nxt] == 1:
                return path[path.index(nxt):] + [nxt]
            elif colour[nxt] == 0:
                colour[nxt] = 1
                stack.append((nxt, iter(sorted(graph[nxt]))))
                path.append(nxt)
    return []


def test_graph_sees_the_layers():
    # guards the test itself: the graph must contain the edges we know exist
    assert "pose3d_rt.engines.base" in GRAPH["pose3d_rt.engines.onnxruntime"]
    assert "pose3d_rt.pipeline" in set().union(*(GRAPH[m] for m in MODULES if m.startswith("pose3d_rt.cli")))
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": set()}) == []


def test_import_graph_is_acyclic():
    cycle = _cycle(GRAPH)
    assert not cycle, "import cycle: " + " -> ".join(cycle)


def test_engines_import_nothing_from_runtime_or_export():
    bad = {m: sorted(t for t in deps if not t.startswith("pose3d_rt.engines"))
           for m, deps in GRAPH.items() if m.startswith("pose3d_rt.engines")}
    assert not {m: d for m, d in bad.items() if d}


def test_runtime_reaches_export_in_one_place():
    runtime = [m for m in MODULES if not m.startswith(("pose3d_rt.engines", "pose3d_rt.export"))]
    users = sorted(m for m in runtime if any(t.startswith("pose3d_rt.export") for t in GRAPH[m]))
    assert users == [EXPORT_GATEWAY] or users == [], users


def _runtime_modules():
    return [m for m in MODULES if not m.startswith(("pose3d_rt.engines", "pose3d_rt.export"))]


@pytest.mark.parametrize("name", _runtime_modules())
def test_runtime_files_and_functions_are_short(name):
    text = MODULES[name].read_text(encoding="utf-8")
    assert len(text.splitlines()) <= MAX_FILE_LINES, f"{MODULES[name]}: {len(text.splitlines())} lines"
    long = [(node.name, node.end_lineno - node.lineno + 1) for node in ast.walk(ast.parse(text))
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
            and node.end_lineno - node.lineno + 1 > MAX_FUNCTION_LINES
            and (name, node.name) not in LONG_FUNCTIONS_ALLOWED]
    assert not long, f"{MODULES[name]}: functions over {MAX_FUNCTION_LINES} lines: {long}"
