"""`make hint`: one more hint per call, remembered per kata, never the whole solution."""

from __future__ import annotations

import ast
import subprocess
import sys

import pytest

from coach.core import registry
from coach.learner import hints, state
from coach.runtime.summary import Progress

K1, K2, K3 = (kata.name for kata in registry.KATAS[:3])


@pytest.fixture(autouse=True)
def learner_state(tmp_path, monkeypatch):
    """A fresh, private state file for every test."""
    monkeypatch.setenv("COACH_STATE_DIR", str(tmp_path))


def hint(capsys, *args: str) -> tuple[int, str, str]:
    code = hints.main(list(args))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def level(kata_name: str) -> int | None:
    return state.load().get("hints", {}).get(kata_name)


def fake_progress(monkeypatch, green: set[str]) -> None:
    """Make outcomes.collect report the katas in `green` as green and the others as red."""
    outcomes = [
        (
            f"{kata.test_file}::test_it",
            (kata.name, "passed" if kata.name in green else "failed", "", 1),
        )
        for kata in registry.KATAS
    ]
    monkeypatch.setattr(
        "coach.learner.standing.collect", lambda *a, **k: Progress.from_outcomes(outcomes)
    )


def test_every_kata_has_three_or_four_hints():
    for kata in registry.KATAS:
        texts = hints.hints_for(kata)
        assert 3 <= len(texts) <= 4, kata.name
        assert all(texts), kata.name


def test_each_call_shows_the_hints_so_far_plus_one(capsys):
    code, out, _ = hint(capsys, "3")
    assert code == 0
    assert "Hint 1 of 4" in out and "Hint 1:" in out and "Hint 2:" not in out
    assert level(K3) == 1

    _, out, _ = hint(capsys, "k03")
    assert "Hint 1:" in out and "Hint 2:" in out and "Hint 3:" not in out
    assert hints.hints_for(registry.find("3"))[1].splitlines()[0] in out
    assert "again for hint 3" in out
    assert level(K3) == 2


def test_the_last_hint_says_so_and_points_to_the_solution(capsys):
    total = len(hints.hints_for(registry.BY_NAME[K3]))
    for _ in range(total):
        _, out, _ = hint(capsys, "3")
    assert f"Hint {total}:" in out
    assert "That was the last hint" in out
    assert "make solution K=3" in out

    _, out, _ = hint(capsys, "3")  # asking again does not go past the end
    assert level(K3) == total
    assert f"That is all {total} hints" in out


def test_levels_are_kept_per_kata(capsys):
    hint(capsys, "1")
    hint(capsys, "1")
    hint(capsys, "2")
    assert (level(K1), level(K2)) == (2, 1)


def test_reset_forgets_only_that_kata(capsys):
    hint(capsys, "1")
    hint(capsys, "3")
    hint(capsys, "3")
    code, out, _ = hint(capsys, "3", "--reset")
    assert code == 0
    assert "forgotten" in out
    assert level(K3) is None and level(K1) == 1

    _, out, _ = hint(capsys, "3")
    assert "Hint 1 of 4" in out and "Hint 2:" not in out


def test_without_k_the_first_red_kata_is_chosen(capsys, monkeypatch):
    fake_progress(monkeypatch, green={K1})
    code, out, _ = hint(capsys)
    assert code == 0
    assert "kata 2 is the first one that is not green" in out
    assert level(K2) == 1


def test_without_k_and_nothing_red_the_learner_is_asked_for_k(capsys, monkeypatch):
    fake_progress(monkeypatch, green={kata.name for kata in registry.KATAS})
    code, out, _ = hint(capsys)
    assert code == 2
    assert "make hint K=3" in out
    assert state.load() == {}


def test_unknown_kata_and_unknown_option_are_refused(capsys):
    code, _, err = hint(capsys, "99")
    assert code == 2 and "No kata called '99'" in err
    code, _, err = hint(capsys, "3", "--all")
    assert code == 2 and "Unknown option --all" in err
    assert state.load() == {}


def test_colour_only_when_asked_for(capsys):
    kata = registry.find("1")
    coloured = hints.render(kata, hints.hints_for(kata)[:2], 4, color=True)
    assert any("\033[" in line for line in coloured)
    _, out, _ = hint(capsys, "1")  # capsys is not a terminal
    assert "\033[" not in out


def _function_bodies(path) -> dict[str, list[str]]:
    """Each function of a reference solution: its code lines, without comments."""
    source = path.read_text(encoding="utf-8")
    lines = source.splitlines()
    bodies = {}
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.FunctionDef):
            body = lines[node.body[0].lineno - 1 : node.end_lineno]
            code = [line.split("#")[0].strip() for line in body]
            bodies[node.name] = [line for line in code if line]
    return bodies


@pytest.mark.parametrize("kata", registry.KATAS, ids=lambda kata: kata.name)
def test_no_hint_spells_out_a_whole_reference_function(kata):
    """The last hint is nearly the code: at least one line of every function is left to do."""
    reference = registry.ROOT / "solutions" / f"{kata.name}.py"
    if not reference.is_file():
        pytest.skip(f"no reference solution for {kata.name} yet")
    shown = "\n".join(hints.hints_for(kata))
    for function, code in _function_bodies(reference).items():
        missing = [line for line in code if line not in shown]
        assert missing, f"the hints for {kata.name} give all of {function}()"


def test_a_hint_does_not_wait_for_torch():
    """Importing torch costs seconds; `make hint K=3` needs none of it."""
    finished = subprocess.run(
        [sys.executable, "-c", "import sys, coach.learner.hints; print('torch' in sys.modules)"],
        cwd=registry.ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    assert finished.stdout.strip() == "False"
