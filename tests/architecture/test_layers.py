"""The package's layers: every import (inside functions too) goes down or sideways, never up, and no
modules import each other around a loop. docs/architecture.md draws the same table."""

from __future__ import annotations

import ast
import shutil
from pathlib import Path

from conftest import ROOT

# Lowest first. A module belongs to the longest prefix listed.
LAYERS = {
    "nas.errors": 1, "nas._version": 1, "nas._cache": 1, "nas.processes": 1,
    "nas.config": 2,
    "nas.model": 3, "nas.constraints": 3, "nas.data": 3,
    "nas.train": 4,
    "nas.tracking": 5,
    "nas.search": 6, "nas.study": 6,
    "nas.report": 7, "nas.deploy": 7,
    "nas.cli": 8,
    "nas": 9,  # the facade: nas.load
}


def layer(module: str) -> int:
    parts = module.split(".")
    for n in range(len(parts), 0, -1):
        if ".".join(parts[:n]) in LAYERS:
            return LAYERS[".".join(parts[:n])]
    raise AssertionError(f"{module} is in no layer; add its subpackage to LAYERS and docs/architecture.md")


def modules(package_root: Path) -> dict[str, Path]:
    found = {}
    for path in package_root.rglob("*.py"):
        parts = path.relative_to(package_root.parent).with_suffix("").parts
        found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return found


def imports(package_root: Path) -> dict[str, set[str]]:
    """module -> the nas modules it imports, resolved to the deepest module that exists."""
    mods = modules(package_root)
    graph: dict[str, set[str]] = {m: set() for m in mods}
    for m, path in mods.items():
        package = m if path.name == "__init__.py" else m.rsplit(".", 1)[0]
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    up = package.split(".")[: len(package.split(".")) - node.level + 1]
                    base = ".".join(up + ([base] if base else []))
                targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in mods else base for a in node.names]
            else:
                continue
            for target in targets:
                while target and target not in mods:
                    target = target.rsplit(".", 1)[0] if "." in target else ""
                if target and target != m:
                    graph[m].add(target)
    return graph


def upward(graph: dict[str, set[str]]) -> list[str]:
    return sorted(f"{m} (layer {layer(m)}) imports {t} (layer {layer(t)})"
                  for m, targets in graph.items() for t in targets if layer(t) > layer(m))


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index, low, stack, on, found, counter = {}, {}, [], set(), [], [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in graph:
        if v not in index:
            visit(v)
    return found


def test_no_import_goes_up_a_layer():
    assert upward(imports(ROOT / "nas")) == []


def test_no_import_cycles():
    assert cycles(imports(ROOT / "nas")) == []


def test_a_planted_upward_import_is_caught(tmp_path):
    tree = tmp_path / "nas"
    shutil.copytree(ROOT / "nas", tree, ignore=shutil.ignore_patterns("__pycache__", "*.so"))
    planted = tree / "config" / "_toml.py"
    planted.write_text(planted.read_text() + "\n\ndef _planted():\n    from nas.search import Search\n")
    graph = imports(tree)
    assert upward(graph) == ["nas.config._toml (layer 2) imports nas.search (layer 6)"]


def test_a_planted_cycle_is_caught(tmp_path):
    tree = tmp_path / "nas"
    shutil.copytree(ROOT / "nas", tree, ignore=shutil.ignore_patterns("__pycache__", "*.so"))
    (tree / "config" / "_toml.py").write_text((tree / "config" / "_toml.py").read_text() + "\nimport nas.config._schedule\n")
    (tree / "config" / "_schedule.py").write_text((tree / "config" / "_schedule.py").read_text() + "\nimport nas.config._toml\n")
    assert ["nas.config._schedule", "nas.config._toml"] in cycles(imports(tree))
