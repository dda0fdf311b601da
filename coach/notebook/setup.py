"""The notebook tools on demand, and `make notebook`: JupyterLab on the notebooks folder.

requirements/notebook.txt is installed into the running Python (the course's .venv/) the
first time something needs it, as `make plots` installs requirements/plots.txt: `make test`
never needs it, and Colab never reads it (its set-up cell installs only the test tools).
"""

from __future__ import annotations

import importlib
import importlib.util
import subprocess
import sys

from coach.core.bootstrap import ROOT
from coach.core.paths import display_path

REQUIREMENTS = ROOT / "requirements" / "notebook.txt"
NOTEBOOKS = ROOT / "notebooks"
MODULES = ("nbformat", "nbclient", "ipykernel", "jupyterlab")  # what the profile brings


def missing() -> list[str]:
    return [name for name in MODULES if importlib.util.find_spec(name) is None]


def ensure(purpose: str) -> bool:
    """Install requirements/notebook.txt into this Python if any of its tools is missing.
    Returns False, having said why, when they cannot be had."""
    if not missing():
        return True
    print(
        f"Installing the notebook tools for {purpose} (once): "
        f"pip install -r {display_path(REQUIREMENTS)} ...",
        flush=True,
    )
    command = [sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    if subprocess.run([*command, "-r", str(REQUIREMENTS)], check=False).returncode != 0:
        print(f"Could not install them (pip says why above); {purpose} tries again next time.")
        return False
    importlib.invalidate_caches()  # let this process see the packages pip just added
    still = missing()
    if still:
        print(f"pip finished, but {', '.join(still)} still does not import.")
        return False
    return True


def main(rest: list[str]) -> int:
    """`make notebook`: open notebooks/ in JupyterLab, with this Python as the kernel."""
    if not ensure("make notebook"):
        return 1
    print(
        "Opening JupyterLab on notebooks/ (one notebook per kata). Run a notebook's first "
        "cell, then its %%kata cell. Ctrl-C here stops JupyterLab.",
        flush=True,
    )
    command = [sys.executable, "-m", "jupyterlab", NOTEBOOKS.name, *rest]  # from ROOT
    return subprocess.run(command, cwd=ROOT, check=False).returncode
