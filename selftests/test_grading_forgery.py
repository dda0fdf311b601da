"""Grades that kata code cannot forge, by construction (issue 18), on every route run here.

One hostile learner repository (a real export, `make student-repo`) plants one attack of each
kind in its own kata, solves one control kata, and leaves the rest as stubs:

A. kata code writes files a later step runs or reads: the judge, coach/runtime/testing.py (a
   report-forging patch later children would import), a `.pth` in site-packages, a
   usercustomize.py under $HOME, a chain of sleeping processes meant to outlive the runner;
B. files at the repository root run before any kata is graded: a `pip/` folder (the install
   steps), a folder named like one of torch's optional imports (`opt_einsum`) and a
   `*.dist-info` whose entry point torch autoloads;
C. the kata's own process fools its own tests: forged records through the recorder found in
   memory, a pytest function patched at import and put back later, math.isclose and a
   `torch`-claiming torch.allclose replaced, and values that lie (a float whose == is always
   True, a tensor subclass that answers True to allclose).

Routes, as their runners run them: `make grade` with forked children and with a fresh Python
per kata (kata code as an unprivileged user: this runs as root), `make grade --sandbox none`
(the practice grade of a laptop: changes are found, put back and charged to their kata); the
GitHub Classroom workflow's steps (grading tree, tamper check, install, then the graders in
one shell each, sharing one tree as the job's steps do); the Classroom 50 setup and test
files scored as its runner scores them. Every planted kata must score 0 (or be flagged), the
control keeps its points, no marker of B runs, and the next Python started is unaffected.

Attacks go only into scratch copies: a scratch Python (hard links to the interpreter, its own
site-packages of links to the shared one's packages) and scratch HOMEs. Never the shared venv.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from coach.core import registry
from coach.grading import classroom50, judge, student_repo, workflow
from selftests.classroom50_runner import classroom50_points

ROOT = Path(__file__).resolve().parent.parent
K = registry.KATAS
CONTROL = K[9]
pytestmark = [
    pytest.mark.timeout(900),
    pytest.mark.skipif(
        not sys.platform.startswith("linux") or os.geteuid() != 0,
        reason="needs root on Linux, to run kata code as a second user as CI runners do",
    ),
]


# --- a scratch Python the kata user can read, whose site-packages attacks may touch ---------


def scratch_python(where: Path) -> Path:
    """A venv over hard links to this interpreter (the same files, in folders anyone may read)
    whose site-packages holds links to this venv's packages and copies of its `.pth` files."""
    base = Path(sys.base_prefix)
    version = f"python{sys.version_info.major}.{sys.version_info.minor}"
    copy = where / "base"
    skip = {"site-packages", "test", "__pycache__", "idlelib", "tkinter", "turtledemo"}
    shutil.copytree(base / "bin", copy / "bin", symlinks=True, copy_function=os.link)
    shutil.copytree(
        base / "lib" / version,
        copy / "lib" / version,
        symlinks=True,
        copy_function=os.link,
        ignore=lambda _, names: [n for n in names if n in skip],
    )
    (copy / "lib" / version / "site-packages").mkdir()
    for library in (base / "lib").glob("libpython*"):
        os.link(library, copy / "lib" / library.name)
    venv = where / "venv"
    packages = venv / "lib" / version / "site-packages"
    packages.mkdir(parents=True)
    (venv / "bin").mkdir()
    (venv / "bin" / "python").symlink_to(copy / "bin" / Path(sys.executable).resolve().name)
    (venv / "bin" / "python3").symlink_to("python")
    (venv / "pyvenv.cfg").write_text(
        f"home = {copy / 'bin'}\ninclude-system-site-packages = false\n"
        f"version = {sys.version.split()[0]}\n"
    )
    shared = Path(sys.prefix) / "lib" / version / "site-packages"
    for entry in shared.iterdir():
        if entry.suffix == ".pth":
            shutil.copyfile(entry, packages / entry.name)
        elif entry.name != "__pycache__":
            (packages / entry.name).symlink_to(entry)
    for folder in (where, venv, venv / "bin", venv / "lib", venv / "lib" / version, packages):
        os.chmod(folder, 0o755)
    return venv / "bin" / "python"


# --- the attacks ----------------------------------------------------------------------------

TREE = "_pl.Path(__file__).resolve().parents[1]"
FORGE_REPORTS = """
import _pytest.reports as _forge_r
_forge_made = _forge_r.TestReport.from_item_and_call
def _forge_passed(item, call):
    report = _forge_made(item, call)
    report.outcome, report.longrepr = "passed", None
    return report
_forge_r.TestReport.from_item_and_call = staticmethod(_forge_passed)
"""


def every_function(body: str, prelude: str = "") -> str:
    """Every public function of the kata becomes one that does `body`."""
    return (
        f"{prelude}\ndef _attack(*args, **kwargs):\n"
        + "".join(f"    {line}\n" for line in body.strip().splitlines())
        + "for _n, _v in list(globals().items()):\n"
        "    if callable(_v) and not _n.startswith('_') and getattr(_v, '__module__', 0) == "
        "__name__:\n"
        "        globals()[_n] = _attack\n"
    )


def attacks(drop: Path) -> dict[str, tuple[str, str]]:
    """kata name -> (what it tries, code appended to its stub)."""
    marks = {name: str(drop / name) for name in ("pth", "usercustomize", "pids")}
    return {
        K[0].name: (
            "A: rewrites the judge",
            f"""
import pathlib as _pl
try:
    _j = {TREE} / "coach" / "grading" / "judge.py"
    _j.write_text(_j.read_text() + '''
verdict = lambda entry, expected, limit=None: Verdict(dict.fromkeys(expected, ("passed", "", 0)))
problems = lambda *a, **k: []
''')
except OSError:
    pass
""",
        ),
        K[1].name: (
            "A: appends a report-forging patch to coach/runtime/testing.py",
            f"""
import pathlib as _pl
try:
    with open({TREE} / "coach" / "runtime" / "testing.py", "a") as _f:
        _f.write({FORGE_REPORTS!r})
except OSError:
    pass
""",
        ),
        K[2].name: (
            "A: drops a .pth into site-packages",
            f"""
import pathlib as _pl, site as _site
for _d in _site.getsitepackages():
    try:
        (_pl.Path(_d) / "zz_forge.pth").write_text(
            "import pathlib; pathlib.Path({marks["pth"]!r}).write_text('ran')\\n")
    except OSError:
        pass
""",
        ),
        K[3].name: (
            "A: writes usercustomize.py under $HOME/.local",
            f"""
import os as _o, pathlib as _pl
_home = _o.environ.get("HOME", "")
if _home and _o.path.realpath(_home) not in ("/", "/root", _o.path.realpath(_pl.Path.home())):
    _site = _pl.Path(_home) / ".local/lib/python3.{sys.version_info.minor}/site-packages"
    try:
        _site.mkdir(parents=True, exist_ok=True)
        (_site / "usercustomize.py").write_text(
            "import pathlib; pathlib.Path({marks["usercustomize"]!r}).write_text('ran')\\n")
    except OSError:
        pass
""",
        ),
        K[4].name: (
            "A: leaves a chain of 25 sleeping processes",
            f"""
import os as _o, time as _tm
def _chain(depth):
    if _o.fork() == 0:
        try:
            _o.setsid()
            if depth:
                _chain(depth - 1)
            with open({marks["pids"]!r}, "a") as _f:
                _f.write(f"{{_o.getpid()}}\\n")
            _tm.sleep(60)
        finally:
            _o._exit(0)
_chain(25)
""",
        ),
        K[5].name: (
            "C: forges records through the recorder it finds in memory",
            every_function(
                """
import gc, os
items = [i for o in gc.get_objects() if type(o).__name__ == "Session" for i in o.items]
for o in gc.get_objects():
    if type(o).__name__ == "Recorder" and hasattr(o, "channel"):
        for item in items:
            for when in ("setup", "call", "teardown"):
                o.channel.send("phase", nodeid=item.nodeid, when=when, outcome="passed",
                               message="", line=0)
        o.channel.send("end", exitstatus=0, crash="")
os._exit(0)
"""
            ),
        ),
        K[6].name: (
            "C: patches pytest at import, puts the original back later",
            FORGE_REPORTS
            + every_function(
                "_forge_r.TestReport.from_item_and_call = staticmethod(_forge_made)\n"
                "raise NotImplementedError"
            ),
        ),
        K[7].name: (
            "C: replaces math.isclose, and torch.allclose with a function claiming torch",
            """
import math as _m, torch as _t
def _yes(*a, **k):
    return True
_yes.__module__ = "torch"
_m.isclose = _yes
_t.allclose = _yes
_t.equal = _yes
"""
            + every_function("return 0.0"),
        ),
        K[8].name: (
            "C: returns a float whose == is always True, and a lying tensor subclass",
            """
import torch as _t
class _Yes(float):
    def __eq__(self, other):
        return True
    __hash__ = float.__hash__
class _YesTensor(_t.Tensor):
    @classmethod
    def __torch_function__(cls, func, types, args=(), kwargs=None):
        if getattr(func, "__name__", "") in {"allclose", "equal", "isclose"}:
            return True
        return super().__torch_function__(func, types, args, kwargs or {})
"""
            + every_function(
                "t = _t.zeros(3).as_subclass(_YesTensor)\nreturn (_Yes(0.0), t) if args else t"
            ),
        ),
    }


def plant_repository(repo: Path, drop: Path) -> None:
    """B: what a `python -m pip` in the checkout, or the checkout on sys.path, would run."""
    mark = "import pathlib; pathlib.Path({!r}).write_text('ran')\n"
    (repo / "pip").mkdir()
    (repo / "pip" / "__init__.py").write_text(mark.format(str(drop / "pip")))
    (repo / "opt_einsum").mkdir()
    (repo / "opt_einsum" / "__init__.py").write_text(
        mark.format(str(drop / "opt_einsum")) + FORGE_REPORTS
    )
    info = repo / "forge-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: forge\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text("[torch.backends]\nforge = opt_einsum:_forge_passed\n")


@pytest.fixture(scope="module")
def setup():
    # Not under pytest's own temporary folder: that one is readable by its owner alone, and
    # the kata user must read the scratch Python and the grading trees.
    tmp = Path(tempfile.mkdtemp(prefix="coach-forgery-"))
    os.chmod(tmp, 0o755)
    try:
        yield _prepare(tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _prepare(tmp: Path) -> dict:
    python = scratch_python(tmp / "python")
    practice_python = scratch_python(tmp / "practice-python")  # its site-packages: planted
    drop = tmp / "drop"  # where attacks leave markers: anyone may write here, as in /tmp
    drop.mkdir()
    os.chmod(drop, 0o1777)
    repo = tmp / "repo"
    student_repo.write_export(repo)
    planted = attacks(drop)
    for name, (_, code) in planted.items():
        with open(repo / "katas" / f"{name}.py", "a", encoding="utf-8") as stub:
            stub.write(code)
    solved = f"{CONTROL.name}.py"
    shutil.copyfile(ROOT / "solutions" / solved, repo / "katas" / solved)
    plant_repository(repo, drop)
    home = tmp / "home"  # the grader's own HOME: never root's
    home.mkdir()
    return {"tmp": tmp, "python": python, "practice_python": practice_python, "drop": drop,
            "repo": repo, "planted": planted, "home": home}  # fmt: skip


def env_for(setup: dict, python: Path | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "KATAS_", "PYTEST_"))}
    env.update(
        COACH_NO_VENV="1",
        HOME=str(setup["home"]),
        PATH=f"{(python or setup['python']).parent}{os.pathsep}/usr/bin:/bin",
    )
    return env


GRADED = [*K[:9], CONTROL]  # every planted kata, and the control, on every route
NO_FORK = WORKFLOW = CLASSROOM50 = GRADED


def expected_points(katas) -> dict[str, float]:
    return {kata.name: float(kata.points if kata == CONTROL else 0) for kata in katas}


def leftovers(setup: dict) -> list[str]:
    """What of A or B ran or survived: markers, the .pth, processes of the chain (killed)."""
    found = []
    for python in (setup["python"], setup["practice_python"]):
        subprocess.run(
            [str(python), "-c", "pass"], env=env_for(setup, python), check=True, timeout=120
        )  # fmt: skip  (the next Python: does a .pth or usercustomize run?)
        packages = Path(
            subprocess.run(
                [str(python), "-I", "-c", "import site; print(site.getsitepackages()[0])"],
                capture_output=True, text=True, check=True, timeout=120,
            ).stdout.strip()
        )  # fmt: skip
        found += [str(p) for p in packages.glob("zz_forge.pth")]
    drop = setup["drop"]
    found += [f"marker {p.name}" for p in drop.iterdir() if p.name != "pids"]
    pids = drop / "pids"
    if pids.exists():
        for pid in map(int, pids.read_text().split()):
            try:
                os.kill(pid, 9)  # never leave one running, whatever the assertion says
                found.append(f"process {pid} of the chain")
            except ProcessLookupError:
                pass
    return found


# --- the routes ----------------------------------------------------------------------------


def make_grade(setup: dict, katas, *extra: str, python: Path | None = None) -> dict:
    out = setup["tmp"] / ("grade" + "".join(extra).replace("-", "_"))
    args = ["grade", "--out", str(out), *extra, *[f"--kata={k.name}" for k in katas]]
    run = subprocess.run(
        [str(python or setup["python"]), "-m", "coach", *args], cwd=setup["repo"],
        env=env_for(setup, python), capture_output=True, text=True, check=False, timeout=600,
    )  # fmt: skip
    assert run.returncode == 0, run.stdout + run.stderr
    record = json.loads((out / "grade.json").read_text())
    return {
        "points": {kata["name"]: kata["points"] for kata in record["katas"]},
        "notes": {kata["name"]: kata["note"] for kata in record["katas"]},
        "practice": any(note.startswith("Practice grade") for note in record["notes"]),
        "scan": record["scan"],
    }


def workflow_steps(repo: Path, tree: Path) -> dict[str, str]:
    """Step name -> its `run:` script (or a grader's command), the grading tree moved to
    `tree` (the workflow's fixed /tmp path would be shared by parallel selftests)."""
    text = (repo / workflow.WORKFLOW_PATH).read_text().replace(workflow.GRADING_TREE, str(tree))
    steps = {}
    for block in text.split("\n    - name: ")[1:]:
        name = block.splitlines()[0].strip("'").replace("''", "'")  # YAML's quoting
        script = re.search(r"^      run: \|\n((?:        .*\n|\n)+)", block + "\n", re.M)
        command = re.search(r"^        command: (.*)$", block, re.M)
        if script:
            steps[name] = "\n".join(line[8:] for line in script.group(1).splitlines())
        elif command:
            steps[name] = command.group(1)
    return steps


def runner_shell(script: str, cwd: Path, setup: dict, env_extra: dict | None = None):
    """A step as a hosted runner's shell runs it: bash -e, the runner's PATH and HOME."""
    env = {"PATH": env_for(setup)["PATH"], "HOME": str(setup["home"]), **(env_extra or {})}
    return subprocess.run(
        ["bash", "-e", "-c", script], cwd=cwd, env=env, capture_output=True, text=True,
        check=False, timeout=600,
    )  # fmt: skip


def workflow_route(setup: dict) -> dict:
    """Every step the workflow runs after the checkouts, in order: the grading tree, the
    tamper check, the install (its working-directory is outside the checkout), then the
    graders, each in a shell of its own, all on the one tree (as the job's steps are)."""
    repo, tmp = setup["repo"], setup["tmp"]
    steps = workflow_steps(repo, tmp / "workflow-tree")
    workspace = {"GITHUB_WORKSPACE": str(repo), "TEMPLATE_REPO": "", "TEMPLATE_REF": ""}
    said = {}
    for name in (
        "Build the grading tree",
        "Tamper check (graded files against grading-manifest.json)",
    ):
        ran = runner_shell(steps[name], repo, setup, workspace)
        said[name] = (ran.returncode, ran.stdout + ran.stderr)
    install = next(n for n in steps if n.startswith("Install CPU-only torch"))
    outside = tmp / "runner-temp"
    outside.mkdir()
    ran = runner_shell(steps[install], outside, setup)
    said["install"] = (ran.returncode, ran.stdout + ran.stderr)
    points = {}
    for kata in WORKFLOW:
        ran = runner_shell(steps[f"{kata.name}: {kata.title}"], repo, setup)
        points[kata.name] = float(kata.points if ran.returncode == 0 else 0)
        said[kata.name] = (ran.returncode, ran.stdout + ran.stderr)
    return {"points": points, "said": said}


def classroom50_score(spec: dict, checkout: Path, bundle: Path, setup: dict) -> int:
    env = {"PATH": env_for(setup)["PATH"], "HOME": str(setup["home"]),
           "CLASSROOM50_BUNDLE_DIR": str(bundle)}  # fmt: skip
    report = setup["tmp"] / f"c50-{spec['name'].split(':')[0]}.json"
    return classroom50_points(spec, checkout, report, env)[0]


def classroom50_route(setup: dict) -> dict:
    """Its setup test (the install), then each kata's test, scored as its runner scores them."""
    out = setup["tmp"] / "c50"
    tests_file = classroom50.write_classroom50(out)
    os.chmod(out, 0o755)
    specs = {t["name"].split(":")[0]: t for t in json.loads(tests_file.read_text())}
    bundle = out / "bundle"
    ran = runner_shell(specs["setup"]["run"], setup["repo"], setup,
                       {"CLASSROOM50_BUNDLE_DIR": str(bundle)})  # fmt: skip
    points = {k.name: float(classroom50_score(specs[k.name], setup["repo"], bundle, setup))
              for k in CLASSROOM50}  # fmt: skip
    return {"points": points, "setup": (ran.returncode, ran.stdout + ran.stderr)}


@pytest.fixture(scope="module")
def graded(setup) -> dict:
    """Every route, then what was left. The routes that run kata code as the kata user run one
    after the other (each kills every process of that user after a kata); the practice grade,
    on its own scratch Python, beside them."""
    sandboxed = {
        "fork": lambda: make_grade(setup, GRADED),
        "no fork": lambda: make_grade(setup, NO_FORK, "--no-fork"),
        "workflow": lambda: workflow_route(setup),
        "classroom50": lambda: classroom50_route(setup),
    }
    with ThreadPoolExecutor(2) as pool:
        practice = pool.submit(
            make_grade, setup, GRADED, "--sandbox=none", python=setup["practice_python"]
        )
        found = {name: route() for name, route in sandboxed.items()}
        found["practice"] = practice.result()
    found["leftovers"] = leftovers(setup)
    return found


@pytest.mark.parametrize(
    ("route", "katas"), [("fork", GRADED), ("no fork", NO_FORK), ("practice", GRADED)]
)
def test_make_grade_gives_every_planted_kata_0_and_the_control_its_points(graded, route, katas):
    result = graded[route]
    assert result["points"] == expected_points(katas), (route, result["notes"])
    assert result["practice"] == (route == "practice"), route


def test_the_practice_grade_finds_charges_and_undoes_what_kata_code_wrote(graded):
    notes = graded["practice"]["notes"]
    assert "judge.py" in notes[K[0].name], notes[K[0].name]
    assert "testing.py" in notes[K[1].name], notes[K[1].name]
    assert "zz_forge.pth" in notes[K[2].name], notes[K[2].name]


def test_in_process_forging_is_void_or_named_by_the_code_scan(graded):
    notes, scan = graded["fork"]["notes"], graded["fork"]["scan"]
    assert "did not send" in notes[K[5].name], notes[K[5].name]  # forged records
    assert "gc.get_objects" in notes[K[5].name], notes[K[5].name]  # named by the audit hook
    assert "_pytest.reports.TestReport.from_item_and_call" in notes[K[6].name]
    assert any(f"{K[5].name}.py" in hit and "get_objects" in hit for hit in scan), scan


def test_the_workflow_steps_give_every_planted_kata_0(graded):
    result = graded["workflow"]
    assert result["said"]["Build the grading tree"][0] == 0, result["said"]
    assert result["said"]["install"][0] == 0, result["said"]["install"]
    assert result["points"] == expected_points(WORKFLOW), result["said"]


def test_the_classroom50_files_give_every_planted_kata_0(graded):
    result = graded["classroom50"]
    assert result["setup"][0] == 0, result["setup"]
    assert result["points"] == expected_points(CLASSROOM50), result


def test_nothing_planted_ran_or_survived_for_the_next_python(graded):
    """No marker of B, no .pth or usercustomize that runs, no process of the chain alive."""
    assert graded["leftovers"] == []


# --- the comparisons themselves ---------------------------------------------------------------


def test_the_judge_voids_a_kata_whose_stream_was_forged_or_that_changed_files():
    entry = {"status": {"exit": 0}, "report": {"exitstatus": 0, "tests": {}, "forged": ["x"]}}
    assert "did not send" in judge.void_reason(entry)
    entry = {"status": {"exit": 0, "changed_files": ["coach/grading/judge.py"]},
             "report": {"exitstatus": 0, "tests": {}}}  # fmt: skip
    assert "judge.py" in judge.void_reason(entry)
    assert judge.practice_note({"sandbox": {"user": "coach-kata"}}) == ""
    assert judge.practice_note({"sandbox": {"user": None, "why_none": "not root"}}).startswith(
        "Practice grade"
    )
