"""First-use setup: a project-local virtual environment with the pinned packages.

Standard library only: this runs under whatever Python the learner typed, before torch or
pytest exist. Every coach command calls `ensure()` first; it creates .venv/ if needed,
installs requirements/<profile>.txt when they changed, and re-runs the command inside.
Set COACH_NO_VENV=1 to use the current Python as it is (your own env, with torch).
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VENV = ROOT / ".venv"
REQUIREMENTS = ROOT / "requirements"
PROFILES = ("learner", "dev")  # each one includes the one before


def venv_python() -> Path:
    if os.name == "nt":
        return VENV / "Scripts" / "python.exe"
    return VENV / "bin" / "python"


def _fingerprint(profile: str) -> str:
    digest = hashlib.sha256()
    for name in PROFILES[: PROFILES.index(profile) + 1]:
        digest.update((REQUIREMENTS / f"{name}.txt").read_bytes())
    return digest.hexdigest()


def _stamp(profile: str) -> Path:
    return VENV / f".coach-{profile}.stamp"


def _installed(profile: str) -> bool:
    wanted = PROFILES[PROFILES.index(profile) :]  # a fuller profile satisfies a smaller one
    for candidate in wanted:
        stamp = _stamp(candidate)
        if stamp.is_file() and stamp.read_text().strip() == _fingerprint(candidate):
            return True
    return False


def _in_venv() -> bool:
    return Path(sys.prefix).resolve() == VENV.resolve()


def _run(command: list[str]) -> None:
    result = subprocess.run(command, check=False)
    if result.returncode != 0:
        sys.exit(
            f"Setup failed while running: {' '.join(command)}\n"
            f"Fix the problem above, then run the same command again "
            f"(or delete .venv/ to start the setup from scratch)."
        )


def install(profile: str) -> None:
    if not venv_python().exists():
        print("Creating .venv/ (first run only) ...", flush=True)
        _run([sys.executable, "-m", "venv", str(VENV)])
    print(
        f"Installing requirements/{profile}.txt into .venv/ (torch is large: the first "
        f"install takes a minute or more) ...",
        flush=True,
    )
    _run(
        [
            str(venv_python()),
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            "-r",
            str(REQUIREMENTS / f"{profile}.txt"),
        ]
    )
    _stamp(profile).write_text(_fingerprint(profile) + "\n")


def ensure(profile: str, argv: list[str]) -> None:
    """Make sure the venv has `profile` installed, and run inside it; returns when it does."""
    if os.environ.get("COACH_NO_VENV"):
        return
    if sys.version_info < (3, 10):  # noqa: UP036 (this file runs under any Python)
        sys.exit("autograd-katas needs Python 3.10 or newer.")
    if not _installed(profile):
        install(profile)
    if _in_venv():
        return
    command = [str(venv_python()), "-m", "coach", *argv]
    env = dict(os.environ)  # so `-m coach` resolves from any folder
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    if os.name == "nt":  # no exec on Windows: run it and pass the exit code on
        sys.exit(subprocess.run(command, check=False, env=env).returncode)
    os.execve(command[0], command, env)
