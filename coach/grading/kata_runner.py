"""Run each kata's tests in a process of its own, for a grader that never runs learner code.

    python -I TREE/coach/grading/kata_runner.py run --impl=TREE/katas --out run.json \
        [--kata NAME ...] [--sandbox auto|sudo|none]
    python -I coach/grading/kata_runner.py collect --out expected.json

`run` is the warm parent: it imports torch, pytest and the coach plugin once (never a kata:
the loader imports a kata file only when a test first touches it), then runs one child per
kata, one after the other. Where the OS has fork(), a child is a fork of this process and
starts at once; elsewhere it is a fresh `python -I` (about a second slower per kata). Each
child runs one kata's tests with pytest in a session of its own, with a scratch HOME and
TMPDIR, and sends every record to the parent through a pipe as it happens; the parent
records how the child ended (exit code, signal, time limit), stops whatever the child left
running, and finally writes `run.json`: per kata, how its process ended and its report. It
decides nothing: coach/grading/judge.py (standard library only, no learner code) turns that
file into points.

Who runs kata code (`--sandbox`): where this process is root (`auto`), or can become root
through `sudo -n` (`sudo`: CI runners), each child drops to an unprivileged kata user
(coach/grading/sandbox.py) that can read the Python, the tests and the katas and write none
of them, nor site-packages; after each kata every process of that user is killed. Elsewhere
kata code runs as this user, and run.json says why (a practice grade). Either way, before
each child and after the last, the grading tree and Python's start-up files (`*.pth`,
site/usercustomize) are compared with what they were: a change is put back and voids the
kata that made it.

pytest runs with the grader's options and configuration only: `-c` a configuration file
written here (no learner's pytest.ini, pyproject.toml or addopts), `--noconftest` (no
conftest.py anywhere), plugins loaded by name with autoloading off, and an environment
without PYTEST_ADDOPTS. So a learner's files or environment cannot change which tests run.

A child also watches its own process: just before the first test it records every function
and class of pytest, pluggy, the coach, the test modules and the standard-library modules
the comparisons use, and the registered hooks; after every test it reports any of them
replaced, which makes its kata's report void. Each test's record has left the process by
then, so editing the recorder's memory later changes nothing; a record written by anyone
else arrives twice or out of order, and voids the kata too.

Standard library only at import time, and run by path with `-I` from a grading tree
(coach/grading/tree.py: the grader's files and the learner's katas/*.py, nothing else): the
working folder and PYTHONPATH are not on sys.path. The tree's root goes at the END of
sys.path, for `coach` alone.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from coach.grading import records

ROOT = Path(__file__).resolve().parents[2]
sys.dont_write_bytecode = True  # the tree stays as built: a .pyc there could only be forged
if str(ROOT) not in sys.path:
    sys.path.append(str(ROOT))  # last, and a grading tree: only coach/, tests/, lessons/, katas/

CAN_FORK = hasattr(os, "fork")
PIPES = os.name != "nt"  # a child inherits a pipe by its number (pass_fds): POSIX only
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
SANDBOXES = ("auto", "sudo", "none")
# Standard-library modules whose functions the report's code and the tests' comparisons use.
WATCHED_STDLIB = ("builtins", "json", "math", "operator", "os", "posix", "functools")


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
        if top in WATCHED or top in WATCHED_STDLIB or mine or where.startswith(str(test_dir)):
            found.append((name, module))
    return found


_MISSING = object()


class Guard:
    """Every function and class (and class member) a report depends on, by dotted name.

    Taken once, before any kata code runs; `changed()` (after every test) lists the names
    that hold something else now. Comparing identities over the live namespaces is cheap
    (a few milliseconds), so it runs after each test, not only at the end of the session.
    """

    def __init__(self, config, test_dir: Path):
        self.config = config
        self.entries: list[tuple[object, str, object, str]] = []
        for name, module in _watched_modules(test_dir):
            space = vars(module)
            for attr, value in list(space.items()):
                if not _is_code(value):
                    continue
                self.entries.append((space, attr, value, f"{name}.{attr}"))
                if isinstance(value, type) and value.__module__ == name and name != "builtins":
                    members = vars(value)  # a live view: later changes show through it
                    for member, inner in list(members.items()):
                        if _is_code(inner):
                            self.entries.append((members, member, inner, f"{name}.{attr}.{member}"))
        self.hooks = self._hooks()

    def _hooks(self) -> dict[str, tuple]:
        found = {}
        for hook in dir(self.config.hook):
            caller = getattr(self.config.hook, hook)
            if hasattr(caller, "get_hookimpls"):
                found[f"hook {hook}"] = tuple(impl.function for impl in caller.get_hookimpls())
        found["registered plugins"] = tuple(self.config.pluginmanager.get_plugins())
        return found

    def changed(self) -> list[str]:
        names = [
            label
            for space, key, value, label in self.entries
            if space.get(key, _MISSING) is not value
        ]
        now = self._hooks()
        for label, before in self.hooks.items():
            after = now.get(label, ())
            if len(after) != len(before) or any(a is not b for a, b in zip(after, before)):
                names.append(label)
        return sorted(names)


class Recorder:
    """The child's own record of the run, kept apart from the coach plugin's, sent as it goes."""

    def __init__(self, test_dir: Path, channel: records.Channel):
        self.test_dir = test_dir
        self.channel = channel
        self.guard: Guard | None = None
        self.reported: set[str] = set()

    def pytest_collection_finish(self, session):
        # Before any test, so before any kata code: what should run, in the order it will.
        self.channel.send("collected", ids=[item.nodeid for item in session.items])
        self.guard = Guard(session.config, self.test_dir)

    def pytest_collectreport(self, report):
        if report.failed:
            nodeid = report.nodeid or str(report.fspath)
            self.channel.send("collecterror", nodeid=nodeid, message=_message(report))

    def pytest_runtest_logreport(self, report):
        outcome = report.outcome
        message = "" if outcome == "passed" else _message(report)
        line = report.location[1] if report.location else 0
        self.channel.send(
            "phase", nodeid=report.nodeid, when=report.when, outcome=outcome,
            message=message, line=line,
        )  # fmt: skip
        if report.when == "teardown":
            self._check(report.nodeid)

    def _check(self, after: str) -> None:
        if self.guard is None:
            return
        names = [name for name in self.guard.changed() if name not in self.reported]
        if names:
            self.reported.update(names)
            self.channel.send("tampered", names=names, after=after)

    def pytest_keyboard_interrupt(self, excinfo):
        self.channel.send("interrupted", what=f"{excinfo.typename}: {excinfo.value}")

    def pytest_sessionfinish(self, session):
        self._check("the last test")  # before pytest undoes its own patches


def run_child(spec: dict, channel: records.Channel) -> None:
    """One kata's tests in this process, every record sent to the parent as it happens."""
    import pytest

    from coach.grading.records import watch_kata_code

    sys.dont_write_bytecode = True
    if not spec.get("collect_only"):
        watch_kata_code(channel, spec["impl"])
    recorder = Recorder(ROOT / "tests", channel)
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
    channel.send("end", exitstatus=exitstatus, crash=crash)


def _die_with(parent: int) -> None:
    """On Linux, this child is killed when `parent` dies (Ctrl-C, or the grader killed it):
    in a process group of its own, it would otherwise run on, orphaned, to its time limit.
    Call it after any change of user: Linux clears the parent-death signal on one."""
    if not sys.platform.startswith("linux"):
        return
    with contextlib.suppress(Exception):
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL, 0, 0, 0)  # PR_SET_PDEATHSIG
    if os.getppid() != parent:  # the parent died before the line above
        os._exit(70)


def _child_process(spec: dict, fd: int, log_path: str, *, account, home, parent: int) -> None:
    """The body of a forked child: run, report, and never return."""
    code = 70
    try:
        os.setsid()  # a session and process group of its own: stopped with all it started
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        with open(log_path, "ab") as log, open(os.devnull, "rb") as nothing:
            os.dup2(nothing.fileno(), 0)
            os.dup2(log.fileno(), 1)
            os.dup2(log.fileno(), 2)
        from coach.grading import records, sandbox

        sandbox.become(account, home)
        _die_with(parent)
        run_child(spec, records.Channel(fd))
        code = 0
    finally:
        os._exit(code)


# --- the parent: one child per kata ----------------------------------------------------------


def _refuse_learner_modules(impl: str) -> None:
    folder = str(Path(impl).resolve()) + os.sep
    loaded = [
        name
        for name, module in list(sys.modules.items())
        if str(getattr(module, "__file__", None) or "").startswith(folder)
    ]
    if loaded:
        raise RuntimeError(f"the grading parent imported learner code: {loaded}")


def _start(spec: dict, write_fd: int | str, log: Path, fork: bool, *, account, home):
    """A running child: (pid, Popen or None). `write_fd`: the pipe's end for the child, or
    (on Windows, whose pipes a child cannot inherit by number) a file it appends to."""
    if fork:
        import gc

        gc.freeze()  # the child's collector leaves the parent's objects (and pages) alone
        parent = os.getpid()
        pid = os.fork()
        if pid == 0:
            _child_process(spec, write_fd, str(log), account=account, home=home, parent=parent)
        return pid, None
    env = clean_env()
    if home:
        tmp = str(Path(home) / "tmp")
        env.update(HOME=home, TMPDIR=tmp, TMP=tmp, TEMP=tmp)
    extra = {}
    if account:
        extra = {"user": account["uid"], "group": account["gid"], "extra_groups": []}
        env["USER"] = env["LOGNAME"] = account["name"]
    with open(log, "ab") as output:
        process = subprocess.Popen(
            command("child", json.dumps(spec), str(write_fd)),
            stdin=subprocess.DEVNULL, stdout=output, stderr=subprocess.STDOUT, env=env,
            cwd=home or None, start_new_session=True, **extra,
            **({"pass_fds": (write_fd,)} if isinstance(write_fd, int) else {}),
        )  # fmt: skip
    return process.pid, process


def _drain(fd: int, report: records.Report) -> bool:
    """Read what the child sent so far; False once the pipe is closed and empty."""
    while True:
        try:
            data = os.read(fd, 1 << 16)
        except BlockingIOError:
            return True
        except OSError:
            return False
        if not data:
            return False
        report.feed(data)


def _ended(pid: int, process, status: dict) -> bool:
    """Whether the child has ended; how goes into `status`."""
    if process is not None:
        code = process.poll()
        if code is None:
            return False
        status["signal" if code < 0 else "exit"] = abs(code)
        return True
    done, raw = os.waitpid(pid, os.WNOHANG)
    if not done:
        return False
    if os.WIFSIGNALED(raw):
        status["signal"] = os.WTERMSIG(raw)
    else:
        status["exit"] = os.waitstatus_to_exitcode(raw)
    return True


def _wait(pid: int, process, limit: float, fd: int | None, report: records.Report) -> dict:
    """How the child ended: exit code or signal, or stopped at the time limit. What it sends
    meanwhile goes into `report` (a full pipe would otherwise stop it); no pipe: fd None."""
    import selectors

    started = time.monotonic()
    deadline = started + limit
    status = {"exit": None, "signal": None, "timed_out": False}
    selector = selectors.DefaultSelector()
    open_pipe = fd is not None
    if open_pipe:
        selector.register(fd, selectors.EVENT_READ)
    while not _ended(pid, process, status):
        if open_pipe and selector.select(timeout=0.005):
            open_pipe = _drain(fd, report)
        elif not open_pipe:
            time.sleep(0.002)
        if time.monotonic() > deadline:
            status["timed_out"] = True
            _kill_group(pid)
            _reap(pid, process)
            break
    _kill_group(pid)  # anything the kata started in its group goes with it
    selector.close()
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


def _scratch_home(scratch: Path, account) -> str | None:
    """A fresh HOME (with tmp/) for one kata, owned by the kata user."""
    home = Path(tempfile.mkdtemp(prefix="home-", dir=scratch))
    (home / "tmp").mkdir()
    if account:
        for path in (home, home / "tmp"):
            os.chown(path, account["uid"], account["gid"])
    return str(home)


def _run_child_process(spec, log, fork, limit, report, *, account, home) -> dict:
    """Start one kata's child, take what it sends into `report`, and say how it ended; every
    process of the kata user is killed after it."""
    from coach.grading import sandbox

    if PIPES:
        read_fd, write_fd = os.pipe()
        os.set_blocking(read_fd, False)
    else:  # Windows: the child appends to a file, read once it has ended
        read_fd, write_fd = None, str(Path(home) / "records.jsonl")
    try:
        pid, process = _start(spec, write_fd, log, fork, account=account, home=home)
    finally:
        if read_fd is not None:
            os.close(write_fd)
    try:
        status = _wait(pid, process, limit, read_fd, report)
    except KeyboardInterrupt:  # Ctrl-C: the child (in a group of its own) goes too
        _kill_group(pid)
        _reap(pid, process)
        if account:
            sandbox.kill_user(account["uid"])
        raise
    if account:
        status["user_processes_stopped"] = sandbox.kill_user(account["uid"])
    if read_fd is not None:
        _drain(read_fd, report)  # what is left in the pipe; a stray may hold it open: no wait
        os.close(read_fd)
    else:
        with contextlib.suppress(OSError):
            report.feed(Path(write_fd).read_bytes())
    return status


def run_all(
    jobs: list[dict],
    limit: float,
    fork: bool,
    log_path: Path | None = None,
    account: dict | None = None,
) -> list[dict]:
    """Each job's child, one after the other; (job name, status, report) per job.

    Before each child and after the last, the grading tree (tests, coach, katas) is compared
    with its bytes before the first: a change is put back, and charged to the kata that ran
    since the last comparison. So are changes to Python's start-up files (`*.pth`,
    site/usercustomize): what one kata leaves there cannot touch a later kata, or a later run.
    """
    from coach.grading import records, sandbox, tree

    if fork and jobs:
        import pytest  # noqa: F401  (warm: every child starts with these imported)
        import torch  # noqa: F401

        import coach.runtime.plugin  # noqa: F401

        for plugin in PLUGINS:
            with contextlib.suppress(ImportError):
                __import__(plugin)
    reaper = sandbox.Subreaper()
    pristine = tree.snapshot(ROOT)
    site_before = sandbox.site_state()
    results: list[dict] = []
    with tempfile.TemporaryDirectory(prefix="grading-") as scratch:
        os.chmod(scratch, 0o755)
        ini = Path(scratch) / "grader.ini"
        ini.write_text(GRADER_INI, encoding="utf-8")
        os.chmod(ini, 0o644)
        log = Path(log_path) if log_path else Path(scratch) / "pytest.log"
        for job in jobs:
            spec = {**job["spec"], "ini": str(ini), "kata_user": bool(account)}
            with open(log, "a", encoding="utf-8") as handle:
                handle.write(f"\n=== {job['name']} ===\n")
            if fork:  # this process must never have imported learner code: it forks them all
                _refuse_learner_modules(spec["impl"])
            home = _scratch_home(Path(scratch), account)
            report = records.Report(spec.get("kata"))
            status = _run_child_process(spec, log, fork, limit, report, account=account, home=home)
            status["strays_stopped"] = reaper.stop_strays()
            shutil.rmtree(home, ignore_errors=True)
            status["changed_files"] = tree.changed(ROOT, pristine)
            if status["changed_files"]:
                tree.restore(ROOT, pristine, status["changed_files"])
            status["site_changed"] = sandbox.undo_site_changes(site_before)
            results.append(
                {
                    "name": job["name"],
                    "status": status,
                    "report": report.as_dict(),
                    "collected": report.collected or [],
                }
            )
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
    for nodeid in sorted(report.get("collected") or []):
        for name, prefix in prefixes.items():
            if nodeid.startswith(prefix):
                ids[name].append(nodeid)
    return ids


def _parser() -> argparse.ArgumentParser:
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
    run.add_argument(
        "--sandbox",
        choices=SANDBOXES,
        default="auto",
        help="who runs kata code: auto = an unprivileged kata user when this runs as root; "
        "sudo = also become root through `sudo -n` for that, where it works (CI runners); "
        "none = this user (a practice grade)",
    )
    listing = sub.add_parser("collect", help="the test ids of every kata, as JSON")
    listing.add_argument("--out", required=True)
    listing.add_argument("--no-fork", action="store_true")
    child = sub.add_parser("child", help=argparse.SUPPRESS)
    child.add_argument("spec")
    child.add_argument("channel", help="a pipe's file descriptor, or a file to append to")
    return parser


def main(argv: list[str]) -> int:
    args = _parser().parse_args(argv)

    if args.action == "child":  # the no-fork route: this process is the kata's child
        from coach.grading import records, sandbox

        sandbox.become(None, None)  # Popen already made it the kata user, with its HOME
        _die_with(os.getppid())
        spec = json.loads(args.spec)
        if spec.get("kata_user"):
            sandbox.limit_processes()
        channel = args.channel
        if not channel.isdigit():  # Windows
            flags = os.O_WRONLY | os.O_CREAT | os.O_APPEND | getattr(os, "O_BINARY", 0)
            channel = os.open(channel, flags, 0o600)
        run_child(spec, records.Channel(int(channel)))
        os._exit(0)
    from coach.grading import records, sandbox

    sudo = args.action == "run" and args.sandbox == "sudo" and os.geteuid() != 0
    if sudo and sandbox.sudo_works():
        again = [a for a in argv if not a.startswith("--sandbox")] + ["--sandbox=auto"]
        again = [a for a in again if a != "sudo"]
        me = [sys.executable, *PYTHON_FLAGS, str(Path(__file__).resolve())]
        os.execvp("sudo", ["sudo", "-n", "--", *me, *again])  # root: to drop to the kata user
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
    impl = _resolve_impl(args.impl)
    jobs = grade_jobs(katas, impl, args.seed)
    account, why = (None, "no katas")
    if jobs:
        account, why = sandbox.choose_sandbox(args.sandbox, impl, ROOT)
    try:
        results = run_all(jobs, args.limit, fork, Path(args.log) if args.log else None, account)
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
        "version": records.REPORT_VERSION,
        "route": "fork" if fork else "subprocess",
        "limit": args.limit,
        "seed": args.seed,
        "expected": expected,
        "sandbox": {"user": account["name"] if account else None, "why_none": why},
        "katas": {result["name"]: result for result in results},
        "seconds": round(time.monotonic() - started, 3),
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".part")
    tmp.write_text(json.dumps(payload, indent=1) + "\n", encoding="utf-8")
    os.chmod(tmp, 0o644)  # the judge may run as another user than this (sudo) one
    shutil.move(str(tmp), str(out))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
