"""First-use setup: a project-local virtual environment with the pinned packages.

Standard library only: this runs under whatever Python the learner typed, before torch or
pytest exist. Every coach command calls `ensure()` first; it creates .venv/ if needed,
installs requirements/<profile>.txt when they changed, and re-runs the command inside.
Set COACH_NO_VENV=1 to use the current Python as it is (your own env, with torch).

The first install shows pip's own progress (what it downloads, how big, how far). On Linux
it first asks pip, without downloading anything, which torch build it would pick: PyPI's
Linux torch bundles CUDA and pulls several GB of NVIDIA libraries, so the learner hears
about it, and gets the command for the CPU build, before the download starts. Where pip
already finds the CPU build (a +cpu wheel, as on the course machines), nothing is said.
"""

from __future__ import annotations

import hashlib
import os
import sys
from pathlib import Path

# Lazy imports below (json, re, shlex, subprocess, tempfile, importlib.metadata): every command
# starts here, and a warm `make test` (coach/learner/client.py) should cost little more than
# Python's own start-up.

ROOT = Path(__file__).resolve().parents[2]
VENV = ROOT / ".venv"
REQUIREMENTS = ROOT / "requirements"
PROFILES = ("learner", "dev")  # each one includes the one before
# What each profile's commands import (distribution names), beyond the profile before it;
# checked when COACH_NO_VENV=1 hands the commands to the Python the learner started.
NEEDED = {
    "learner": ("torch", "numpy", "pytest", "pytest-randomly", "pytest-timeout", "watchfiles"),
    "dev": ("ruff",),
}
TORCH_CPU_INDEX = "https://download.pytorch.org/whl/cpu"  # PyTorch's CPU-only wheels


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
    import subprocess

    result = subprocess.run(command, check=False)
    if result.returncode != 0:
        sys.exit(
            f"Setup failed while running: {' '.join(command)}\n"
            f"Fix the problem above, then run the same command again "
            f"(or delete .venv/ to start the setup from scratch)."
        )


# --- which torch pip would install --------------------------------------------------------


def torch_pin(requirements: Path = REQUIREMENTS / "learner.txt") -> str:
    """`torch==X`, as requirements/learner.txt pins it."""
    import re

    for line in requirements.read_text(encoding="utf-8").splitlines():
        pin = line.split("#")[0].strip()
        if re.fullmatch(r"torch==\S+", pin):
            return pin
    raise LookupError(f"{requirements} pins no torch==VERSION")


def cpu_torch_command(python: str | None = None) -> str:
    """The one command that puts torch's CPU build into .venv/ (README, "Installing")."""
    import shlex

    python = python or os.path.relpath(venv_python(), Path.cwd())
    return f"{shlex.quote(python)} -m pip install {torch_pin()} --index-url {TORCH_CPU_INDEX}"


def torch_build(
    python: str, env: dict[str, str] | None = None, ignore_installed: bool = False
) -> str | None:
    """Which torch build `pip install` would fetch into `python`'s environment: "cuda",
    "cpu", or None (torch already installed, or pip could not tell: too old for --dry-run,
    or offline). Reads only metadata (pip's --dry-run --report): no wheel is downloaded."""
    import json
    import subprocess
    import tempfile

    with tempfile.TemporaryDirectory(prefix="coach-pip-") as folder:
        report = Path(folder) / "report.json"
        command = [python, "-m", "pip", "install", "--dry-run", "--no-deps", "--quiet"]
        command += ["--ignore-installed"] if ignore_installed else []
        command += ["--disable-pip-version-check", "--report", str(report), torch_pin()]
        try:
            subprocess.run(command, capture_output=True, check=True, timeout=120, env=env)
            planned = json.loads(report.read_text(encoding="utf-8"))["install"]
        except (OSError, ValueError, KeyError, subprocess.SubprocessError):
            return None
    for item in planned:
        meta = item.get("metadata", {})
        if meta.get("name", "").lower() != "torch":
            continue
        version = meta.get("version", "")
        needs = " ".join(meta.get("requires_dist") or []).lower()
        return "cuda" if "+cu" in version or "nvidia-" in needs else "cpu"
    return None


def warn_before_cuda(python: str) -> None:
    """On Linux, say so before pip downloads torch's CUDA build; silent for the CPU build."""
    if not sys.platform.startswith("linux") or torch_build(python) != "cuda":
        return
    command = cpu_torch_command()
    print(
        "\nHeads-up: pip is about to download torch's CUDA build, several GB with NVIDIA's "
        "libraries.\nThe katas need only the CPU build (about 200 MB). To get it instead, run\n"
        f"    {command}\n"
        "then this command again.",
        flush=True,
    )
    if sys.stdin is not None and sys.stdin.isatty():
        answer = input("Download the CUDA build anyway? [y/N] ").strip().lower()
        if answer not in {"y", "yes"}:
            sys.exit(f"Stopped before the download. Run:\n    {command}")
    else:
        print("(Not a terminal, so nobody to ask: going on with the CUDA build.)", flush=True)


# --- setting up .venv/ ------------------------------------------------------------------------


def install(profile: str) -> None:
    requirements = REQUIREMENTS / f"{profile}.txt"
    if not venv_python().exists():
        print("Creating .venv/ (first run only) ...", flush=True)
        _run([sys.executable, "-m", "venv", str(VENV)])
    warn_before_cuda(str(venv_python()))
    print(
        f"Installing requirements/{profile}.txt into .venv/: torch is the big one (a minute "
        f"or more the first time). pip shows each download as it goes:",
        flush=True,
    )
    command = [str(venv_python()), "-m", "pip", "install", "--disable-pip-version-check"]
    _run([*command, "-r", str(requirements)])
    _stamp(profile).write_text(_fingerprint(profile) + "\n")
    print("Setup done.\n", flush=True)


def missing(profile: str) -> list[str]:
    """The packages `profile`'s commands need that this Python does not have."""
    from importlib import metadata

    wanted = [name for p in PROFILES[: PROFILES.index(profile) + 1] for name in NEEDED[p]]
    absent = []
    for name in wanted:
        try:
            metadata.version(name)
        except metadata.PackageNotFoundError:
            absent.append(name)
    return absent


def no_venv_problem(profile: str) -> str | None:
    """With COACH_NO_VENV=1: a plain sentence when this Python lacks what the command needs."""
    import shlex

    absent = missing(profile)
    if not absent:
        return None
    python = sys.executable
    requirements = os.path.relpath(REQUIREMENTS / f"{profile}.txt", Path.cwd())
    return (
        f"COACH_NO_VENV=1 is set, so the coach runs on the Python you started "
        f"({python}), and that Python has no {', '.join(absent)}.\n"
        f"Either install them into it:\n"
        f"    {shlex.quote(python)} -m pip install -r {shlex.quote(requirements)}\n"
        f"  (on Linux, for torch's CPU build rather than the multi-GB CUDA one, first:\n"
        f"    {cpu_torch_command(python)})\n"
        f"or unset COACH_NO_VENV, and the coach sets up its own .venv/ with everything."
    )


def ensure(profile: str, argv: list[str]) -> None:
    """Make sure the venv has `profile` installed, and run inside it; returns when it does."""
    if os.environ.get("COACH_NO_VENV"):
        problem = no_venv_problem(profile)
        if problem:
            sys.exit(problem)
        return
    if sys.version_info < (3, 11):
        sys.exit(
            "autograd-katas needs Python 3.11, 3.12 or 3.13 (the pinned numpy, networkx and "
            "pytest-randomly do not install on older ones); see README.md, Platforms."
        )
    if not _installed(profile):
        install(profile)
    if _in_venv():
        return
    command = [str(venv_python()), "-m", "coach", *argv]
    env = dict(os.environ)  # so `-m coach` resolves from any folder
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    if os.name == "nt":  # no exec on Windows: run it and pass the exit code on
        import subprocess

        sys.exit(subprocess.run(command, check=False, env=env).returncode)
    os.execve(command[0], command, env)
