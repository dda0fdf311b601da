"""`make predict`: answers judged against torch itself, first answers tallied, EOF skips."""

from __future__ import annotations

import dataclasses
import io
import json
import os
import re
import subprocess
import sys

import pytest

from coach.authoring import units
from coach.core import registry
from coach.learner import predict, state
from coach.runtime.summary import Progress

ROOT = registry.ROOT
K1, K5 = "k01_polynomial", "k05_detach"
EVERY_QUESTION = [
    (kata.name, question) for kata in registry.KATAS for question in kata.lesson.quiz.questions
]


@pytest.fixture(autouse=True)
def learner_state(tmp_path, monkeypatch):
    """A fresh, private state file for every test."""
    monkeypatch.setenv("COACH_STATE_DIR", str(tmp_path))


def predict_with(monkeypatch, capsys, kata: str, piped: str) -> str:
    """Run `make predict K=kata` with `piped` as its (non-terminal) standard input."""
    monkeypatch.setattr(sys, "stdin", io.StringIO(piped))
    assert predict.main([kata]) == 0
    return capsys.readouterr().out


def first_answers(kata_name: str) -> dict[str, bool]:
    saved = state.load().get("predictions", {}).get(kata_name, {})
    return {qid: entry["first_answer_right"] for qid, entry in saved.items()}


# --- the questions themselves -------------------------------------------------------------------


def test_every_kata_has_two_to_five_questions_with_distinct_ids():
    for kata in registry.KATAS:
        ids = [question.id for question in kata.lesson.quiz.questions]
        assert 2 <= len(ids) <= 5, kata.name
        assert len(set(ids)) == len(ids), kata.name


@pytest.mark.parametrize(
    ("kata_name", "question"), EVERY_QUESTION, ids=[f"{k}-{q.id}" for k, q in EVERY_QUESTION]
)
def test_each_snippet_runs_and_gives_what_its_explanation_claims(kata_name, question):
    """The quiz's rules live in coach/authoring/units.py, where `check --quick` runs them."""
    assert units.check_question(registry.BY_NAME[kata_name], question) == []


def test_a_broken_quiz_rule_is_told_in_a_sentence():
    kata = registry.BY_NAME[K1]
    question = kata.lesson.quiz.questions[0]
    wrong_claim = dataclasses.replace(question, claim=-12345.0)
    (problem,) = units.check_question(kata, wrong_claim)
    assert "states the answer '-12345.0'" in problem and "but its code gives" in problem
    mute = dataclasses.replace(question, why="Because " + question.why)
    (problem,) = units.check_question(kata, mute)
    assert "its explanation must start with the answer" in problem


def test_the_other_numbers_the_explanations_quote():
    """Some explanations quote numbers besides the result: hold those to torch as well."""
    import torch

    k04 = registry.BY_NAME["k04_training_step"].lesson.quiz
    by_id = {question.id: question for question in k04.questions}
    falls = by_id["loss_falls_every_step"]
    assert predict.run(k04, falls).printed == "first loss 13.86, last loss 0.0763\n"
    assert "from 13.86 to 0.076" in falls.why

    slower = by_id["slower_parameter"]
    printed = predict.run(k04, slower).printed
    (w_now, w_best), (b_now, b_best) = (
        map(float, re.findall(r"-?\d+\.\d+", line)) for line in printed.splitlines()
    )
    assert abs(w_now - w_best) < abs(b_now - b_best)
    assert round(100 * (b_best - b_now) / b_best) == 2 and "about 2%" in slower.why
    mean_square = (torch.linspace(-3, 3, 20) ** 2).mean().item()
    assert round(mean_square, 1) == 3.3 and "about 3.3" in slower.why

    halves = next(
        q
        for q in registry.BY_NAME["k03_accumulation"].lesson.quiz.questions
        if q.id.startswith("h")
    )
    X, y = torch.tensor([1.0, 2.0, 3.0, 4.0]), torch.tensor([2.0, 4.0, 6.0, 8.0])
    half_grads = [
        (2 * (0 - part_y) * part_x).mean().item()
        for part_x, part_y in ((X[:2], y[:2]), (X[2:], y[2:]))
    ]
    full_grad = (2 * (0 - y) * X).mean().item()
    assert half_grads == [-10.0, -50.0] and full_grad == -30.0
    assert "(-10 and -50)" in halves.why and "full-batch -30" in halves.why


# --- reading answers ----------------------------------------------------------------------------

NUMERIC = predict.Question("q", "?", "result = 1.0", "1.0", claim=1.0)
YES_NO = predict.Question("q", "?", "result = True", "Yes", claim=True, kind=predict.YES_NO)
CHOICE = predict.Question(
    "q", "?", "result = 'b'", "b", claim="b", kind=predict.CHOICE, options=("w", "b")
)


@pytest.mark.parametrize(
    ("text", "question", "expected"),
    [
        ("34", NUMERIC, predict.Answer(predict.NUMBER, 34.0)),
        ("  -3.0 \n", NUMERIC, predict.Answer(predict.NUMBER, -3.0)),
        ("\u22123", NUMERIC, predict.Answer(predict.NUMBER, -3.0)),
        ("x.grad = 6 + 6 = 12", NUMERIC, predict.Answer(predict.NUMBER, 12.0)),
        ("tensor(34.)", NUMERIC, predict.Answer(predict.NUMBER, 34.0)),
        ("6 or 12", NUMERIC, predict.Answer("unreadable")),
        ("None", NUMERIC, predict.Answer("none")),
        ("none, it stays empty", NUMERIC, predict.Answer("none")),
        ("RuntimeError", NUMERIC, predict.Answer("raises")),
        ("it raises", YES_NO, predict.Answer("raises")),
        ("error!", CHOICE, predict.Answer("raises")),
        ("", NUMERIC, predict.Answer("skip")),
        ("skip", NUMERIC, predict.Answer("skip")),
        ("Yes, every step", YES_NO, predict.Answer(predict.YES_NO, True)),
        ("n", YES_NO, predict.Answer(predict.YES_NO, False)),
        ("12", YES_NO, predict.Answer("unreadable")),
        ("b.", CHOICE, predict.Answer(predict.CHOICE, "b")),
        ("w and b", CHOICE, predict.Answer("unreadable")),
        ("maybe", NUMERIC, predict.Answer("unreadable")),
    ],
)
def test_answers_are_read_as_the_question_expects(text, question, expected):
    assert predict.parse(text, question) == expected


def test_numbers_are_judged_with_a_tolerance():
    outcome = predict.Outcome(value=34.0)
    for text, right in [("34", True), ("34.0004", True), ("34.1", False), ("-34", False)]:
        assert predict.judge(predict.parse(text, NUMERIC), outcome, NUMERIC) is right, text


def test_none_and_raises_are_only_right_when_torch_agrees():
    none, raised = predict.Outcome(value=None), predict.Outcome(error=RuntimeError("no"))
    assert predict.judge(predict.Answer("none"), none, NUMERIC)
    assert not predict.judge(predict.Answer("raises"), none, NUMERIC)
    assert predict.judge(predict.Answer("raises"), raised, NUMERIC)
    assert not predict.judge(predict.Answer("none"), raised, NUMERIC)
    assert not predict.judge(predict.Answer(predict.NUMBER, 0.0), none, NUMERIC)


# --- the command --------------------------------------------------------------------------------


def test_piped_answers_are_judged_and_tallied(monkeypatch, capsys):
    out = predict_with(monkeypatch, capsys, "1", "None\n31\n35\nerror\n")
    assert first_answers(K1) == {
        "grad_before_backward": True,
        "y_at_3": True,
        "grad_at_3": False,
        "integer_leaf": True,
    }
    assert out.count("Right.") == 3 and out.count("Not what torch does.") == 1
    assert "torch says: 34.0" in out
    assert "x.grad = torch.tensor" not in out  # the code shown is the kata's, not ours
    assert "3 of 4 right first time. Wrong predictions are the valuable ones" in out


def test_only_the_first_answer_counts(monkeypatch, capsys):
    predict_with(monkeypatch, capsys, "1", "0\n")  # wrong, then EOF skips the rest
    assert first_answers(K1) == {"grad_before_backward": False}

    out = predict_with(monkeypatch, capsys, "1", "None\n31\n34\nraises\n")
    assert first_answers(K1) == {
        "grad_before_backward": False,
        "y_at_3": True,
        "grad_at_3": True,
        "integer_leaf": True,
    }
    assert "Only your first prediction counts here, and it was wrong." in out
    assert "3 of 4 right first time." in out


def test_end_of_input_skips_but_still_shows_every_answer(monkeypatch, capsys):
    out = predict_with(monkeypatch, capsys, "5", "")
    questions = registry.BY_NAME[K5].lesson.quiz.questions
    assert out.count("(none given, skipped)") == len(questions)
    assert out.count("torch says:") == len(questions)
    assert "raises RuntimeError: element 0 of tensors does not require grad" in out
    assert first_answers(K5) == {}
    assert "No predictions recorded yet" in out
    assert f"{len(questions)} question(s) still without a prediction" in out


def test_an_unreadable_piped_answer_is_skipped_not_judged(monkeypatch, capsys):
    out = predict_with(monkeypatch, capsys, "1", "dunno\nNone\n")
    assert "I could not read that" in out
    assert first_answers(K1) == {"y_at_3": False}  # the answers stay in step with the questions


def test_on_a_terminal_an_unreadable_answer_is_asked_again(monkeypatch, capsys):
    typed = iter(["dunno", "None", "31"])
    monkeypatch.setattr("builtins.input", lambda prompt: next(typed))
    terminal = io.StringIO()
    terminal.isatty = lambda: True
    prompter = predict.Prompter(terminal)
    question = registry.BY_NAME[K1].lesson.quiz.questions[0]
    assert prompter.ask(question) == predict.Answer("none")
    assert "I could not read that" in capsys.readouterr().out


def test_ctrl_c_stops_politely_and_keeps_the_answers(monkeypatch, capsys):
    answers = iter([predict.Answer("none")])

    class Interrupted(predict.Prompter):
        def ask(self, question):
            answer = next(answers, None)
            if answer is None:
                raise KeyboardInterrupt
            return answer

    predict.quiz_learner(registry.find("1"), Interrupted(io.StringIO()))
    out = capsys.readouterr().out
    assert "Stopped." in out and "1 of 1 right first time." in out
    assert first_answers(K1) == {"grad_before_backward": True}


def test_without_k_the_first_red_kata_is_quizzed(monkeypatch, capsys):
    outcomes = [
        (f"{kata.test_file}::t", (kata.name, "passed" if kata.number < 5 else "failed", "", 1))
        for kata in registry.KATAS
    ]
    monkeypatch.setattr(
        "coach.learner.standing.collect", lambda *a, **k: Progress.from_outcomes(outcomes)
    )
    monkeypatch.setattr(sys, "stdin", io.StringIO(""))
    assert predict.main([]) == 0
    assert "Kata 5: Stopping gradients with detach()" in capsys.readouterr().out


def test_make_predict_end_to_end(tmp_path):
    """The real command in a fresh process, answers piped in, as a learner's script would."""
    finished = subprocess.run(
        [sys.executable, "-m", "coach", "predict", "5"],
        input="36\nNone\nNone\n0\n1\n",
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={**os.environ, "COACH_STATE_DIR": str(tmp_path)},
        timeout=60,
        check=False,
    )
    assert finished.returncode == 0, finished.stderr
    assert "4 of 5 right first time." in finished.stdout
    saved = json.loads((tmp_path / "state.json").read_text())["predictions"][K5]
    assert saved["backward_after_detach"] == {"first_answer_right": False}
    assert sum(entry["first_answer_right"] for entry in saved.values()) == 4
    assert "\033[" not in finished.stdout  # piped: no colour


def test_on_a_terminal_ctrl_d_skips_the_question(monkeypatch, capsys):
    def ctrl_d(prompt):
        raise EOFError

    monkeypatch.setattr("builtins.input", ctrl_d)
    terminal = io.StringIO()
    terminal.isatty = lambda: True
    question = registry.BY_NAME[K1].lesson.quiz.questions[0]
    assert predict.Prompter(terminal).ask(question) == predict.Answer("skip")
    assert capsys.readouterr().out == "(skipped)\n"


def test_the_accepted_answer_forms_are_said_before_the_first_question(monkeypatch, capsys):
    out = predict_with(monkeypatch, capsys, "1", "")
    forms = out.index("Answers: a number (34, -2.5, 1e-3), None, raises")
    assert forms < out.index("Question 1 of")
    assert "yes or no, or one of the names a question offers." in out


def test_torch_warnings_about_itself_are_not_shown():
    """The first make_dual of a process makes torch 2.13 warn 18 times that its own use of
    torch.jit.script is deprecated: predict's executor leaves those out, and only those."""
    code = (
        "import torch.autograd.forward_ad as fwAD\n"
        "with fwAD.dual_level():\n"
        "    dual = fwAD.make_dual(torch.tensor(1.0), torch.tensor(1.0))\n"
        "    result = fwAD.unpack_dual(dual * 3).tangent\n"
        "import warnings\n"
        "warnings.warn('a warning of the code itself')\n"
    )
    quiet = (
        "from coach.learner import predict\n"
        f"outcome = predict.run_code({code!r}, 'dual')\n"
        "print(outcome.value, outcome.warned)\n"
    )
    loud = (
        "import warnings, torch\n"
        "with warnings.catch_warnings(record=True) as caught:\n"
        "    warnings.simplefilter('always')\n"
        f"    exec({code!r}, {{'torch': torch}})\n"
        "print(sum('torch.jit.script' in str(w.message) for w in caught))\n"
    )
    shown = []
    for program in (quiet, loud):
        finished = subprocess.run(
            [sys.executable, "-c", program],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert finished.returncode == 0, finished.stderr
        shown.append(finished.stdout.strip())
    assert shown == ["3.0 ['a warning of the code itself.']", "18"]
