"""A test's time limit, the same on every platform and every route (loaded with the plugin).

pyproject.toml asks pytest-timeout for its "signal" method: when a test runs past its limit,
the test fails with the line the code was on, and the run goes on to the next test. This
plugin takes that method over, for two reasons:
- pytest-timeout's own signal handler writes thread stacks through pytest's terminal, which
  `make progress`, `make next` and the grader switch off (`-p no:terminal`): there its handler
  failed with an AssertionError that read as the learner's. Ours raises the failure and
  writes nothing.
- SIGALRM is missing on Windows; there pytest-timeout would stop with INTERNALERROR before any
  test ran, and its "thread" method ends the whole run (os._exit) at the first endless loop.
  Where SIGALRM is missing (or the run is not in the main thread) a timer thread raises the
  same failure in the thread running the test (CPython's PyThreadState_SetAsyncExc, which the
  interpreter checks between two bytecodes, as it checks for signals).

The failure is a `TimedOut` (a pytest failure with pytest-timeout's message), so the plugin
can tell a time limit from any other failure: it then stops the rest of that kata's tests at
once (one endless loop costs one time limit per kata; see plugin.pytest_runtest_call).

A test stuck inside one long C call (a sleep, a huge torch operation) only sees the failure
when that call returns. On the thread route, if it has not arrived `GRACE` seconds after the
limit, the timer falls back to pytest-timeout's thread method: it prints every thread's stack
and ends the run.
"""

from __future__ import annotations

import ctypes
import signal
import threading

import pytest

GRACE = 10.0  # seconds past the limit before a stuck C call ends the whole run


def have_sigalrm() -> bool:
    """Looked up at each test, so a selftest can take SIGALRM away."""
    return hasattr(signal, "SIGALRM") and hasattr(signal, "setitimer")


class TimedOut(pytest.fail.Exception):
    """A test failed because it ran past its time limit."""


def _failure_class(seconds: float) -> type[BaseException]:
    """A TimedOut with pytest-timeout's message, raisable without arguments (an exception
    raised in another thread is given as a class)."""
    import pytest_timeout

    message = pytest_timeout.PYTEST_FAILURE_MESSAGE % seconds

    class TimedOutAfter(TimedOut):
        def __init__(self, msg: str = message, pytrace: bool = True):
            super().__init__(msg, pytrace)

    return TimedOutAfter


def is_timeout(error: BaseException | None) -> bool:
    """Whether `error` is a time limit striking (ours, or pytest-timeout's own message)."""
    if isinstance(error, TimedOut):
        return True
    return isinstance(error, pytest.fail.Exception) and str(error).startswith("Timeout")


class SignalTimer:
    """Fails the test running in the main thread after `settings.timeout` seconds (SIGALRM),
    writing nothing: the plugin's report names the learner's line."""

    def __init__(self, item, settings):
        self.settings = settings

    def start(self) -> None:
        signal.signal(signal.SIGALRM, self._fire)
        signal.setitimer(signal.ITIMER_REAL, self.settings.timeout)

    def _fire(self, signum, frame) -> None:
        import pytest_timeout

        if not self.settings.disable_debugger_detection and pytest_timeout.is_debugging():
            return
        raise _failure_class(self.settings.timeout)()

    def cancel(self) -> None:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, signal.SIG_DFL)


def _raise_in_thread(ident: int, exception: type[BaseException] | None) -> int:
    """Make `exception` raise in thread `ident` at its next bytecode; None cancels one that is
    pending. Returns how many threads were changed (1, or 0 if the thread is gone)."""
    return ctypes.pythonapi.PyThreadState_SetAsyncExc(
        ctypes.c_ulong(ident), ctypes.py_object(exception) if exception else ctypes.c_void_p(0)
    )


class ThreadTimer:
    """Fails the test running in this thread after `settings.timeout` seconds."""

    def __init__(self, item, settings, grace: float | None = None):
        self.item = item
        self.settings = settings
        self.grace = GRACE if grace is None else grace
        self.target = threading.get_ident()
        self.lock = threading.Lock()
        self.finished = threading.Event()
        self.fired = False
        self.thread = threading.Thread(
            target=self._run, name=f"coach-timeout {item.nodeid}", daemon=True
        )

    def start(self) -> None:
        self.thread.start()

    def _run(self) -> None:
        if self.finished.wait(self.settings.timeout):
            return
        import pytest_timeout

        with self.lock:
            if self.finished.is_set():
                return
            if not self.settings.disable_debugger_detection and pytest_timeout.is_debugging():
                return
            self.fired = True
            _raise_in_thread(self.target, _failure_class(self.settings.timeout))
        if not self.finished.wait(self.grace):
            pytest_timeout.timeout_timer(self.item, self.settings)  # stacks, then os._exit(1)

    def cancel(self) -> None:
        with self.lock:
            self.finished.set()
            if self.fired:  # raised but perhaps not delivered yet: it must not land elsewhere
                _raise_in_thread(self.target, None)
        if self.thread.is_alive() and self.thread is not threading.current_thread():
            self.thread.join(timeout=1)


@pytest.hookimpl(tryfirst=True)
def pytest_timeout_set_timer(item, settings):
    """Take over pytest-timeout's signal method: SIGALRM where it can, a thread elsewhere."""
    if settings.method != "signal":
        return None  # pytest-timeout's own timer
    main = threading.current_thread() is threading.main_thread()
    timer = SignalTimer(item, settings) if have_sigalrm() and main else ThreadTimer(item, settings)
    item.cancel_timeout = timer.cancel  # what pytest-timeout's cancel hook calls
    timer.start()
    return True
