"""The command line: one sub-command per Makefile target.

Standard library only at the top: the bootstrap must run before torch and pytest exist.
Each command names the requirements profile it needs and the module that implements it.
"""

from __future__ import annotations

import argparse
import importlib

from coach.core import bootstrap
from coach.core.lesson import BadLesson

STOPPED = 130  # the exit status after Ctrl-C (128 + SIGINT), as coach/runtime/interrupt.py

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


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m coach", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, (_, _, help_text) in COMMANDS.items():
        sub = commands.add_parser(name, help=help_text)
        sub.add_argument("rest", nargs=argparse.REMAINDER, help=argparse.SUPPRESS)
    return parser


def main(argv: list[str]) -> int:
    if argv and argv[0] in COMMANDS:  # options after the command belong to the command
        command, rest = argv[0], argv[1:]
    else:
        args = build_parser().parse_args(argv)  # prints usage and exits
        command, rest = args.command, args.rest
    profile, target, _ = COMMANDS[command]
    module_name, function_name = target.split(":")
    try:
        bootstrap.ensure(profile, argv)
        function = getattr(importlib.import_module(module_name), function_name)
        return function(rest) or 0
    except BadLesson as error:  # the registry reads every unit: one broken unit stops all
        print(error)
        return 1
    except BrokenPipeError:  # output piped into `head`: stop quietly
        return 0
    except KeyboardInterrupt:  # Ctrl-C, even while torch is still importing: one line
        print("\nStopped.")
        return STOPPED
