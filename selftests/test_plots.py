"""`make plots`: PNGs from the learner's code, only for green katas; matplotlib on demand.

One subprocess runs the real command end to end (the kata tests, then the drawing) on a copy
of solutions/ with kata 5 broken; the rest runs in this process with fakes.
"""

from __future__ import annotations

import ast
import os
import shutil
import struct
import subprocess
import sys
from pathlib import Path

import pytest

from coach.core import registry
from coach.learner import plots
from coach.runtime.summary import KataResult, Progress

ROOT = Path(__file__).resolve().parent.parent
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def png_size(path: Path) -> tuple[int, int]:
    """(width, height) from the IHDR chunk, after checking the PNG signature."""
    data = path.read_bytes()
    assert data[:8] == PNG_SIGNATURE, f"{path.name} is not a PNG file"
    assert data[12:16] == b"IHDR"
    return struct.unpack(">II", data[16:24])


@pytest.fixture(scope="module")
def matplotlib_ready():
    if not plots.ensure_matplotlib():
        pytest.skip("matplotlib is not installed and could not be installed (offline?)")


@pytest.mark.timeout(180)  # a fresh process: torch, the kata tests, then matplotlib
def test_plots_are_valid_pngs_for_green_katas_only(tmp_path, matplotlib_ready):
    impl = tmp_path / "impl"
    shutil.copytree(ROOT / "solutions", impl, ignore=shutil.ignore_patterns("__pycache__"))
    broken = impl / "k05_detach.py"
    broken.write_text(
        broken.read_text(encoding="utf-8")
        + "\n\ndef chain(a0, detach):\n    raise NotImplementedError\n",
        encoding="utf-8",
    )
    out = tmp_path / "plots"
    args = ["plots", "2", "4", "5", "--impl", str(impl), "--out", str(out)]
    result = subprocess.run(
        [sys.executable, "-m", "coach", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "COACH_NO_VENV": "1"},
        timeout=240,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "kata 5 (k05_detach) is not green yet" in result.stdout  # a graph: green only
    assert sorted(p.name for p in out.iterdir()) == [
        "k02_backprop_graph.png",
        "k04_training_step.png",
    ]
    for png in out.iterdir():
        width, height = png_size(png)
        assert width > 600 and height > 400, (png.name, width, height)
        assert png.stat().st_size > 20_000, f"{png.name} looks empty"


def red_progress(kata_name: str) -> Progress:
    results = [KataResult(kata, passed=3, total=3) for kata in registry.KATAS]
    for result in results:
        if result.kata.name == kata_name:
            result.passed = 1
    return Progress(results)


def test_red_katas_are_named_and_nothing_is_installed(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(plots.standing, "collect", lambda katas, impl: red_progress("k05_detach"))
    monkeypatch.setattr(plots, "ensure_matplotlib", lambda: pytest.fail("must not install"))
    out = tmp_path / "plots"
    assert plots.main(["5", "--impl", str(ROOT / "solutions"), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "kata 5 (k05_detach) is not green yet (1/3 tests pass)" in printed
    assert "make test K=5" in printed
    assert not out.exists()


def test_a_picture_from_an_earlier_green_run_is_removed_once_red(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(plots.standing, "collect", lambda katas, impl: red_progress("k05_detach"))
    monkeypatch.setattr(plots, "ensure_matplotlib", lambda: pytest.fail("must not install"))
    out = tmp_path / "plots"
    out.mkdir()
    old = out / "k05_detach_graph.png"
    old.write_bytes(b"an old picture")
    assert plots.main(["5", "--impl", str(ROOT / "solutions"), "--out", str(out)]) == 0
    assert not old.exists()
    assert "removed" in capsys.readouterr().out


def test_a_red_katas_own_picture_is_drawn_and_labelled(tmp_path, monkeypatch, capsys):
    """k04's training curve helps most while red; but never after a test ran out of time."""
    drawn = []
    monkeypatch.setattr(plots, "ensure_matplotlib", lambda: True)
    monkeypatch.setattr(plots, "draw", lambda kata, impl, out: drawn.append(kata.name) or out)
    red = red_progress("k04_training_step")
    monkeypatch.setattr(plots.standing, "collect", lambda katas, impl: red)
    out = tmp_path / "plots"
    assert plots.main(["4", "--impl", str(ROOT / "solutions"), "--out", str(out)]) == 0
    assert drawn == ["k04_training_step"]
    assert "is red (1/3 tests pass): drawing its picture anyway" in capsys.readouterr().out
    stuck = red_progress("k04_training_step")
    [result] = [r for r in stuck.results if r.kata.name == "k04_training_step"]
    result.failures.append((1, "t::test_x", "Your code was still running after 10 s, at ..."))
    monkeypatch.setattr(plots.standing, "collect", lambda katas, impl: stuck)
    drawn.clear()
    assert plots.main(["4", "--impl", str(ROOT / "solutions"), "--out", str(out)]) == 0
    assert drawn == []
    assert "is not green yet" in capsys.readouterr().out


def test_a_kata_without_plots_is_refused(capsys):
    assert plots.main(["3"]) == 2
    numbers = ", ".join(str(kata.number) for kata in plots.plotted_katas())
    assert f"Kata 3 has no plot. Plots exist for katas {numbers}." in capsys.readouterr().out


class FakePip:
    """Stands in for `pip install`; on success makes matplotlib importable again."""

    def __init__(self, monkeypatch, returncode: int):
        self.monkeypatch, self.returncode, self.commands = monkeypatch, returncode, []
        self.matplotlib = sys.modules["matplotlib"]
        monkeypatch.setitem(sys.modules, "matplotlib", None)  # makes `import matplotlib` fail

    def __call__(self, command, check=False):
        self.commands.append(command)
        if self.returncode == 0:
            self.monkeypatch.setitem(sys.modules, "matplotlib", self.matplotlib)
        return subprocess.CompletedProcess(command, self.returncode)


@pytest.mark.parametrize("returncode", [0, 1])
def test_matplotlib_is_installed_on_demand(monkeypatch, capsys, returncode, matplotlib_ready):
    pip = FakePip(monkeypatch, returncode)
    monkeypatch.setattr(plots.subprocess, "run", pip)
    assert plots.ensure_matplotlib() is (returncode == 0)
    assert pip.commands == [
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            "-r",
            str(plots.REQUIREMENTS),
        ]
    ]
    printed = capsys.readouterr().out
    assert printed.startswith("Installing matplotlib for the plots (once)")
    assert ("Could not install" in printed) is (returncode != 0)


def test_requirements_pin_exact_versions_that_agree_with_the_learners_set():
    def pins(name: str) -> dict[str, str]:
        lines = (ROOT / "requirements" / name).read_text(encoding="utf-8").splitlines()
        found = {}
        for line in lines:
            if line.strip() and not line.startswith(("#", "-r")):
                package, _, version = line.partition("==")
                assert version, f"{name}: {line!r} is not pinned with =="
                found[package.lower()] = version
        return found

    extra, learner = pins("plots.txt"), pins("learner.txt")
    assert "matplotlib" in extra
    for package in extra.keys() & learner.keys():
        assert extra[package] == learner[package], package


def test_nothing_on_the_test_path_imports_matplotlib():
    """`make test` stays as fast as before: only coach/learner/plots.py may import matplotlib."""
    files = [ROOT / "conftest.py", *(ROOT / "tests").glob("*.py"), *(ROOT / "coach").rglob("*.py")]
    importers = []
    for path in files:
        if path.name == "plots.py":
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                names = [f"{node.module}.{alias.name}" for alias in node.names]
            else:
                continue
            if any(n.startswith(("matplotlib", "coach.learner.plots")) for n in names):
                importers.append(path.name)
    assert importers == []
