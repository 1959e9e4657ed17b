"""BUILD must name every module and test file, and its deps must follow the imports.

Bazel BUILD files are Starlark, whose call syntax Python's `ast` parses, so the check needs no
Bazel. It guards the two ways BUILD drifts: a new file nobody registered, and an import between
packages that BUILD (and DESIGN.md's layering) does not allow.
"""

import ast
import pathlib

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
SOURCE_DIRS = ("sandmle_jax", "sandbox_runner", "launch", "configs")

# Layering from DESIGN.md: a package may import only packages of strictly lower rank.
RANK = {
        "sandmle_jax": -1,  # the root modules (errors, paths, dataclass_keys) import no package
        "sandbox_runner": 0,
        "monitoring": 1,  # the console names sandbox_runner's set-up error
        "tasks": 1,
        "parallel": 1,
        "models": 2,
        "rollout": 3,
        "agent": 4,
        "synth": 5,
        "dojo": 5,  # a second scaffold over the agent package; evaluation drives it
        "eval": 6,
        "rl": 7,
        "configs": 8,
        "launch": 9,
}


def _strings(node):
    """A string, or the string items of a list (`requirement(...)` calls are third-party)."""
    if isinstance(node, ast.Constant):
        return node.value
    return [e.value for e in node.elts if isinstance(e, ast.Constant)]


def _targets():
    tree = ast.parse((ROOT / "BUILD").read_text())
    targets = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
            if node.func.id in ("py_library", "py_binary", "py_test"):
                kwargs = {k.arg: _strings(k.value) for k in node.keywords
                          if k.arg in ("name", "srcs", "deps", "main")}
                kwargs["rule"] = node.func.id
                targets.append(kwargs)
    return targets


def _package_of(path: pathlib.Path) -> str | None:
    """The layering unit a source file belongs to (sandmle_jax/tasks/x.py -> tasks)."""
    parts = path.relative_to(ROOT).parts
    if parts[0] == "sandmle_jax":
        return parts[1] if len(parts) > 2 else "sandmle_jax"
    return parts[0]


def _imported_packages(path: pathlib.Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        names = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module]
        for name in names:
            parts = name.split(".")
            if parts[0] == "sandmle_jax" and len(parts) > 1:
                root_module = (ROOT / "sandmle_jax" / f"{parts[1]}.py").is_file()
                found.add("sandmle_jax" if root_module else parts[1])
            elif parts[0] in ("sandbox_runner", "launch", "configs"):
                found.add(parts[0])
    return found


def _all_sources():
    return sorted(p for d in SOURCE_DIRS for p in (ROOT / d).rglob("*.py")
                                if "__pycache__" not in p.parts)


def test_every_module_is_in_a_target():
    named = {s for t in _targets() for s in t.get("srcs", [])}
    missing = [str(p.relative_to(ROOT)) for p in _all_sources()
               if str(p.relative_to(ROOT)) not in named]
    assert not missing, f"BUILD misses these modules: {missing}"


def test_every_test_file_has_a_py_test():
    tests = {s for t in _targets() if t["rule"] == "py_test" for s in t["srcs"]}
    missing = [str(p.relative_to(ROOT)) for p in sorted((ROOT / "tests").rglob("test_*.py"))
               if str(p.relative_to(ROOT)) not in tests]
    assert not missing, f"BUILD has no py_test for: {missing}"


def test_named_files_exist():
    ghosts = [s for t in _targets() for s in t.get("srcs", []) if not (ROOT / s).is_file()]
    assert not ghosts, f"BUILD names files that do not exist: {ghosts}"


def test_library_deps_cover_imports_and_follow_layering():
    libs = {t["name"]: t for t in _targets() if t["rule"] == "py_library"}
    for name, lib in libs.items():
        deps = {d.lstrip(":") for d in lib.get("deps", []) if d.startswith(":")}
        imported = set()
        for src in lib["srcs"]:
            path = ROOT / src
            pkg = _package_of(path)
            imported |= _imported_packages(path) - {pkg}
        undeclared = imported - deps
        assert not undeclared, f"{name} imports {sorted(undeclared)} without a BUILD dep"
        for dep in deps:
            if dep in RANK and name in RANK:
                assert RANK[dep] < RANK[name], f"{name} may not depend on {dep} (DESIGN.md layering)"


@pytest.mark.parametrize("path", _all_sources(), ids=lambda p: str(p.relative_to(ROOT)))
def test_imports_follow_layering(path):
    pkg = _package_of(path)
    if pkg not in RANK:
        return
    for dep in _imported_packages(path) - {pkg}:
        assert dep in RANK and RANK[dep] < RANK[pkg], (
                f"{path.relative_to(ROOT)} ({pkg}) imports {dep}: against DESIGN.md's layering")


def test_tasks_and_sandbox_do_not_import_jax():
    for d in ("sandmle_jax/tasks", "sandbox_runner"):
        for path in (ROOT / d).rglob("*.py"):
            src = path.read_text()
            assert "import jax" not in src and "from jax" not in src, f"{path} imports JAX"


@pytest.mark.parametrize("path", _all_sources(), ids=lambda p: str(p.relative_to(ROOT)))
def test_imports_are_absolute(path):
    """Relative imports would hide cross-package edges from the layering checks above."""
    relative = [n.lineno for n in ast.walk(ast.parse(path.read_text()))
                if isinstance(n, ast.ImportFrom) and n.level > 0]
    assert not relative, f"{path.relative_to(ROOT)}: relative imports at lines {relative}"


def _module_name(path: pathlib.Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _module_imports(path: pathlib.Path, modules: set[str]) -> set[str]:
    """Our modules `path` imports anywhere in it (function-level imports included)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name in modules}
        elif isinstance(node, ast.ImportFrom) and node.module in modules and node.level == 0:
            for alias in node.names:
                child = f"{node.module}.{alias.name}"
                found.add(child if child in modules else node.module)
    return found - {_module_name(path)}


def test_no_import_circles():
    """Not between modules of one package either (a function-level import hides a circle from
    the interpreter, not from the reader)."""
    sources = {_module_name(p): p for p in _all_sources()}
    graph = {name: _module_imports(path, set(sources)) for name, path in sources.items()}
    state: dict[str, str] = {}

    def visit(name: str, trail: list[str]) -> None:
        state[name] = "open"
        for dep in sorted(graph[name]):
            if state.get(dep) == "open":
                circle = trail[trail.index(dep):] + [dep]
                raise AssertionError(f"import circle: {' -> '.join(circle)}")
            if dep not in state:
                visit(dep, trail + [dep])
        state[name] = "done"

    for name in sorted(graph):
        if name not in state:
            visit(name, [name])
