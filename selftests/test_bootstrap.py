"""First install and COACH_NO_VENV: what a learner sees before any kata runs.

- With COACH_NO_VENV=1 and a Python without torch, a plain sentence (what is missing, how to
  install it, or unset the variable), never an ImportError traceback.
- On Linux, when pip would pull torch's CUDA build, a warning with the CPU command comes
  before the download; when pip finds the CPU build, nothing is said. Which build pip would
  pick is read from pip itself, on fake wheels in a local folder (no network).
- The install shows pip's own progress instead of a minute of silence.
"""

from __future__ import annotations

import io
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from coach.core import bootstrap

ROOT = Path(__file__).resolve().parent.parent
PIN = bootstrap.torch_pin()
VERSION = PIN.split("==")[1]


# --- COACH_NO_VENV=1 on a Python without torch ---------------------------------------------


@pytest.mark.timeout(120)
def test_no_venv_without_torch_is_a_plain_sentence(tmp_path):
    bare = tmp_path / "bare"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(bare)], check=True)
    python = bare / ("Scripts/python.exe" if os.name == "nt" else "bin/python")
    env = dict(os.environ, COACH_NO_VENV="1", PYTHONPATH=str(ROOT))
    run = subprocess.run(
        [str(python), "-m", "coach", "test", "1"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    said = run.stdout + run.stderr
    assert run.returncode != 0
    assert "Traceback" not in said
    assert "COACH_NO_VENV=1 is set" in said
    assert "has no torch" in said
    assert "-m pip install -r requirements/learner.txt" in said
    assert bootstrap.TORCH_CPU_INDEX in said
    assert "unset COACH_NO_VENV" in said


def test_no_venv_with_everything_installed_says_nothing():
    assert bootstrap.no_venv_problem("dev") is None  # this Python: the project's .venv


# --- which torch build pip would download ---------------------------------------------------


def fake_torch_wheel(folder: Path, version: str, requires: list[str]) -> None:
    """A wheel that only pip's resolver will ever read (its metadata)."""
    folder.mkdir(parents=True, exist_ok=True)
    info = f"torch-{version}.dist-info"
    metadata = f"Metadata-Version: 2.1\nName: torch\nVersion: {version}\n"
    metadata += "".join(f"Requires-Dist: {name}\n" for name in requires)
    wheel = "Wheel-Version: 1.0\nGenerator: selftest\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
    with zipfile.ZipFile(folder / f"torch-{version}-py3-none-any.whl", "w") as archive:
        archive.writestr("torch/__init__.py", "")
        archive.writestr(f"{info}/METADATA", metadata)
        archive.writestr(f"{info}/WHEEL", wheel)
        archive.writestr(f"{info}/RECORD", "")


def offline_pip(links: Path) -> dict[str, str]:
    """pip with no configuration files, no index: only the wheels in `links`."""
    env = dict(os.environ, PIP_CONFIG_FILE=os.devnull, PIP_NO_INDEX="1")
    env["PIP_FIND_LINKS"] = str(links)
    return env


@pytest.mark.timeout(120)
def test_pip_is_asked_which_torch_build_it_would_fetch(tmp_path):
    cuda = tmp_path / "cuda"
    fake_torch_wheel(cuda, VERSION, ["nvidia-cublas-cu12==12.8.4.1", "filelock"])
    cpu = tmp_path / "cpu"
    fake_torch_wheel(cpu, f"{VERSION}+cpu", ["filelock"])
    python = sys.executable
    assert bootstrap.torch_build(python, offline_pip(cuda), ignore_installed=True) == "cuda"
    assert bootstrap.torch_build(python, offline_pip(cpu), ignore_installed=True) == "cpu"
    nothing = tmp_path / "empty"
    nothing.mkdir()
    assert bootstrap.torch_build(python, offline_pip(nothing), ignore_installed=True) is None


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_a_cuda_download_is_announced_with_the_cpu_command(monkeypatch, capsys):
    monkeypatch.setattr(sys, "platform", "linux")
    monkeypatch.setattr(bootstrap, "torch_build", lambda python: "cuda")
    monkeypatch.setattr(sys, "stdin", io.StringIO(""))  # not a terminal: warn, go on
    bootstrap.warn_before_cuda("python")
    said = capsys.readouterr().out
    assert "CUDA build, several GB" in said
    assert f"-m pip install {PIN} --index-url {bootstrap.TORCH_CPU_INDEX}" in said
    assert "going on with the CUDA build" in said

    monkeypatch.setattr(sys, "stdin", Terminal("\n"))  # a learner who presses Enter
    with pytest.raises(SystemExit) as stopped:
        bootstrap.warn_before_cuda("python")
    assert bootstrap.TORCH_CPU_INDEX in str(stopped.value.code)


def test_the_cpu_build_is_not_mentioned(monkeypatch, capsys):
    monkeypatch.setattr(sys, "platform", "linux")
    monkeypatch.setattr(bootstrap, "torch_build", lambda python: "cpu")
    bootstrap.warn_before_cuda("python")
    monkeypatch.setattr(bootstrap, "torch_build", lambda python: None)  # already installed
    bootstrap.warn_before_cuda("python")
    assert capsys.readouterr().out == ""


def test_the_cuda_check_runs_only_on_linux(monkeypatch, capsys):
    asked = []
    monkeypatch.setattr(bootstrap, "torch_build", asked.append)
    for platform in ("darwin", "win32"):
        monkeypatch.setattr(sys, "platform", platform)
        bootstrap.warn_before_cuda("python")
    assert asked == []  # PyPI's macOS and Windows wheels are CPU-only already
    assert capsys.readouterr().out == ""


# --- progress during the install -------------------------------------------------------------


def test_the_install_shows_pips_progress(monkeypatch, tmp_path, capsys):
    venv = tmp_path / ".venv"
    (venv / "bin").mkdir(parents=True)
    (venv / "bin" / "python").write_text("")
    monkeypatch.setattr(bootstrap, "VENV", venv)
    monkeypatch.setattr(bootstrap, "venv_python", lambda: venv / "bin" / "python")
    monkeypatch.setattr(bootstrap, "warn_before_cuda", lambda python: print("(cuda check)"))
    commands = []
    monkeypatch.setattr(bootstrap, "_run", commands.append)
    bootstrap.install("learner")
    said = capsys.readouterr().out.splitlines()
    assert said[0] == "(cuda check)"  # before anything is downloaded
    assert "pip shows each download as it goes" in said[1]
    (pip,) = commands
    assert pip[1:4] == ["-m", "pip", "install"]
    assert "--quiet" not in pip and "-q" not in pip  # pip's own progress stays visible
    assert said[-1] == "Setup done." or said[-2:] == ["Setup done.", ""]
    assert bootstrap._installed("learner")
