"""What a kata's child sends its parent, and how the parent takes it.

The child writes every record (collected tests, each phase of each test, the guard's
findings, the audit hook's evidence, the end) to a pipe as it happens (Channel): what has been
sent has left the process. The parent (Report) accepts each test's phases once and in the
order collected, so a record written by anyone else arrives as a duplicate or out of order
and voids the kata. Standard library only: imported by coach/grading/kata_runner.py.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

REPORT_VERSION = 2


class Channel:
    """The child's one way to the parent: a pipe, written line by line as things happen.

    What has been sent has left the process: kata code that later edits the recorder's
    memory, or ends the process, cannot take back an outcome. The parent accepts each test's
    phases once and in the order collected, so a record written by anyone else shows up as a
    duplicate or out of order, and voids the kata.
    """

    def __init__(self, fd: int):
        self.fd = fd

    def send(self, kind: str, _write=os.write, _dumps=json.dumps, **fields) -> None:
        data = (_dumps({"t": kind, **fields}) + "\n").encode("utf-8", "replace")
        try:
            while data:
                data = data[_write(self.fd, data) :]
        except OSError:
            pass  # the parent is gone or the pipe was closed: what is missing counts as failed


# Audit events (PEP 578) that reach the grader's machinery from inside the process. Raised
# with kata code as the innermost Python frame: reading frames or memory, setting attributes
# of classes or functions, opening a file to write. Raised with kata code anywhere on the
# stack: starting or signalling processes, native code, tracing, sockets.
DIRECT_EVENTS = frozenset(
    {"gc.get_objects", "gc.get_referrers", "gc.get_referents", "sys._getframe"}
    | {"object.__getattr__", "object.__setattr__", "object.__delattr__", "open"}
    | {"function.__new__", "code.__new__", "os.remove", "os.rename", "os.chmod"}
)
ANY_EVENTS = frozenset(
    {"os.fork", "os.forkpty", "os.exec", "os.posix_spawn", "os.spawn", "os.system"}
    | {"os.kill", "os.killpg", "subprocess.Popen", "ctypes.dlopen", "ctypes.dlsym"}
    | {"ctypes.cdata", "sys.settrace", "sys.setprofile", "sys.addaudithook", "socket.connect"}
)
EVIDENCE_MOST = 20  # records per kata: enough to name what it did


def watch_kata_code(channel: Channel, impl: str) -> None:
    """Name, in the report, what kata code did to reach the grader from inside the process.

    An audit hook cannot be removed once added, and it runs before the operation: each event
    above, raised by kata code, is sent to the parent at once (event, file:line). It is
    evidence for the instructor's report, not a verdict: a kata that forges its own outcomes
    in memory has to do some of these things, and the report names them.
    """
    prefix = str(Path(impl).resolve()) + os.sep
    busy = [False]

    def _kata_line(frame, anywhere, _prefix=prefix):
        depth = 0
        while frame is not None and depth < 80:
            name = frame.f_code.co_filename
            if name.startswith(_prefix):
                return f"{Path(name).name}:{frame.f_lineno}"
            if not anywhere:
                return ""
            frame, depth = frame.f_back, depth + 1
        return ""

    def hook(event, args, _busy=busy, _send=channel.send, _seen=set()):  # noqa: B006
        if _busy[0] or (event not in DIRECT_EVENTS and event not in ANY_EVENTS):
            return
        if event == "open" and not _writes(args):
            return
        _busy[0] = True
        try:
            try:
                raise LookupError
            except LookupError as error:
                caller = error.__traceback__.tb_frame.f_back
            where = _kata_line(caller, event in ANY_EVENTS)
            detail = f"{event} {args[1]}" if event.startswith("object.") else event
            if where and (detail, where) not in _seen and len(_seen) < EVIDENCE_MOST:
                _seen.add((detail, where))
                _send("evidence", event=detail, where=where)
        except Exception:  # a hook must never break the run
            pass
        finally:
            _busy[0] = False

    sys.addaudithook(hook)


def _writes(args) -> bool:
    mode, flags = args[1] if len(args) > 1 else None, args[2] if len(args) > 2 else 0
    if isinstance(mode, str):
        return any(c in mode for c in "wax+")
    return bool(isinstance(flags, int) and flags & (os.O_WRONLY | os.O_RDWR))


class Report:
    """The parent's record of one child, built from what the child sent, in order."""

    PHASES = ("setup", "call", "teardown")

    def __init__(self, kata: str | None):
        self.kata = kata
        self.collected: list[str] | None = None
        self.tests: dict[str, dict] = {}
        self.seen: set[tuple[str, str]] = set()
        self.current = -1  # index in `collected` of the test whose phases are arriving
        self.ended: dict | None = None
        self.tampered: list[str] = []
        self.interrupted = ""
        self.forged: list[str] = []
        self.evidence: list[str] = []
        self.buffer = b""

    def feed(self, data: bytes) -> None:
        self.buffer += data
        *lines, self.buffer = self.buffer.split(b"\n")
        for line in lines:
            if not line.strip():
                continue
            try:
                message = json.loads(line)
                kind = message["t"]
            except (ValueError, KeyError, TypeError):
                self.forged.append(f"an unreadable record {line[:60]!r}")
                continue
            self._take(kind, message)

    def _take(self, kind: str, message: dict) -> None:
        if self.ended is not None:
            self.forged.append(f"a {kind!r} record after the end of the run")
            return
        if kind == "collected":
            if self.collected is not None:
                self.forged.append("a second list of collected tests")
                return
            self.collected = [str(i) for i in message.get("ids", [])]
        elif kind == "collecterror":
            nodeid = str(message.get("nodeid"))
            self.tests[nodeid] = {"outcome": "error", "message": str(message.get("message"))}
        elif kind == "phase":
            self._phase(message)
        elif kind == "tampered":
            self.tampered += [str(n) for n in message.get("names", [])]
        elif kind == "interrupted":
            self.interrupted = str(message.get("what"))
        elif kind == "evidence":
            self.evidence.append(f"{message.get('where')}: {message.get('event')}")
        elif kind == "end":
            self.ended = message
        else:
            self.forged.append(f"a record of unknown kind {kind!r}")

    def _phase(self, message: dict) -> None:
        nodeid, when = str(message.get("nodeid")), str(message.get("when"))
        order = self.collected or []
        if nodeid not in order or when not in self.PHASES:
            self.forged.append(f"a record for {nodeid} ({when}), which was not collected")
            return
        if (nodeid, when) in self.seen:
            self.forged.append(f"a second {when} record for {nodeid}")
            return
        index = order.index(nodeid)
        if index < self.current:
            self.forged.append(f"a record for {nodeid} after a later test had started")
            return
        self.current = index
        self.seen.add((nodeid, when))
        outcome = str(message.get("outcome"))
        if when == "call":
            status = outcome
        elif outcome == "failed":
            status = "error"
        elif outcome == "skipped" and when == "setup":
            status = "skipped"
        else:
            return
        earlier = self.tests.get(nodeid)
        if when == "teardown" and earlier and earlier["outcome"] != "passed":
            return
        text = "" if status == "passed" else str(message.get("message", ""))
        self.tests[nodeid] = {"outcome": status, "message": text, "line": message.get("line", 0)}

    def as_dict(self) -> dict | None:
        if self.ended is None:
            return None  # the child never finished its run: how it ended decides
        return {
            "version": REPORT_VERSION,
            "kata": self.kata,
            "exitstatus": self.ended.get("exitstatus"),
            "crash": str(self.ended.get("crash") or ""),
            "interrupted": self.interrupted,
            "collected": self.collected or [],
            "tests": self.tests,
            "tampered": sorted(set(self.tampered)),
            "forged": self.forged,
            "evidence": self.evidence[:EVIDENCE_MOST],
        }
