"""How fast `make watch` answers: from saving a kata file to the verdict on the screen.

The watcher runs on a scratch copy of solutions/; the kata file is rewritten N times and each
save is timed to the moment its verdict line arrives on the watcher's stdout (read through a
pipe, as a terminal would show it). For comparison, a cold `python -m pytest` of the same
kata's tests on the same folder: what checking by hand costs. The two alternate, so a busy
moment on the machine slows both alike.
"""

from __future__ import annotations

import os
import queue
import re
import resource
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from coach.core import registry
from coach.core.bootstrap import ROOT
from coach.learner.watch import VERDICT_LINE


class WatcherProcess:
    """`python -m coach watch ARGS` in a subprocess, its output read line by line.

    Each line is stamped with the time it arrived, by a thread that does nothing else, so a
    measurement does not include the time the caller took to look.
    """

    def __init__(self, args: list[str], env: dict[str, str] | None = None):
        env = dict(os.environ if env is None else env, COACH_NO_VENV="1")  # no setup step
        self.process = subprocess.Popen(
            [sys.executable, "-m", "coach", "watch", *args],
            cwd=ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            # Windows: its own process group, so that stop() can send it Ctrl-Break alone
            creationflags=getattr(subprocess, "CREATE_NEW_PROCESS_GROUP", 0),
        )
        self.output: list[str] = []  # everything read so far, for error messages
        self._lines: queue.Queue = queue.Queue()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        for line in self.process.stdout:
            self._lines.put((time.perf_counter(), line.rstrip("\n")))
        self._lines.put((time.perf_counter(), None))  # end of output

    def expect(self, pattern: str | re.Pattern, timeout: float) -> tuple[float, re.Match]:
        """(arrival time, match) of the next line matching `pattern`; fails after `timeout`."""
        deadline = time.perf_counter() + timeout
        while True:
            try:
                arrived, line = self._lines.get(timeout=max(0.0, deadline - time.perf_counter()))
            except queue.Empty:
                raise AssertionError(self._report(f"no line matching {pattern!r}")) from None
            if line is None:
                raise AssertionError(self._report(f"the watcher ended before {pattern!r}"))
            self.output.append(line)
            match = re.search(pattern, line)
            if match:
                return arrived, match

    def verdict(self, timeout: float) -> tuple[float, str]:
        """(arrival time, "green" or "red") of the next verdict line."""
        arrived, match = self.expect(VERDICT_LINE, timeout)
        return arrived, match["state"]

    def _report(self, what: str) -> str:
        return f"{what}. The watcher printed:\n" + "\n".join(self.output)

    def stop(self) -> int:
        """Ctrl-C, as a learner would; the exit code. Then `output` holds every line."""
        if self.process.poll() is None:
            # Ctrl-C; on Windows Ctrl-Break, which the watcher also takes as Ctrl-C
            self.process.send_signal(getattr(signal, "CTRL_BREAK_EVENT", signal.SIGINT))
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._reader.join(timeout=5)
        while not self._lines.empty():
            _, line = self._lines.get_nowait()
            if line is not None:
                self.output.append(line)
        return self.process.returncode

    def __enter__(self) -> WatcherProcess:
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


class RunFailed(Exception):
    """A measured command failed: what it was and everything it printed."""

    def __init__(self, command: list[str], code: int, output: str):
        super().__init__(
            f"This run failed (exit code {code}):\n  {' '.join(command)}\n"
            f"It printed:\n{output.rstrip()}"
        )


def timed_run(command: list[str], env: dict[str, str] | None = None) -> tuple[float, float]:
    """Run `command` from the project folder: (wall seconds, user+sys CPU seconds of it and
    its children that were waited for); RunFailed, with its output, when it fails."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    result = subprocess.run(
        command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, check=False
    )
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if result.returncode != 0:
        raise RunFailed(command, result.returncode, result.stdout.decode(errors="replace"))
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu


def scratch_copy_of_solutions(folder: Path) -> Path:
    impl = folder / "impl"
    shutil.copytree(ROOT / "solutions", impl, ignore=shutil.ignore_patterns("__pycache__"))
    return impl


def cold_pytest_seconds(kata: registry.Kata, impl: Path) -> float:
    command = [sys.executable, "-m", "pytest", kata.test_file, f"--impl={impl}", "-q"]
    return timed_run([*command, "-p", "no:cacheprovider"])[0]


def watch_latency(
    kata: str = "1", runs: int = 7, poll: bool = False, compare_cold: bool = True
) -> tuple[float, float]:
    """(median seconds from a save to the watcher's verdict, median seconds of a cold pytest)
    for one kata (a selector such as "1" or "kNN_topic"), over `runs` saves; `poll`
    makes the watcher poll the folder instead of waiting for change events. Without
    `compare_cold` no cold pytest runs between the saves, and its median is nan."""
    chosen = registry.find(kata)
    with tempfile.TemporaryDirectory(prefix="coach-bench-watch-") as tmp:
        impl = scratch_copy_of_solutions(Path(tmp))
        target = impl / f"{chosen.name}.py"
        source = target.read_text(encoding="utf-8")
        save_to_verdict, cold = [], []
        options = ["--poll"] if poll else []
        with WatcherProcess([str(chosen.number), "--impl", str(impl), *options]) as watcher:
            watcher.verdict(timeout=120)  # the first run, at start-up
            watcher.expect(r"^Watching ", timeout=10)
            for run in range(runs):
                saved = time.perf_counter()
                target.write_text(f"{source}\n# save {run}\n", encoding="utf-8")
                arrived, state = watcher.verdict(timeout=60)
                if state != "green":
                    raise RuntimeError(watcher._report("the solution was not green"))
                save_to_verdict.append(arrived - saved)
                if compare_cold:
                    cold.append(cold_pytest_seconds(chosen, impl))
    return statistics.median(save_to_verdict), statistics.median(cold) if cold else float("nan")


if __name__ == "__main__":  # python -m coach.authoring.bench_watch [KATA [RUNS [--poll]]]
    chosen_kata = sys.argv[1] if len(sys.argv) > 1 else "1"
    runs = int(sys.argv[2]) if len(sys.argv) > 2 else 7
    polling = "--poll" in sys.argv
    watch_median, cold_median = watch_latency(chosen_kata, runs, poll=polling)
    how = "polling" if polling else "change events"
    print(f"make watch ({how}): save -> verdict  median {watch_median:.3f} s over {runs} saves")
    print(f"cold pytest of the same kata      median {cold_median:.3f} s over {runs} runs")
