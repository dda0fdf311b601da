"""A pytest plugin the notebook's child run loads beside the coach's own (`-p`): it only
reports whether the kata's module imported cleanly under the loader, so that the kernel runs
the cell's body only then. It changes no test and no outcome."""

from __future__ import annotations

import json
import os
from pathlib import Path

ENV = "COACH_NOTEBOOK_PROBE"  # where to write {"imported": {kata name: true or false}}


def pytest_sessionfinish(session):
    target = os.environ.get(ENV)
    if not target:
        return
    from coach.runtime import loader  # here, not at the top: the kernel imports ENV without torch

    # The loader keeps, per kata, the module or the message that says why it did not load.
    imported = {name: not isinstance(result, str) for name, result in loader._loaded.items()}
    Path(target).write_text(json.dumps({"imported": imported}), encoding="utf-8")
