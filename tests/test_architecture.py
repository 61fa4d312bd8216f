"""The import graph reads like the architecture, and stays that way.

Over every module of ``gid_engine``, ``exporters``, ``addon`` and ``gid_tools`` (imports inside functions count:
a lazy import is still a dependency):

* no import cycles;
* one direction: ``exporters`` is a leaf (it imports neither the engine nor the add-on), the
  engine never imports the add-on (only the add-on imports bpy), and nothing that ships imports
  the tooling (``gid_tools`` builds on the rest and stays out of the extension);
* no reaching into another module's private names: neither ``from m import _name`` nor
  ``m._name`` on an imported module;
* what ships (``gid_engine``, ``exporters``, ``addon``) imports no development dependency (torch,
  diffusers, accelerate, safetensors, onnx), not even lazily, and every one of its modules imports
  in a Python where torch cannot be imported.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PACKAGES = ("gid_engine", "exporters", "addon", "gid_tools")


def _modules() -> dict[str, Path]:
    mods: dict[str, Path] = {}
    for package in PACKAGES:
        for path in sorted((REPO / package).rglob("*.py")):
            parts = list(path.relative_to(REPO).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts = parts[:-1]
            mods[".".join(parts)] = path
    return mods


MODULES = _modules()


def _target(module: str, node: ast.ImportFrom) -> list[str]:
    if node.level:
        base = module.split(".")
        anchor = base if MODULES[module].name == "__init__.py" else base[:-1]
        anchor = anchor[: len(anchor) - (node.level - 1)]
        return anchor + (node.module.split(".") if node.module else [])
    parts = (node.module or "").split(".")
    return parts[1:] if parts[0] == "gid" else parts


def _graph() -> tuple[dict[str, set[str]], list[str]]:
    """Edges between modules, and the private reach-ins found on the way."""
    edges: dict[str, set[str]] = {m: set() for m in MODULES}
    reach_ins: list[str] = []
    for module, path in MODULES.items():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        aliases: dict[str, str] = {}  # local name -> gid module it is bound to
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom):
                target = ".".join(_target(module, node))
                for alias in node.names:
                    whole = f"{target}.{alias.name}"
                    if whole in MODULES:
                        edges[module].add(whole)
                        aliases[alias.asname or alias.name] = whole
                    elif target in MODULES:
                        edges[module].add(target)
                        if alias.name.startswith("_") and not alias.name.startswith("__"):
                            reach_ins.append(f"{module}: from {target} import {alias.name}")
            elif isinstance(node, ast.Import):
                for alias in node.names:
                    name = alias.name[4:] if alias.name.startswith("gid.") else alias.name
                    if name in MODULES:
                        edges[module].add(name)
                        if alias.asname:
                            aliases[alias.asname] = name
        for node in ast.walk(tree):
            if (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id in aliases
                    and node.attr.startswith("_") and not node.attr.startswith("__")
                    and aliases[node.value.id] != module):
                reach_ins.append(f"{module}: {aliases[node.value.id]}.{node.attr}")
    for module in edges:
        edges[module].discard(module)
    return edges, reach_ins


EDGES, REACH_INS = _graph()


def _cycles(edges: dict[str, set[str]]) -> list[list[str]]:
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
        for w in sorted(edges[v]):
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

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return found


def test_the_graph_covers_the_packages():
    assert len(MODULES) > 60 and "gid_engine.cli" in MODULES and "addon.ops" in MODULES
    assert "gid_engine.rendering.render" in EDGES["gid_engine.engine"]  # imports are followed


def test_no_import_cycles():
    assert _cycles(EDGES) == []


def test_the_checker_finds_a_cycle():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


@pytest.mark.parametrize("lower, upper", [("exporters", "gid_engine"), ("exporters", "addon"),
                                          ("gid_engine", "addon"), ("exporters", "gid_tools"),
                                          ("gid_engine", "gid_tools"), ("addon", "gid_tools")])
def test_dependencies_point_one_way(lower, upper):
    wrong = sorted(f"{m} -> {t}" for m, ts in EDGES.items() if m.startswith(lower + ".") or m == lower
                   for t in ts if t == upper or t.startswith(upper + "."))
    assert wrong == []


def test_no_private_reach_ins():
    assert REACH_INS == []


SHIPPED = ("gid_engine", "exporters", "addon")
DEVELOPMENT_ONLY = ("torch", "diffusers", "accelerate", "safetensors", "onnx", "efficientnet_lite_pytorch")


def _third_party_imports(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and not node.level and node.module:
            found.add(node.module.split(".")[0])
    return found


def test_what_ships_imports_no_development_dependency():
    wrong = sorted(f"{m} imports {name}" for m, path in MODULES.items() if m.split(".")[0] in SHIPPED
                   for name in _third_party_imports(path) if name in DEVELOPMENT_ONLY)
    assert wrong == []


def test_every_runtime_module_imports_without_torch():
    """Each module of gid_engine and exporters imports in a Python where torch and its kin are
    blocked (as in Blender); the add-on needs bpy and is installed and run in the Blender legs."""
    names = sorted(m for m in MODULES if m.split(".")[0] in ("gid_engine", "exporters"))
    code = ("import sys\n"
            f"for name in {DEVELOPMENT_ONLY!r}: sys.modules[name] = None\n"
            "import importlib\n"
            f"for m in {names!r}: importlib.import_module('gid.' + m)\n"
            "print('imported', len(sys.modules))\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert len(names) > 30
