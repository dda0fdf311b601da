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

from coach import registry, state
from coach.hints import choose_kata
from coach.report import BOLD, DIM, GREEN, RED, RESET

NUMBER, YES_NO, CHOICE = "number", "yes/no", "choice"
SKIP_WORDS = {"", "skip", "s", "?", "pass"}
WIDTH = 88  # wrap long explanations for an ordinary terminal
Paint = Callable[[str, str], str]  # (text, style) -> text, styled only on a terminal


@dataclass(frozen=True)
class Question:
    id: str  # the key in the learner's state; never rename one that learners have answered
    ask: str
    code: str  # runs after the kata's setup and must set `result` (or raise)
    why: str
    # What `why` says torch gives: a float, None, a bool, a choice, or an exception class.
    # Only the selftests read it, to hold the code and the explanation to each other; the
    # learner is always judged against what the code really does.
    claim: object
    kind: str = NUMBER  # what a readable answer looks like, besides None and "raises"
    options: tuple[str, ...] = ()  # for CHOICE
    tolerance: float = 1e-3


@dataclass(frozen=True)
class Quiz:
    setup: str  # shown once, run before every question's code
    questions: tuple[Question, ...]


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


def _code(text: str) -> str:
    return textwrap.dedent(text).strip()


QUIZZES: dict[str, Quiz] = {
    "k01_polynomial": Quiz(
        setup=_code("""
            x = torch.tensor(3.0, requires_grad=True)
            y = x**3 + 2*x**2 - 5*x + 1
        """),
        questions=(
            Question(
                "grad_before_backward",
                "y is built, but backward() has not run yet. What is x.grad?",
                "result = x.grad",
                "None. Building y only records the steps; nothing is differentiated until "
                "backward() runs, and until then .grad holds nothing at all, not even 0.",
                claim=None,
            ),
            Question(
                "y_at_3",
                "What is y?",
                "result = y.item()",
                "31.0: 27 + 18 - 15 + 1. The forward pass is plain arithmetic; autograd "
                "only writes down what was done.",
                claim=31.0,
            ),
            Question(
                "grad_at_3",
                "After y.backward(), what is x.grad?",
                "y.backward()\nresult = x.grad.item()",
                "34.0: dy/dx = 3x**2 + 4x - 5 = 27 + 12 - 5 at x = 3. backward() applied the "
                "chain rule to every recorded step and put the sum in x.grad.",
                claim=34.0,
            ),
            Question(
                "integer_leaf",
                "Start again from the integer 3 instead of 3.0. What happens?",
                "x = torch.tensor(3, requires_grad=True)\nresult = x",
                "It raises RuntimeError: only floating-point (and complex) tensors can require "
                "gradients. torch.tensor(3) holds an integer, and integers have no small steps "
                "to take a derivative along.",
                claim=RuntimeError,
            ),
        ),
    ),
    "k02_backprop": Quiz(
        setup=_code("""
            x = torch.tensor(2.0, requires_grad=True)
            w1 = torch.tensor(3.0, requires_grad=True)
            w2 = torch.tensor(-1.0, requires_grad=True)
            b = torch.tensor(0.5, requires_grad=True)
            h = x * w1          # 6
            h_act = h + b       # 6.5
            y = h_act * w2      # -6.5
            y.backward()
        """),
        questions=(
            Question(
                "w2_grad",
                "What is w2.grad?",
                "result = w2.grad.item()",
                "6.5: y = h_act * w2, so dy/dw2 is the other factor, h_act = 6.5.",
                claim=6.5,
            ),
            Question(
                "b_grad",
                "What is b.grad?",
                "result = b.grad.item()",
                "-1.0: the gradient arriving at h_act is w2 = -1, and the sum h + b passes it "
                "on unchanged to both of its inputs.",
                claim=-1.0,
            ),
            Question(
                "w1_grad",
                "What is w1.grad?",
                "result = w1.grad.item()",
                "-2.0: the gradient at h is -1 (from w2, through the sum); h = x * w1, so "
                "multiply by the other factor, x = 2.",
                claim=-2.0,
            ),
            Question(
                "x_grad",
                "What is x.grad?",
                "result = x.grad.item()",
                "-3.0: the same path as w1, but the other factor is now w1 = 3. x is an input, "
                "not a weight; autograd does not care, it serves every leaf that requires grad.",
                claim=-3.0,
            ),
            Question(
                "h_grad",
                "And the hidden value: what is h.grad?",
                "result = h.grad",
                "None (torch warns about it): h was computed, so it is not a leaf, and only "
                "leaves keep .grad. The -1 that passed through h was used and dropped; "
                "h.retain_grad() before backward() would keep it.",
                claim=None,
            ),
        ),
    ),
    "k03_accumulation": Quiz(
        setup="x = torch.tensor(3.0, requires_grad=True)",
        questions=(
            Question(
                "first_backward",
                "y = x**2, so dy/dx = 2x. After one backward(), what is x.grad?",
                "y = x**2\ny.backward()\nresult = x.grad.item()",
                "6.0: 2 * 3. The first backward() finds x.grad empty (None) and fills it.",
                claim=6.0,
            ),
            Question(
                "second_backward",
                "Build y again and call backward() again, without clearing. What is x.grad?",
                _code("""
                    y = x**2
                    y.backward()
                    y = x**2   # a fresh graph, the same x
                    y.backward()
                    result = x.grad.item()
                """),
                "12.0: 6 + 6. backward() adds into .grad instead of replacing it.",
                claim=12.0,
            ),
            Question(
                "after_zeroing",
                "Two backward() calls as before, then x.grad.zero_(), then one more. x.grad?",
                _code("""
                    for _ in range(2):
                        y = x**2
                        y.backward()
                    x.grad.zero_()
                    y = x**2
                    y.backward()
                    result = x.grad.item()
                """),
                "6.0: zero_() emptied the pile, so only the newest gradient is in it. That is "
                "what optimizer.zero_grad() is for.",
                claim=6.0,
            ),
            Question(
                "same_graph_twice",
                "Call backward() twice on the same y. What happens?",
                "y = x**2\ny.backward()\ny.backward()\nresult = x.grad.item()",
                "It raises RuntimeError: backward() frees the values the graph saved for it, "
                "so the same graph cannot be walked twice. Build a new y each time (or pass "
                "retain_graph=True to the first call).",
                claim=RuntimeError,
            ),
            Question(
                "halves_unweighted",
                "On the full batch, d(loss)/dw at w = 0 is -30. Two halves, each half's own "
                "mean loss backward()ed, nothing cleared. What is w.grad?",
                _code("""
                    X = torch.tensor([1.0, 2.0, 3.0, 4.0])
                    y = torch.tensor([2.0, 4.0, 6.0, 8.0])
                    w = torch.tensor(0.0, requires_grad=True)
                    ((w * X[:2] - y[:2]) ** 2).mean().backward()
                    ((w * X[2:] - y[2:]) ** 2).mean().backward()
                    result = w.grad.item()
                """),
                "-60.0: each half's mean already counts as a whole batch (-10 and -50), so the "
                "two add up to twice the full-batch -30. Weighting each piece's loss fixes "
                "that; by how much is part of the kata.",
                claim=-60.0,
            ),
        ),
    ),
    "k04_training_step": Quiz(
        setup=_code('''
            g = torch.Generator().manual_seed(42)
            X = torch.linspace(-3, 3, 20)
            y = 2 * X + 1 + 0.3 * torch.randn(20, generator=g)   # the kata's make_data()
            w = torch.tensor(0.0, requires_grad=True)
            b = torch.tensor(0.0, requires_grad=True)

            def train(steps=200, lr=0.01, clear=True):
                """Gradient descent; torch.optim.SGD does the update and the clearing."""
                optimizer = torch.optim.SGD([w, b], lr=lr)
                losses = []
                for _ in range(steps):
                    if clear:
                        optimizer.zero_grad()
                    loss = ((y - (w * X + b)) ** 2).mean()
                    loss.backward()
                    optimizer.step()
                    losses.append(loss.item())
                return losses
        '''),
        questions=(
            Question(
                "loss_falls_every_step",
                "Does the loss fall at every one of the 200 steps? (yes/no)",
                _code("""
                    losses = train()
                    print(f"first loss {losses[0]:.2f}, last loss {losses[-1]:.4f}")
                    result = all(new < old for old, new in zip(losses, losses[1:]))
                """),
                "Yes: with a learning rate this small every step goes a little way downhill, "
                "and the loss shrinks each time, from 13.86 to 0.076.",
                claim=True,
                kind=YES_NO,
            ),
            Question(
                "slower_parameter",
                "After 200 steps, which of w and b is further from its value in the best "
                "line through the points (least squares)?",
                _code("""
                    train()
                    A = torch.stack([X, torch.ones_like(X)], dim=1)
                    best_w, best_b = torch.linalg.lstsq(A, y[:, None]).solution.flatten()
                    print(f"w = {w.item():.4f} (best {best_w:.4f})")
                    print(f"b = {b.item():.4f} (best {best_b:.4f})")
                    result = "w" if abs(w - best_w) > abs(b - best_b) else "b"
                """),
                "b. The loss's slope in w is multiplied by the x values (the mean of x**2 is "
                "about 3.3 here) and its slope in b is not, so w closes its gap 3.3 times "
                "faster; b still has about 2% of its way to go.",
                claim="b",
                kind=CHOICE,
                options=("w", "b"),
            ),
            Question(
                "no_clearing",
                "Leave out the clearing (step 5). Does the loss still fall at every step? (yes/no)",
                _code("""
                    losses = train(clear=False)
                    print("first 12 losses:", [round(loss, 2) for loss in losses[:12]])
                    result = all(new < old for old, new in zip(losses, losses[1:]))
                """),
                "No: every step now also pushes with all the old gradients, so w and b "
                "overshoot and the loss swings down and up again instead of settling.",
                claim=False,
                kind=YES_NO,
            ),
            Question(
                "update_without_no_grad",
                "Update w by hand, outside `with torch.no_grad():`. What happens?",
                _code("""
                    loss = ((y - (w * X + b)) ** 2).mean()
                    loss.backward()
                    w -= 0.01 * w.grad   # not inside torch.no_grad()
                    result = w.item()
                """),
                "It raises RuntimeError: autograd will not let a leaf it is tracking be changed "
                "in place, since the change would itself be recorded as a step after w. Inside "
                "torch.no_grad() nothing is recorded, so the same line is fine there.",
                claim=RuntimeError,
            ),
        ),
    ),
    "k05_detach": Quiz(
        setup="a = torch.tensor(2.0, requires_grad=True)",
        questions=(
            Question(
                "grad_without_detach",
                "b = a * 3, c = b**2, c.backward(). What is a.grad?",
                "b = a * 3\nc = b**2\nc.backward()\nresult = a.grad.item()",
                "36.0: dc/da = dc/db * db/da = 2b * 3 = 12 * 3.",
                claim=36.0,
            ),
            Question(
                "backward_after_detach",
                "Now b is detached before c is built. What does c.backward() do?",
                "b = (a * 3).detach()\nc = b**2\nc.backward()\nresult = a.grad",
                "It raises RuntimeError: c was built only from the detached b, so c does not "
                "require grad and has no grad_fn; there is nothing to walk back through.",
                claim=RuntimeError,
            ),
            Question(
                "grad_after_detach",
                "Same detached chain, but backward() only runs if c.requires_grad. a.grad?",
                _code("""
                    b = (a * 3).detach()
                    c = b**2
                    if c.requires_grad:
                        c.backward()
                    result = a.grad
                """),
                "None: no gradient ever reached a, because the path was cut at b. None "
                "(never computed) is not the same as 0.0 (computed, and zero).",
                claim=None,
            ),
            Question(
                "round_grad",
                "x = 2.7, y = torch.round(x), y.backward(). What is x.grad?",
                _code("""
                    x = torch.tensor(2.7, requires_grad=True)
                    y = torch.round(x)
                    y.backward()
                    result = x.grad.item()
                """),
                "0.0: round is flat between its jumps, so torch gives it the derivative 0 "
                "everywhere. Nothing learns through a rounding step.",
                claim=0.0,
            ),
            Question(
                "straight_through",
                "The straight-through version: y = x + (round(x) - x).detach(), which is 3.0. "
                "What is x.grad after y.backward()?",
                _code("""
                    x = torch.tensor(2.7, requires_grad=True)
                    y = x + (torch.round(x) - x).detach()
                    print("y =", y.item())
                    y.backward()
                    result = x.grad.item()
                """),
                "1.0: autograd sees y = x + (a constant), so dy/dx = 1. The detached part "
                "changes the value, not the gradient.",
                claim=1.0,
            ),
        ),
    ),
}


# --- running the code -------------------------------------------------------------------------


def run(quiz: Quiz, question: Question) -> Outcome:
    """Run the kata's setup and then the question's code, for real, in a fresh namespace."""
    import torch

    namespace: dict = {"torch": torch}
    outcome = Outcome()
    printed = io.StringIO()
    with warnings.catch_warnings(record=True) as caught, contextlib.redirect_stdout(printed):
        warnings.simplefilter("always")
        try:
            exec(compile(f"{quiz.setup}\n{question.code}", f"<{question.id}>", "exec"), namespace)
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
    words = re.findall(r"[a-z_]+", cleaned)
    if cleaned in SKIP_WORDS:
        return Answer("skip")
    if re.search(r"rais|error|exception|throw|crash", cleaned):
        return Answer("raises")
    if "none" in words or "null" in words:
        return Answer("none")
    if question.kind == YES_NO and words and words[0] in {"yes", "y", "true", "no", "n", "false"}:
        return Answer(YES_NO, words[0] in {"yes", "y", "true"})
    if question.kind == CHOICE:
        named = [option for option in question.options if option in words]
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

    quiz = QUIZZES[kata.name]
    total = len(quiz.questions)
    print(paint(f"Kata {kata.number}: {kata.title}. Predict, then see.", BOLD))
    print("Write your answer before the code runs. Enter skips a question.")
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
    ids = [question.id for question in QUIZZES[kata.name].questions]
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
