"""The IPython magics of the notebook mode.

Only APIs that IPython 7.34 (Colab's) already has: Magics, magics_class, cell_magic,
line_magic, and display(..., raw=True) with a text/plain and a text/html form. No input():
under nbclient and in a run-all there is nobody to type, so answers come as arguments.
"""

from __future__ import annotations

import shlex

from IPython.core.magic import Magics, cell_magic, line_magic, magics_class
from IPython.display import display

from coach.core import registry
from coach.notebook import cell, commands, render

USAGE = {
    "kata": "%%kata N [--seed S]  (then your code, on the lines below)",
    "kata_hint": "%kata_hint N",
    "kata_graph": "%kata_graph N",
    "kata_save": "%kata_save N",
    "kata_predict": "%kata_predict N [QUESTION_ID YOUR_ANSWER]",
}


class UsageError(Exception):
    """A magic called with words it cannot read; says what it expected."""


def show(text: str, html_text: str | None = None) -> None:
    display(render.bundle(text, html_text) if html_text else render.pre(text), raw=True)


def _kata(words: list[str], magic: str) -> registry.Kata:
    if not words:
        raise UsageError(f"Which kata? Usage: {USAGE[magic]}")
    try:
        return registry.find(words[0])
    except LookupError as error:
        raise UsageError(str(error)) from None


def parse_kata_line(line: str) -> tuple[registry.Kata, int | None]:
    """`3`, `3 --seed 5` or `3 --seed=5`: the kata and the seed to replay (None: a new one)."""
    words = shlex.split(line)
    seed = None
    rest = []
    index = 0
    while index < len(words):
        word = words[index]
        if word == "--seed" or word.startswith("--seed="):
            value = word.split("=", 1)[1] if "=" in word else None
            if value is None and index + 1 < len(words):
                index += 1
                value = words[index]
            if value is None or not value.isdigit():
                raise UsageError(f"--seed wants a whole number. Usage: {USAGE['kata']}")
            seed = int(value)
        elif word.startswith("-"):
            raise UsageError(f"Unknown option {word}. Usage: {USAGE['kata']}")
        else:
            rest.append(word)
        index += 1
    return _kata(rest, "kata"), seed


@magics_class
class KataMagics(Magics):
    @cell_magic
    def kata(self, line: str, body: str) -> None:
        """%%kata N [--seed S]: test this cell as kata N's file, as `make test K=N` does."""
        try:
            kata, seed = parse_kata_line(line)
        except UsageError as error:
            show(str(error))
            return
        if not body.strip():
            show(f"The cell has no code below `%%kata {kata.number}`. Put the kata's code there.")
            return
        run = cell.run_cell(kata, body, seed)
        cell.remember(run)
        show(render.as_text(run), render.as_html(run))
        if run.imported:
            problem = cell.run_in_kernel(cell.cell_file(kata), self.shell.user_ns)
            if problem:
                show(problem)

    def _line(self, magic: str, line: str, action) -> None:
        try:
            show(action(shlex.split(line)))
        except UsageError as error:
            show(str(error))

    @line_magic
    def kata_hint(self, line: str) -> None:
        """%kata_hint N: one more hint for kata N each time."""
        self._line("kata_hint", line, lambda w: commands.hint(_kata(w, "kata_hint")))

    @line_magic
    def kata_progress(self, line: str) -> None:
        """%kata_progress: every kata as its %%kata cell last ran."""
        self._line("kata_progress", line, lambda _w: commands.progress())

    @line_magic
    def kata_graph(self, line: str) -> None:
        """%kata_graph N: the backward graph your cell's code builds, as text."""
        self._line("kata_graph", line, lambda w: commands.graph(_kata(w, "kata_graph")))

    @line_magic
    def kata_save(self, line: str) -> None:
        """%kata_save N: write the cell you last tested to katas/, for make test and grade."""
        self._line("kata_save", line, lambda w: commands.save(_kata(w, "kata_save")))

    @line_magic
    def kata_predict(self, line: str) -> None:
        """%kata_predict N [QUESTION_ID ANSWER]: the questions, or judge one prediction."""

        def action(words: list[str]) -> str:
            kata = _kata(words, "kata_predict")
            if len(words) == 1:
                return commands.questions(kata)
            if len(words) == 2:
                raise UsageError(f"Give an answer after the question id. {USAGE['kata_predict']}")
            return commands.predict(kata, words[1], " ".join(words[2:]))

        self._line("kata_predict", line, action)
