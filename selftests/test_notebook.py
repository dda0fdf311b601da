"""Notebook mode (coach/notebook/): `%%kata` and its line magics in a real Jupyter kernel.

One kernel of this Python (nbclient, with a kernel spec whose argv is sys.executable, as
nbval's --nbval-current-env does) runs in a scratch copy of the course, so `%kata_save` and
the learner's state never touch this checkout. The cells run in order, as a learner would
run them: a built notebook as shipped, then the reference swapped in, then code that loops,
does not parse, or smuggles HTML. Then every generated notebook runs, as shipped (every kata
red, no error output) and with its reference in the `%%kata` cell (every kata green).

The notebook tools come from requirements/notebook.txt, installed on demand like `make
plots`' matplotlib, so `make check` needs nothing installed by hand.
"""

from __future__ import annotations

import ast
import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from coach.core import registry
from coach.grading import student_repo
from coach.notebook import cell, generate, render, setup

ROOT = Path(__file__).resolve().parent.parent
COPIED = ("coach", "katas", "tests", "lessons", "solutions", "requirements", "notebooks")
FILES = ("conftest.py", "pyproject.toml", "README.md")
FIRST = registry.KATAS[0]
KERNEL_TOOLS = ("nbformat", "nbclient", "ipykernel")
LOOP_LIMIT = 3  # seconds per test for the looping cells (PYTEST_ADDOPTS): 10 s is for learners


@pytest.fixture(scope="module")
def tools():
    """nbformat, nbclient and ipykernel: installed with requirements/notebook.txt if missing
    (a Python that already has them, such as a scratch venv with Colab's IPython 7.34 and
    ipykernel, is used as it is)."""
    if all(importlib.util.find_spec(name) for name in KERNEL_TOOLS):
        return
    if not setup.ensure("the notebook selftests"):
        pytest.fail("requirements/notebook.txt could not be installed (pip said why above)")


@pytest.fixture(scope="module")
def course(tools, tmp_path_factory) -> Path:
    """A scratch copy of the course: the kernel's katas/ and .coach/ are its own."""
    root = tmp_path_factory.mktemp("course")
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    for name in COPIED:
        shutil.copytree(ROOT / name, root / name, ignore=ignore)
    for name in FILES:
        shutil.copyfile(ROOT / name, root / name)
    return root


class Kernel:
    """One live kernel; `run(source)` executes a cell in it and returns the cell."""

    def __init__(self, client):
        self.client = client

    def run(self, source: str, timeout: int = 300):
        import nbformat

        cell = nbformat.v4.new_code_cell(source)
        self.client.nb.cells.append(cell)
        self.client.timeout = timeout
        self.client.execute_cell(cell, len(self.client.nb.cells) - 1)
        return cell


def text_of(cell, mime: str = "text/plain") -> str:
    parts = []
    for output in cell.outputs:
        if output.output_type == "stream":
            parts.append(output.text)
        elif output.output_type in {"display_data", "execute_result"}:
            parts.append(output.data.get(mime, ""))
        elif output.output_type == "error":
            parts.append(f"ERROR {output.ename}: {output.evalue}")
    return "\n".join(parts)


def errors(cell) -> list[str]:
    return [f"{o.ename}: {o.evalue}" for o in cell.outputs if o.output_type == "error"]


@pytest.fixture(scope="module")
def specs(tmp_path_factory) -> Path:
    """A kernel spec that starts this very Python (nbval's --nbval-current-env does the same)."""
    folder = tmp_path_factory.mktemp("kernels")
    (folder / "current").mkdir()
    argv = [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"]
    spec = {"argv": argv, "display_name": "this Python", "language": "python"}
    (folder / "current" / "kernel.json").write_text(json.dumps(spec))
    return folder


def client_for(specs: Path):
    import nbformat
    from jupyter_client.kernelspec import KernelSpecManager
    from jupyter_client.manager import AsyncKernelManager
    from nbclient import NotebookClient

    manager = AsyncKernelManager(
        kernel_name="current", kernel_spec_manager=KernelSpecManager(kernel_dirs=[str(specs)])
    )
    return NotebookClient(nbformat.v4.new_notebook(), km=manager, timeout=300, allow_errors=True)


def kernel_env(course: Path, state: str = ".coach") -> dict[str, str]:
    """Kernels side by side get a state folder each: the state file is one writer's."""
    env = {k: v for k, v in os.environ.items() if k not in {"KATAS_IMPL", "PYTEST_ADDOPTS"}}
    env.update(COACH_STATE_DIR=str(course / state), PYTHONPATH=str(course))
    return env


@pytest.fixture(scope="module")
def kernel(course, specs):
    """One kernel for the checks of a single notebook, started in the scratch notebooks/."""
    client = client_for(specs)
    with client.setup_kernel(env=kernel_env(course), cwd=str(course / "notebooks")):
        kernel = Kernel(client)
        kernel.run(shipped_cells(FIRST, course)[0])  # the set-up cell, whichever test is first
        yield kernel


def shipped_cells(kata: registry.Kata, course: Path) -> list[str]:
    import nbformat

    notebook = nbformat.read(course / "notebooks" / f"{kata.name}.ipynb", as_version=4)
    return [cell.source for cell in notebook.cells if cell.cell_type == "code"]


def reference(kata: registry.Kata) -> str:
    return (ROOT / "solutions" / f"{kata.name}.py").read_text(encoding="utf-8")


def kata_cell(kata: registry.Kata, body: str, options: str = "") -> str:
    return f"%%kata {kata.number}{options}\n{body}"


def test_the_committed_notebooks_and_readme_list_are_up_to_date(tools):
    assert generate.stale() == [], f"run {generate.REGENERATE}"


def test_a_built_notebook_in_a_live_kernel(kernel, course):
    """The shipped notebook of kata 1, then the checks of issue 21 one cell at a time."""
    cells = shipped_cells(FIRST, course)
    ran = [kernel.run(source) for source in cells]
    assert [e for cell in ran for e in errors(cell)] == []
    stub_run = next(cell for cell, source in zip(ran, cells) if source.startswith("%%kata"))
    assert f"Kata 1 ({FIRST.name})" in text_of(stub_run)
    assert ": red, 0 of" in text_of(stub_run)
    assert "not written yet (your kata cell, line" in text_of(stub_run)
    names = text_of(kernel.run("print('polynomial' in globals())")).strip()
    assert names == "True"  # the stub imports cleanly, so the kernel now has its functions

    # The kernel's RNG and grad mode, before a %%kata run and after it.
    kernel.run("import random, torch\ntorch.manual_seed(0); random.seed(0)")
    green = kernel.run(kata_cell(FIRST, reference(FIRST)))
    assert "green, all" in text_of(green), text_of(green)
    draws = kernel.run(
        "a, b = torch.rand(1).item(), random.random()\n"
        "torch.manual_seed(0); random.seed(0)\n"
        "print(a == torch.rand(1).item(), b == random.random(), torch.is_grad_enabled())"
    )
    assert text_of(draws).split() == ["True", "True", "True"]
    calls = kernel.run("print(value_and_grad(3.0))")  # the green body now lives in the kernel
    assert text_of(calls).strip() == "(31.0, 34.0)"

    # %kata_save, then the grader sees full points for that kata.
    saved = kernel.run(f"%kata_save {FIRST.number}")
    assert f"Saved your kata 1 cell to {FIRST.stub_file}" in text_of(saved)
    out = course / "graded"
    env = {k: v for k, v in os.environ.items() if k not in {"KATAS_IMPL", "PYTEST_ADDOPTS"}}
    env.update(COACH_NO_VENV="1", COACH_STATE_DIR=str(course / ".coach"))
    graded = subprocess.run(
        [sys.executable, "-m", "coach", "grade", f"--kata={FIRST.name}", "--out", str(out)],
        cwd=course, env=env, capture_output=True, text=True, check=False, timeout=300,
    )  # fmt: skip
    assert (out / "grade.json").is_file(), graded.stdout + graded.stderr
    grade = json.loads((out / "grade.json").read_text())
    points = {k["name"]: (k["points"], k["max_points"]) for k in grade["katas"]}
    assert points[FIRST.name][0] == points[FIRST.name][1] > 0, grade

    # The same seed twice: the same report, word for word.
    first, second = (
        kernel.run(kata_cell(FIRST, (ROOT / FIRST.stub_file).read_text(), " --seed 5"))
        for _ in range(2)
    )
    assert text_of(first) == text_of(second)
    assert "seed 5" in text_of(first)

    # A prediction comes as an argument; "?" (as shipped) reveals nothing.
    question = FIRST.lesson.quiz.questions[0]
    unanswered = text_of(kernel.run(f"%kata_predict {FIRST.number} {question.id} ?"))
    assert "Replace the ? with your prediction" in unanswered and "torch says" not in unanswered
    judged = text_of(kernel.run(f"%kata_predict {FIRST.number} {question.id} None"))
    assert "torch says: None" in judged and "Right." in judged, judged
    kept = json.loads((course / ".coach" / "state.json").read_text())["predictions"]
    assert kept[FIRST.name][question.id] == {"first_answer_right": True}

    # A syntax error names the cell's line (the magic is line 1, the `def` line 3).
    broken = kernel.run(kata_cell(FIRST, "import torch\ndef polynomial(x:\n    return x\n"))
    assert "your kata cell, line 3" in text_of(broken), text_of(broken)
    assert "Python cannot read this file" in text_of(broken)

    # Learner text that looks like HTML is shown as text, never run.
    script = '<script>alert("hi")</script>'
    sneaky = kernel.run(kata_cell(FIRST, f"def polynomial(x):\n    raise ValueError('{script}')\n"))
    page = text_of(sneaky, "text/html")
    assert "&lt;script&gt;" in page and "<script" not in page.lower()


def test_endless_loops_are_stopped_and_the_kernel_survives(kernel, course):
    kernel.run(f"import os; os.environ['PYTEST_ADDOPTS'] = '-o timeout={LOOP_LIMIT}'")
    try:
        looping = reference(FIRST).replace(
            "def polynomial(x: Tensor) -> Tensor:\n",
            "def polynomial(x: Tensor) -> Tensor:\n    while True:\n        pass\n",
        )
        in_function = kernel.run(kata_cell(FIRST, looping))
        assert "Your code was still running after" in text_of(in_function), text_of(in_function)
        line = looping.splitlines().index("    while True:") + 2  # the magic line is line 1
        assert f"your kata cell, line {line}: while True:" in text_of(in_function)
        assert text_of(kernel.run("print('still here')")).strip() == "still here"

        top_level = kernel.run(kata_cell(FIRST, "import torch\nwhile True:\n    pass\n"))
        assert "never finished" in text_of(top_level), text_of(top_level)
        # The limit strikes on `while True:` (line 3; the magic is line 1) or on `pass` (4).
        assert re.search(r"at your kata cell, line [34] \((while True:|pass)\)", text_of(top_level))
        assert text_of(kernel.run("print('still here')")).strip() == "still here"
    finally:
        kernel.run("os.environ.pop('PYTEST_ADDOPTS', None)")


async def run_notebooks(katas, course: Path, specs: Path, state: str) -> list[str]:
    """Each kata's notebook as shipped, then its `%%kata` cell with the reference, in one
    kernel; returns what went wrong."""
    import nbformat

    client = client_for(specs)
    problems = []

    async def run(source: str):
        cell = nbformat.v4.new_code_cell(source)
        client.nb.cells.append(cell)
        await client.async_execute_cell(cell, len(client.nb.cells) - 1)
        return cell

    env = kernel_env(course, state)
    async with client.async_setup_kernel(env=env, cwd=str(course / "notebooks")):
        for kata in katas:
            sources = shipped_cells(kata, course)
            ran = [await run(source) for source in sources]
            problems += [f"{kata.name}: {e}" for cell in ran for e in errors(cell)]
            shipped = text_of(next(c for c, s in zip(ran, sources) if s.startswith("%%kata")))
            if f"Kata {kata.number} ({kata.name})" not in shipped or ": red, " not in shipped:
                problems.append(f"{kata.name} as shipped is not red:\n{shipped}")
            swapped = text_of(await run(kata_cell(kata, reference(kata))))
            if ": green, all " not in swapped:
                problems.append(f"{kata.name} with the reference is not green:\n{swapped}")
    return problems


@pytest.mark.timeout(900)
def test_every_notebook_is_red_as_shipped_and_green_with_the_reference(course, specs):
    """Two kernels side by side, each with half the notebooks: the child runs dominate."""
    import asyncio

    halves = [registry.KATAS[0::2], registry.KATAS[1::2]]

    async def both():
        return await asyncio.gather(
            *(run_notebooks(half, course, specs, f".coach-{n}") for n, half in enumerate(halves))
        )

    started = time.monotonic()
    problems = [problem for found in asyncio.run(both()) for problem in found]
    print(
        f"{len(registry.KATAS)} notebooks, shipped and swapped: {time.monotonic() - started:.1f} s"
    )
    assert problems == []


# --- a child run without a kernel -----------------------------------------------------------


@pytest.mark.skipif(not hasattr(os, "fork"), reason="the warm helper forks")
def test_the_warm_helper_and_a_fresh_python_give_the_same_report(monkeypatch, tmp_path):
    monkeypatch.setenv("COACH_STATE_DIR", str(tmp_path))
    monkeypatch.setattr(cell, "_helper", None)
    stub = (ROOT / FIRST.stub_file).read_text()
    fresh = cell.run_cell(FIRST, stub, seed=5)
    cell.start_helper()
    try:
        assert cell._helper is not None and cell._helper.alive()
        forked = cell.run_cell(FIRST, stub, seed=5)
    finally:
        cell._helper.stop()
    assert render.as_text(forked) == render.as_text(fresh)
    assert fresh.imported and not fresh.green and len(fresh.tests) > 1


def test_a_torch_other_than_the_pinned_one_is_named(monkeypatch):
    monkeypatch.setattr(cell.metadata, "version", lambda name: "2.5.1+cu121")
    note = cell.torch_note()
    assert "torch 2.5.1+cu121" in note and "pins 2.13.0" in note
    monkeypatch.setattr(cell.metadata, "version", lambda name: "2.13.0+cpu")
    assert cell.torch_note() == ""


# --- without a kernel ------------------------------------------------------------------------


def test_colab_setup_installs_only_the_test_tools_it_lacks():
    source = generate.setup_source("school/katas")
    [install] = [line for line in source.splitlines() if "pip" in line]
    installed = re.findall(r'"([A-Za-z_-]+)==', install)
    assert installed == ["pytest", "pytest-randomly", "pytest-timeout"]
    assert not re.search(r"torch|ipython|ipykernel", install, re.I)
    assert 'COURSE_REPO = "https://github.com/school/katas"' in source
    assert source.endswith("%load_ext coach.notebook")


def test_an_export_names_its_own_repository(tools, tmp_path):
    for name in ("katas", "notebooks"):
        shutil.copytree(ROOT / name, tmp_path / name)
    for name in ("pyproject.toml", "README.md"):
        shutil.copyfile(ROOT / name, tmp_path / name)
    generate.point_at(tmp_path, "school/katas-2027")
    assert generate.repository(tmp_path)[0] == "school/katas-2027"
    assert generate.stale(tmp_path) == []
    notebook = (tmp_path / "notebooks" / f"{FIRST.name}.ipynb").read_text()
    assert "https://github.com/school/katas-2027" in notebook
    assert (
        f"github/school/katas-2027/blob/main/notebooks/{FIRST.name}.ipynb"
        in (tmp_path / "README.md").read_text()
    )
    with pytest.raises(ValueError, match="owner/name"):
        generate.point_at(tmp_path, "https://github.com/school/katas")


def test_the_learner_copy_keeps_the_notebook_commands_but_not_the_generator():
    text = student_repo.learner_cli(
        (ROOT / "coach" / "cli.py").read_text(),
        {"coach.learner.run", "coach.notebook.setup", "coach.notebook.generate"},
    )
    assert '"notebook": ' in text
    assert (
        "generate" in student_repo.MAINTAINER_TARGETS
    )  # the generator's target stays with maintainers


def test_messages_name_the_cell_and_its_line_not_the_copy():
    path = cell.notebook_dir() / f"{FIRST.name}.py"
    text = (
        f"polynomial() is not written yet ({os.path.relpath(path, registry.ROOT)}:26)\n"
        f"{path}, line 3: Python cannot read this file\nImporting {path} raised"
    )
    assert cell.in_cell_terms(text, path) == (
        "polynomial() is not written yet (your kata cell, line 26)\n"
        "your kata cell, line 3: Python cannot read this file\nImporting your kata cell raised"
    )


def test_html_escapes_learner_text_and_carries_no_script():
    sneaky = '<script>alert(1)</script><img src=x onerror="alert(2)">'
    run = cell.CellRun(kata=FIRST, seed=5)
    run.tests = [cell.TestResult(f"test_{n}", "failed", f"{sneaky} number {n}") for n in range(3)]
    run.first_failure = run.tests[0]
    page = render.as_html(run)
    assert "<script" not in page.lower() and "<img" not in page.lower()
    assert "&lt;script&gt;" in page and "<details>" in page  # the rest are folded
    assert sneaky in render.as_text(run)  # plain text stays as the learner wrote it


def test_the_magics_use_only_what_ipython_7_34_has():
    """Colab's IPython is 7.34: these names all exist there (and in every later release)."""
    allowed = {
        "IPython.core.magic": {"Magics", "magics_class", "cell_magic", "line_magic"},
        "IPython.display": {"display"},
    }
    used: dict[str, set[str]] = {}
    for path in (ROOT / "coach" / "notebook").glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("IPython"):
                used.setdefault(node.module, set()).update(a.name for a in node.names)
            elif isinstance(node, ast.Import):
                assert not any(a.name.startswith("IPython") for a in node.names), path
    assert used and all(names <= allowed.get(module, set()) for module, names in used.items())


@pytest.mark.skipif(
    not os.environ.get("COACH_IPYTHON_734"),
    reason="set COACH_IPYTHON_734 to a Python with IPython 7.34 (Colab's), ipykernel, nbclient, "
    "torch and the test tools, to run the kernel checks there",
)
def test_the_kernel_checks_pass_on_ipython_7_34():
    """Opt-in: the live-kernel checks above, again in a Python that has Colab's IPython."""
    python = os.environ["COACH_IPYTHON_734"]
    version = subprocess.run(
        [python, "-c", "import IPython; print(IPython.__version__)"],
        capture_output=True, text=True, check=True,
    ).stdout.strip()  # fmt: skip
    assert version.startswith("7.34"), version
    run = subprocess.run(
        [python, "-m", "pytest", __file__, "-q", "-p", "no:randomly", "-o", "timeout=900",
         "-k", "built_notebook or endless_loops"],
        cwd=ROOT, env={k: v for k, v in os.environ.items() if k != "COACH_IPYTHON_734"},
        capture_output=True, text=True, check=False, timeout=900,
    )  # fmt: skip
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    assert "2 passed" in run.stdout
