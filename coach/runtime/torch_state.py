"""Global torch settings that one kata must not leak into the next.

A learner's file can flip a process-wide switch (grad mode off, float64 by default, one
thread, ...). The plugin snapshots these around every import and every test, puts them
back, and fails the kata that changed them, pointing at the line that did it.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

import torch


@dataclass(frozen=True)
class Setting:
    label: str  # how a learner would name it
    read: object  # () -> value
    write: object  # (value) -> None
    setters: tuple[str, ...]  # call names in source code that change it
    advice: str


SETTINGS = (
    Setting(
        "grad mode",
        torch.is_grad_enabled,
        torch.set_grad_enabled,
        ("set_grad_enabled", "_set_grad_enabled", "__enter__"),
        "turn it off only inside `with torch.no_grad():`, which turns it back on by itself",
    ),
    Setting(
        "default dtype",
        torch.get_default_dtype,
        torch.set_default_dtype,
        ("set_default_dtype", "set_default_tensor_type"),
        "ask for a dtype where you need it (`torch.tensor(x, dtype=torch.float64)`)"
        " instead of changing the default for everyone",
    ),
    Setting(
        "default device",
        torch.get_default_device,
        torch.set_default_device,
        ("set_default_device",),
        "pass `device=` to the tensors that need it",
    ),
    Setting(
        "number of threads",
        torch.get_num_threads,
        torch.set_num_threads,
        ("set_num_threads",),
        "leave the thread count alone; the katas are far too small to need it",
    ),
    Setting(
        "anomaly detection",
        torch.is_anomaly_enabled,
        torch.autograd.set_detect_anomaly,
        ("set_detect_anomaly", "detect_anomaly", "_set_anomaly_enabled"),
        "use `with torch.autograd.detect_anomaly():` while debugging, then remove it",
    ),
    Setting(
        "deterministic algorithms",
        torch.are_deterministic_algorithms_enabled,
        torch.use_deterministic_algorithms,
        ("use_deterministic_algorithms",),
        "leave it as you found it",
    ),
)


def snapshot() -> tuple:
    return tuple(setting.read() for setting in SETTINGS)


def restore(saved: tuple) -> None:
    for setting, value in zip(SETTINGS, saved):
        if setting.read() != value:
            setting.write(value)


def changes(before: tuple, after: tuple) -> list[tuple[Setting, object, object]]:
    return [(s, b, a) for s, b, a in zip(SETTINGS, before, after) if b != a]


def lines_calling(path: Path, names: tuple[str, ...]) -> list[tuple[int, str]]:
    """Lines of a source file that call any of `names` (as f(...) or x.f(...))."""
    try:
        source = path.read_text(encoding="utf-8")
        tree = ast.parse(source)
    except (OSError, SyntaxError, ValueError):
        return []
    text_lines = source.splitlines()
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            func = node.func
            called = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", None)
            if called in names and called != "__enter__":
                found.add(node.lineno)
            elif called == "__enter__" and "__enter__" in names:
                found.add(node.lineno)  # torch.no_grad().__enter__() without the exit
    return [(n, text_lines[n - 1].strip()) for n in sorted(found)]


def describe(changed, path: Path | None, display: str, during: str) -> str:
    """A learner-facing account of what changed, and where it probably happened."""
    parts = []
    for setting, before, after in changed:
        parts.append(
            f"{during} changed torch's global {setting.label} from {before} to {after} "
            f"and left it that way. That setting is shared by every kata and every test, "
            f"so the change is undone and this test fails: {setting.advice}."
        )
        suspects = lines_calling(path, setting.setters) if path else []
        for lineno, text in suspects[:3]:
            parts.append(f"  {display}:{lineno}: {text}")
    return "\n".join(parts)


# Namespaces a learner's file could monkeypatch for everyone (torch.Tensor.backward = ...),
# and those whose functions the tests' comparisons use (math.isclose, builtins.isinstance).
def _watched_namespaces():
    import builtins
    import math
    import operator

    import torch.nn.functional
    import torch.optim

    return (
        ("builtins", builtins),
        ("math", math),
        ("operator", operator),
        ("torch", torch),
        ("torch.Tensor", torch.Tensor),
        ("torch.autograd", torch.autograd),
        ("torch.nn", torch.nn),
        ("torch.nn.functional", torch.nn.functional),
        ("torch.optim", torch.optim),
    )


_MISSING = object()


# The builtins the tests' comparisons call (others, like `input`, are the tests' own business).
COMPARED_BUILTINS = frozenset(
    {"isinstance", "issubclass", "type", "len", "range", "zip", "all", "any", "abs", "bool"}
    | {"float", "int", "tuple", "list", "str", "repr", "getattr", "hasattr", "callable"}
    | {"sorted", "min", "max", "sum", "round", "next", "iter", "id", "hash", "format"}
)


def snapshot_namespaces() -> list[tuple[str, object, dict]]:
    found = []
    for label, space in _watched_namespaces():
        names = dict(vars(space))
        if label == "builtins":
            names = {name: names[name] for name in COMPARED_BUILTINS if name in names}
        found.append((label, space, names))
    return found


def replaced_names(saved) -> list[tuple[str, object, str, object]]:
    """(label, namespace, name, original) for every watched name someone else replaced.

    Whatever the replacement claims to be: a function whose `__module__` says "torch" is
    still a replacement. The one exception is torch's own: importing torch._dynamo (torch.func
    does) wraps a few seeding functions once, in a wrapper whose `__wrapped__` is the original.
    """
    found = []
    for label, space, before in saved:
        now = vars(space)
        changed = [name for name, original in before.items() if now.get(name) is not original]
        found += [
            (label, space, name, before[name])
            for name in changed
            if not _torch_rewraps(label, name, before[name], now.get(name, _MISSING))
        ]
    return found


# Names torch rebinds itself on first use (torch._dynamo's import wraps them): harmless to a
# test, and accepted only as that wrapper around the very original.
TORCH_REWRAPS = frozenset({("torch", "manual_seed"), ("torch", "seed"), ("torch", "initial_seed")})


def _torch_rewraps(label: str, name: str, original, current) -> bool:
    import sys
    import types

    return (
        (label, name) in TORCH_REWRAPS
        and "torch._dynamo" in sys.modules
        and type(current) is types.FunctionType
        and getattr(current, "__wrapped__", None) is original
    )


def put_back(replaced) -> None:
    for _, space, name, original in replaced:
        setattr(space, name, original)


def describe_replaced(replaced, path: Path | None, display: str, during: str) -> str:
    names = ", ".join(f"{label}.{name}" for label, _, name, _ in replaced)
    parts = [
        f"{during} replaced {names}, which every kata and every test shares. It is put back "
        f"and this test fails: a kata must use torch, not rewrite it."
    ]
    if path:
        wanted = {name for _, _, name, _ in replaced}
        for lineno, text in _lines_assigning(path, wanted)[:3]:
            parts.append(f"  {display}:{lineno}: {text}")
    return "\n".join(parts)


def _lines_assigning(path: Path, names: set[str]) -> list[tuple[int, str]]:
    try:
        source = path.read_text(encoding="utf-8")
        tree = ast.parse(source)
    except (OSError, SyntaxError, ValueError):
        return []
    lines = source.splitlines()
    found = set()
    for node in ast.walk(tree):
        targets = node.targets if isinstance(node, ast.Assign) else []
        if isinstance(node, ast.Call) and getattr(node.func, "id", None) in {"setattr", "delattr"}:
            found.add(node.lineno)
        found.update(t.lineno for t in targets if getattr(t, "attr", None) in names)
    return [(n, lines[n - 1].strip()) for n in sorted(found)]
