"""`%%kata N`: the cell's body is the kata file, tested in a child process as `make test K=N`.

1. The body goes to .coach/notebook/kNN_topic.py under a one-line header that stands for the
   `%%kata` line, so line L of the file is line L of the cell as Jupyter numbers it.
2. A child process runs coach.learner.run.test, the function behind `make test K=N`, with
   `--impl=.coach/notebook`: the same plugin, isolation, 10 s limit per test, laws and
   messages. The child is forked from a warm helper where that is safe (coach/notebook/
   warm.py), else it is a fresh Python. The kernel imports neither pytest nor the learner's
   code for it, so an endless loop or a crash ends only the child, and the kernel's RNG and
   torch settings stay as they were. A run that outlives CHILD_LIMIT, or that the learner
   interrupts, is stopped.
3. The outcomes come back through the plugin's `--coach-json` file; the probe plugin says
   whether the module imported cleanly. Messages name "your kata cell, line L".
"""

from __future__ import annotations

import atexit
import json
import os
import re
import secrets
import signal
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path

from coach.core import bootstrap, registry
from coach.learner import state
from coach.notebook import probe, warm
from coach.runtime import summary

CHILD_LIMIT = 240  # seconds for a whole child run; each test has its own 10 s limit inside
HEADER = "# %%kata {number}: your notebook cell. (This line stands for the magic line.)\n"
CELL = "your kata cell"
_helper: warm.Helper | None = None  # the warm helper process, once started


def notebook_dir() -> Path:
    """Where the notebook copies of the kata files live: .coach/notebook/ (untracked)."""
    return state.state_file().parent / "notebook"


def cell_file(kata: registry.Kata) -> Path:
    return notebook_dir() / f"{kata.name}.py"


@dataclass
class TestResult:
    name: str
    outcome: str  # passed, failed, error, skipped
    message: str  # with paths replaced by "your kata cell, line L"


@dataclass
class CellRun:
    """What one `%%kata` run found."""

    kata: registry.Kata
    seed: int
    tests: list[TestResult] = field(default_factory=list)  # in the test file's order
    first_failure: TestResult | None = None  # the one to read first, as `make test` picks it
    imported: bool = False  # the module imported cleanly in the child
    problem: str = ""  # why there are no outcomes (stopped, crashed), else ""
    torch_note: str = ""  # this Python's torch differs from the course's pin

    @property
    def passed(self) -> int:
        return sum(test.outcome == "passed" for test in self.tests)

    @property
    def green(self) -> bool:
        return bool(self.tests) and not self.problem and self.passed == len(self.tests)


def write_cell(kata: registry.Kata, body: str) -> Path:
    path = cell_file(kata)
    path.parent.mkdir(parents=True, exist_ok=True)
    text = HEADER.format(number=kata.number) + body
    path.write_text(text if text.endswith("\n") else text + "\n", encoding="utf-8")
    return path


def new_seed() -> int:
    """A seed for pytest-randomly, drawn without touching the kernel's random module."""
    return secrets.randbelow(10**9)


def test_args(kata: registry.Kata, json_path: Path, seed: int) -> list[str]:
    """What `make test K=N` gets, plus where to write the outcomes and the seed to use."""
    return [
        str(kata.number),
        f"--impl={notebook_dir()}",  # one word: pytest never reads DIR as a test path
        "--coach-json",
        str(json_path),
        "-p",
        "coach.notebook.probe",
        f"--randomly-seed={seed}",
    ]


def child_env(probe_path: Path | None = None) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if key != "KATAS_IMPL"}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(registry.ROOT), env.get("PYTHONPATH")]))
    if probe_path is not None:
        env[probe.ENV] = str(probe_path)
    return env


def start_helper() -> None:
    """Start the warm helper (in the background: it imports torch while the learner reads),
    where forking is safe; elsewhere every run is a fresh Python."""
    global _helper
    from coach.learner.warm import fork_choice

    if fork_choice()[0] and (_helper is None or _helper.process.poll() is not None):
        _helper = warm.Helper(child_env())
        atexit.register(_helper.stop)


def run_function(function: str, args: list[str], env: dict[str, str], limit: float):
    """Run coach's `function` ("test" or "graph") with `args` in a child process; return
    (its output, why it was stopped or ""). The warm helper forks it when it can."""
    if _helper is not None and _helper.process.poll() is not None:
        start_helper()  # it ended (killed, out of memory): the next run gets a new one
    if _helper is not None and _helper.alive():
        with tempfile.TemporaryDirectory(prefix="coach-run-") as scratch:
            log = Path(scratch) / "output.log"
            result = _helper.run(function, args, env, log, limit)
            if result is not None:
                output = log.read_text(encoding="utf-8", errors="replace") if log.exists() else ""
                return output, result[1]
    return run_child(warm.fresh_command(function, args), env, limit)


def run_child(command: list[str], env: dict[str, str], limit: float) -> tuple[str, str]:
    """Run `command` from the course folder; return (its output, why it was stopped or "").

    The child gets a process group of its own, so that stopping it also stops anything it
    started; an interrupt of the kernel (the stop button) stops the child, not the kernel.
    """
    posix = os.name == "posix"
    child = subprocess.Popen(
        command,
        cwd=registry.ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        text=True,
        start_new_session=posix,
    )
    try:
        output, _ = child.communicate(timeout=limit)
        return output, ""
    except subprocess.TimeoutExpired:
        why = (
            f"The run was stopped after {limit:.0f} s: your code was still running. An "
            f"endless loop that no single test's 10 s limit caught?"
        )
    except KeyboardInterrupt:
        why = "You interrupted the run; it was stopped. The kernel is fine."
    if posix:
        os.killpg(child.pid, signal.SIGKILL)
    else:
        child.kill()
    output, _ = child.communicate()
    return output, why


def in_cell_terms(text: str, path: Path) -> str:
    """A message with the notebook copy's path put as the learner knows it: their cell."""
    forms = {str(path), os.path.relpath(path, registry.ROOT)}
    for form in sorted(forms, key=len, reverse=True):
        pattern = re.escape(form) + r"(?::(\d+)|, line (\d+))?"

        def named(match: re.Match) -> str:
            line = match.group(1) or match.group(2)
            return f"{CELL}, line {line}" if line else CELL

        text = re.sub(pattern, named, text)
    return text


def torch_note() -> str:
    """A warning when this Python's torch is not the version the course pins (Colab's own)."""
    pinned = bootstrap.torch_pin().split("==", 1)[1]
    try:
        have = metadata.version("torch")
    except metadata.PackageNotFoundError:
        return ""
    if have.split("+", 1)[0] == pinned:
        return ""
    return (
        f"This Python has torch {have}; the course pins {pinned}. The tests and their "
        f"explanations are written against {pinned}: on another version almost every kata "
        f"behaves the same, but where torch changed, a test can fail or an error can read "
        f"differently for that reason alone. `make grade` on the course's machines uses "
        f"{pinned}."
    )


def run_cell(kata: registry.Kata, body: str, seed: int | None = None) -> CellRun:
    """Write the body, test it in a child process, and read back what happened."""
    seed = new_seed() if seed is None else seed
    path = write_cell(kata, body)
    result = CellRun(kata=kata, seed=seed, torch_note=torch_note())
    with tempfile.TemporaryDirectory(prefix="coach-cell-") as scratch:
        outcomes, probed = Path(scratch) / "outcomes.json", Path(scratch) / "probe.json"
        output, stopped = run_function(
            "test", test_args(kata, outcomes, seed), child_env(probed), CHILD_LIMIT
        )
        if stopped or not outcomes.is_file():
            tail = "\n".join(output.strip().splitlines()[-15:])
            result.problem = in_cell_terms(
                stopped or f"The test run ended without results. Its last words:\n{tail}", path
            )
            return result
        payload = json.loads(outcomes.read_text(encoding="utf-8"))
        if probed.is_file():
            imported = json.loads(probed.read_text(encoding="utf-8"))["imported"]
            result.imported = bool(imported.get(kata.name))
    tests = sorted(
        (t for t in payload["tests"] if t["kata"] == kata.name), key=lambda t: t.get("line", 0)
    )
    by_id = {}
    for test in tests:
        name = test["nodeid"].split("::")[-1]
        by_id[test["nodeid"]] = TestResult(
            name, test["outcome"], in_cell_terms(test["message"], path)
        )
    result.tests = list(by_id.values())
    progress = summary.Progress.from_json(payload)
    kata_result = next(r for r in progress.results if r.kata.name == kata.name)
    if kata_result.failures:
        result.first_failure = by_id.get(summary.first_failure(kata_result)[1])
    return result


def remember(run: CellRun) -> None:
    """Keep this run's score for `%kata_progress` in the learner's state file."""
    learner = state.load()
    learner.setdefault("notebook", {})[run.kata.name] = {
        "passed": run.passed,
        "total": len(run.tests),
        "green": run.green,
        "seed": run.seed,
        "when": time.strftime("%Y-%m-%d %H:%M"),
    }
    state.save(learner)


def run_in_kernel(path: Path, namespace: dict) -> str:
    """Run the tested file in the kernel's namespace, so later cells can call its functions.
    Returns "" or what went wrong. Only called after the child imported it cleanly."""
    from coach.notebook.kept import kernel_state_kept

    try:
        code = compile(path.read_text(encoding="utf-8"), str(path), "exec")
        with kernel_state_kept():
            exec(code, namespace)
    except Exception as error:
        return in_cell_terms(
            f"Running the cell in the notebook raised {type(error).__name__}: {error}", path
        )
    return ""
