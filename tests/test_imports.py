"""The package's import graph has no circles, and library code never exits the process."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "snnrun"


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _resolve(module: str, is_package: bool, node: ast.ImportFrom) -> str:
    if not node.level:
        return node.module or ""
    base = module.split(".")
    base = base if is_package else base[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def import_graph() -> dict[str, set[str]]:
    """module -> the snnrun modules it imports (at any depth of the file: lazy imports count too)."""
    files = {_module_name(p): p for p in PACKAGE.rglob("*.py")}
    graph: dict[str, set[str]] = {m: set() for m in files}
    for module, path in files.items():
        for node in ast.walk(ast.parse(path.read_text())):
            targets = []
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = _resolve(module, path.name == "__init__.py", node)
                targets = [f"{base}.{a.name}" for a in node.names] + ([base] if node.module else [])
            for target in targets:
                while target and target not in files:
                    target = target.rpartition(".")[0]
                if target.startswith("snnrun") and target != module and target != "snnrun":
                    graph[module].add(target)
    return graph


def circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan)."""
    index, low, stack, on_stack, out = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph[v]:
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
                out.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def test_the_graph_is_read():
    graph = import_graph()
    assert "snnrun.kernels.lif_scan" in graph["snnrun.neurons.lif"]
    assert "snnrun.registry" in graph["snnrun.neurons.base"]


def test_no_import_circles():
    assert circles(import_graph()) == []


def test_only_the_cli_exits():
    """Library code raises snnrun errors; turning them into exit codes is the CLI's job."""
    offenders = []
    for path in PACKAGE.rglob("*.py"):
        module = _module_name(path)
        if module.startswith("snnrun.cli") or path.name == "__main__.py":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "exit" \
                    and isinstance(node.func.value, ast.Name) and node.func.value.id == "sys":
                offenders.append(f"{module}:{node.lineno}")
    assert offenders == []


#: test files about the package as a whole rather than one module
WHOLE_PACKAGE = {"components_by_name", "config_headers", "docs_catalog", "fuzz_configs", "imports", "readme",
                 "registries", "security", "tutorials"}


def test_tests_mirror_the_package():
    """``tests/test_<module>.py`` tests ``snnrun/<module>.py`` (or a package of that name) and
    ``tests/<package>/`` tests ``snnrun/<package>/``; the whole-package tests are listed above."""
    root = Path(__file__).resolve().parent
    package = root.parent / "snnrun"
    strays = [f.name for f in root.glob("test_*.py") if f.stem[5:] not in WHOLE_PACKAGE
              and not (package / f"{f.stem[5:]}.py").is_file() and not (package / f.stem[5:]).is_dir()]
    strays += [f"{d.name}/" for d in root.iterdir()
               if d.is_dir() and not d.name.startswith((".", "_")) and not (package / d.name / "__init__.py").is_file()]
    assert not strays, f"tests that mirror no module or package of snnrun: {strays}"
