"""The kernel's own state, kept as it was around anything the magics run in the kernel.

A learner's notebook may rely on its random numbers and torch settings: a `%%kata` run must
not move them. Only the cell body that passed the child run, and a quiz question's code,
ever run in the kernel; both run inside `kernel_state_kept()`.
"""

from __future__ import annotations

import contextlib
import random
import sys


@contextlib.contextmanager
def kernel_state_kept():
    """Put back torch's global settings, torch's and Python's RNG (and numpy's, if the
    kernel has imported numpy) after the block, whatever the block did."""
    import torch

    from coach.runtime import torch_state

    settings = torch_state.snapshot()
    torch_rng = torch.get_rng_state()
    python_rng = random.getstate()
    numpy = sys.modules.get("numpy")
    numpy_rng = numpy.random.get_state() if numpy is not None else None
    try:
        yield
    finally:
        torch_state.restore(settings)
        torch.set_rng_state(torch_rng)
        random.setstate(python_rng)
        if numpy_rng is not None:
            numpy.random.set_state(numpy_rng)
