"""Notebook mode: the katas in Jupyter and Colab, judged by the same tests as `make test`.

`%load_ext coach.notebook` registers the magics (coach/notebook/magics.py). The cell is the
kata file: `%%kata 3` writes its body to .coach/notebook/, runs kata 3's tests on it in a
child process, and shows the result; only a body that imported cleanly there is then run in
the kernel. Nothing here imports torch, pytest or the learner's code into the kernel first.
"""

from __future__ import annotations


def load_ipython_extension(ipython) -> None:
    """What `%load_ext coach.notebook` calls (IPython's extension protocol, 7.x and later)."""
    from coach.notebook.cell import start_helper
    from coach.notebook.magics import KataMagics

    ipython.register_magics(KataMagics)
    start_helper()  # imports torch and pytest in the background, for the first %%kata
