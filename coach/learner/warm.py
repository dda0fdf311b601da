"""The warm parent shared by `make watch` and the coach server: torch imported once, a forked
child per run.

Importing torch and pytest takes longer than a kata's tests. A warm parent imports them (and
what torch imports lazily on first use) once, then forks a child for each run: the child
starts with all of it in memory and runs on the learner's files as they are on disk now, since
the parent never imports a kata file. A crash or an endless loop in the learner's code ends only
that child. Windows has no fork, and on macOS forking a process that has loaded torch (and
system frameworks with their own threads) can crash the child: there no run forks.
"""

from __future__ import annotations

import os
import random
import sys
import warnings
from collections.abc import Callable

# What the plugins import (not the plugins themselves: pytest rewrites the asserts of a plugin
# module as it imports it, and warns that it cannot when the module is already in memory).
PLUGIN_DEPENDENCIES = (
    "coach.core.registry",
    "coach.runtime.explain",
    "coach.runtime.loader",
    "coach.runtime.summary",
    "coach.runtime.testing",
    "coach.runtime.torch_state",
    "coach.runtime.inputs",
    "xml.etree.ElementTree",  # pytest's junitxml
    "faulthandler",  # pytest's faulthandler
    "pdb",  # pytest's debugging
)
_torch_rng_state = None  # torch's random state right after `import torch`, for every child


def fork_choice(
    no_fork: bool = False, platform: str = sys.platform, has_fork: bool | None = None
) -> tuple[bool, str]:
    """(fork a child per run or not, why). Fork only where it exists and is safe."""
    if no_fork:
        return False, "you asked for it with --no-fork"
    if not (hasattr(os, "fork") if has_fork is None else has_fork):
        return False, "this platform cannot fork"
    if platform == "darwin":
        return False, "forking after torch is loaded is unsafe on macOS"
    return True, "a forked child per run"


CAN_FORK = fork_choice()[0]  # whether runs fork here by default


def load_test_machinery(extra_modules: tuple[str, ...] = ()) -> None:
    """Import what every run needs, once, in the long-lived parent.

    gc.freeze() then marks these objects as permanent: pytest collects garbage several times
    per run, and without the freeze each collection would walk all of torch's objects again.
    """
    global _torch_rng_state
    import gc
    import importlib

    import torch

    _torch_rng_state = torch.get_rng_state()
    _preload_pytest()
    # torch 2.13 imports sympy and dynamo (about a second each, cold) the first time a
    # backward pass is given its output gradient, y.backward(v), the first time torch.func.grad
    # runs, and the first time an optimizer is made: pay for them here, not on a learner's run.
    import torch.fx.experimental.symbolic_shapes

    torch.func.grad(lambda x: (x * x).sum())(torch.ones(2))
    x = torch.ones(2, requires_grad=True)
    (x * 2).backward(torch.ones(2))
    torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.1)

    for name in (*PLUGIN_DEPENDENCIES, *extra_modules):
        importlib.import_module(name)
    gc.freeze()


def _preload_pytest() -> None:
    """pytest and its built-in plugins, which a run imports when it starts; and the listing of
    the installed packages that pytest searches for plugins (importlib.metadata caches it)."""
    import importlib
    from importlib.metadata import entry_points

    import _pytest.config
    import pytest  # noqa: F401

    for name in _pytest.config.default_plugins:
        importlib.import_module(f"_pytest.{name}")
    entry_points(group="pytest11")


def fresh_child_state() -> None:
    """In a forked child: the random state a new Python starts with, not the parent's."""
    random.seed()  # a new Python seeds from the OS; a forked one would repeat the parent's
    numpy = sys.modules.get("numpy")
    if numpy is not None:
        numpy.random.seed()
    torch = sys.modules.get("torch")
    if torch is not None and _torch_rng_state is not None:
        torch.set_rng_state(_torch_rng_state)


def fork(child: Callable[[], int]) -> int:
    """Fork; the child runs `child()` and exits with its return value (70 if it raised), never
    returning into the parent's code (its loops, its cleanup). Returns the child's pid."""
    with warnings.catch_warnings():
        # Python 3.12+ warns that forking a process with threads can deadlock the child when
        # another thread holds a lock the child needs. The other threads here are watchfiles'
        # and torch's; the child uses no lock of theirs.
        warnings.simplefilter("ignore", DeprecationWarning)
        pid = os.fork()
    if pid:
        return pid
    code = 70  # stays so if anything below goes wrong
    try:
        fresh_child_state()
        code = child()
    except BaseException:
        import traceback

        traceback.print_exc()  # to wherever stderr is now: the run's log, or the terminal
    finally:
        os._exit(code)
