"""Run each kata's tests in a process of its own, for a grader that never runs learner code.

    python -I coach/grading/kata_runner.py run --impl=katas --out run.json [--kata NAME ...]
    python -I coach/grading/kata_runner.py collect --out expected.json

`run` is the warm parent: it imports torch, pytest and the coach plugin once (never a kata:
the loader imports a kata file only when a test first touches it), then runs one child per
kata, one after the other. Where the OS has fork(), a child is a fork of this process and
starts at once; elsewhere it is a fresh `python -I` (about a second slower per kata). Each
child runs one kata's tests with pytest and writes a report; the parent records how the child
ended (exit code, signal, time limit), stops whatever the child left running, and finally
writes `run.json`: per kata, how its process ended and its report. It decides nothing:
coach/grading/judge.py (standard library only, no learner code) turns that file into points.

pytest runs with the grader's options and configuration only: `-c` a configuration file
written here (no learner's pytest.ini, pyproject.toml or addopts), `--noconftest` (no
conftest.py anywhere), plugins loaded by name with autoloading off, and an environment
without PYTEST_ADDOPTS. So a learner's files or environment cannot change which tests run.

A child also watches its own process: just before the first test it records every function
and class of pytest, pluggy, the coach and the test modules, and the registered hooks; after
the last test it reports any of them replaced. Kata code that rewrites how pytest reports
(even through `torch.sys.modules`) makes its kata's report void.

Standard library only at import time, and run by path with `-I`: the working folder and
PYTHONPATH are not on sys.path, so a module a learner puts at the root cannot stand in for
torch, pytest or a plugin. This file's own repository root goes at the END of sys.path, for
`coach` alone.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.append(str(ROOT))  # last: installed packages always win over root-level files

CAN_FORK = hasattr(os, "fork")
DEFAULT_LIMIT = 120.0  # seconds one kata's process may take; pytest-timeout stops a test at 10
PYTHON_FLAGS = ["-I"]  # isolated: no working folder, PYTHONPATH or user site on sys.path
# The grader's own pytest configuration: nothing in the learner's repository is read.
GRADER_INI = """\
[pytest]
timeout = 10
timeout_method = signal
filterwarnings =
    error::pytest.PytestUnhandledThreadExceptionWarning
"""
# Installed plugins the kata tests use, loaded by name (autoloading is off).
PLUGINS = ("pytest_timeout", "pytest_randomly")
# pytest exit codes of a run that went to its end: all passed, some failed, none collected.
COMPLETED = (0, 1, 5)
REPORT_VERSION = 1


def clean_env(base: dict[str, str] | None = None) -> dict[str, str]:
    """The environment of a grading run: no pytest or Python settings of the learner's."""
    env = {
        key: value
        for key, value in (os.environ if base is None else base).items()
        if not key.startswith(("PYTEST_", "PYTHON", "KATAS_", "COV_"))
    }
    env["PYTEST_DISABLE_PLUGIN_AUTOLOAD"] = "1"
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    return env


def command(*args: str, python: str | None = None) -> list[str]:
    """How another process starts this file: `python -I coach/grading/kata_runner.py ARGS`."""
    return [python or sys.executable, *PYTHON_FLAGS, str(Path(__file__).resolve()), *args]


# --- inside a child: pytest, a recorder and a guard ------------------------------------------


def pytest_args(
    test_files: list[str], impl: str, ini: str, seed: int | None, collect_only: bool = False
) -> list[str]:
    import importlib.util

    args = [*test_files, f"--impl={impl}", "-c", ini, f"--rootdir={ROOT}", "--noconftest"]
    args += ["-p", "coach.runtime.plugin", "-p", "no:cacheprovider", "--coach-summary=off"]
    for unused in ("terminal", "pastebin", "junitxml", "doctest", "nose", "stepwise"):
        args += ["-p", f"no:{unused}"]
    args.append("--continue-on-collection-errors")  # a test file that fails: its tests fail
    for plugin in PLUGINS:
        if importlib.util.find_spec(plugin) is not None and not (
            collect_only and "random" in plugin
        ):
            args += ["-p", plugin]
    if seed is not None and importlib.util.find_spec("pytest_randomly") is not None:
        args.append(f"--randomly-seed={seed}")
    return args


def _message(report) -> str:
    longrepr = report.longrepr
    if isinstance(longrepr, str):
        return longrepr
    if isinstance(longrepr, tuple):  # a skip: (file, line, reason)
        return str(longrepr[-1])
    crash = getattr(longrepr, "reprcrash", None)
    return crash.message if crash is not None else str(longrepr or "")


# Modules whose functions and classes decide what a report says.
WATCHED = ("_pytest", "pytest", "pluggy", "coach", "pytest_timeout", "pytest_randomly")


def _is_code(value) -> bool:
    import types

    kinds = (types.FunctionType, types.BuiltinFunctionType, types.MethodType, type)
    return isinstance(value, (*kinds, classmethod, staticmethod, property))


def _watched_modules(test_dir: Path) -> list[tuple[str, object]]:
    found = []
    for name, module in list(sys.modules.items()):
        if module is None:
            continue
        top = name.split(".")[0]
        where = getattr(module, "__file__", None) or ""
        mine = where == __file__  # this runner itself, as __main__ or as coach.grading.kata_runner
        if top in WATCHED or top in {"builtins", "json"} or mine or where.startswith(str(test_dir)):
            found.append((name, module))
    return found


def snapshot(config, test_dir: Path) -> dict[str, object]:
    """Every function and class (and class member) the report depends on, by dotted name."""
    seen: dict[str, object] = {}
    for name, module in _watched_modules(test_dir):
        for attr, value in list(vars(module).items()):
            if not _is_code(value):
                continue
            seen[f"{name}.{attr}"] = value
            if isinstance(value, type) and value.__module__ == name and name != "builtins":
                for member, inner in list(vars(value).items()):
                    if _is_code(inner):
                        seen[f"{name}.{attr}.{member}"] = inner
    for hook in dir(config.hook):
        caller = getattr(config.hook, hook)
        if hasattr(caller, "get_hookimpls"):
            seen[f"hook {hook}"] = tuple(impl.function for impl in caller.get_hookimpls())
    seen["registered plugins"] = tuple(config.pluginmanager.get_plugins())
    return seen


def changes(before: dict[str, object], config, test_dir: Path) -> list[str]:
    """Names in `before` that now hold something else."""
    after = snapshot(config, test_dir)
    changed = []
    for name, value in before.items():
        now = after.get(name, value)
        same = (
            len(now) == len(value) and all(a is b for a, b in zip(now, value))
            if isinstance(value, tuple) and isinstance(now, tuple)
            else now is value
        )
        if not same:
            changed.append(name)
    return sorted(changed)


class Recorder:
    """The child's own record of the run, kept apart from the coach plugin's."""

    def __init__(self, test_dir: Path, collected_path: str | None = None):
        self.test_dir = test_dir
        self.collected_path = collected_path
        self.collected: list[str] = []
        self.tests: dict[str, dict] = {}
        self.before: dict[str, object] | None = None
        self.config = None
        self.interrupted = ""
        self.tampered: list[str] = []

    def pytest_configure(self, config):
        self.config = config

    def pytest_collection_finish(self, session):
        self.collected = [item.nodeid for item in session.items]
        if self.collected_path:  # before any test, so before any kata code: what should run
            _write_report({"collected": self.collected}, self.collected_path)
        self.before = snapshot(session.config, self.test_dir)

    def pytest_collectreport(self, report):
        if report.failed:
            nodeid = report.nodeid or str(report.fspath)
            self.tests[nodeid] = {"outcome": "error", "message": _message(report)}

    def pytest_runtest_logreport(self, report):
        if report.when == "call":
            outcome = report.outcome
        elif report.failed:
            outcome = "error"
        elif report.skipped and report.when == "setup":
            outcome = "skipped"
        else:
            return
        earlier = self.tests.get(report.nodeid)
        if report.when == "teardown" and earlier and earlier["outcome"] != "passed":
            return
        message = "" if outcome == "passed" else _message(report)
        line = report.location[1] if report.location else 0
        self.tests[report.nodeid] = {"outcome": outcome, "message": message, "line": line}

    def pytest_keyboard_interrupt(self, excinfo):
        self.interrupted = f"{excinfo.typename}: {excinfo.value}"

    def pytest_sessionfinish(self, session):
        # Compared here, after the last test and before pytest undoes its own patches.
        if self.before is not None:
            self.tampered = changes(self.before, session.config, self.test_dir)


def run_child(spec: dict) -> dict:
    """One kata's tests in this process; returns the report (the caller writes it)."""
    import pytest

    test_dir = ROOT / "tests"
    recorder = Recorder(test_dir, spec.get("collected_path"))
    collect_only = bool(spec.get("collect_only"))
    args = pytest_args(
        spec["test_files"], spec["impl"], spec["ini"], spec.get("seed"), collect_only
    )
    if collect_only:
        args.append("--collect-only")
    exitstatus, crash = None, ""
    try:
        exitstatus = int(pytest.main(args, plugins=[recorder]))
    except BaseException as error:  # anything at all must still be reported
        crash = f"{type(error).__name__}: {error}"
    return {
        "version": REPORT_VERSION,
        "kata": spec.get("kata"),
        "exitstatus": exitstatus,
        "crash": crash,
        "interrupted": recorder.interrupted,
        "collected": recorder.collected,
        "tests": recorder.tests,
        "tampered": recorder.tampered,
    }


def _die_with(parent: int) -> None:
    """On Linux, this child is killed when `parent` dies (Ctrl-C, or the grader killed it):
    in a process group of its own, it would otherwise run on, orphaned, to its time limit."""
    if not sys.platform.startswith("linux"):
        return
    with contextlib.suppress(Exception):
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL, 0, 0, 0)  # PR_SET_PDEATHSIG
    if os.getppid() != parent:  # the parent died before the line above
        os._exit(70)


def _child_process(spec: dict, report_path: str, log_path: str, parent: int) -> None:
    """The body of a forked child: run, write the report, and never return."""
    code = 70
    try:
        _die_with(parent)
        os.setpgid(0, 0)  # its own process group: whatever it starts can be stopped with it
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        with open(log_path, "ab") as log, open(os.devnull, "rb") as nothing:
            os.dup2(nothing.fileno(), 0)
            os.dup2(log.fileno(), 1)
            os.dup2(log.fileno(), 2)
        report = run_child(spec)
        _write_report(report, report_path)
        code = 0
    finally:
        os._exit(code)


def _write_report(report: dict, path: str) -> None:
    text = json.dumps(report)
    with open(path, "w", encoding="utf-8") as handle:
        handle.write(text)


# --- the parent: one child per kata ----------------------------------------------------------


class _Subreaper:
    """On Linux, orphans of our children come back to us, so none can outlive its kata."""

    def __init__(self):
        self.active = False
        if sys.platform.startswith("linux"):
            with contextlib.suppress(Exception):
                import ctypes

                libc = ctypes.CDLL(None, use_errno=True)
                self.active = libc.prctl(36, 1, 0, 0, 0) == 0  # PR_SET_CHILD_SUBREAPER

    def stop_strays(self) -> int:
        """SIGKILL every process still parented to us (a kata's leftovers); how many."""
        if not self.active:
            return 0
        me, stopped = str(os.getpid()), 0
        for _ in range(20):
            found = []
            for entry in Path("/proc").iterdir():
                if not entry.name.isdigit():
                    continue
                with contextlib.suppress(OSError, IndexError):
                    stat = (entry / "stat").read_text()
                    if stat.rsplit(")", 1)[1].split()[1] == me:
                        found.append(int(entry.name))
            if not found:
                return stopped
            for pid in found:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
                with contextlib.suppress(ChildProcessError):
                    os.waitpid(pid, 0)
                stopped += 1
        return stopped


def _refuse_learner_modules(impl: str) -> None:
    folder = str(Path(impl).resolve()) + os.sep
    loaded = [
        name
        for name, module in list(sys.modules.items())
        if str(getattr(module, "__file__", None) or "").startswith(folder)
    ]
    if loaded:
        raise RuntimeError(f"the grading parent imported learner code: {loaded}")


def _start(spec: dict, report: Path, log: Path, fork: bool):
    """A running child: (pid, Popen or None)."""
    if fork:
        import gc

        gc.freeze()  # the child's collector leaves the parent's objects (and pages) alone
        parent = os.getpid()
        pid = os.fork()
        if pid == 0:
            _child_process(spec, str(report), str(log), parent)
        return pid, None
    with open(log, "ab") as output:
        process = subprocess.Popen(
            command("child", json.dumps(spec), str(report)),
            stdin=subprocess.DEVNULL,
            stdout=output,
            stderr=subprocess.STDOUT,
            env=clean_env(),
            start_new_session=True,
        )
    return process.pid, process


def _wait(pid: int, process, limit: float) -> dict:
    """How the child ended: exit code or signal, or stopped at the time limit."""
    started = time.monotonic()
    deadline = started + limit
    status = {"exit": None, "signal": None, "timed_out": False}
    while True:
        if process is not None:
            code = process.poll()
            if code is not None:
                if code < 0:
                    status["signal"] = -code
                else:
                    status["exit"] = code
                break
        else:
            done, raw = os.waitpid(pid, os.WNOHANG)
            if done:
                if os.WIFSIGNALED(raw):
                    status["signal"] = os.WTERMSIG(raw)
                else:
                    status["exit"] = os.waitstatus_to_exitcode(raw)
                break
        if time.monotonic() > deadline:
            status["timed_out"] = True
            _kill_group(pid)
            _reap(pid, process)
            break
        time.sleep(0.005)
    _kill_group(pid)  # anything the kata started in its group goes with it
    status["seconds"] = round(time.monotonic() - started, 3)
    return status


def _reap(pid: int, process) -> None:
    """Wait for a child that was just killed."""
    if process is not None:
        process.wait()
    else:
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, 0)


def _kill_group(pid: int) -> None:
    if hasattr(os, "killpg"):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pid, signal.SIGKILL)
    else:  # Windows
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGTERM)


def _read_report(path: Path) -> dict | None:
    try:
        report = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return report if isinstance(report, dict) else None


def run_all(jobs: list[dict], limit: float, fork: bool, log_path: Path | None = None) -> list[dict]:
    """Each job's child, one after the other; (job name, status, report) per job."""
    if fork and jobs:
        import pytest  # noqa: F401  (warm: every child starts with these imported)
        import torch  # noqa: F401

        import coach.runtime.plugin  # noqa: F401

        for plugin in PLUGINS:
            with contextlib.suppress(ImportError):
                __import__(plugin)
    reaper = _Subreaper()
    results = []
    with tempfile.TemporaryDirectory(prefix="grading-") as scratch:
        ini = Path(scratch) / "grader.ini"
        ini.write_text(GRADER_INI, encoding="utf-8")
        log = Path(log_path) if log_path else Path(scratch) / "pytest.log"
        for job in jobs:
            # A fresh, unguessable name per child: an earlier kata cannot have prepared it.
            report = Path(scratch) / f"{secrets.token_hex(16)}.json"
            collected = report.with_suffix(".collected")
            spec = {**job["spec"], "ini": str(ini), "collected_path": str(collected)}
            with open(log, "a", encoding="utf-8") as handle:
                handle.write(f"\n=== {job['name']} ===\n")
            if fork:  # this process must never have imported learner code: it forks them all
                _refuse_learner_modules(spec["impl"])
            pid, process = _start(spec, report, log, fork)
            try:
                status = _wait(pid, process, limit)
            except KeyboardInterrupt:  # Ctrl-C: the child (in a group of its own) goes too
                _kill_group(pid)
                _reap(pid, process)
                raise
            status["strays_stopped"] = reaper.stop_strays()
            listed = (_read_report(collected) or {}).get("collected")
            results.append(
                {
                    "name": job["name"],
                    "status": status,
                    "report": _read_report(report),
                    "collected": listed if isinstance(listed, list) else [],
                }
            )
            for path in (report, collected):
                with contextlib.suppress(OSError):
                    path.unlink()
    return results


def registry_test_file(name: str) -> str:
    from coach.core import registry

    return registry.BY_NAME[name].test_file


def _katas(names: list[str]):
    from coach.core import registry

    if not names:
        return list(registry.KATAS)
    return [registry.find(name) for name in names]


def _resolve_impl(impl: str) -> str:
    for candidate in (Path(impl), ROOT / impl):
        if candidate.is_dir():
            return str(candidate.resolve())
    return str(Path(impl).resolve())


def grade_jobs(katas, impl: str, seed: int | None) -> list[dict]:
    return [
        {
            "name": kata.name,
            "spec": {
                "kata": kata.name,
                "test_files": [str(ROOT / kata.test_file)],
                "impl": impl,
                "seed": seed,
            },
        }
        for kata in katas
        if (ROOT / kata.test_file).is_file()
    ]


def collect(katas, fork: bool = CAN_FORK, limit: float = DEFAULT_LIMIT) -> dict[str, list[str]]:
    """Every test id of `katas`, as the grader's pytest collects them (no kata is imported)."""
    files = [str(ROOT / kata.test_file) for kata in katas if (ROOT / kata.test_file).is_file()]
    if not files:
        return {kata.name: [] for kata in katas}
    with tempfile.TemporaryDirectory(prefix="no-katas-") as empty:  # collection imports none
        spec = {"kata": None, "test_files": files, "impl": empty, "collect_only": True}
        [result] = run_all([{"name": "collect", "spec": spec}], limit, fork)
    report = result["report"] or {}
    if report.get("exitstatus") not in COMPLETED:
        raise RuntimeError(f"pytest could not collect the kata tests: {result}")
    ids: dict[str, list[str]] = {kata.name: [] for kata in katas}
    prefixes = {kata.name: f"{kata.test_file}::" for kata in katas}
    for nodeid in sorted(report.get("collected", [])):
        for name, prefix in prefixes.items():
            if nodeid.startswith(prefix):
                ids[name].append(nodeid)
    return ids


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -I coach/grading/kata_runner.py")
    sub = parser.add_subparsers(dest="action", required=True)
    run = sub.add_parser("run", help="grade katas, one process each, into --out")
    run.add_argument("--impl", default="katas")
    run.add_argument("--out", required=True)
    run.add_argument("--kata", action="append", default=[])
    run.add_argument("--seed", type=int, default=None)
    run.add_argument("--limit", type=float, default=DEFAULT_LIMIT)
    run.add_argument("--no-fork", action="store_true")
    run.add_argument(
        "--collect",
        action="store_true",
        help="also list the tests each kata's process collected (before any of them ran)",
    )
    run.add_argument("--log", default=None)
    listing = sub.add_parser("collect", help="the test ids of every kata, as JSON")
    listing.add_argument("--out", required=True)
    listing.add_argument("--no-fork", action="store_true")
    child = sub.add_parser("child", help=argparse.SUPPRESS)
    child.add_argument("spec")
    child.add_argument("report")
    args = parser.parse_args(argv)

    if args.action == "child":  # the no-fork route: this process is the kata's child
        _die_with(os.getppid())
        _write_report(run_child(json.loads(args.spec)), args.report)
        os._exit(0)
    for name in list(os.environ):
        if name.startswith("PYTEST_") or name == "KATAS_IMPL":
            del os.environ[name]  # the children inherit this environment
    os.environ["PYTEST_DISABLE_PLUGIN_AUTOLOAD"] = "1"
    fork = CAN_FORK and not args.no_fork
    if args.action == "collect":
        ids = collect(_katas([]), fork)
        Path(args.out).write_text(json.dumps(ids, indent=2) + "\n", encoding="utf-8")
        return 0
    katas = _katas(args.kata)
    started = time.monotonic()
    jobs = grade_jobs(katas, _resolve_impl(args.impl), args.seed)
    try:
        results = run_all(jobs, args.limit, fork, Path(args.log) if args.log else None)
    except KeyboardInterrupt:  # Ctrl-C: no run.json; the caller says it stopped
        return 130
    expected = None
    if args.collect:  # what each child collected, written before any of its tests ran
        expected = {kata.name: [] for kata in katas}
        for result in results:
            expected[result["name"]] = sorted(
                str(nodeid)
                for nodeid in result["collected"]
                if str(nodeid).startswith(f"{registry_test_file(result['name'])}::")
            )
    payload = {
        "version": REPORT_VERSION,
        "route": "fork" if fork else "subprocess",
        "limit": args.limit,
        "seed": args.seed,
        "expected": expected,
        "katas": {result["name"]: result for result in results},
        "seconds": round(time.monotonic() - started, 3),
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".part")
    tmp.write_text(json.dumps(payload, indent=1) + "\n", encoding="utf-8")
    shutil.move(str(tmp), str(out))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
