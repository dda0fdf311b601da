"""Calling a command's function, the one way shared by `python -m coach` (cold) and the coach
server's forked child (warm), so that both end alike: a pipe closed by `head` ends quietly, and
Ctrl-C prints "Stopped." with exit code 130."""

from __future__ import annotations

import importlib

from coach.core.lesson import BadLesson

STOPPED = 130  # the exit status after Ctrl-C (128 + SIGINT), as coach/runtime/interrupt.py


def load(target: str):
    """The function named by "module:function"."""
    module_name, function_name = target.split(":")
    return getattr(importlib.import_module(module_name), function_name)


def call(target: str, rest: list[str]) -> int:
    try:
        return load(target)(rest) or 0
    except BadLesson as error:  # the registry reads every unit: one broken unit stops all
        print(error)
        return 1
    except BrokenPipeError:  # output piped into `head`: stop quietly
        return 0
    except KeyboardInterrupt:
        print("\nStopped.")
        return STOPPED
