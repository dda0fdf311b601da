"""One notebook per kata in notebooks/, written with nbformat from the kata's files, and the
README's "Notebooks and Colab" list. Both are committed; `make generate` writes them with the
other generated files (coach/authoring/generated.py), and `make check` fails when either no
longer matches what this module writes.

Each notebook: the kata's title, a set-up cell (in Colab it clones the course and installs
only pytest, pytest-randomly and pytest-timeout), the stub's docstring as markdown, one
`%%kata N` cell holding the stub's code, then hint, graph and predict cells. Cell ids are
fixed, so the same kata files always give the same bytes.

The repository learners clone in Colab is `[tool.coach] repository` in pyproject.toml
(owner/name on GitHub, and `branch`); `make student-repo REPO=owner/name` writes the
learner copy's own.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import tomllib

from coach.core import registry
from coach.core.bootstrap import REQUIREMENTS, ROOT

FOLDER = "notebooks"
README_START = "<!-- notebooks: written by coach/notebook/generate.py; do not edit by hand -->"
README_END = "<!-- notebooks: end -->"
REGENERATE = "make generate (or python -m coach generate)"
COLAB_TOOLS = ("pytest", "pytest-randomly", "pytest-timeout")  # all Colab lacks


def repository(root: Path = ROOT) -> tuple[str, str]:
    """(owner/name, branch) of the course repository, from pyproject.toml's [tool.coach]."""
    with open(root / "pyproject.toml", "rb") as handle:
        settings = tomllib.load(handle).get("tool", {}).get("coach", {})
    return settings.get("repository", "your-org/autograd-katas"), settings.get("branch", "main")


def colab_url(kata: registry.Kata, repo: str, branch: str) -> str:
    return (
        f"https://colab.research.google.com/github/{repo}/blob/{branch}/{FOLDER}/{kata.name}.ipynb"
    )


def colab_pins() -> list[str]:
    """The learner pins of the test tools Colab lacks (torch stays Colab's own)."""
    pins = {}
    for line in (REQUIREMENTS / "learner.txt").read_text(encoding="utf-8").splitlines():
        pin = line.split("#")[0].strip()
        if "==" in pin:
            pins[pin.split("==")[0].lower()] = pin
    return [pins[name] for name in COLAB_TOOLS]


def setup_source(repo: str) -> str:
    folder = repo.rsplit("/", 1)[-1]
    pins = ", ".join(f'"{pin}"' for pin in colab_pins())
    return f'''\
# Set-up: run this cell first. In Colab it fetches the course and its test tools; Colab's
# own torch, IPython and ipykernel stay as they are (upgrading those breaks its runtime).
import os, subprocess, sys
COURSE_REPO = "https://github.com/{repo}"
if "google.colab" in sys.modules and not os.path.isdir("coach"):
    if not os.path.isdir("{folder}"):
        subprocess.run(["git", "clone", "--depth=1", COURSE_REPO, "{folder}"], check=True)
    os.chdir("{folder}")  # what %cd {folder} does
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", {pins}], check=True)
while not os.path.isdir("coach") and os.path.dirname(os.getcwd()) != os.getcwd():
    os.chdir("..")  # Jupyter starts in notebooks/: the course folder is above it
sys.path.insert(0, os.getcwd())
%load_ext coach.notebook'''


def split_stub(source: str) -> tuple[str, str]:
    """(the module docstring, the code after it) of a stub file."""
    tree = ast.parse(source)
    first = tree.body[0] if tree.body else None
    if not (isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant)):
        return "", source
    code = source.splitlines()[first.end_lineno :]
    return ast.get_docstring(tree) or "", "\n".join(code).strip("\n")


def docstring_markdown(docstring: str) -> str:
    title, _, rest = docstring.partition("\n")
    return f"## {title.strip()}\n\n{rest.strip()}".strip()


def cells(kata: registry.Kata, repo: str, branch: str, root: Path = ROOT) -> list:
    from nbformat import v4

    number = kata.number
    docstring, code = split_stub((root / kata.stub_file).read_text(encoding="utf-8"))
    made = []

    def add(kind: str, source: str) -> None:
        maker = v4.new_code_cell if kind == "code" else v4.new_markdown_cell
        made.append(maker(source, id=f"{kata.name[:3]}-{len(made):02d}"))

    add(
        "markdown",
        f"# Kata {number}: {kata.title}\n\n"
        f"[![Open in Colab](https://colab.research.google.com/assets/colab-badge.svg)]"
        f"({colab_url(kata, repo, branch)})\n\n"
        f"What it teaches: {kata.concept}. Run the set-up cell once, then write your code "
        f"in the `%%kata {number}` cell and run it: the same tests as `make test K={number}` "
        f"judge it, in a separate process, and say what to fix.",
    )
    add("code", setup_source(repo))
    add("markdown", docstring_markdown(docstring))
    add("code", f"%%kata {number}\n{code}")
    add(
        "markdown",
        f"Red? Read the first failure: it names a line of your cell. Each run draws new random "
        f"inputs; `%%kata {number} --seed S` replays a run's. Stuck? The next cell gives one "
        f"more hint each time you run it.",
    )
    add("code", f"%kata_hint {number}")
    if kata.lesson.graph is not None:
        add("markdown", "The backward graph your code builds (once the cell has run):")
        add("code", f"%kata_graph {number}")
    quiz = kata.lesson.quiz
    add(
        "markdown",
        "### Predict, then see\n\nReplace each `?` with your prediction (a number, None, "
        "raises, yes or no, or a name the question offers) and run the cell: then real torch "
        "runs the code and says what happens. Only your first prediction counts.\n\n"
        f"Every question starts from:\n\n```python\n{quiz.setup}\n```",
    )
    for question in quiz.questions:
        add("markdown", f"**{question.ask}**\n\n```python\n{question.code}\n```")
        add("code", f"%kata_predict {number} {question.id} ?")
    add(
        "markdown",
        f"### When the kata is green\n\n`%kata_save {number}` writes the cell you last tested "
        f"to `{kata.stub_file}` (the old file is kept in `.coach/backups/`), where "
        f"`make grade` and your course's grader read it. `%kata_progress` lists every kata.",
    )
    add("code", f"# %kata_save {number}   <- remove the # once the kata is green\n%kata_progress")
    return made


def build(kata: registry.Kata, repo: str, branch: str, root: Path = ROOT) -> str:
    import nbformat

    notebook = nbformat.v4.new_notebook(
        cells=cells(kata, repo, branch, root),
        metadata={
            "kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
            "language_info": {"name": "python"},
            "colab": {"provenance": []},
        },
    )
    nbformat.validate(notebook)
    return nbformat.writes(notebook) + "\n"


def readme_section(repo: str, branch: str) -> str:
    rows = [
        f"| {kata.number} | {kata.title} | [notebook]({FOLDER}/{kata.name}.ipynb) "
        f"| [Open in Colab]({colab_url(kata, repo, branch)}) |"
        for kata in registry.KATAS
    ]
    return "\n".join(
        [README_START, "| # | kata | notebook | Colab |", "|---|------|----------|-------|", *rows,
         README_END]
    )  # fmt: skip


def with_readme_section(text: str, section: str) -> str:
    pattern = re.compile(re.escape(README_START) + r".*?" + re.escape(README_END), re.S)
    if not pattern.search(text):
        raise LookupError(f"README.md has no line {README_START!r}")
    return pattern.sub(lambda _m: section, text)


def expected(root: Path = ROOT) -> dict[Path, str]:
    """Every generated file under `root` and the text it must hold."""
    repo, branch = repository(root)
    files = {
        root / FOLDER / f"{kata.name}.ipynb": build(kata, repo, branch, root)
        for kata in registry.KATAS
    }
    readme = root / "README.md"
    files[readme] = with_readme_section(
        readme.read_text(encoding="utf-8"), readme_section(repo, branch)
    )
    return files


def stale(root: Path = ROOT) -> list[str]:
    """The generated files that are missing or differ, and the notebooks of no kata."""
    files = expected(root)
    problems = [
        path.relative_to(root).as_posix()
        for path, text in files.items()
        if not path.is_file() or path.read_text(encoding="utf-8") != text
    ]
    extra = set((root / FOLDER).glob("*.ipynb")) - set(files)
    problems += sorted(f"{p.relative_to(root).as_posix()} (no such kata)" for p in extra)
    return problems


def write(root: Path = ROOT) -> list[Path]:
    changed = []
    (root / FOLDER).mkdir(exist_ok=True)
    for path, text in expected(root).items():
        if not path.is_file() or path.read_text(encoding="utf-8") != text:
            path.write_text(text, encoding="utf-8", newline="\n")
            changed.append(path)
    return changed


REPO_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9-]*/[A-Za-z0-9._-]+")
SETTING = re.compile(r'(?m)^(repository\s*=\s*)"[^"]*"')


def point_at(root: Path, repo: str) -> list[Path]:
    """Make the course in `root` (an export) name `repo` (owner/name): its pyproject.toml
    setting, its notebooks' set-up cells and its README's Colab links."""
    from coach.notebook import setup

    if not REPO_NAME.fullmatch(repo):
        raise ValueError(f"--repo {repo!r}: expected owner/name, as in github.com/owner/name")
    if not setup.ensure("writing the notebooks"):
        raise RuntimeError("the notebook tools (requirements/notebook.txt) could not be installed")
    pyproject = root / "pyproject.toml"
    text = pyproject.read_text(encoding="utf-8")
    pyproject.write_text(SETTING.sub(rf'\1"{repo}"', text, count=1), encoding="utf-8")
    return write(root)
