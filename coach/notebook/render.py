"""A `%%kata` result twice: HTML for Jupyter and Colab, plain text for consoles and CI.

HTML: a line that names the kata and its state, a row per test, the first failure in full,
the other failures folded in <details>. Every piece of learner or test text is escaped, and
nothing here writes JavaScript: a notebook must not run code that its output brought in.
"""

from __future__ import annotations

import html

from coach.notebook.cell import CellRun

GREEN, RED = "#1a7f37", "#b42318"
MARK = {"passed": "pass", "failed": "FAIL", "error": "ERROR", "skipped": "skip"}


def headline(run: CellRun) -> str:
    kata = run.kata
    name = f"Kata {kata.number} ({kata.name}), {kata.title}"
    if run.problem:
        return f"{name}: red, no test finished."
    if run.green:
        return f"{name}: green, all {len(run.tests)} tests pass."
    return f"{name}: red, {run.passed} of {len(run.tests)} tests pass."


def next_step(run: CellRun) -> str:
    number = run.kata.number
    if run.green:
        return (
            f"Next: `%kata_save {number}` writes this cell to {run.kata.stub_file}, where "
            f"`make grade` and your course's grader read it."
        )
    return (
        f"Random inputs: seed {run.seed}. `%%kata {number} --seed {run.seed}` replays them. "
        f"Stuck? `%kata_hint {number}`."
    )


def others(run: CellRun) -> list:
    return [t for t in run.tests if t.outcome != "passed" and t is not run.first_failure]


def as_text(run: CellRun) -> str:
    lines = [headline(run)]
    if run.torch_note:
        lines.append(f"Note: {run.torch_note}")
    if run.problem:
        lines += ["", run.problem]
    for test in run.tests:
        lines.append(f"  {MARK.get(test.outcome, test.outcome):<5}  {test.name}")
    if run.first_failure:
        lines += ["", f"First failure: {run.first_failure.name}"]
        lines += [f"  {line}" for line in run.first_failure.message.strip().splitlines()]
    rest = others(run)
    if rest:
        lines += ["", f"The other {len(rest)} failure(s), first lines:"]
        for test in rest:
            first = (test.message.strip().splitlines() or [test.outcome])[0]
            lines.append(f"  {test.name}: {first}")
    lines += ["", next_step(run)]
    return "\n".join(lines)


def _e(text: str) -> str:
    return html.escape(text, quote=True)


def _pre(text: str) -> str:
    return f'<pre style="white-space:pre-wrap;margin:0.3em 0 0.6em 0">{_e(text.strip())}</pre>'


def as_html(run: CellRun) -> str:
    colour = GREEN if run.green else RED
    parts = [f'<div><p style="font-weight:bold;color:{colour}">{_e(headline(run))}</p>']
    if run.torch_note:
        parts.append(f"<p><i>Note: {_e(run.torch_note)}</i></p>")
    if run.problem:
        parts.append(_pre(run.problem))
    if run.tests:
        rows = "".join(
            f'<tr><td style="color:{GREEN if t.outcome == "passed" else RED};'
            f'text-align:left">{_e(MARK.get(t.outcome, t.outcome))}</td>'
            f'<td style="text-align:left"><code>{_e(t.name)}</code></td></tr>'
            for t in run.tests
        )
        parts.append(f"<table>{rows}</table>")
    if run.first_failure:
        parts.append(f"<p>First failure: <code>{_e(run.first_failure.name)}</code></p>")
        parts.append(_pre(run.first_failure.message))
    rest = others(run)
    if rest:
        folded = "".join(
            f"<p><code>{_e(t.name)}</code></p>{_pre(t.message or t.outcome)}" for t in rest
        )
        parts.append(
            f"<details><summary>The other {len(rest)} failure(s)</summary>{folded}</details>"
        )
    parts.append(f"<p>{_e(next_step(run))}</p></div>")
    return "".join(parts)


def bundle(text: str, html_text: str | None = None) -> dict[str, str]:
    """A display bundle: IPython's display(..., raw=True) shows the richest form it can."""
    shown = {"text/plain": text}
    if html_text is not None:
        shown["text/html"] = html_text
    return shown


def pre(text: str) -> dict[str, str]:
    """Plain text that keeps its layout in HTML too (hints, graphs, tallies)."""
    return bundle(text, _pre(text))
