"""`make predict K=3`: say what torch will do, then watch it do it.

Each kata has a few "predict before you run" questions. For each one the learner sees a small
piece of code and types a prediction; only then does the code run, for real, on the installed
torch. The learner sees the true value and a short why. The first prediction per question is
kept in the learner's state (right or wrong), so the tally means "right first time".

Answers can be a number (judged with a tolerance), None, "raises" (or "error"), yes/no, or
one of the names a question offers. Enter, "skip" or the end of piped input skips a question:
its code still runs and its answer is shown, but nothing is recorded.
"""

from __future__ import annotations

import contextlib
import io
import math
import re
import sys
import textwrap
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field

from coach.core import registry
from coach.core.lesson import CHOICE, NUMBER, YES_NO, Question, Quiz
from coach.learner import state
from coach.learner.hints import choose_kata
from coach.runtime.summary import BOLD, DIM, GREEN, RED, RESET
from coach.runtime.torch_noise import quiet_torch_noise

SKIP_WORDS = {"", "skip", "s", "?", "pass"}
WIDTH = 88  # wrap long explanations for an ordinary terminal
ANSWER_FORMS = (
    "Answers: a number (34, -2.5, 1e-3), None, raises (the code raises an error), yes or no, "
    "or one of the names a question offers."
)
Paint = Callable[[str, str], str]  # (text, style) -> text, styled only on a terminal


@dataclass
class Outcome:
    """What really happened when a question's code ran."""

    value: object = None  # float, bool, str or None
    error: BaseException | None = None
    printed: str = ""
    warned: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Answer:
    kind: str  # "skip", "unreadable", "none", "raises", NUMBER, YES_NO or CHOICE
    value: object = None


# --- running the code -------------------------------------------------------------------------


def run(quiz: Quiz, question: Question) -> Outcome:
    """Run the kata's setup and then the question's code, for real, in a fresh namespace."""
    return run_code(f"{quiz.setup}\n{question.code}", question.id)


def run_code(source: str, name: str) -> Outcome:
    """Run `source` for real in a fresh namespace holding `torch`; `result` is its value.

    What it printed and warned is kept, except torch's warnings about itself."""
    import torch

    namespace: dict = {"torch": torch}
    outcome = Outcome()
    printed = io.StringIO()
    with warnings.catch_warnings(record=True) as caught, contextlib.redirect_stdout(printed):
        warnings.simplefilter("always")
        quiet_torch_noise()
        try:
            exec(compile(source, f"<{name}>", "exec"), namespace)
        except Exception as error:
            outcome.error = error
    outcome.printed = printed.getvalue()
    outcome.warned = [_first_sentence(str(warning.message)) for warning in caught]
    if outcome.error is None:
        value = namespace.get("result")
        outcome.value = value.item() if isinstance(value, torch.Tensor) else value
    return outcome


def _first_sentence(text: str) -> str:
    return text.split(". ", maxsplit=1)[0].rstrip(".") + "."


def describe(outcome: Outcome) -> str:
    """The true value, as the learner would write it."""
    if outcome.error is not None:
        message = _first_sentence(str(outcome.error).strip().splitlines()[0])
        return f"raises {type(outcome.error).__name__}: {message}"
    value = outcome.value
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return repr(round(value, 4))
    return str(value)


# --- reading and judging answers --------------------------------------------------------------


def parse(text: str, question: Question) -> Answer:
    """Read a learner's answer as the question expects it (or as None / raises / skip)."""
    cleaned = text.strip().lower().replace("\u2212", "-").rstrip(".!")
    words = re.findall(r"[a-z_][a-z0-9_]*", cleaned)
    if cleaned in SKIP_WORDS:
        return Answer("skip")
    if re.search(r"rais|error|exception|throw|crash", cleaned):
        return Answer("raises")
    if "none" in words or "null" in words:
        return Answer("none")
    if question.kind == YES_NO and words and words[0] in {"yes", "y", "true", "no", "n", "false"}:
        return Answer(YES_NO, words[0] in {"yes", "y", "true"})
    if question.kind == CHOICE:
        named = [option for option in question.options if option.lower() in words]
        return Answer(CHOICE, named[0]) if len(named) == 1 else Answer("unreadable")
    if question.kind == NUMBER:
        number = _number(cleaned)
        if number is not None:
            return Answer(NUMBER, number)
    return Answer("unreadable")


def _number(text: str) -> float | None:
    """The number in an answer: "34", "34.0", "x.grad = 34", "tensor(34.)"."""
    found = re.findall(r"-?\d+(?:\.\d*)?(?:e-?\d+)?|-?\.\d+", text.rsplit("=", maxsplit=1)[-1])
    return float(found[0]) if len(found) == 1 else None


def judge(answer: Answer, outcome: Outcome, question: Question) -> bool:
    if outcome.error is not None:
        return answer.kind == "raises"
    if outcome.value is None:
        return answer.kind == "none"
    if answer.kind == NUMBER and isinstance(outcome.value, float):
        return math.isclose(
            answer.value, outcome.value, rel_tol=question.tolerance, abs_tol=question.tolerance
        )
    return answer.kind in (YES_NO, CHOICE) and answer.value == outcome.value


def what_to_type(question: Question) -> str:
    readable = {
        NUMBER: "a number",
        YES_NO: "yes or no",
        CHOICE: " or ".join(question.options),
    }[question.kind]
    return f"{readable}, None, or raises"


class Prompter:
    """Reads one answer per question: a prompt on a terminal, a line per question when piped."""

    def __init__(self, stream=None):
        self.stream = stream or sys.stdin
        self.interactive = self.stream.isatty()

    def ask(self, question: Question) -> Answer:
        while True:
            text = self._read_line()
            if text is None:  # end of input (Ctrl-D on a terminal): skip this question
                print("(skipped)" if self.interactive else "Your prediction: (none given, skipped)")
                return Answer("skip")
            answer = parse(text, question)
            if not self.interactive:
                print(f"Your prediction: {text.strip() or '(skipped)'}")
            if answer.kind != "unreadable":
                return answer
            print(f"  I could not read that. Type {what_to_type(question)}.")
            if not self.interactive:  # no second chance without someone typing
                print("  Counted as skipped.")
                return Answer("skip")

    def _read_line(self) -> str | None:
        if self.interactive:
            try:
                return input("Your prediction: ")
            except EOFError:
                return None
        line = self.stream.readline()
        return line if line else None


# --- the command ------------------------------------------------------------------------------


def main(rest: list[str]) -> int:
    kata = choose_kata(rest, "predict")
    if kata is None:
        return 2
    return quiz_learner(kata, Prompter(), color=sys.stdout.isatty())


def quiz_learner(kata: registry.Kata, prompter: Prompter, color: bool = False) -> int:
    """Ask every question of the kata in order, then print the tally."""

    def paint(text: str, style: str) -> str:
        return f"{style}{text}{RESET}" if color else text

    quiz = kata.lesson.quiz
    total = len(quiz.questions)
    print(paint(f"Kata {kata.number}: {kata.title}. Predict, then see.", BOLD))
    print("Write your answer before the code runs. Enter skips a question.")
    print(ANSWER_FORMS)
    print("\nEvery question starts from:")
    print(_indent(quiz.setup))
    try:
        for number, question in enumerate(quiz.questions, start=1):
            print()
            heading = textwrap.fill(f"Question {number} of {total}: {question.ask}", WIDTH)
            print(paint(heading, BOLD))
            print(_indent(question.code))
            answer = prompter.ask(question)
            outcome = run(quiz, question)
            show(answer, outcome, question, kata, paint)
    except KeyboardInterrupt:
        print("\nStopped. What you answered so far is kept.")
    print()
    print(tally_message(kata))
    return 0


def show(
    answer: Answer, outcome: Outcome, question: Question, kata: registry.Kata, paint: Paint
) -> None:
    """Reveal what torch did, judge the answer and record it if it was the first one."""
    for line in outcome.printed.splitlines():
        print(paint(f"  printed: {line}", DIM))
    for warning in outcome.warned:
        print(paint(f"  torch warned: {warning}", DIM))
    print(_wrap(f"torch says: {describe(outcome)}"))
    if answer.kind == "skip":
        print(_wrap(question.why))
        return
    right = judge(answer, outcome, question)
    verdict = paint("Right.", GREEN) if right else paint("Not what torch does.", RED)
    first = record(kata, question, right)
    if first is not None:
        earlier = "right" if first else "wrong"
        verdict += f" (Only your first prediction counts here, and it was {earlier}.)"
    print(_wrap(f"{verdict} {question.why}"))


def record(kata: registry.Kata, question: Question, right: bool) -> bool | None:
    """Keep the first judged answer to a question. Returns the earlier verdict, if any."""
    learner = state.load()
    answered = learner.setdefault("predictions", {}).setdefault(kata.name, {})
    earlier = answered.get(question.id)
    if earlier is not None:
        return earlier["first_answer_right"]
    answered[question.id] = {"first_answer_right": right}
    state.save(learner)
    return None


def tally_message(kata: registry.Kata) -> str:
    answered = state.load().get("predictions", {}).get(kata.name, {})
    ids = [question.id for question in kata.lesson.quiz.questions]
    firsts = [answered[qid]["first_answer_right"] for qid in ids if qid in answered]
    right, judged = sum(firsts), len(firsts)
    open_count = len(ids) - judged
    score = (
        f"{right} of {judged} right first time."
        if judged
        else "No predictions recorded yet for this kata."
    )
    advice = (
        f" Go back to the {judged - right} you missed and find the step where torch went"
        " another way than you expected."
        if right < judged
        else ""
    )
    lines = [
        f"{score} Wrong predictions are the valuable ones: each marks a place where your"
        " picture of autograd and the real thing part ways, and that place is exactly what"
        f" the kata is there to fix.{advice}"
    ]
    if open_count:
        lines.append(
            f"{open_count} question(s) still without a prediction: "
            f"`make predict K={kata.number}` again to commit to a guess."
        )
    return "\n".join(textwrap.fill(line, WIDTH) for line in lines)


def _wrap(text: str) -> str:
    return textwrap.fill(text, WIDTH, initial_indent="  ", subsequent_indent="  ")


def _indent(code: str) -> str:
    return textwrap.indent(code, "    ")
