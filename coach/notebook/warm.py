"""A warm Python for the notebook's child runs: torch and pytest imported once, a fork per run.

Importing torch and pytest takes longer than a kata's tests, so, as `make watch` does (with
the same warm machinery, coach/learner/warm.py), a helper process (`python -m
coach.notebook.warm`, started when the extension loads) imports them once and forks a child
per `%%kata` run. The child calls the same function a fresh
Python would (coach.learner.run.test, what `make test K=N` runs; coach.learner.graph.main for
`%kata_graph`), with the kernel's current environment, its output in a log file. The helper
never imports a kata file, so every child reads the cell as written now; a crash or an
endless loop ends only that child. Where forking is missing or unsafe (Windows, macOS; see
coach.learner.warm.fork_choice), and whenever the helper is not answering, each run is a fresh
Python instead: a second or two slower, the same result.

The helper reads one JSON request per line on stdin and answers with lines on stdout:
{"pid": N} when the child started, then {"exit": CODE} when it ended. It exits when the
kernel closes its stdin (the kernel stopped).
"""

from __future__ import annotations

import contextlib
import importlib
import json
import os
import queue
import signal
import subprocess
import sys
import threading
from pathlib import Path

from coach.core import registry

FUNCTIONS = {"test": "coach.learner.run:test", "graph": "coach.learner.graph:main"}
FRESH = "import sys; from {module} import {name}; sys.exit({name}(sys.argv[1:]))"
STARTUP_LIMIT = 60.0  # seconds the helper may take to import torch and pytest


def fresh_command(function: str, args: list[str]) -> list[str]:
    module, name = FUNCTIONS[function].split(":")
    return [sys.executable, "-c", FRESH.format(module=module, name=name), *args]


# --- the helper process ----------------------------------------------------------------------


def _child(request: dict) -> int:
    """In the forked child (coach.learner.warm.fork): the request's function, its output in
    the request's log, in a process group of its own (stopping it stops what it started)."""
    os.setsid()
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    with open(request["log"], "wb") as output, open(os.devnull, "rb") as nothing:
        os.dup2(nothing.fileno(), 0)
        os.dup2(output.fileno(), 1)
        os.dup2(output.fileno(), 2)
    os.environ.clear()
    os.environ.update(request["env"])
    os.chdir(request["cwd"])
    module, name = FUNCTIONS[request["function"]].split(":")
    try:
        code = int(getattr(importlib.import_module(module), name)(request["args"]) or 0)
    except SystemExit as stop:
        code = stop.code if isinstance(stop.code, int) else 1
    sys.stdout.flush()
    sys.stderr.flush()
    return code


def serve() -> None:
    """Import what every run needs once (as `make watch` and the coach server do), then fork a
    child per request."""
    from coach.learner import warm

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the kernel's interrupt is not for the helper
    modules = tuple(target.split(":")[0] for target in FUNCTIONS.values())
    warm.load_test_machinery(extra_modules=modules)
    print(json.dumps({"ready": True}), flush=True)
    for line in sys.stdin:
        request = json.loads(line)
        sys.stdout.flush()
        pid = warm.fork(lambda request=request: _child(request))
        print(json.dumps({"pid": pid}), flush=True)
        _, status = os.waitpid(pid, 0)
        print(json.dumps({"exit": os.waitstatus_to_exitcode(status)}), flush=True)


# --- the kernel's side -----------------------------------------------------------------------


class Helper:
    """The kernel's handle on the helper process; None of its methods raise."""

    def __init__(self, env: dict[str, str]):
        self.answers: queue.Queue = queue.Queue()
        self.process = subprocess.Popen(
            [sys.executable, "-m", "coach.notebook.warm"],
            cwd=registry.ROOT,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
            start_new_session=True,  # the kernel's interrupt (SIGINT) does not reach it
        )
        threading.Thread(target=self._read, daemon=True).start()
        self.ready = False

    def _read(self) -> None:
        for line in self.process.stdout:
            with contextlib.suppress(ValueError):
                self.answers.put(json.loads(line))
        self.answers.put(None)  # the helper ended

    def _next(self, timeout: float | None) -> dict | None:
        try:
            return self.answers.get(timeout=timeout)
        except queue.Empty:
            return None

    def alive(self) -> bool:
        if self.process.poll() is not None:
            return False
        if not self.ready:
            answer = self._next(STARTUP_LIMIT)
            self.ready = bool(answer and answer.get("ready"))
            if not self.ready:
                self.stop()
        return self.ready

    def run(self, function: str, args: list[str], env: dict, log: Path, limit: float):
        """(exit code or None, why it was stopped or ""), or None if the helper failed."""
        request = {"function": function, "args": args, "env": env, "cwd": str(registry.ROOT)}
        request["log"] = str(log)
        try:
            self.process.stdin.write(json.dumps(request) + "\n")
            self.process.stdin.flush()
        except OSError:
            return None
        started = self._next(STARTUP_LIMIT)
        if not started or "pid" not in started:
            self.stop()
            return None
        why = ""
        try:
            ended = self._next(limit)
            if ended is None:
                why = f"The run was stopped after {limit:.0f} s: your code was still running."
        except KeyboardInterrupt:
            ended, why = None, "You interrupted the run; it was stopped. The kernel is fine."
        if ended is None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(started["pid"], signal.SIGKILL)
            ended = self._next(10)
        if not ended or "exit" not in ended:
            self.stop()
            return None if not why else (None, why)
        return ended["exit"], why

    def stop(self) -> None:
        with contextlib.suppress(OSError):
            self.process.kill()
        self.ready = False


if __name__ == "__main__":
    serve()
