"""The package's import structure: no import cycle (module-level or inside functions) except the registries'
``load_all``, and the result types at the bottom."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "invsolve"


def _modules() -> dict[str, Path]:
    out = {}
    for p in PACKAGE.rglob("*.py"):
        parts = p.relative_to(PACKAGE.parent).with_suffix("").parts
        out[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = p
    return out


def _targets(module: str, path: Path, node: ast.AST, modules: dict[str, Path]) -> list[str]:
    """The invsolve modules an import statement names (a ``from X import name`` counts X and X.name)."""
    if isinstance(node, ast.Import):
        names = [a.name for a in node.names]
    else:
        base = node.module or ""
        if node.level:
            pkg = module.split(".") if path.name == "__init__.py" else module.split(".")[:-1]
            pkg = pkg[: len(pkg) - node.level + 1]
            base = ".".join(pkg + ([base] if base else []))
        names = [base] + [f"{base}.{a.name}" for a in node.names]
    return [n for n in names if n in modules and n != module]


def import_graph() -> dict[str, set[str]]:
    """Module -> the invsolve modules it imports anywhere in its text, except inside ``load_all`` (the
    registries' one sanctioned way of importing every entry of a package)."""
    modules = _modules()
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        skip = {id(n) for f in ast.walk(tree) if isinstance(f, ast.FunctionDef) and f.name == "load_all"
                for n in ast.walk(f)}
        graph[name] = {t for n in ast.walk(tree) if isinstance(n, (ast.Import, ast.ImportFrom)) and id(n) not in skip
                       for t in _targets(name, path, n, modules)}
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan's algorithm, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    out: list[list[str]] = []
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on.add(root)
        while work:
            v, it = work[-1]
            w = next(it, None)
            if w is not None:
                if w not in index:
                    index[w] = low[w] = len(index)
                    stack.append(w)
                    on.add(w)
                    work.append((w, iter(sorted(graph[w]))))
                elif w in on:
                    low[v] = min(low[v], index[w])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[v])
            if low[v] == index[v]:
                comp = []
                while True:
                    w = stack.pop()
                    on.discard(w)
                    comp.append(w)
                    if w == v:
                        break
                if len(comp) > 1:
                    out.append(sorted(comp))
    return out


def test_the_cycle_finder_finds_a_planted_cycle():
    g = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}, "e": set()}
    assert cycles(g) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_no_import_cycle_in_the_package():
    graph = import_graph()
    assert len(graph) > 100 and "invsolve.results.types" in graph
    found = cycles(graph)
    assert not found, "import cycles (break them by moving the shared piece down): " + "; ".join(
        " -> ".join(c) for c in found)


UPPER = ("invsolve.api", "invsolve.cli")


def test_the_result_types_sit_at_the_bottom():
    # results imports no API, CLI, method, prior or sampler module, anywhere in its text
    graph = import_graph()
    upper = UPPER + ("invsolve.methods", "invsolve.priors", "invsolve.samplers", "invsolve.diffusion", "invsolve.em")
    for name in [m for m in graph if m.startswith("invsolve.results")]:
        bad = [t for t in graph[name] if t.startswith(upper)]
        assert not bad, f"{name} imports {bad}"


@pytest.mark.parametrize("module", ["invsolve.results", "invsolve.operators", "invsolve.methods", "invsolve.priors",
                                    "invsolve.samplers", "invsolve.sources.measured", "invsolve.io.images",
                                    "invsolve.calibration.record", "invsolve.diffusion.samplers"])
def test_a_lower_module_alone_pulls_in_no_api_or_cli(module):
    code = (f"import sys, {module}\n"
            f"print(sorted(m for m in sys.modules if m.startswith({UPPER!r})))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]", f"importing {module} alone loads {out.strip()}"


def test_every_import_inside_the_package_resolves():
    # lazy imports (inside functions) fail only when they run: check each names a module or a module's attribute
    import importlib

    modules = _modules()
    bad = []
    for name, path in modules.items():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not isinstance(node, ast.ImportFrom) or not (node.level or (node.module or "").startswith("invsolve")):
                continue
            pkg = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
            base = ".".join(pkg[: len(pkg) - node.level + 1] + ([node.module] if node.module else [])) \
                if node.level else node.module
            if base not in modules:
                bad.append(f"{name}: from {'.' * node.level}{node.module or ''} (no module {base})")
                continue
            mod = importlib.import_module(base)
            bad += [f"{name}: {base} has no {a.name}" for a in node.names
                    if not hasattr(mod, a.name) and f"{base}.{a.name}" not in modules]
    assert not bad, "; ".join(bad)
