"""The import rules of gan_core and search, checked by walking every import statement (ast, so
imports inside functions count too): Ray only behind its one door (search/raytune/), and no
circle in the import graph.

The graph's edges are the imports that run: module-level ones and those inside functions, not
those under ``if TYPE_CHECKING:``. ``from package import name`` is an edge to ``package.name`` when that is a
module, else to the package. The parent packages Python imports first are not edges (a
package's ``__init__`` re-exporting its modules would otherwise be a circle with each).
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PACKAGES = ("gan_core", "search")
RAY_DOOR = "search.raytune"


@dataclass(frozen=True)
class Import:
    """One name an import statement imports: ``import target`` or ``from base import name``."""

    module: str  # the importing module
    base: str  # `import base` / `from base import name`
    name: str | None  # None for `import base`
    line: int
    runtime: bool  # False under `if TYPE_CHECKING:`

    @property
    def target(self) -> str:
        """The dotted name imported (a module, or a name inside one)."""
        return self.base if self.name is None else f"{self.base}.{self.name}"


def module_name(path: Path) -> str:
    parts = path.relative_to(REPO).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def project_modules() -> dict[str, Path]:
    return {module_name(p): p for pkg in PACKAGES for p in sorted((REPO / pkg).rglob("*.py"))}


def _type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or \
           (isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def imports_of(module: str, path: Path) -> list[Import]:
    """Every import statement in the file, wherever it is (functions too)."""
    out: list[Import] = []
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]

    def visit(node: ast.AST, runtime: bool) -> None:
        if isinstance(node, ast.If) and _type_checking(node.test):
            for child in node.body:
                visit(child, False)
            for child in node.orelse:
                visit(child, runtime)
            return
        if isinstance(node, ast.Import):
            out.extend(Import(module, alias.name, None, node.lineno, runtime) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: from its package
                anchor = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                base = f"{anchor}.{base}" if base else anchor
            out.extend(Import(module, base, alias.name, node.lineno, runtime) for alias in node.names)
        for child in ast.iter_child_nodes(node):
            visit(child, runtime)

    visit(ast.parse(path.read_text(), str(path)), True)
    return out


def all_imports() -> list[Import]:
    return [i for module, path in project_modules().items() for i in imports_of(module, path)]


def import_graph() -> dict[str, set[str]]:
    """module -> the project modules it imports when it runs."""
    modules = project_modules()
    graph: dict[str, set[str]] = {m: set() for m in modules}
    for i in all_imports():
        if not i.runtime:
            continue
        target = i.target if i.target in modules else i.base  # `from pkg import module`: the module
        if target in modules and target != i.module:
            graph[i.module].add(target)
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def connect(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                connect(w)
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
            connect(v)
    return found


def test_only_search_raytune_imports_ray():
    """Ray is imported in search/raytune/ and nowhere else in gan_core or search: not lazily inside
    a function, not for type checking."""
    outside = [f"{i.module}:{i.line} imports {i.target}" for i in all_imports()
               if (i.base == "ray" or i.base.startswith("ray."))
               and not (i.module == RAY_DOOR or i.module.startswith(RAY_DOOR + "."))]
    assert outside == []
    inside = {i.module for i in all_imports() if i.base == "ray" or i.base.startswith("ray.")}
    assert {"search.raytune.tune", "search.raytune.cluster", "search.raytune.searcher"} <= inside  # the walk sees them


def test_the_ray_door_loads_no_ray_when_imported():
    """search/raytune/__init__.py is imported for its constants (the supported range) and by
    ``--help`` paths: it imports Ray only inside check_ray_version."""
    top = [i for i in imports_of(RAY_DOOR, REPO / "search" / "raytune" / "__init__.py")
           if i.base == "ray" or i.base.startswith("ray.")]
    tree = ast.parse((REPO / "search" / "raytune" / "__init__.py").read_text())
    module_level = {n.lineno for n in tree.body if isinstance(n, (ast.Import, ast.ImportFrom))}
    assert top and not any(i.line in module_level for i in top)


def test_the_metrics_package_names_its_metrics_without_torch():
    """gan_core.metrics imports lazily: the registry's names (a space's check, review's columns)
    load no torch, and every public name still resolves, to the object its module defines."""
    import subprocess
    import sys

    code = ("import sys\nfrom gan_core.metrics import metric_names, protocol_name\n"
            "print(protocol_name(metric_names()[0], 2000), 'torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=120)
    assert out.returncode == 0 and out.stdout.split() == ["cfd_2k", "False"], out.stderr[-2000:]

    import importlib

    import gan_core.metrics as metrics

    for name in metrics.__all__:
        module = importlib.import_module(metrics._WHERE[name])
        assert getattr(metrics, name) is getattr(module, name), name
    assert set(metrics._WHERE) == set(metrics.__all__)


def test_private_ray_apis_only_behind_the_door_and_all_listed():
    """Every ``ray._private`` / ``ray._raylet`` / ``ray.tune.experimental`` / ``ray.air`` import is
    in search/raytune/ and named in its docstring's list."""
    doc = ast.get_docstring(ast.parse((REPO / "search" / "raytune" / "__init__.py").read_text())) or ""
    private = ("ray._private", "ray._raylet", "ray.tune.experimental", "ray.air")
    found = [i for i in all_imports() if i.target.startswith(private)]
    found += [i for i in all_imports() if i.name is not None and i.name.startswith("_") and i.base.startswith("ray")]
    assert found and all(i.module.startswith(RAY_DOOR) for i in found)
    for i in found:
        assert i.target.rsplit(".", 1)[-1] in doc, f"{i.module}:{i.line}: {i.target} is not listed in the docstring"


def test_the_import_graph_has_no_circle():
    found = cycles(import_graph())
    assert found == [], "import circles: " + "; ".join(" <-> ".join(c) for c in found)


def test_the_walk_finds_circles_and_lazy_imports(tmp_path):
    """The checker itself: a circle through a function-level import is one; a TYPE_CHECKING one
    is not."""
    a = tmp_path / "a.py"
    a.write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import b\n\ndef f():\n    import c\n")
    found = imports_of("a", a)
    assert [(i.target, i.runtime) for i in found] == [("typing.TYPE_CHECKING", True), ("b", False), ("c", True)]
    assert cycles({"a": {"c"}, "b": {"a"}, "c": {"a"}}) == [["a", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_no_private_name_crosses_a_module():
    """A name with a leading underscore is its module's own: no other module of gan_core or
    search imports it (make it public where another module needs it)."""
    modules = project_modules()
    crossing = [f"{i.module}:{i.line} imports {i.target}" for i in all_imports()
                if i.name is not None and i.name.startswith("_") and not i.name.startswith("__")
                and i.base in modules and i.base != i.module]
    assert crossing == []


def test_the_readme_tree_names_every_search_module():
    """README.md's "How it fits together" tree names every module of search/ (a command module
    by its command's name), so that the map stays true as modules come and go."""
    readme = (REPO / "README.md").read_text()
    tree = readme.split("## How it fits together", 1)[1].split("```")[1]
    listed = tree.split("\nsearch/", 1)[1].split("\nspaces/", 1)[0]
    missing = []
    for path in sorted((REPO / "search").rglob("*.py")):
        rel = path.relative_to(REPO / "search")
        name = rel.stem if rel.parent.name == "commands" and rel.stem != "_common" else rel.name
        if rel.name != "__init__.py" and name not in listed:
            missing.append(str(rel))
    assert missing == []
