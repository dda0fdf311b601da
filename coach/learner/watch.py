"""`make watch [K=3]`: re-run a kata's tests on every save and say green or red.

Why it answers fast: importing torch and pytest takes longer than a kata's tests. The watcher
imports them once, then forks a child per run (POSIX; coach/learner/warm.py, the warm parent
shared with the coach server): the child starts with all of that already in memory, runs
pytest in-process on the learner's latest file, writes each test's outcome to a JSON file and
exits. The parent never imports a kata file, so every child reads the code as it is on disk
now. A crash or an endless loop in the learner's code ends only that child: the watcher stops
a run that outlives its time limit, or that a newer save made stale. Windows has no fork, and
on macOS forking a process that has loaded torch (and system frameworks with their own threads)
can crash the child: there each run is a fresh `python -m pytest`, a second or two slower, and
so it is everywhere with --no-fork.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import queue
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from coach.core import registry
from coach.core.bootstrap import ROOT
from coach.core.paths import display_path
from coach.learner import warm
from coach.runtime import summary

fork_choice = warm.fork_choice
CAN_FORK = warm.CAN_FORK  # whether runs fork here by default
load_test_machinery = warm.load_test_machinery
LIMIT = 60.0  # seconds a run may take before the watcher stops it
STILL_RUNNING_NOTICE = 3.0  # seconds per kata in a run before saying "still running"
DEBOUNCE_MS = 400  # a burst of saves (editor: write temp, rename) becomes one run...
QUIET_MS = 50  # ...once the folder has been quiet this long
POLL_DELAY_MS = 150  # how often polling looks at the files
MESSAGE_LINES = 8  # lines of the first failing test's message to show
# Every verdict (and "no verdict") starts so, for programs reading the watcher through a pipe.
VERDICT_LINE = re.compile(r"^  (?P<state>green|red)\s+(?P<kata>k\d\d_\w+) ")
# Flags for the child's pytest: no terminal output (the watcher prints its own verdict), no
# cache folder, and not anyio's plugin, which came with watchfiles and only costs time here.
PYTEST_FLAGS = ["-p", "no:terminal", "-p", "no:cacheprovider", "-p", "no:anyio"]

HELP = """\
Re-run the tests of the kata you are editing every time you save it.

  python -m coach watch          watch every kata; a save runs that kata's tests
  python -m coach watch 3        watch kata 3 only (make watch K=3)

Polling: some folders never report saves (WSL2 with the files on the Windows side under
/mnt/c, network drives, some containers and VMs). There the watcher looks at the files
every 0.15 s instead. It does so by itself on WSL or when WATCHFILES_FORCE_POLLING is set
(WATCHFILES_FORCE_POLLING=false turns it off). When saves go unnoticed, add --poll:
  python -m coach watch 3 --poll      or      make watch K=3 ARGS=--poll
Ctrl-C stops the watcher."""


# --- options --------------------------------------------------------------------------------


def parse_args(rest: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m coach watch",
        description=HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("kata", nargs="?", help="the kata to watch (3, k03, ...); default: all")
    parser.add_argument(
        "--impl",
        default=None,
        help="folder holding your kata files (default: $KATAS_IMPL or katas)",
    )
    parser.add_argument(
        "--poll",
        action="store_true",
        help="look at the files every 0.15 s instead of waiting for change events "
        "(for WSL2 /mnt drives, network drives, containers)",
    )
    parser.add_argument(
        "--limit",
        type=float,
        default=LIMIT,
        metavar="SECONDS",
        help=f"stop a run that takes longer than this (default: {LIMIT:.0f})",
    )
    parser.add_argument(
        "--no-fork",
        action="store_true",
        help="start a fresh Python for every run, as on Windows and macOS (slower)",
    )
    return parser.parse_args(rest)


def in_wsl(proc_version: Path = Path("/proc/version")) -> bool:
    """Windows Subsystem for Linux names Microsoft in its kernel version."""
    try:
        return "microsoft" in proc_version.read_text(encoding="utf-8", errors="replace").lower()
    except OSError:
        return False


def polling_choice(asked: bool, environ=os.environ, wsl: bool | None = None) -> tuple[bool, str]:
    """(poll or not, why), following watchfiles' own WATCHFILES_FORCE_POLLING convention."""
    if asked:
        return True, "you asked for it with --poll"
    setting = environ.get("WATCHFILES_FORCE_POLLING", "")
    if setting:
        if setting.lower() in {"false", "disable", "disabled"}:
            return False, "WATCHFILES_FORCE_POLLING turns it off"
        return True, "WATCHFILES_FORCE_POLLING is set"
    if in_wsl() if wsl is None else wsl:
        return True, "WSL found; WATCHFILES_FORCE_POLLING=false turns it off"
    return False, "change events"


# --- noticing saves -------------------------------------------------------------------------


def kata_of_path(path: str, names: set[str]) -> str | None:
    """The kata a changed file belongs to: exactly <kata name>.py, so editor temp files
    (.kNN_topic.py.swp, kNN_topic.py~, 4913, .#kNN...) never count."""
    file_name = os.path.basename(path)
    stem, suffix = os.path.splitext(file_name)
    return stem if suffix == ".py" and stem in names else None


class ChangeFeed:
    """Sets of saved kata names, from a watchfiles thread, debounced.

    The watching runs in a thread so that the main thread can wait for a test run and still
    hear about a newer save (which makes that run stale).
    """

    def __init__(self, folder: Path, names: set[str], poll: bool):
        self.folder = folder
        self.names = names
        self.poll = poll
        self.batches: queue.Queue = queue.Queue()
        self.stop_event = threading.Event()
        self.thread = threading.Thread(target=self._watch, name="coach-watch", daemon=True)

    def __enter__(self) -> ChangeFeed:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop_event.set()
        self.thread.join(timeout=1)

    def _accept(self, change, path: str) -> bool:
        return kata_of_path(path, self.names) is not None

    def _watch(self) -> None:
        try:
            import watchfiles

            for changes in watchfiles.watch(
                self.folder,
                watch_filter=self._accept,
                debounce=DEBOUNCE_MS,
                step=QUIET_MS,
                stop_event=self.stop_event,
                force_polling=self.poll,
                poll_delay_ms=POLL_DELAY_MS,
                rust_timeout=500,  # wake up now and then to notice stop_event
                recursive=False,
            ):
                self.batches.put({kata_of_path(path, self.names) for _, path in changes})
        except Exception as error:  # not installed, the folder vanished, too many watches, ...
            self.batches.put(error)

    def next(self, timeout: float | None) -> set[str] | None:
        """The next set of saved katas (merging any that queued up), or None on timeout."""
        try:
            first = self.batches.get(timeout=timeout)
        except queue.Empty:
            return None
        saved = self._check(first)
        while not self.batches.empty():
            saved |= self._check(self.batches.get_nowait())
        return saved

    def _check(self, batch):
        if isinstance(batch, Exception):
            raise WatchingFailed(f"Watching {display_path(self.folder)}/ failed: {batch}")
        return batch


class WatchingFailed(Exception):
    """The file watching itself broke (folder gone, no watches left, ...)."""


# --- running the tests in a child -----------------------------------------------------------


def pytest_args(katas: list[registry.Kata], impl: Path, outcomes: Path) -> list[str]:
    files = [str(ROOT / kata.test_file) for kata in katas]
    return [*files, f"--impl={impl}", "--coach-json", str(outcomes), *PYTEST_FLAGS]


class ForkedRun:
    """pytest.main in a forked child; its output goes to a log file, never to the screen."""

    startup = 0.0  # everything is imported already

    def __init__(self, args: list[str], log: Path):
        self.pid = warm.fork(lambda: self._child(args, log))
        self.returncode: int | None = None

    @staticmethod
    def _child(args: list[str], log: Path) -> int:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle
        with open(log, "wb") as output, open(os.devnull, "rb") as nothing:
            os.dup2(nothing.fileno(), 0)
            os.dup2(output.fileno(), 1)
            os.dup2(output.fileno(), 2)
        import pytest

        return int(pytest.main(args))

    def poll(self) -> int | None:
        if self.returncode is None:
            pid, status = os.waitpid(self.pid, os.WNOHANG)
            if pid:
                self.returncode = os.waitstatus_to_exitcode(status)
        return self.returncode

    def kill(self) -> None:
        if self.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, signal.SIGKILL)
            _, status = os.waitpid(self.pid, 0)
            self.returncode = os.waitstatus_to_exitcode(status)


class FreshPythonRun:
    """`python -m pytest` in a new process: what Windows gets, since it cannot fork."""

    startup = 5.0  # seconds it may take to import torch and pytest before any test runs

    def __init__(self, args: list[str], log: Path):
        with open(log, "wb") as output:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "pytest", *args],
                cwd=ROOT,
                stdin=subprocess.DEVNULL,
                stdout=output,
                stderr=subprocess.STDOUT,
            )

    @property
    def returncode(self) -> int | None:
        return self.process.returncode

    def poll(self) -> int | None:
        return self.process.poll()

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait()


@dataclass
class Outcome:
    """What one run found: results per kata, or why there are none."""

    results: dict[str, summary.KataResult]
    seconds: float
    problem: str = ""  # set when the run gave no results
    details: list[str] = field(default_factory=list)  # lines that help find the cause
    crashed: bool = False


def read_outcome(katas, run_files: tuple[Path, Path], impl: Path, code, seconds) -> Outcome:
    outcomes, log = run_files
    try:
        payload = json.loads(outcomes.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        problem = f"the test run crashed ({describe_exit(code)})"
        return Outcome({}, seconds, problem, crash_clues(log, impl), crashed=True)
    progress = summary.Progress.from_json(payload)
    by_name = {result.kata.name: result for result in progress.results}
    return Outcome({kata.name: by_name[kata.name] for kata in katas}, seconds)


def describe_exit(code: int) -> str:
    if code >= 0:
        return f"exit code {code}"
    try:
        return f"killed by {signal.Signals(-code).name}"
    except ValueError:
        return f"killed by signal {-code}"


def crash_clues(log: Path, impl: Path, most: int = 4) -> list[str]:
    """From what a crashed run printed: the fatal error and the lines naming the learner's
    files (Python's crash report lists the frames, most recent first); else the last lines."""
    try:
        lines = log.read_text(encoding="utf-8", errors="replace").strip().splitlines()
    except OSError:
        return []
    clues = [line.strip() for line in lines if "Fatal Python error" in line or str(impl) in line]
    return clues[:most] if clues else [line.strip() for line in lines[-most:]]


# --- what the learner sees ------------------------------------------------------------------


class Screen:
    """Prints the verdicts. Colour only on a terminal; every line flushed at once, so a
    program reading the watcher through a pipe sees a verdict the moment it exists."""

    def __init__(self, impl: Path, color: bool):
        self.impl = impl
        self.color = color

    def say(self, text: str = "") -> None:
        print(text, flush=True)

    def paint(self, text: str, colour: str) -> str:
        return f"{colour}{text}{summary.RESET}" if self.color else text

    def kata_line(self, result: summary.KataResult, seconds: float) -> str:
        """summary.render's line for one kata, with the run's time: `  green  kNN_topic  7/7`."""
        kata = result.kata
        state = (
            self.paint("green", summary.GREEN) if result.green else self.paint("red  ", summary.RED)
        )
        when = self.paint(f"({seconds:.2f} s)", summary.DIM)
        return (
            f"  {state}  {kata.name:<20} {kata.title:<34} "
            f"{result.passed:>2}/{result.total} tests  {when}"
        )

    def verdict(self, result: summary.KataResult, seconds: float, explain: bool = True) -> None:
        self.say(self.kata_line(result, seconds))
        if explain and not result.green and result.failures:
            _, test_id, message = summary.first_failure(result)  # never an "(as above)"
            self.say(f"    First failing test: {test_id.split('::')[-1]}")
            lines = message.strip().splitlines() or ["failed"]
            for text in lines[:MESSAGE_LINES]:
                self.say(f"    {text}")
            if len(lines) > MESSAGE_LINES:
                self.say(f"    ... (`make test K={result.kata.number}` shows all of it)")

    def no_verdict(self, kata: registry.Kata, outcome: Outcome) -> None:
        state = self.paint("red  ", summary.RED)
        why = outcome.problem or "no tests ran"
        self.say(f"  {state}  {kata.name:<20} {kata.title:<34} no verdict: {why}")
        for text in outcome.details:
            self.say(f"    {text}")
        if outcome.crashed:
            self.say("    Something stopped Python itself (os._exit(), a crash in a library, ...).")
            self.say(f"    `make test K={kata.number}` shows everything the run printed.")

    def progress(self, results: dict[str, summary.KataResult]) -> None:
        green = sum(result.green for result in results.values())
        self.say(f"  {summary.bar(green, len(results))} {green}/{len(results)} katas green")

    def file_of(self, kata: registry.Kata) -> str:
        return display_path(self.impl / f"{kata.name}.py")


# --- the watcher ----------------------------------------------------------------------------


class Watcher:
    def __init__(self, katas, *, impl: Path, feed: ChangeFeed, screen: Screen, options, workdir):
        self.katas = katas  # the katas being watched (one with K, else all that have tests)
        self.impl = impl
        self.feed = feed
        self.screen = screen
        self.limit = options.limit
        self.start_run = ForkedRun if fork_choice(options.no_fork)[0] else FreshPythonRun
        self.workdir = Path(workdir)
        self.runs = 0
        self.results: dict[str, summary.KataResult] = {}  # latest verdict of each kata

    def test(self, katas: list[registry.Kata]) -> Outcome:
        """Run the katas' tests in a child; a newer save of a watched kata restarts the run."""
        while True:
            self.runs += 1
            outcomes = self.workdir / f"run{self.runs}.json"
            log = self.workdir / f"run{self.runs}.log"
            started = time.perf_counter()
            run = self.start_run(pytest_args(katas, self.impl, outcomes), log)
            try:
                saved_meanwhile = self._wait(run, started, len(katas))
                ran_too_long = run.poll() is None and not saved_meanwhile
            finally:
                run.kill()  # a no-op once it has ended; also stops it on Ctrl-C
            seconds = time.perf_counter() - started
            if saved_meanwhile:
                katas = self._merge(katas, saved_meanwhile)
                self.screen.say("  saved again: starting over with your latest code")
                continue
            if ran_too_long:
                return Outcome({}, seconds, *self._too_long())
            return read_outcome(katas, (outcomes, log), self.impl, run.returncode, seconds)

    def _wait(self, run, started: float, katas_running: int) -> set[str] | None:
        """Wait until the run ends or runs out of time; katas saved meanwhile mean: start over."""
        notice_after = run.startup + STILL_RUNNING_NOTICE * katas_running
        noticed = False
        while run.poll() is None:
            elapsed = time.perf_counter() - started
            if elapsed > self.limit:
                return None
            if elapsed > notice_after and not noticed:
                noticed = True
                self.screen.say(
                    "  still running... (an endless loop? Each test stops after its time "
                    "limit; saving again starts over.)"
                )
            saved = self.feed.next(timeout=0.01)
            if saved:
                return saved
        return None

    def _too_long(self) -> tuple[str, list[str]]:
        return (
            f"still running after {self.limit:g} s, so the watcher stopped it",
            ["An endless loop? Fix it and save again."],
        )

    def _merge(self, katas, names: set[str]) -> list[registry.Kata]:
        wanted = {kata.name for kata in katas} | names
        return [kata for kata in self.katas if kata.name in wanted]

    @property
    def overall(self) -> bool:
        """Whether to show the progress line: only when watching more than one kata."""
        return len(self.katas) > 1

    def show(self, outcome: Outcome, katas: list[registry.Kata]) -> None:
        """One line per kata; the first failing test's message for the first red one only,
        so that a run of every kata does not bury the learner in messages."""
        explained = False
        for kata in katas:
            result = outcome.results.get(kata.name)
            if result is None or not result.ran:
                self.screen.no_verdict(kata, outcome)
                self.results[kata.name] = summary.KataResult(kata)
            else:
                self.screen.verdict(result, outcome.seconds, explain=not explained)
                explained = explained or not result.green
                self.results[kata.name] = result
        if self.overall:
            self.screen.progress(self.results)
        self.screen.say(self.next_step(katas))

    def next_step(self, katas: list[registry.Kata]) -> str:
        """What to do now, given the katas just run (`katas`) and every verdict so far."""
        red_now = [kata for kata in katas if not self.results[kata.name].green]
        if len(katas) == 1 and red_now:
            return "Fix it and save; the tests run again."
        red = red_now[0] if red_now else self._first_red()
        if red is not None:
            return f"Next: {red.name} ({red.title}). Edit {self.screen.file_of(red)} and save."
        if not self.overall:
            following = next((k for k in registry.KATAS if k.number > katas[0].number), None)
            if following is not None:
                return f"Green! Ctrl-C, then `make watch K={following.number}` for the next kata."
        return "\n".join(summary.ALL_GREEN)

    def _first_red(self) -> registry.Kata | None:
        return next((kata for kata in self.katas if not self.results[kata.name].green), None)

    def run_forever(self) -> None:
        self.check(self.katas)
        self.screen.say(f"Watching {display_path(self.impl)}/ for saves. Ctrl-C stops.")
        while True:
            saved = self.feed.next(timeout=0.5)
            if saved:
                self.check([kata for kata in self.katas if kata.name in saved])

    def check(self, katas: list[registry.Kata]) -> None:
        if len(katas) > 1 and katas == self.katas:
            shown = f"every kata in {display_path(self.impl)}/"
        else:
            shown = ", ".join(self.screen.file_of(kata) for kata in katas)
        stamp = self.screen.paint(time.strftime("%H:%M:%S"), summary.DIM)
        self.screen.say(f"\n{stamp} testing {shown} ...")
        self.show(self.test(katas), katas)


def katas_to_watch(selector: str | None) -> tuple[list[registry.Kata], list[registry.Kata]]:
    """(katas with tests to watch, katas left out because their tests do not exist yet)."""
    chosen = [registry.find(selector)] if selector else list(registry.KATAS)
    ready = [kata for kata in chosen if (ROOT / kata.test_file).is_file()]
    return ready, [kata for kata in chosen if kata not in ready]


def main(rest: list[str]) -> int:
    options = parse_args(rest)
    try:
        katas, missing = katas_to_watch(options.kata)
    except LookupError as error:
        print(error, file=sys.stderr)
        return 2
    for kata in missing:
        print(f"{kata.name} has no tests yet ({kata.test_file} is missing); not watching it.")
    if not katas:
        return 2
    from coach.core.paths import resolve_impl_path

    try:
        impl = resolve_impl_path(options.impl, ROOT)
    except LookupError as error:  # the folder does not exist
        print(error, file=sys.stderr)
        return 2
    return watch(katas, impl, options)


def watch(katas: list[registry.Kata], impl: Path, options: argparse.Namespace) -> int:
    """Watch until Ctrl-C (or `kill`, which stops the running child and the temp files too)."""
    screen = Screen(impl, color=sys.stdout.isatty())
    forking, why_not = fork_choice(options.no_fork)
    if forking:
        screen.say("Starting the watcher: importing torch and pytest, once ...")
        load_test_machinery()
    else:
        screen.say(f"Each run starts a fresh Python ({why_not}): as slow as `make test`.")
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    if hasattr(signal, "SIGBREAK"):  # Windows: Ctrl-Break, and how a program can stop us
        signal.signal(signal.SIGBREAK, signal.default_int_handler)
    poll, why = polling_choice(options.poll)
    if poll:
        screen.say(f"Polling {display_path(impl)}/ every {POLL_DELAY_MS / 1000:.2f} s ({why}).")
    with (
        tempfile.TemporaryDirectory(prefix="coach-watch-") as workdir,
        ChangeFeed(impl, {kata.name for kata in katas}, poll) as feed,
    ):
        watcher = Watcher(
            katas, impl=impl, feed=feed, screen=screen, options=options, workdir=workdir
        )
        try:
            watcher.run_forever()
        except KeyboardInterrupt:
            screen.say("\nStopped watching. See you soon!")
        except WatchingFailed as error:
            print(f"{error}\nTry `--poll`, or run `make test` by hand.", file=sys.stderr)
            return 1
    return 0
