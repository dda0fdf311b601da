"""`make watch`: a save gets a verdict, and nothing the learner writes stops the watcher.

One real watcher runs as a subprocess on a scratch folder (broken, then crashing, then fixed).
The rest calls the pieces in-process: the file feed in both modes (change events, polling),
and test runs that crash, loop forever or pass: forked where the platform forks safely, a fresh
Python each where it does not (Windows, macOS), and both ways here. selftests/test_platforms.py
runs the watcher on a simulated platform without fork.
"""

from __future__ import annotations

import argparse
import gc
import time
from pathlib import Path

import pytest

from coach.authoring.bench_watch import WatcherProcess
from coach.core import registry
from coach.learner import watch

ROOT = Path(__file__).resolve().parent.parent
K1 = registry.KATAS[0]
SOLUTION = (ROOT / "solutions" / f"{K1.name}.py").read_text(encoding="utf-8")
STUB = (ROOT / "katas" / f"{K1.name}.py").read_text(encoding="utf-8")
CRASH = SOLUTION + "\nimport os\nos._exit(3)  # stops Python at once, no report\n"
ENDLESS = SOLUTION + "\nwhile True:  # at import: beyond any single test's time limit\n    pass\n"


@pytest.fixture(scope="module", autouse=True)
def frozen_heap():
    """As in the watcher: without gc.freeze() each forked run spends most of its time
    collecting garbage among torch's objects (see watch.load_test_machinery)."""
    gc.freeze()
    yield
    gc.unfreeze()


@pytest.fixture
def impl(tmp_path) -> Path:
    folder = tmp_path / "impl"
    folder.mkdir()
    (folder / f"{K1.name}.py").write_text(SOLUTION, encoding="utf-8")
    return folder


# --- the real watcher, end to end -----------------------------------------------------------


def test_a_save_turns_red_into_green_and_a_crash_is_survived(impl):
    (impl / f"{K1.name}.py").write_text(STUB, encoding="utf-8")
    with WatcherProcess(["1", "--impl", str(impl)]) as watcher:
        assert watcher.verdict(timeout=60)[1] == "red"
        watcher.expect("not written yet", timeout=5)
        watcher.expect("^Watching ", timeout=5)

        (impl / f"{K1.name}.py").write_text(CRASH, encoding="utf-8")
        watcher.expect(r"^  red .* no verdict: the test run crashed \(exit code 3\)", timeout=20)

        (impl / f"{K1.name}.py").write_text(SOLUTION, encoding="utf-8")
        assert watcher.verdict(timeout=20)[1] == "green"
        assert watcher.stop() == 0
    assert "Stopped watching" in watcher.output[-1]


# --- noticing saves -------------------------------------------------------------------------


@pytest.mark.parametrize("poll", [False, True], ids=["events", "polling"])
def test_the_feed_reports_a_kata_save_and_ignores_editor_files(tmp_path, poll):
    with watch.ChangeFeed(tmp_path, {K1.name}, poll=poll) as feed:
        time.sleep(0.3)  # the watch is set up in the feed's thread
        for name in (f".{K1.name}.py.swp", f"{K1.name}.py~", "4913", "notes.txt"):
            (tmp_path / name).write_text("x")
        (tmp_path / f"{K1.name}.py").write_text(SOLUTION)
        assert feed.next(timeout=5) == {K1.name}
        assert feed.next(timeout=0.2) is None


def test_only_the_kata_files_themselves_count():
    names = {K1.name}
    assert watch.kata_of_path(f"/x/{K1.name}.py", names) == K1.name
    for other in (f".{K1.name}.py.swp", f"{K1.name}.py~", f".#{K1.name}.py", "k09_new.py"):
        assert watch.kata_of_path(f"/x/{other}", names) is None
    assert watch.kata_of_path(f"/x/__pycache__/{K1.name}.cpython-311.pyc", names) is None


def test_polling_is_chosen_by_flag_environment_or_wsl(tmp_path):
    assert watch.polling_choice(True, environ={}, wsl=False)[0]
    assert watch.polling_choice(False, environ={"WATCHFILES_FORCE_POLLING": "1"}, wsl=False)[0]
    assert watch.polling_choice(False, environ={}, wsl=True)[0]
    off = {"WATCHFILES_FORCE_POLLING": "false"}
    assert not watch.polling_choice(False, environ=off, wsl=True)[0]
    assert not watch.polling_choice(False, environ={}, wsl=False)[0]
    version = tmp_path / "version"
    version.write_text("Linux version 5.15.167.4-microsoft-standard-WSL2 (gcc ...)")
    assert watch.in_wsl(version)
    version.write_text("Linux version 6.1.0-18-amd64 (debian-kernel@lists.debian.org)")
    assert not watch.in_wsl(version)


def test_the_help_explains_polling(capsys):
    with pytest.raises(SystemExit):
        watch.parse_args(["--help"])
    shown = capsys.readouterr().out
    assert "--poll" in shown
    assert "WSL" in shown
    assert "WATCHFILES_FORCE_POLLING" in shown


# --- runs that crash, hang or pass ----------------------------------------------------------


class QuietFeed:
    """No saves while a run goes on."""

    def next(self, timeout):
        time.sleep(timeout)


def run_once(impl: Path, tmp_path: Path, limit: float = 30.0, no_fork=False) -> watch.Outcome:
    options = argparse.Namespace(limit=limit, no_fork=no_fork)
    screen = watch.Screen(impl, color=False)
    watcher = watch.Watcher(
        [K1], impl=impl, feed=QuietFeed(), screen=screen, options=options, workdir=tmp_path
    )
    return watcher.test([K1])


def test_a_crash_gives_no_verdict_but_a_reason(impl, tmp_path):
    (impl / f"{K1.name}.py").write_text(CRASH, encoding="utf-8")
    outcome = run_once(impl, tmp_path)
    assert outcome.crashed
    assert outcome.problem == "the test run crashed (exit code 3)"


def test_an_endless_loop_is_stopped_at_the_limit(impl, tmp_path):
    (impl / f"{K1.name}.py").write_text(ENDLESS, encoding="utf-8")
    started = time.perf_counter()
    outcome = run_once(impl, tmp_path, limit=0.5)
    assert time.perf_counter() - started < 5
    assert outcome.problem.startswith("still running after 0.5 s")


def test_each_run_reads_the_file_as_it_is_now(impl, tmp_path, capsys):
    first = run_once(impl, tmp_path)
    assert first.results[K1.name].green
    (impl / f"{K1.name}.py").write_text(STUB, encoding="utf-8")
    second = run_once(impl, tmp_path)
    result = second.results[K1.name]
    assert not result.green

    watch.Screen(impl, color=False).verdict(result, second.seconds)
    lines = capsys.readouterr().out.splitlines()
    assert watch.VERDICT_LINE.match(lines[0])["state"] == "red"
    assert lines[1].startswith("    First failing test: test_")
    assert "not written yet" in lines[2]


def test_a_save_during_a_run_stops_it_and_starts_over(impl, tmp_path, capsys):
    class FixedAfterAWhile:
        """The learner saves a fix half a second into a run that loops forever."""

        def __init__(self):
            self.started = time.perf_counter()
            self.saved = False

        def next(self, timeout):
            time.sleep(timeout)
            if self.saved or time.perf_counter() - self.started < 0.5:
                return None
            self.saved = True
            (impl / f"{K1.name}.py").write_text(SOLUTION, encoding="utf-8")
            return {K1.name}

    (impl / f"{K1.name}.py").write_text(ENDLESS, encoding="utf-8")
    options = argparse.Namespace(limit=30.0, no_fork=False)
    screen = watch.Screen(impl, color=False)
    watcher = watch.Watcher(
        [K1], impl=impl, feed=FixedAfterAWhile(), screen=screen, options=options, workdir=tmp_path
    )
    outcome = watcher.test([K1])
    assert outcome.results[K1.name].green
    assert "saved again: starting over" in capsys.readouterr().out


# --- where fork is missing or unsafe --------------------------------------------------------


def test_fork_only_where_it_exists_and_is_safe():
    assert watch.fork_choice(False, platform="linux", has_fork=True)[0]
    assert not watch.fork_choice(True, platform="linux", has_fork=True)[0]
    assert not watch.fork_choice(False, platform="win32", has_fork=False)[0]
    on_macos = watch.fork_choice(False, platform="darwin", has_fork=True)
    assert not on_macos[0]
    assert "macOS" in on_macos[1]


def test_without_fork_each_run_is_a_fresh_python(impl, tmp_path):
    assert run_once(impl, tmp_path, no_fork=True).results[K1.name].green
    (impl / f"{K1.name}.py").write_text(ENDLESS, encoding="utf-8")
    started = time.perf_counter()
    outcome = run_once(impl, tmp_path, limit=1.0, no_fork=True)
    assert time.perf_counter() - started < 10
    assert outcome.problem.startswith("still running after 1 s")
