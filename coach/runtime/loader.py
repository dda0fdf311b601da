"""Load the implementation under test, so that a broken kata breaks only itself.

Tests never import `katas` directly. `load_kata("kNN_topic")` returns a stand-in that
imports <impl dir>/kNN_topic.py the first time a test touches it. If that file does not
parse, raises at import, never finishes importing, changes global torch state or lacks a
name, the test that touched it fails with a message naming the file and line, and so does
every other test of that kata. Nothing is raised at collection, so every other kata runs.

The stand-in also keeps two laws for every kata, so that no test has to remember them:
- it notes which kata functions each test touches (`touched`), so a failing test is charged
  to the function it checks;
- every call of a kata function, whether it returns or raises, must leave what the caller
  passed as it was (coach.runtime.inputs: tensors' values, version, .grad, requires_grad and
  hooks; lists' and dicts' entries; modules' training flags, buffers and hooks), except what
  the kata's lesson allows in `changes_inputs`;
- a function the lesson lists in `returns_gradients` returns plain tensors: no grad_fn,
  requires_grad False.
"""

from __future__ import annotations

import functools
import importlib.util
import inspect
import sys
import traceback
from pathlib import Path

import pytest

from coach.core.paths import display_path
from coach.runtime import interrupt, torch_state
from coach.runtime.summary import AS_ABOVE

_impl_dir: Path | None = None
_loaded: dict[str, object] = {}  # module name -> module, or the failure message
touched: list[str] = []  # kata attributes the current test used, in order (plugin resets it)
current_test = ""  # the running test's name (the plugin sets it)
_reported: set[str] = set()  # katas whose load failure has been shown in full once
_stuck: dict[str, str] = {}  # kata -> the test in which its code ran past the time limit


def set_impl_dir(path: Path) -> None:
    global _impl_dir
    _impl_dir = path
    _loaded.clear()
    _reported.clear()
    _stuck.clear()


def mark_stuck(kata: str, test: str) -> None:
    """Kata `kata`'s code was still running when the time limit struck in `test`."""
    _stuck.setdefault(kata, test)


def stuck_in(kata: str) -> str:
    """The test in which `kata` ran past the time limit, or "" if none has."""
    return _stuck.get(kata, "")


def impl_dir() -> Path:
    if _impl_dir is None:
        raise RuntimeError(
            "coach.runtime.plugin is not active: run the tests with pytest from the repo"
        )
    return _impl_dir


def source_line(path: Path, lineno: int | None) -> str:
    try:
        return path.read_text(encoding="utf-8").splitlines()[lineno - 1].strip()
    except (OSError, IndexError, TypeError, UnicodeDecodeError):
        return ""


def _deepest_frame_in(tb, path: Path):
    """(line number, code) of the last traceback frame inside `path`, or (None, '')."""
    found = (None, "")
    for frame in traceback.extract_tb(tb):
        if Path(frame.filename) == path:
            found = (frame.lineno, (frame.line or "").strip())
    return found


def _import(name: str, path: Path):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    saved_flag = sys.dont_write_bytecode
    sys.dont_write_bytecode = True  # keep the learner's folder free of __pycache__
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        sys.modules.pop(name, None)
        raise
    finally:
        sys.dont_write_bytecode = saved_flag
    return module


def _load(name: str):
    path = impl_dir() / f"{name}.py"
    shown = display_path(path)
    if not path.is_file():
        return (
            f"{shown} does not exist. The tests look for the {name} kata there "
            f"(--impl / KATAS_IMPL chose {display_path(impl_dir())}). Restore the file with "
            f"`git checkout -- {shown}` if you deleted it by accident."
        )
    before = torch_state.snapshot()
    namespaces = torch_state.snapshot_namespaces()
    try:
        module = _import(name, path)
    except SyntaxError as error:
        where = f"{shown}, line {error.lineno}"
        text = (error.text or "").rstrip("\n")
        caret = ""
        if text and error.offset:
            caret = "\n    " + " " * (error.offset - 1 - (len(text) - len(text.lstrip()))) + "^"
        return (
            f"{where}: Python cannot read this file ({error.msg}).\n"
            f"    {text.strip()}{caret}\n"
            f"Fix the syntax there; until then none of this kata's tests can run."
        )
    except pytest.fail.Exception as error:  # the time limit struck during the import
        lineno, code = _deepest_frame_in(error.__traceback__, path)
        where = f"{shown}:{lineno}" if lineno else shown
        return (
            f"Importing {shown} never finished: it was still running at {where} "
            f"({code}) when the time limit struck. Code at the top level of the file runs "
            f"on import; is there an endless loop outside any function?"
        )
    except Exception as error:
        lineno, code = _deepest_frame_in(error.__traceback__, path)
        where = f"{shown}:{lineno}" if lineno else shown
        return (
            f"Importing {shown} raised {type(error).__name__}: {error}\n"
            f"    at {where}: {code}\n"
            f"Code at the top level of the file runs on import; fix it so the file loads."
        )
    except (SystemExit, KeyboardInterrupt, pytest.exit.Exception) as error:
        if isinstance(error, KeyboardInterrupt) and interrupt.arrived():
            raise  # the learner pressed Ctrl-C: not the file's doing, nothing to remember
        lineno, code = _deepest_frame_in(error.__traceback__, path)
        return (
            f"Importing {shown} tried to stop the run ({type(error).__name__}) at "
            f"{shown}:{lineno} ({code}). A kata file must not stop Python; remove that call."
        )
    finally:
        after = torch_state.snapshot()
        torch_state.restore(before)
        replaced = torch_state.replaced_names(namespaces)
        torch_state.put_back(replaced)
    changed = torch_state.changes(before, after)
    if changed:
        return torch_state.describe(changed, path, shown, f"Importing {shown}")
    if replaced:
        return torch_state.describe_replaced(replaced, path, shown, f"Importing {shown}")
    return module


def load_module(name: str):
    """The kata module under test, or a test failure that explains why it cannot load."""
    if name not in _loaded:
        _loaded[name] = _load(name)
    result = _loaded[name]
    if isinstance(result, str):
        if name in _reported:  # one full report per kata; then one line per test
            first = result.splitlines()[0]
            pytest.fail(f"{AS_ABOVE}The kata's file cannot be loaded: {first}", pytrace=False)
        _reported.add(name)
        pytest.fail(result, pytrace=False)
    return result


class KataModule:
    """Stands in for a kata module; imports it when a test first uses it."""

    def __init__(self, name: str):
        self._name = name

    def __getattr__(self, attr: str):
        # pytest probes module-level objects while collecting (pytestmark, _pytest...):
        # answer those without importing, so a broken kata can never abort collection.
        if attr.startswith(("_", "pytest")):
            raise AttributeError(attr)
        touched.append(attr)
        module = load_module(self._name)
        try:
            value = getattr(module, attr)
            if inspect.isfunction(value):
                return _guarded(value, self._name)
            return value
        except AttributeError:
            shown = display_path(Path(module.__file__))
            pytest.fail(
                f"{shown} has no `{attr}`. The tests call {self._name}.{attr}(...): "
                f"keep the function's name and signature as the stub gives them "
                f"(`git diff {shown}` shows what changed).",
                pytrace=False,
            )

    def __repr__(self) -> str:
        return f"<kata {self._name} from {display_path(impl_dir())}>"


def _guarded(function, kata_name: str):
    """`function`, checked after each call (returned or raised) against the laws above."""
    from coach.core import registry
    from coach.core.lesson import allowed_changes
    from coach.runtime import inputs

    kata = registry.BY_NAME.get(kata_name)
    name = function.__name__
    allowed = allowed_changes(kata.lesson, name) if kata else {}
    plain_gradients = bool(kata) and name in kata.lesson.returns_gradients

    @functools.wraps(function)
    def call(*args, **kwargs):
        before = inputs.snapshot(function, args, kwargs, allowed)
        try:
            result = function(*args, **kwargs)
        except Exception as error:
            # The error path keeps the laws too: hooks left registered, a module left in
            # eval(), gradients cleared before the raise. Report the change with the error.
            change = inputs.first_change(before)
            if change:
                path = Path(function.__code__.co_filename)
                lineno, code = _deepest_frame_in(error.__traceback__, path)
                at = f"{display_path(path)}:{lineno}: {code}" if lineno else ""
                message = inputs.describe(name, change, raised=error, at=at)
                pytest.fail(message, pytrace=False)
            raise
        change = inputs.first_change(before)
        if change:
            pytest.fail(inputs.describe(name, change), pytrace=False)
        if plain_gradients:
            attached = inputs.attached_gradient(result)
            if attached:
                pytest.fail(inputs.describe_attached(name, *attached), pytrace=False)
        return result

    return call


def load_kata(name: str) -> KataModule:
    return KataModule(name)
