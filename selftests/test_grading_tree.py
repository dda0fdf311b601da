"""The grading tree (coach/grading/tree.py): the grader's files and the learner's katas/*.py,
nothing else, and every change to it found and put back."""

from __future__ import annotations

import subprocess
from pathlib import Path

from coach.grading import tree

ROOT = Path(__file__).resolve().parent.parent


def test_the_tree_holds_the_graders_files_and_only_regular_kata_files(tmp_path):
    katas = tmp_path / "katas"
    katas.mkdir()
    (katas / "k01_polynomial.py").write_text("x = 1\n")
    (katas / "notes.txt").write_text("not graded\n")
    (katas / "k02_backprop.py").symlink_to("/etc/hostname")
    (katas / "big.py").write_bytes(b"#" * (tree.MAX_KATA_BYTES + 1))
    out = tmp_path / "tree"
    hashes = tree.build(ROOT, katas, out)
    top = sorted(p.name for p in out.iterdir())
    assert top == sorted([".tree.sha256", "coach", "katas", "lessons", "requirements", "tests"])
    assert sorted(p.name for p in (out / "katas").iterdir()) == ["k01_polynomial.py"]
    assert "coach/grading/judge.py" in hashes and not list(out.rglob("__pycache__"))
    assert oct(out.stat().st_mode & 0o777) == "0o755"
    check = subprocess.run(
        ["sha256sum", "-c", "--quiet", "--strict", tree.CHECKSUMS], cwd=out, check=False
    )
    assert check.returncode == 0


def test_every_change_is_found_and_put_back(tmp_path):
    out = tmp_path / "tree"
    tree.build(ROOT, ROOT / "katas", out)
    before = tree.snapshot(out)
    judge = out / "coach" / "grading" / "judge.py"
    judge.write_text("forged\n")
    (out / "tests" / "conftest.py").write_text("forged\n")
    (out / "opt_einsum").mkdir()
    (out / "coach" / "__pycache__").mkdir()
    (out / "coach" / "__pycache__" / "x.cpython-311.pyc").write_bytes(b"forged")
    (out / ".grade-k01.json").write_text("{}")  # a run's own results: not a grading file
    changed = tree.changed(out, before)
    assert changed == sorted(
        ["coach/grading/judge.py", "tests/conftest.py", "opt_einsum/",
         "coach/__pycache__/x.cpython-311.pyc"]
    )  # fmt: skip
    tree.restore(out, before, changed)
    assert tree.changed(out, before) == []
    assert (
        not (out / "opt_einsum").exists() and judge.read_bytes() == before["coach/grading/judge.py"]
    )
