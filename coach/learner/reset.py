"""`make reset K=3`: put a kata's stub back, keeping your file as a backup.

The stub comes from git: the newest committed version of katas/<kata>.py that is still a stub
(every function raises NotImplementedError), so commits of your own work are passed over.
Your current file is copied into .coach/backups/ first, where no test reads it. Asks before
it writes, unless given --yes (`make reset K=3 YES=1`).
"""

from __future__ import annotations

import ast
import shutil
import subprocess
import sys
import time

from coach.core import registry
from coach.core.bootstrap import ROOT
from coach.core.paths import display_path
from coach.learner import state
from coach.learner.hints import named_kata
from coach.learner.state import state_file


def is_stub(source: str) -> bool:
    """Every public function (or class) raises NotImplementedError somewhere in it."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return False
    public = registry.public_definitions(tree)
    return bool(public) and all(registry.raises_not_implemented(n) for n in public.values())


def _git(*args: str) -> str | None:
    try:
        result = subprocess.run(
            ["git", *args], cwd=ROOT, capture_output=True, text=True, check=False
        )
    except OSError:  # no git on this machine
        return None
    return result.stdout if result.returncode == 0 else None


def pristine_stub(kata: registry.Kata) -> str | None:
    """The newest committed version of the kata's stub file that is still a stub."""
    commits = _git("log", "--format=%H", "--", kata.stub_file)
    for commit in (commits or "").split():
        source = _git("show", f"{commit}:{kata.stub_file}")
        if source is not None and is_stub(source):
            return source
    return None


def main(rest: list[str]) -> int:
    yes = "--yes" in rest or "-y" in rest
    kata = named_kata([word for word in rest if not word.startswith("-")], "reset")
    if kata is None:
        return 2
    path = ROOT / kata.stub_file
    stub = pristine_stub(kata)
    if stub is None:
        print(
            f"Cannot find kata {kata.number}'s original stub: git has no committed version of "
            f"{kata.stub_file} that is still a stub (is this a git clone?). Nothing changed."
        )
        return 1
    current = path.read_text(encoding="utf-8") if path.exists() else None
    if current == stub:
        print(f"{display_path(path)} is already the stub. Nothing changed.")
        return 0
    backups = state_file().parent / "backups"
    backup = backups / f"{kata.name}.{time.strftime('%Y%m%d-%H%M%S')}.py"
    if not yes and not _confirm(path, backup):
        return 1
    if current is not None:
        backups.mkdir(parents=True, exist_ok=True)
        shutil.copy2(path, backup)
    path.write_text(stub, encoding="utf-8")
    _forget_hints(kata)
    kept = f" Your version is kept as {display_path(backup)}." if current is not None else ""
    print(f"{display_path(path)} is the stub again.{kept} `make test K={kata.number}` is red.")
    return 0


def _forget_hints(kata: registry.Kata) -> None:
    """A kata started over starts its hints over too: `make hint` opens at the first again."""
    learner = state.load()
    if learner.get("hints", {}).pop(kata.name, None) is not None:
        state.save(learner)


def _confirm(path, backup) -> bool:
    question = (
        f"Put {display_path(path)} back as the stub? Your file is kept as "
        f"{display_path(backup)}. [y/N] "
    )
    if not sys.stdin.isatty():
        print(f"{question}\nNot asked: no terminal to answer on. Add YES=1 (or --yes) to do it.")
        return False
    answer = input(question).strip().lower()
    if answer not in {"y", "yes"}:
        print("Nothing changed.")
        return False
    return True
