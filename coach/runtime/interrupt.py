"""Ctrl-C belongs to the learner, never to the kata (the plugin installs this for every run).

A KeyboardInterrupt can come from two places: the learner pressing Ctrl-C (the terminal sends
SIGINT), or kata code raising it itself. Their tracebacks look the same, both usually pass
through the kata's file, so the plugin tells them apart by whether SIGINT actually arrived: the
handler installed here records it, then raises KeyboardInterrupt as Python's own handler does.
After a real Ctrl-C the run stops at once with one line, `STOPPED_LINE`, and the exit status
`STOPPED_STATUS` (128 + SIGINT, what a shell reports for a program stopped by Ctrl-C); a
KeyboardInterrupt raised by kata code with no SIGINT is a failure of the test that ran it.
"""

from __future__ import annotations

import signal
import threading

STOPPED_STATUS = 130
STOPPED_LINE = "Stopped."

_arrived = False
_previous = None  # the handler install() replaced


def _on_sigint(signum, frame) -> None:
    global _arrived
    _arrived = True
    raise KeyboardInterrupt


def install() -> None:
    """Record every SIGINT from now on (only the main thread can set a signal handler). A
    process started with SIGINT ignored (a shell's background job) keeps ignoring it."""
    global _arrived, _previous
    _arrived = False
    if threading.current_thread() is not threading.main_thread():
        return
    if signal.getsignal(signal.SIGINT) is not signal.SIG_IGN:
        _previous = signal.signal(signal.SIGINT, _on_sigint)


def uninstall() -> None:
    """Put back the handler `install()` replaced (`arrived()` still answers for the run)."""
    global _previous
    if _previous is not None and threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, _previous)
        _previous = None


def arrived() -> bool:
    """Whether the learner pressed Ctrl-C since `install()`."""
    return _arrived


def status(exitstatus: int) -> int:
    """A run's exit status: STOPPED_STATUS after a Ctrl-C, whatever pytest made of it."""
    return STOPPED_STATUS if _arrived else int(exitstatus)
