"""coach/ is layered by audience, and the folder tree is the architecture: each package may
import only the packages below it (see each package's docstring), and no module imports
itself back through a chain of others, lazy imports included."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
COACH = ROOT / "coach"
# package -> the coach packages it may import (besides itself). The top-level modules (cli,
# __main__) dispatch to every package and are imported by none.
MAY_IMPORT = {
    "core": set(),
    "runtime": {"core"},
    "learner": {"core", "runtime"},
    "notebook": {"core", "runtime", "learner"},
    "grading": {"core", "runtime", "notebook"},  # the student repository's notebooks
    "authoring": {"core", "runtime", "learner", "grading", "notebook"},
}


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p): p for p in COACH.rglob("*.py")}


def imports_of(name: str) -> set[str]:
    """The coach modules `name` imports anywhere in its body (so lazy imports count)."""
    path = MODULES[name]
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            candidates = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            candidates = [base, *(f"{base}.{alias.name}" for alias in node.names)]
        else:
            continue
        for candidate in candidates:
            known = candidate
            while known and known not in MODULES:
                known = known.rpartition(".")[0]
            if known not in ("", "coach", name) and not known.startswith(name + "."):
                found.add(known)
    return found


GRAPH = {name: imports_of(name) for name in MODULES}


def test_no_import_cycle_inside_coach():
    def cycle_from(start: str) -> list[str] | None:
        stack = [(start, [start])]
        seen = set()
        while stack:
            node, path = stack.pop()
            for dep in GRAPH[node]:
                if dep == start:
                    return [*path, dep]
                if dep not in seen:
                    seen.add(dep)
                    stack.append((dep, [*path, dep]))
        return None

    cycles = [" -> ".join(c) for name in sorted(GRAPH) if (c := cycle_from(name))]
    assert not cycles, (
        "import cycles in coach/ (a lower layer imports a higher one):\n" + "\n".join(cycles[:5])
    )


def test_each_package_imports_only_the_layers_below_it():
    wrong = []
    for name, deps in sorted(GRAPH.items()):
        parts = name.split(".")
        if len(parts) < 3:  # coach, coach.cli, coach.__main__, a package's own __init__
            continue
        package = parts[1]
        for dep in sorted(deps):
            other = dep.split(".")[1] if dep.count(".") >= 1 else ""
            if other in MAY_IMPORT and other != package and other not in MAY_IMPORT[package]:
                wrong.append(
                    f"{name} imports {dep}: {package} may import only {MAY_IMPORT[package]}"
                )
    assert not wrong, "\n".join(wrong)


def test_every_module_lives_in_a_package_of_one_audience():
    top = sorted(p.name for p in COACH.glob("*.py"))
    assert top == ["__init__.py", "__main__.py", "cli.py"], top
    packages = {p.parent.name for p in COACH.glob("*/__init__.py")}
    assert packages == set(MAY_IMPORT) - ({"notebook"} - packages), packages
    for package in packages:
        doc = ast.get_docstring(ast.parse((COACH / package / "__init__.py").read_text()))
        assert doc and "import" in doc, f"coach/{package}/__init__.py must say what it may import"
