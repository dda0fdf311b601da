"""The learner's own state (hint levels, prediction tally) in one untracked file.

Everything lives in .coach/state.json at the repository root; delete the folder to start over.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from coach.core.bootstrap import ROOT


def state_file() -> Path:
    return Path(os.environ.get("COACH_STATE_DIR", ROOT / ".coach")) / "state.json"


def load() -> dict:
    try:
        return json.loads(state_file().read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


def save(state: dict) -> None:
    path = state_file()
    path.parent.mkdir(parents=True, exist_ok=True)
    scratch = path.with_suffix(".tmp")
    scratch.write_text(json.dumps(state, indent=2, sort_keys=True), encoding="utf-8")
    scratch.replace(path)  # atomic: a crash never leaves half a file
