"""The command line: one sub-command per Makefile target.

Standard library only at the top: the bootstrap must run before torch and pytest exist.
Each command names the requirements profile it needs and the module that implements it. The
learner's commands that need torch go to the coach server when one runs (coach/learner/server.py:
the same output, without the seconds of `import torch`), else run here, cold.
"""

from __future__ import annotations

import os

from coach.core import bootstrap, command

# name -> (requirements profile, "module:function", one-line help)
COMMANDS = {
    "test": ("learner", "coach.learner.run:test", "run the katas' tests (all, or one with K)"),
    "check": (
        "dev",
        "coach.authoring.check:main",
        "the project's own test: solutions green, stubs red",
    ),
    "generate": (
        "dev",
        "coach.authoring.generated:main",
        "rewrite every file generated from the katas (README table, workflow)",
    ),
    "bench": ("dev", "coach.authoring.bench:main", "time the suite against `import torch`"),
    "progress": (
        "learner",
        "coach.learner.progress:progress",
        "every kata: green or red; what is next",
    ),
    "next": ("learner", "coach.learner.progress:next_kata", "the first red kata and what to edit"),
    "hint": ("learner", "coach.learner.hints:main", "one more hint for a kata (K=3)"),
    "predict": ("learner", "coach.learner.predict:main", "predict, then see what torch does (K=3)"),
    "watch": ("learner", "coach.learner.watch:main", "re-run a kata's tests on every save"),
    "solution": (
        "learner",
        "coach.learner.solution:main",
        "the reference next to yours, once green",
    ),
    "reset": ("learner", "coach.learner.reset:main", "put a kata's stub back, keeping yours (K=3)"),
    "plots": ("learner", "coach.learner.plots:main", "draw the training curve and backward graphs"),
    "graph": ("learner", "coach.learner.graph:main", "print a kata's backward graph as text (K=2)"),
    "stop": ("learner", "coach.learner.client:stop", "stop the coach server (see make test)"),
    "grade": (
        "learner",
        "coach.grading.grade:main",
        "points per kata, with Gradescope and JUnit results",
    ),
    "notebook": (
        "learner",
        "coach.notebook.setup:main",
        "open the katas' notebooks in JupyterLab",
    ),
    "manifest": (
        "learner",
        "coach.grading.manifest:main",
        "write or verify the graded files' hashes",
    ),
    "classroom": ("learner", "coach.grading.workflow:main", "regenerate the Classroom workflow"),
    "classroom50": (
        "learner",
        "coach.grading.classroom50:main",
        "Classroom 50 tests + bundle",
    ),
    "student-repo": (
        "learner",
        "coach.grading.student_repo:main",
        "write the learner repository into DEST",
    ),
}


def build_parser():
    import argparse  # only for --help and mistakes: a command's start-up stays short

    parser = argparse.ArgumentParser(prog="python -m coach", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, (_, _, help_text) in COMMANDS.items():
        sub = commands.add_parser(name, help=help_text)
        sub.add_argument("rest", nargs=argparse.REMAINDER, help=argparse.SUPPRESS)
    return parser


def main(argv: list[str]) -> int:
    if argv and argv[0] in COMMANDS:  # options after the command belong to the command
        name, rest = argv[0], argv[1:]
    else:
        args = build_parser().parse_args(argv)  # prints usage and exits
        name, rest = args.command, args.rest
    try:
        return _run(name, rest, argv)
    except KeyboardInterrupt:  # Ctrl-C, even while torch is still importing: one line
        print("\nStopped.")
        return command.STOPPED


def _run(name: str, rest: list[str], argv: list[str]) -> int:
    profile, target, _ = COMMANDS[name]
    from coach.learner import client  # standard library only: no torch before it is needed

    warm = client.Client() if client.wanted(name, rest) else None
    # With COACH_NO_VENV=1 there is no .venv/ to switch to, and a server running on this same
    # Python passed the check of its packages when it started: ask it first (saves ~30 ms).
    asked_first = warm is not None and bool(os.environ.get("COACH_NO_VENV"))
    if asked_first:
        served = warm.answer(name, target, rest)
        if served is not None:
            return served
    bootstrap.ensure(profile, argv)  # may re-run this command in .venv/'s Python
    if warm is None:
        return command.call(target, rest)
    if not asked_first:
        served = warm.answer(name, target, rest)  # the coach server's answer, if one runs
        if served is not None:
            return served
    try:
        return command.call(target, rest)
    finally:
        warm.start_if_wanted()  # warm for the next command
