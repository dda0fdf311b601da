"""Warnings torch raises about itself, which say nothing about the code that ran.

The first forward-mode call of a process (torch.autograd.forward_ad.make_dual, torch.func.jvp)
imports torch._decomp.decompositions_for_jvp, which compiles its helpers with torch.jit.script:
torch 2.13 then warns 18 times that torch.jit.script is deprecated. Kata test runs (the pytest
plugin) and `make predict` ignore that warning, and only when torch.jit._script raises it.
"""

from __future__ import annotations

import warnings

# torch's warning about its own use of torch.jit.script (torch 2.13; 3.14+ words it otherwise)
JIT_SCRIPT_DEPRECATED = r"`torch\.jit\.script` is (deprecated|not supported)"
JIT_SCRIPT_MODULE = r"torch\.jit\._script\Z"
# the same rule in pytest's "filterwarnings" ini syntax
PYTEST_FILTER = rf"ignore:{JIT_SCRIPT_DEPRECATED}:DeprecationWarning:{JIT_SCRIPT_MODULE}"


def quiet_torch_noise() -> None:
    """Ignore torch's warning about its own torch.jit.script, in this process."""
    warnings.filterwarnings(
        "ignore",
        message=JIT_SCRIPT_DEPRECATED,
        category=DeprecationWarning,
        module=JIT_SCRIPT_MODULE,
    )
