"""Run kata tests quietly and return where the learner stands (for progress, next, ...)."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

from coach.core import registry
from coach.runtime import interrupt
from coach.runtime.summary import Progress


class _NoTracebacks:
    """A pytest plugin for a run nobody reads: no tracebacks are built for the failures.

    The summary needs each failure's message (its reprcrash), not the long traceback pytest
    formats for every failure by default, which costs more than the tests themselves on a
    course of red katas."""

    @staticmethod
    def pytest_configure(config):
        config.option.tbstyle = "no"


def collect(katas: list[registry.Kata] | None = None, impl: str | None = None) -> Progress:
    """Run the tests of `katas` (default: all) in this process, printing nothing."""
    import pytest

    chosen = katas or list(registry.KATAS)
    with tempfile.TemporaryDirectory() as tmp:
        target = Path(tmp) / "outcomes.json"
        args = [
            *[str(registry.ROOT / kata.test_file) for kata in chosen],
            "-p",
            "no:terminal",
            "-p",
            "no:cacheprovider",
            "--coach-json",
            str(target),
        ]
        if impl:
            args.append(f"--impl={impl}")  # one word: pytest never reads DIR as a test path
        if pytest.main(args, plugins=[_NoTracebacks()]) == interrupt.STOPPED_STATUS:
            raise KeyboardInterrupt  # the learner's Ctrl-C: the command stops with one line
        return Progress.from_json(json.loads(target.read_text(encoding="utf-8")))
