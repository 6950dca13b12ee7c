"""The package structure the README promises, checked from the source (no imports run):
no import cycles among core/search/results/spaces, core/ free of ray and wandb, and Ray's private API used
only in search/ray_internals.py."""
from __future__ import annotations

import ast
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PACKAGES = ("core", "search", "results", "spaces", "cluster")
RAY_ADAPTER = "search.ray_internals"


def modules() -> dict[str, Path]:
    out = {}
    for package in PACKAGES:
        for path in (REPO / package).rglob("*.py"):
            parts = path.relative_to(REPO).with_suffix("").parts
            out[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return out


def imported_names(module: str, path: Path, known: dict[str, Path]) -> list[tuple[str, int]]:
    """(imported module or module.name, line) for every import in the file, relative ones resolved."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found += [(alias.name, node.lineno) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1])
                target = f"{base}.{node.module}" if node.module else base
            else:
                target = node.module or ""
            # ours: `from pkg import sub` imports the submodule, `from pkg import Name` imports pkg;
            # another package's: keep the name (ray.air.integrations.wandb._WandbLoggingActor is private)
            ours = target.split(".")[0] in PACKAGES
            found += [(f"{target}.{alias.name}" if f"{target}.{alias.name}" in known or not ours else target,
                       node.lineno) for alias in node.names]
    return found


def import_graph() -> dict[str, set[str]]:
    known = modules()
    return {m: {name for name, _ in imported_names(m, p, known) if name in known and name != m}
            for m, p in known.items()}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_the_cycle_finder_finds_a_cycle():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_no_import_cycles():
    assert cycles(import_graph()) == []


def test_core_never_imports_ray_or_wandb():
    known = modules()
    bad = [f"{path.relative_to(REPO)}:{line} imports {name}" for m, path in known.items() if m.startswith("core")
           for name, line in imported_names(m, path, known) if name.split(".")[0] in ("ray", "wandb")]
    assert bad == []


def test_the_private_api_finder_sees_the_adapters_own_uses():
    known = modules()
    names = [name for name, _ in imported_names(RAY_ADAPTER, known[RAY_ADAPTER], known)]
    assert "ray.autoscaler._private.util.prepare_config" in names
    assert any("._private." in name for name in names)


def test_rays_private_api_is_used_only_in_the_adapter():
    known = modules()
    entry_points = {p.stem: p for p in REPO.glob("run_*.py")}
    private = []
    for m, path in [*known.items(), *entry_points.items()]:
        if m == RAY_ADAPTER:
            continue
        for name, line in imported_names(m, path, known):
            if name.split(".")[0] == "ray" and any(part.startswith("_") for part in name.split(".")):
                private.append(f"{path.relative_to(REPO)}:{line} imports {name}")
    assert private == [], "move these into search/ray_internals.py"
