"""The command line: one sub-command per Makefile target.

Standard library only at the top: the bootstrap must run before torch and pytest exist.
Each command names the requirements profile it needs and the module that implements it.
"""

from __future__ import annotations

import argparse
import importlib

from coach import bootstrap

# name -> (requirements profile, "module:function", one-line help)
COMMANDS = {
    "test": ("learner", "coach.run:test", "run the katas' tests (all, or one with K)"),
    "check": ("dev", "coach.check:main", "the project's own test: solutions green, stubs red"),
    "bench": ("dev", "coach.bench:main", "time the suite against `import torch`"),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m coach", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, (_, _, help_text) in COMMANDS.items():
        sub = commands.add_parser(name, help=help_text)
        sub.add_argument("rest", nargs=argparse.REMAINDER, help=argparse.SUPPRESS)
    return parser


def main(argv: list[str]) -> int:
    args = build_parser().parse_args(argv)
    profile, target, _ = COMMANDS[args.command]
    bootstrap.ensure(profile, argv)
    module_name, function_name = target.split(":")
    function = getattr(importlib.import_module(module_name), function_name)
    return function(args.rest) or 0
