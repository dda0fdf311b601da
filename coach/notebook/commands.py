"""What the line magics do, as functions that return text (magics.py shows it).

Each one says its next step in notebook terms (`%kata_hint 3`, not `make hint K=3`). None of
them runs the learner's code in the kernel: `%kata_graph` draws in a child process, and
`%kata_predict` runs only the lesson's own quiz code, with the kernel's state kept.
"""

from __future__ import annotations

import shutil
import time

from coach.core import registry
from coach.core.paths import display_path
from coach.learner import hints, state
from coach.notebook import cell

# --- %kata_hint ------------------------------------------------------------------------------


def hint(kata: registry.Kata) -> str:
    """One more hint than last time (the same level as `make hint`, in the same state)."""
    texts = hints.hints_for(kata)
    learner = state.load()
    levels = learner.setdefault("hints", {})
    level = min(min(levels.get(kata.name, 0), len(texts)) + 1, len(texts))
    levels[kata.name] = level
    state.save(learner)
    lines = hints.render(kata, texts[:level], len(texts), color=False)
    if level < len(texts):
        lines += ["", f"Still stuck? Run `%kata_hint {kata.number}` again for hint {level + 1}."]
    else:
        lines += ["", f"That is the last hint. Run the `%%kata {kata.number}` cell again."]
    return "\n".join(lines)


# --- %kata_progress --------------------------------------------------------------------------


def progress() -> str:
    """Every kata's last `%%kata` result in this notebook folder, and the next one to do."""
    runs = state.load().get("notebook", {})
    lines = ["Your katas, as their %%kata cells last ran:"]
    next_kata = None
    for kata in registry.KATAS:
        run = runs.get(kata.name)
        if run is None:
            status = "not run yet"
        else:
            colour = "green" if run["green"] else "red"
            status = f"{colour:<5}  {run['passed']}/{run['total']} tests  ({run['when']})"
        if next_kata is None and not (run and run["green"]):
            next_kata = kata
        lines.append(f"  {kata.number:>2}  {kata.name:<22} {status}")
    green = sum(bool(run.get("green")) for run in runs.values())
    lines.append(f"{green} of {len(registry.KATAS)} katas green.")
    if next_kata is not None:
        lines.append(f"Next: kata {next_kata.number}, {next_kata.title}: its `%%kata` cell.")
    lines.append(
        "(`%kata_save N` puts a kata into katas/, where `make progress` and `make grade` see it.)"
    )
    return "\n".join(lines)


# --- %kata_save ------------------------------------------------------------------------------


def save(kata: registry.Kata) -> str:
    """Write the last tested cell body to katas/kNN_topic.py; the old file goes to backups."""
    source = cell.cell_file(kata)
    if not source.is_file():
        return f"Nothing to save yet: run the `%%kata {kata.number}` cell first."
    target = registry.ROOT / kata.stub_file
    kept = ""
    if target.is_file():
        if target.read_bytes() == source.read_bytes():
            return f"{kata.stub_file} already holds your cell. Nothing changed."
        backups = state.state_file().parent / "backups"  # where `make reset` keeps them
        backups.mkdir(parents=True, exist_ok=True)
        backup = backups / f"{kata.name}.{time.strftime('%Y%m%d-%H%M%S')}.py"
        shutil.copy2(target, backup)
        kept = f" The file it replaced is kept as {display_path(backup)}."
    shutil.copyfile(source, target)
    run = state.load().get("notebook", {}).get(kata.name)
    was = ""
    if run:
        was = f" It was {'green' if run['green'] else 'red'} when the cell last ran."
    return (
        f"Saved your kata {kata.number} cell to {kata.stub_file}.{was}{kept} "
        f"`make test K={kata.number}` and `make grade` now judge it there."
    )


# --- %kata_graph -----------------------------------------------------------------------------

GRAPH_LIMIT = 60


def graph(kata: registry.Kata) -> str:
    """`make graph K=N` on the cell's last tested body, in a child process."""
    path = cell.cell_file(kata)
    if not path.is_file():
        return f"Run the `%%kata {kata.number}` cell first: the graph is drawn from its code."
    args = [str(kata.number), f"--impl={cell.notebook_dir()}"]
    output, stopped = cell.run_function("graph", args, cell.child_env(), GRAPH_LIMIT)
    text = cell.in_cell_terms(stopped or output.strip(), path)
    return text.replace(f"make test K={kata.number}", f"the %%kata {kata.number} cell")


# --- %kata_predict ---------------------------------------------------------------------------


def questions(kata: registry.Kata) -> str:
    quiz = kata.lesson.quiz
    lines = [
        f"Kata {kata.number}: {kata.title}. Predict, then see.",
        "Every question starts from:",
        *(f"    {line}" for line in quiz.setup.splitlines()),
    ]
    for question in quiz.questions:
        lines += ["", f"{question.id}: {question.ask}"]
        lines += [f"    {line}" for line in question.code.splitlines()]
    lines += ["", f"Answer one with `%kata_predict {kata.number} QUESTION_ID YOUR_ANSWER`."]
    return "\n".join(lines)


def predict(kata: registry.Kata, question_id: str, text: str) -> str:
    """Judge one prediction against what torch really does; keep the first one."""
    import contextlib
    import io

    from coach.learner import predict as quiz

    known = {question.id: question for question in kata.lesson.quiz.questions}
    question = known.get(question_id)
    if question is None:
        return f"Kata {kata.number} has no question {question_id!r}. Its questions: " + (
            ", ".join(known) + "."
        )
    answer = quiz.parse(text, question)
    if answer.kind == "skip":
        return (
            f"{question.ask}\nReplace the ? with your prediction ({quiz.what_to_type(question)})"
            f" and run the cell: torch's answer shows only after you commit to one."
        )
    if answer.kind == "unreadable":
        return f"I could not read {text!r}. Type {quiz.what_to_type(question)}."
    from coach.notebook.kept import kernel_state_kept

    with kernel_state_kept():
        outcome = quiz.run(kata.lesson.quiz, question)
    shown = io.StringIO()
    with contextlib.redirect_stdout(shown):
        quiz.show(answer, outcome, question, kata, lambda words, _style: words)
    return f"Your prediction: {text}\n{shown.getvalue().rstrip()}"
