"""The pytest plugin behind every kata run (loaded by the root conftest.py).

- `--impl DIR` / `KATAS_IMPL=DIR` chooses the implementation under test (default: katas).
- Each test starts from the same torch seed as pytest-randomly's, so `--randomly-seed=N`
  reproduces a failure, and from the same global torch settings.
- A test that leaves a global torch setting changed fails, and the setting is put back.
- A stub that is not written yet, or code that runs out of time, gets a short report that
  names the learner's file and line instead of a long traceback.
- One endless loop costs one time limit per kata: once a kata's code has run past the limit,
  every later test of that kata fails at once, pointing at the first report.
- Ctrl-C stops the run at once with one line and exit status 130, never blamed on the kata;
  a KeyboardInterrupt that kata code raises itself fails that test (coach/runtime/interrupt.py).
- `--coach-json FILE` writes every test's outcome for the coach's commands and graders.
- The run ends with one line per kata and the next thing to do.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest
import torch

from coach.core import registry
from coach.core.paths import ImplFolderMissing, resolve_impl_path
from coach.runtime import explain, interrupt, loader, torch_state
from coach.runtime import summary as report
from coach.runtime.torch_noise import PYTEST_FILTER

# The time limit comes with the plugin, so every route has it (the grader loads only this
# one). Imported by pytest, not here first, so that pytest can register it as a plugin.
pytest_plugins = ["coach.runtime.timeouts"]
DEFAULT_SEED = 1234  # used when pytest-randomly is switched off
# test id -> (kata name, outcome, message, line, the kata function it checks or "")
_outcomes: dict[str, tuple] = {}
_config = None  # the running session's config (pytest_keyboard_interrupt is not given it)


def pytest_addoption(parser):
    group = parser.getgroup("autograd-katas")
    group.addoption(
        "--impl",
        default=None,
        help="folder holding the kata modules to test (default: $KATAS_IMPL or katas)",
    )
    group.addoption("--coach-json", default=None, help="write each test's outcome to this file")
    group.addoption(
        "--coach-brief",
        action="store_true",
        help="print no failure reports; the summary shows the first failure in full",
    )
    group.addoption(
        "--coach-failures",
        default="pytest",
        choices=("pytest", "screen", "all"),
        help="how failures are printed: pytest's own reports in run order (pytest), or in the "
        "summary's order with repeats collapsed, within one screen (screen) or every one (all)",
    )
    group.addoption(
        "--coach-summary",
        default="on",
        choices=("on", "off"),
        help="print the per-kata summary at the end",
    )


def resolve_impl(config) -> Path:
    try:
        return resolve_impl_path(config.getoption("--impl"), config.rootpath)
    except ImplFolderMissing as error:
        raise pytest.UsageError(str(error)) from None


def pytest_configure(config):
    if config.getoption("--coach-brief") or config.getoption("--coach-failures") != "pytest":
        config.option.tbstyle = "no"  # the summary shows the failures (or the one that matters)
    config.addinivalue_line(
        "markers",
        "checks(function): the kata function this test checks, where the test cannot show it "
        "by calling it (a result cached across tests, say)",
    )
    # torch warns about its own torch.jit.script on the first forward-mode call: see torch_noise
    config.addinivalue_line("filterwarnings", PYTEST_FILTER)
    global _config
    _config = config
    loader.set_impl_dir(resolve_impl(config))
    _outcomes.clear()
    interrupt.install()


def pytest_unconfigure(config):
    interrupt.uninstall()


def pytest_report_header(config):
    return f"kata implementation under test: {loader.display_path(loader.impl_dir())}"


def _seed(config) -> int:
    seed = getattr(config.option, "randomly_seed", None)
    return seed if isinstance(seed, int) else DEFAULT_SEED


@pytest.fixture
def rng(request) -> random.Random:
    """A random source for test inputs: the same numbers for the same --randomly-seed."""
    return random.Random(f"{_seed(request.config)}:{request.node.nodeid}")


def _kata_path(item) -> Path | None:
    kata = registry.kata_of_test_path(str(item.path))
    return loader.impl_dir() / f"{kata.name}.py" if kata else None


def pytest_runtest_setup(item):
    loader.touched.clear()


def checked_function(kata: registry.Kata | None, touched: list[str]) -> str:
    """The kata function a test checks: of those it used, the last in the stub's order (the
    others it called along the way are earlier steps the checked function builds on). A test
    whose result comes from a cache says which with @pytest.mark.checks("function")."""
    if kata is None:
        return ""
    order = registry.functions(kata.name)
    used = [name for name in order if name in touched]
    return used[-1] if used else ""


def _stop_if_stuck(item) -> None:
    """Fail at once a test of a kata whose code already ran past the time limit."""
    kata = registry.kata_of_test_path(str(item.path))
    earlier = loader.stuck_in(kata.name) if kata else ""
    if earlier:
        pytest.fail(
            f"{report.AS_ABOVE}still running: this kata's code ran past the time limit in "
            f"{earlier}; its later tests are not run until that loop is fixed.",
            pytrace=False,
        )


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item):
    _stop_if_stuck(item)
    torch.manual_seed(_seed(item.config))
    before = torch_state.snapshot()
    namespaces = torch_state.snapshot_namespaces()
    failure = None
    try:
        result = yield
    except BaseException as error:
        failure = error
    if isinstance(failure, KeyboardInterrupt) and interrupt.arrived():
        # The learner's Ctrl-C: stop the run and blame no one. A fresh exception, without the
        # kata's frames, which pytest would otherwise spend time formatting for nothing.
        raise KeyboardInterrupt from None
    from coach.runtime import timeouts

    if timeouts.is_timeout(failure):
        kata = registry.kata_of_test_path(str(item.path))
        if kata:
            loader.mark_stuck(kata.name, item.name)
    after = torch_state.snapshot()
    torch_state.restore(before)
    replaced = torch_state.replaced_names(namespaces)
    torch_state.put_back(replaced)
    path = _kata_path(item)
    shown = loader.display_path(path) if path else ""
    messages = []
    changed = torch_state.changes(before, after)
    if changed:
        during = f"Your code, run by {item.name},"  # the kata's code, not the test's own
        messages.append(torch_state.describe(changed, path, shown, during))
    if replaced:
        messages.append(torch_state.describe_replaced(replaced, path, shown, item.name))
    if isinstance(failure, pytest.exit.Exception) and _raised_in(failure, path):
        messages.append(f"{shown} called pytest.exit(): a kata must not stop the test run.")
    if isinstance(failure, KeyboardInterrupt) and _raised_in(failure, path):
        messages.append(
            f"{shown} raised KeyboardInterrupt: a kata must not stop the test run (only you, "
            f"pressing Ctrl-C, should)."
        )
    if messages:
        if failure is not None and not isinstance(
            failure, (pytest.exit.Exception, KeyboardInterrupt)
        ):
            messages.append(f"(The test also failed: {type(failure).__name__}: {failure})")
        pytest.fail("\n".join(messages), pytrace=False)
    if failure is not None:
        raise failure
    return result


def _raised_in(error: BaseException, path: Path | None) -> bool:
    """Whether the traceback of `error` passes through the learner's file."""
    if path is None:
        return False
    tb = error.__traceback__
    while tb is not None:
        if Path(tb.tb_frame.f_code.co_filename) == path:
            return True
        tb = tb.tb_next
    return False


def _learner_frame(excinfo, item):
    """(path, line number, code) of the deepest frame in the learner's kata file."""
    path = _kata_path(item)
    if path is None:
        return None
    found = None
    for entry in excinfo.traceback:
        if Path(str(entry.path)) == path:
            found = entry
    if found is None:
        return None
    lineno = found.lineno + 1
    return path, lineno, loader.source_line(path, lineno)


def _function_name(excinfo, path) -> str:
    """The learner's function the error came from: `Softplus.forward`, not just `forward`."""
    names = [
        getattr(entry.frame.code.raw, "co_qualname", entry.name)  # 3.11+: with its class
        for entry in excinfo.traceback
        if Path(str(entry.path)) == path
    ]
    return names[-1] if names else "this function"


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    rep = yield
    if rep.when == "call":
        kata = registry.kata_of_test_path(str(item.path))
        marker = item.get_closest_marker("checks")
        touched = list(marker.args) if marker else loader.touched
        rep.coach_function = checked_function(kata, touched)
    if call.excinfo is None or rep.when != "call":
        return rep
    from coach.runtime import timeouts

    frame = _learner_frame(call.excinfo, item)
    if frame is None:
        is_kata_test = registry.kata_of_test_path(str(item.path)) is not None
        if is_kata_test and not call.excinfo.errisinstance((pytest.fail.Exception, AssertionError)):
            rep.longrepr = _raised_in_test(call.excinfo, item, rep.coach_function)
        return rep
    path, lineno, code = frame
    shown = f"{loader.display_path(path)}:{lineno}"
    if call.excinfo.errisinstance(NotImplementedError):
        name = _function_name(call.excinfo, path)
        todo = str(call.excinfo.value)
        rep.longrepr = f"{name}() is not written yet ({shown})" + (f": {todo}" if todo else ".")
        rep.coach_not_started = True
    elif timeouts.is_timeout(call.excinfo.value):
        limit = item.config.getini("timeout") or "the time limit"
        importing = _importing_below(call.excinfo, path)
        why = (
            f"It was importing {importing} for the first time (torch loads some of its parts "
            f"on first use), and that took this long: the machine is probably busy. Run the "
            f"tests again; if this comes back on an idle machine, tell your instructor."
            if importing
            else "An endless loop? Check that the loop's condition eventually becomes false "
            "(or that `range(...)` gets the count you meant)."
        )
        rep.longrepr = f"Your code was still running after {limit} s, at {shown}: {code}\n{why}"
        rep.sections = [s for s in rep.sections if "stderr" not in s[0]]
    elif not call.excinfo.errisinstance(pytest.fail.Exception):
        rep.longrepr = _raised_in_learner_code(call.excinfo, path, shown, code)
    return rep


def _importing_below(excinfo, path: Path) -> str:
    """The module being imported when the time limit struck below the learner's code (a first
    `torch.optim.SGD(...)` imports torch.optim's files), or "". Python hides its import
    machinery's frames: the sign is a module's top level (<module>) run below the call."""
    entries = list(excinfo.traceback)
    mine = [i for i, entry in enumerate(entries) if Path(str(entry.path)) == path]
    for entry in entries[mine[-1] + 1 :] if mine else []:
        if entry.frame.code.raw.co_name == "<module>":
            parts = Path(str(entry.path)).with_suffix("").parts
            if "site-packages" not in parts:  # the learner's own module: its code is the loop
                return ""
            parts = parts[parts.index("site-packages") + 1 :]
            return f"`{'.'.join(p for p in parts if p != '__init__')}`"
    return ""


def _raised_in_test(excinfo, item, function: str) -> str:
    """One short report for an error raised while the test used what the kata returned
    (backward() on a returned tensor, say): the learner's code had already finished."""
    error = excinfo.value
    text = str(error).strip().splitlines()
    summary = f"{type(error).__name__}: {text[0]}" if text else type(error).__name__
    test_path = Path(str(item.path))
    where = ""
    for entry in excinfo.traceback:
        if Path(str(entry.path)) == test_path:
            lineno = entry.lineno + 1
            code = loader.source_line(test_path, lineno)
            where = f"{loader.display_path(test_path)}:{lineno}: {code}"
    used = f"what {function}() returned" if function else "what your code returned"
    lines = [f"The test used {used}, and that raised {summary}"]
    if where:
        lines.append(f"  at {where}")
    meaning = explain.explain(error)
    if meaning:
        lines.append(meaning)
    return "\n".join(lines)


def _raised_in_learner_code(excinfo, path: Path, shown: str, code: str) -> str:
    """One short report for an exception that escaped the learner's function."""
    error = excinfo.value
    name = _function_name(excinfo, path)
    text = str(error).strip().splitlines()
    summary = f"{type(error).__name__}: {text[0]}" if text else type(error).__name__
    lines = [f"{name}() raised {summary}", f"  at {shown}: {code}"]
    meaning = explain.explain(error)
    if meaning:
        lines.append(meaning)
    return "\n".join(lines)


def pytest_runtest_logreport(report):
    """Keep one outcome per test: the call's, or the setup/teardown error that replaced it."""
    if report.when == "call":
        outcome = report.outcome
    elif report.failed:
        outcome = "error"
    elif report.skipped and report.when == "setup":
        outcome = "skipped"
    else:
        return
    earlier = _outcomes.get(report.nodeid)
    if report.when == "teardown" and earlier and earlier[1] != "passed":
        return  # the test had already failed: keep that message
    kata = registry.kata_of_test_path(report.fspath)
    message = "" if outcome == "passed" else _message(report)
    line = report.location[1] if report.location else 0
    function = getattr(report, "coach_function", "") or (earlier[4] if earlier else "")
    _outcomes[report.nodeid] = (kata.name if kata else None, outcome, message, line, function)


def _message(report) -> str:
    longrepr = report.longrepr
    if isinstance(longrepr, str):
        return longrepr
    if isinstance(longrepr, tuple):  # a skip: (file, line, reason)
        return str(longrepr[-1])
    crash = getattr(longrepr, "reprcrash", None)
    if crash is not None:
        return crash.message.removeprefix("Failed: ")
    return str(longrepr)


def pytest_collectreport(report):
    if report.failed:
        kata = registry.kata_of_test_path(report.fspath)
        _outcomes[report.nodeid or report.fspath] = (
            kata.name if kata else None,
            "error",
            f"collection failed: {_message(report)}",
            0,
            "",
        )


@pytest.hookimpl(trylast=True)
def pytest_keyboard_interrupt(excinfo):
    """After the learner's Ctrl-C: one line instead of pytest's traceback and summary."""
    if not interrupt.arrived():
        return  # kata code raised it outside a test's call: pytest reports it as usual
    config = _config
    terminal = config.pluginmanager.get_plugin("terminalreporter") if config else None
    if terminal is not None:
        terminal.write_line(interrupt.STOPPED_LINE)
        config.pluginmanager.unregister(terminal)  # no summary, no traceback after it


@pytest.hookimpl(tryfirst=True)
def pytest_sessionfinish(session):
    if interrupt.arrived():
        session.exitstatus = interrupt.STOPPED_STATUS
    target = session.config.getoption("--coach-json")
    if target:
        records = [
            {
                "nodeid": nodeid,
                "kata": kata,
                "outcome": outcome,
                "message": message,
                "line": line,
                "function": function,
            }
            for nodeid, (kata, outcome, message, line, function) in sorted(_outcomes.items())
        ]
        payload = {"impl": str(loader.impl_dir()), "tests": records}
        Path(target).write_text(json.dumps(payload, indent=2), encoding="utf-8")


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    if config.getoption("--coach-summary") == "on" and _outcomes:
        progress = report.Progress.from_outcomes(_outcomes.items())
        if not progress.ran:
            return
        brief = config.getoption("--coach-brief")
        color = _use_color(config)
        mode = config.getoption("--coach-failures")
        shown_above = mode != "pytest" and not brief and progress.next_red() is not None
        summary = [
            "",
            *report.render(
                progress, impl=loader.impl_dir(), color=color, brief=brief, shown_above=shown_above
            ),
        ]
        if shown_above:
            width = config.get_terminal_writer().fullwidth
            seed_rows = 2  # the seed line below; and pytest's own last line
            budget = None
            if mode == "screen":
                budget = report.SCREEN_ROWS - 1 - report.rows(summary, width) - seed_rows
            for line in report.failure_report(progress, width, budget, collapse=mode == "screen"):
                terminalreporter.write_line(line)
        for line in summary:
            terminalreporter.write_line(line)
        seed = getattr(config.option, "randomly_seed", None)
        if isinstance(seed, int) and progress.next_red() is not None:
            terminalreporter.write_line(
                f"  (Random inputs: seed {seed}. ARGS=--randomly-seed={seed} replays them.)"
            )


def _use_color(config) -> bool:
    return config.get_terminal_writer().hasmarkup
