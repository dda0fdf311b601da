"""The learner's time: an endless loop costs one time limit per kata, Ctrl-C stops a run at
once and is never blamed on the kata, the README's way of running code by hand works, and a
first attempt's report fits one screen.

Each run is a fresh `python -m coach ...` (as `make` starts it) on a scratch implementation
folder, with a time limit of LIMIT seconds (PYTEST_ADDOPTS, which every route reads) so the
whole file stays fast.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from coach.core import registry

ROOT = Path(__file__).resolve().parent.parent
LIMIT = 2  # seconds: the time limit these runs are given
COLUMNS = 80
SCREEN_ROWS = 40

K04 = registry.find("4")
K10 = registry.find("10")

pytestmark = pytest.mark.timeout(300)


def env(**extra: str) -> dict[str, str]:
    return dict(os.environ, COACH_NO_VENV="1", COLUMNS=str(COLUMNS), **extra)


def solution(kata: registry.Kata) -> str:
    return (ROOT / "solutions" / f"{kata.name}.py").read_text(encoding="utf-8")


def endless(kata: registry.Kata, marker: Path | None = None) -> str:
    """The reference with an endless loop where a learner writes one (no memory growth: the
    loop must not fill the machine while it waits for the limit). `marker` is touched just
    before the loop starts."""

    def touch(indent: str) -> str:
        return f"{indent}__import__('pathlib').Path({str(marker)!r}).touch()\n" if marker else ""

    source = solution(kata)
    if kata is K10:  # `stack[0]` for `stack.pop()`: the first node again and again
        start = "        order, seen = [], set()\n"
        broken = source.replace(start, touch(" " * 8) + start).replace(
            "node, inputs_done = stack.pop()", "node, inputs_done = stack[0]"
        )
    else:  # k04: the step never ends
        head = "def train_step(w: Tensor, b: Tensor, X: Tensor, y: Tensor, lr: float) -> float:\n"
        broken = source.replace(head, head + touch(" " * 4) + "    while True:\n        pass\n")
    assert broken.count("stack[0]") + broken.count("while True:") == 1
    return broken


def impl_with(tmp_path: Path, kata: registry.Kata, text: str) -> Path:
    """A folder holding only `kata`'s file: every other kata fails at once, file missing."""
    impl = tmp_path / "impl"
    impl.mkdir()
    (impl / f"{kata.name}.py").write_text(text, encoding="utf-8")
    return impl


def coach(*args: str, junit: Path, **kwargs) -> subprocess.CompletedProcess:
    addopts = f"-o timeout={LIMIT} --junitxml={junit}"
    return subprocess.run(
        [sys.executable, "-m", "coach", *args],
        cwd=ROOT,
        env=env(PYTEST_ADDOPTS=addopts),
        capture_output=True,
        text=True,
        check=False,
        **kwargs,
    )


def seconds_spent(junit: Path, kata: registry.Kata) -> tuple[float, int]:
    """(seconds the kata's tests took, how many ran), from pytest's JUnit XML."""
    cases = [
        case
        for case in ET.parse(junit).getroot().iter("testcase")
        if case.get("classname", "").endswith(Path(kata.test_file).stem)
    ]
    return sum(float(case.get("time", 0)) for case in cases), len(cases)


@pytest.mark.parametrize("kata", [K10, K04], ids=["k10_backward", "k04_train_step"])
@pytest.mark.parametrize("route", ["test", "progress"])
def test_an_endless_loop_costs_the_kata_one_time_limit(tmp_path, kata, route):
    impl = impl_with(tmp_path, kata, endless(kata))
    junit = tmp_path / "junit.xml"
    if route == "test":
        run = coach("test", str(kata.number), f"--impl={impl}", junit=junit)
    else:
        run = coach("progress", str(impl), junit=junit)
    output = run.stdout + run.stderr
    assert "Traceback" not in output and "AssertionError" not in output, output
    if route == "test":
        assert f"still running after {LIMIT} s" in output, output  # a timeout, named as one
    reported = junit.read_text(encoding="utf-8")
    assert f"still running after {LIMIT} s" in reported  # progress and next read this report
    spent, ran = seconds_spent(junit, kata)
    assert ran > 3, ran
    assert spent <= 1.5 * LIMIT, f"{kata.name}'s {ran} tests took {spent:.1f} s"


def start(command: list[str], marker: Path) -> subprocess.Popen:
    """`command` in a session of its own (as a terminal runs it), once the kata code has
    reached `marker`."""
    process = subprocess.Popen(
        command,
        cwd=ROOT,
        env=env(PYTEST_ADDOPTS="-o timeout=60"),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    deadline = time.monotonic() + 120
    while not marker.exists():
        assert process.poll() is None, process.communicate()[0]
        assert time.monotonic() < deadline, "the kata code never started"
        time.sleep(0.05)
    time.sleep(0.3)  # well inside the loop (or the slow function)
    return process


def interrupt(process: subprocess.Popen) -> tuple[str, float]:
    """Ctrl-C as a terminal sends it: SIGINT to every process of the foreground group."""
    sent = time.monotonic()
    os.killpg(process.pid, signal.SIGINT)
    output, _ = process.communicate(timeout=30)
    return output, time.monotonic() - sent


COACH = [sys.executable, "-m", "coach"]
ROUTES = {
    "test": lambda impl: [*COACH, "test", str(K10.number), f"--impl={impl}"],
    "progress": lambda impl: [*COACH, "progress", str(impl)],
    "make test": lambda impl: [
        "make",
        "--no-print-directory",
        "test",
        f"K={K10.number}",
        f"PYTHON={sys.executable}",
        f"ARGS=--impl={impl}",
    ],
}


@pytest.mark.skipif(not hasattr(os, "killpg"), reason="POSIX signals and process groups")
@pytest.mark.parametrize("route", list(ROUTES))
def test_ctrl_c_during_an_endless_loop_stops_the_run_at_once(tmp_path, route):
    if route.startswith("make") and shutil.which("make") is None:
        pytest.skip("no make here")
    marker = tmp_path / "looping"
    impl = impl_with(tmp_path, K10, endless(K10, marker))
    process = start(ROUTES[route](impl), marker)
    output, took = interrupt(process)
    # make dies of the same SIGINT (the shell reports 130); python -m coach exits 130.
    assert process.returncode in (130, -signal.SIGINT), (process.returncode, output)
    assert took < 2, f"stopped {took:.1f} s after Ctrl-C"
    assert "Traceback" not in output and "KeyboardInterrupt" not in output, output
    assert "Error" not in output, output  # no "make: *** [...] Error 130" either
    assert output.strip().splitlines()[-1] == "Stopped.", output


@pytest.mark.skipif(not hasattr(os, "killpg"), reason="POSIX signals and process groups")
def test_ctrl_c_during_a_green_kata_does_not_name_the_kata(tmp_path):
    """Ctrl-C while correct, slow code runs: the learner's stop, not the kata's failure."""
    marker = tmp_path / "running"
    kata = registry.find("1")
    slow = (
        "\n\ndef _slow():\n"
        f"    __import__('pathlib').Path({str(marker)!r}).touch()\n"
        "    __import__('time').sleep(0.5)\n"
    )
    source = solution(kata) + slow
    source = source.replace("    return x**3", "    _slow()\n    return x**3", 1)
    assert "_slow()\n    return" in source
    impl = impl_with(tmp_path, kata, source)
    process = start([*COACH, "test", str(kata.number), f"--impl={impl}"], marker)
    output, took = interrupt(process)
    assert process.returncode == 130, output
    assert took < 2, f"stopped {took:.1f} s after Ctrl-C"
    for blame in (kata.name, "KeyboardInterrupt", "Traceback", "failed"):
        assert blame not in output, output


def copy_of_the_course(target: Path) -> Path:
    """The course's files as a fresh clone has them (no .coach/, caches or build output),
    with .venv/ set up: a link to this checkout's."""
    listed = subprocess.run(
        ["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True
    ).stdout.decode()
    for name in filter(None, listed.split("\0")):
        source = ROOT / name
        if source.is_file():
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target / name)
    (target / ".venv").symlink_to((ROOT / ".venv").resolve(), target_is_directory=True)
    return target


@pytest.mark.skipif(
    shutil.which("bash") is None or not (ROOT / ".venv" / "bin" / "activate").is_file(),
    reason="needs bash and the course's .venv",
)
def test_the_readme_way_of_running_code_by_hand(tmp_path):
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    first_screen = "\n".join(readme.splitlines()[:45])
    for step in ("source .venv/bin/activate", "pytest tests/test_k07_nonscalar.py", "python -i"):
        assert step in first_screen, step
    course = copy_of_the_course(tmp_path / "course")
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "PYTHON"))}
    steps = (
        "source .venv/bin/activate && pytest tests/test_k07_nonscalar.py -p no:cacheprovider",
        "source .venv/bin/activate && python -c 'from katas.k07_nonscalar import vjp; print(vjp)'",
        "source .venv/bin/activate && python -i katas/k07_nonscalar.py < /dev/null",
    )
    tests, imported, interactive = (
        subprocess.run(
            ["bash", "-c", step], cwd=course, env=clean, capture_output=True, text=True, check=False
        )
        for step in steps
    )
    output = tests.stdout + tests.stderr
    assert tests.returncode == 1 and "failed" in output, output  # red, and ran
    assert "Error" not in output.split("Katas (katas)")[0].replace("NotImplementedError", "")
    assert "ImportError" not in output and "ModuleNotFoundError" not in output, output
    assert imported.returncode == 0 and "function vjp" in imported.stdout, imported.stderr
    assert interactive.returncode == 0 and "Traceback" not in interactive.stderr, interactive


def test_pytest_without_torch_says_what_to_run_in_one_line():
    hide_torch = (
        "import importlib.util as u, sys\n"
        "real = u.find_spec\n"
        "u.find_spec = lambda name, *a, **k: None if name == 'torch' else real(name, *a, **k)\n"
        "import pytest\n"
        "sys.exit(pytest.main(['tests/test_k07_nonscalar.py', '-p', 'no:cacheprovider']))\n"
    )
    run = subprocess.run(
        [sys.executable, "-c", hide_torch], cwd=ROOT, capture_output=True, text=True, check=False
    )
    assert run.returncode != 0
    lines = (run.stdout + run.stderr).strip().splitlines()
    assert len(lines) == 1, lines
    assert "torch is not installed" in lines[0] and "source .venv/bin/activate" in lines[0]


FIRST_ATTEMPTS = """\
import sys
from coach.learner import run
for number in sys.argv[1:]:
    print(f"=== kata {number}", flush=True)
    run.test([number])
    sys.stdout.flush()
"""


def rows(lines: list[str]) -> int:
    return sum(max(1, -(-len(line) // COLUMNS)) for line in lines)


def test_a_first_attempt_fits_one_screen_for_every_kata():
    """`make test K=N` on each untouched stub: at most 40 rows at 80 columns."""
    numbers = [str(kata.number) for kata in registry.KATAS]
    run = subprocess.run(
        [sys.executable, "-c", FIRST_ATTEMPTS, *numbers],
        cwd=ROOT,
        env=env(),
        capture_output=True,
        text=True,
        check=False,
    )
    reports = run.stdout.split("=== kata ")[1:]
    assert len(reports) == len(numbers), run.stdout + run.stderr
    for report in reports:
        number, *lines = report.rstrip("\n").splitlines()
        assert "Katas (katas)" in report, report
        assert rows(lines) <= SCREEN_ROWS, f"kata {number}: {rows(lines)} rows\n" + report


@pytest.mark.parametrize("kata", registry.KATAS, ids=lambda kata: kata.name)
def test_the_hint_ladder_climbs_from_a_question_to_the_code(kata):
    """The first hint asks; only the last shows code (an indented block of it)."""
    import textwrap

    hints = [textwrap.dedent(text).strip() for text in kata.lesson.hints]
    assert "?" in hints[0], hints[0]
    for hint in hints[:-1]:
        assert not any(line.startswith("    ") for line in hint.splitlines()), hint
    assert any(line.startswith("    ") for line in hints[-1].splitlines()), hints[-1]


@pytest.mark.parametrize("kata", registry.KATAS, ids=lambda kata: kata.name)
def test_a_stubs_first_message_states_the_task_not_the_code(kata):
    """What a NotImplementedError says is the first message a learner reads: the task in
    words and maths, no torch call, method call or keyword argument of the answer."""
    import ast
    import re

    tree = ast.parse((ROOT / kata.stub_file).read_text(encoding="utf-8"))
    texts = [
        node.exc.args[0].value
        for node in ast.walk(tree)
        if isinstance(node, ast.Raise)
        and isinstance(node.exc, ast.Call)
        and getattr(node.exc.func, "id", "") == "NotImplementedError"
        and node.exc.args
        and isinstance(node.exc.args[0], ast.Constant)
    ]
    assert texts
    for text in texts:
        assert not re.search(r"torch\.|\w\.\w+\(|\w=\w|\+=", text), text
