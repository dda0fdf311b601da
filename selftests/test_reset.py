"""`make reset K=N`: the stub comes back, the learner's file is kept where no test reads it."""

from __future__ import annotations

import io
import subprocess
import sys

import pytest

from coach.core import registry
from coach.learner import reset

KATA = registry.KATAS[0]


def git(root, *args):
    subprocess.run(["git", *args], cwd=root, check=True, capture_output=True)


@pytest.fixture
def repo(tmp_path, monkeypatch):
    """A git repository whose history holds the stub, then a commit of the learner's work."""
    root = tmp_path / "repo"
    (root / "katas").mkdir(parents=True)
    stub = (registry.ROOT / KATA.stub_file).read_text()
    path = root / KATA.stub_file
    path.write_text(stub)
    git(root, "init", "-q")
    git(root, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qam", "x", "--allow-empty")
    git(root, "add", ".")
    git(root, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "stub")
    solved = (registry.ROOT / "solutions" / f"{KATA.name}.py").read_text()
    path.write_text(solved)
    git(root, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qam", "my work")
    path.write_text(solved + "\n# more of my work\n")
    monkeypatch.setattr(reset, "ROOT", root)
    monkeypatch.setenv("COACH_STATE_DIR", str(tmp_path / "state"))
    return root, stub, path


def test_yes_puts_the_stub_back_and_keeps_the_learners_file(repo, capsys):
    root, stub, path = repo
    mine = path.read_text()
    assert reset.main([str(KATA.number), "--yes"]) == 0
    assert path.read_text() == stub  # the learner's own commit was passed over
    backups = list((root.parent / "state" / "backups").iterdir())
    assert [b.read_text() for b in backups] == [mine]
    out = capsys.readouterr().out
    assert "is the stub again. Your version is kept as" in out


def test_without_a_terminal_it_asks_for_yes_and_changes_nothing(repo, monkeypatch, capsys):
    _, _, path = repo
    mine = path.read_text()
    monkeypatch.setattr(sys, "stdin", io.StringIO(""))
    assert reset.main([str(KATA.number)]) == 1
    assert path.read_text() == mine
    assert "Add YES=1 (or --yes)" in capsys.readouterr().out


def test_a_no_at_the_question_changes_nothing(repo, monkeypatch, capsys):
    _, _, path = repo
    mine = path.read_text()
    monkeypatch.setattr(sys, "stdin", io.StringIO("n\n"))
    monkeypatch.setattr(sys.stdin, "isatty", lambda: True, raising=False)
    assert reset.main([str(KATA.number)]) == 1
    assert path.read_text() == mine
    assert "Nothing changed." in capsys.readouterr().out


def test_a_stub_is_a_file_whose_every_function_raises_not_implemented():
    assert reset.is_stub((registry.ROOT / KATA.stub_file).read_text())
    assert not reset.is_stub((registry.ROOT / "solutions" / f"{KATA.name}.py").read_text())


def test_a_reset_kata_starts_its_hints_over_and_keeps_the_others(repo, capsys):
    from coach.learner import state

    other = next(kata for kata in registry.KATAS if kata.name != KATA.name)
    state.save({"hints": {KATA.name: 4, other.name: 2}})
    assert reset.main([str(KATA.number), "--yes"]) == 0
    assert state.load()["hints"] == {other.name: 2}
