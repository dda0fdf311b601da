"""The coach server: `make test K=N` (and next, progress, hint, predict, graph) answered warm.

Every cold command pays for `import torch`, pytest and what torch imports on first use (sympy,
dynamo): seconds, where a kata's tests take a fraction of one. Like Gradle's daemon or Bazel's
server, this process keeps that start-up in memory for the commands that follow: it is the warm
parent `make watch` uses (coach/learner/warm.py), answering requests on a Unix socket instead of
file saves. For each request it forks a child that takes over the client's terminal (its stdin,
stdout and stderr arrive over the socket), its environment, folder and arguments, and runs the
command's function as `python -m coach` would; the exit status goes back to the client. The
child reads the learner's files from disk, so every run sees the latest code, and a crash or an
endless loop ends only that child, with the time limits and messages of a cold run (they come
from the same pytest plugins). Ctrl-C reaches the child through the client.

Life cycle: a learner command that finds no server runs cold, then starts one in the background
(`python -m coach.learner.server`, its own session, output in .coach/server/log). It stops after
IDLE seconds without a request, when coach's source, the lessons or the requirements change (the
next command runs cold and starts a fresh one), when a client's Python or start-up environment
differs, and on `make stop`. It listens on .coach/server/socket (mode 0600, in a 0700 folder),
checks that each client is the same user, and never opens a network port. Grading never comes
here: `make grade` and the kata runner stay cold and isolated.
"""

from __future__ import annotations

import atexit
import contextlib
import fcntl
import json
import os
import selectors
import signal
import socket
import struct
import sys
import time
import traceback
from dataclasses import dataclass
from pathlib import Path

from coach.core import command
from coach.learner import client, warm

IDLE = float(os.environ.get("COACH_SERVER_IDLE", "900"))  # seconds without a request
CHECK_SOURCES_EVERY = 30.0  # seconds between looks at coach's source while idle
TICK = 1.0  # the longest the loop sleeps: how soon it notices SIGTERM or idleness
# The learner modules the served commands import: in memory before the first request.
PRELOADED = (
    "coach.learner.run",
    "coach.learner.progress",
    "coach.learner.standing",
    "coach.learner.hints",
    "coach.learner.predict",
    "coach.learner.graph",
)
SIGNALS_PASSED_ON = {
    signal.SIGINT,
    signal.SIGTERM,
    signal.SIGHUP,
    signal.SIGQUIT,
    signal.SIGTSTP,
    signal.SIGCONT,
}


@dataclass
class Run:
    """One request being served: the client's connection and the child running it."""

    conn: socket.socket
    pid: int
    ended: int  # read end of a pipe the child holds open: a byte once it has taken over the
    # client's terminal and folder, end of file when it exits
    started: bool = False
    buffer: bytes = b""


class Server:
    def __init__(self, directory: Path, listener: socket.socket, lock):
        self.directory = directory
        self.listener = listener
        self.lock = lock
        self.identity = client.identity()
        self.fingerprint = client.source_fingerprint()
        self.selector = selectors.DefaultSelector()
        self.runs: dict[int, Run] = {}  # by pid
        self.last_request = time.monotonic()
        self.last_source_check = time.monotonic()
        self.stopping = False
        self.socket_inode = os.stat(directory / client.SOCKET).st_ino

    # --- the loop ---------------------------------------------------------------------------

    def serve(self) -> None:
        self.selector.register(self.listener, selectors.EVENT_READ, self._accept)
        signal.signal(signal.SIGTERM, self._on_sigterm)
        while not self.stopping or self.runs:
            for key, _ in self.selector.select(timeout=TICK):
                key.data(key.fileobj)
            if not self.runs and not self.stopping:
                self._maybe_retire()

    def _on_sigterm(self, signum, frame) -> None:
        self.stop("SIGTERM")

    def _maybe_retire(self) -> None:
        now = time.monotonic()
        if now - self.last_request > IDLE:
            self.stop(f"idle for {IDLE:g} s")
        elif not self._socket_in_place():
            self.stop("its socket was removed (the .coach folder deleted?)")
        elif now - self.last_source_check > CHECK_SOURCES_EVERY:
            self.last_source_check = now
            if client.source_fingerprint() != self.fingerprint:
                self.stop("coach's source or the requirements changed")

    def _socket_in_place(self) -> bool:
        try:
            return os.stat(self.directory / client.SOCKET).st_ino == self.socket_inode
        except OSError:
            return False

    def stop(self, why: str) -> None:
        """Take no more requests (a new server may start at once); finish the running ones."""
        if self.stopping:
            return
        self.stopping = True
        print(f"stopping: {why}", flush=True)
        with contextlib.suppress(KeyError, ValueError):
            self.selector.unregister(self.listener)
        if self._socket_in_place():
            with contextlib.suppress(OSError):
                os.unlink(self.directory / client.SOCKET)
        self.listener.close()
        self.lock.close()  # lets the next server start

    # --- a request --------------------------------------------------------------------------

    def _accept(self, listener: socket.socket) -> None:
        try:
            conn, _ = listener.accept()
        except OSError:
            return
        fds: list[int] = []
        try:
            conn.settimeout(5)
            if not same_user(conn):
                conn.close()
                return
            request, fds = receive(conn)
            self._answer(conn, request, fds)
        except Exception as error:  # a broken request ends only itself
            print(f"request failed: {error!r}", flush=True)
            conn.close()
        finally:
            for fd in fds:
                with contextlib.suppress(OSError):
                    os.close(fd)

    def _answer(self, conn: socket.socket, request: dict, fds: list[int]) -> None:
        self.last_request = time.monotonic()
        if request.get("op") == "ping":  # ready: torch is loaded
            client.send(conn, {"pong": os.getpid()})
            conn.close()
            return
        if request.get("op") == "stop":
            client.send(conn, {"stopped": True, "pid": os.getpid()})
            conn.close()
            self.stop("make stop")
            return
        problem = self.refusal(request, fds)
        if problem:
            client.send(conn, {"refused": problem, "restart": True})
            conn.close()
            self.stop(problem)
            return
        ended, holds_open = os.pipe()
        pid = warm.fork(lambda: self._child(request, fds, [conn.fileno(), ended], holds_open))
        os.close(holds_open)
        with contextlib.suppress(OSError):
            os.setpgid(pid, pid)  # the child's own group, so that Ctrl-C reaches all it starts
        run = Run(conn, pid, ended)
        self.runs[pid] = run
        print(f"pid {pid}: {request['command']} {' '.join(request['rest'])}", flush=True)
        with contextlib.suppress(OSError):  # if the client is gone, _from_client ends the run
            client.send(conn, {"accepted": pid})
        conn.setblocking(False)
        self.selector.register(conn, selectors.EVENT_READ, lambda _: self._from_client(run))
        self.selector.register(ended, selectors.EVENT_READ, lambda _: self._child_ended(run))

    def refusal(self, request: dict, fds: list[int]) -> str:
        """Why this server must not answer (and make way for a new one), or ""."""
        if len(fds) != 3:
            return "the client sent no terminal"
        theirs = request.get("identity") or {}
        if theirs != self.identity:
            differ = sorted(
                key
                for key in {*self.identity, *theirs, *self.identity["env"], *theirs.get("env", {})}
                if self.identity.get(key, self.identity["env"].get(key))
                != theirs.get(key, theirs.get("env", {}).get(key))
            )
            return f"the client's Python or start-up environment differs ({', '.join(differ)})"
        if client.source_fingerprint() != self.fingerprint:
            return "coach's source or the requirements changed"
        target = str(request.get("target", ""))
        if request.get("command") not in client.SERVED or not target.startswith("coach.learner."):
            return f"not a served command: {request.get('command')!r}"
        return ""

    def _from_client(self, run: Run) -> None:
        try:
            data = run.conn.recv(4096)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if not data:  # the client is gone (closed its terminal, killed): so goes the run
            self.selector.unregister(run.conn)
            self._signal(run, signal.SIGKILL)
            return
        run.buffer += data
        while b"\n" in run.buffer:
            line, run.buffer = run.buffer.split(b"\n", 1)
            with contextlib.suppress(ValueError, TypeError, KeyError):
                number = int(json.loads(line)["signal"])
                if number in SIGNALS_PASSED_ON:
                    self._signal(run, number)

    def _signal(self, run: Run, number: int) -> None:
        with contextlib.suppress(OSError):
            os.killpg(run.pid, number)
        if number == signal.SIGKILL:
            with contextlib.suppress(OSError):
                os.kill(run.pid, number)

    def _child_ended(self, run: Run) -> None:
        with contextlib.suppress(OSError):
            if os.read(run.ended, 16):  # started, not ended
                run.started = True
                return
        _, status, usage = os.wait4(run.pid, 0)
        cpu = usage.ru_utime + usage.ru_stime
        print(f"pid {run.pid}: exit {os.waitstatus_to_exitcode(status)} cpu {cpu:.3f}", flush=True)
        self.selector.unregister(run.ended)
        os.close(run.ended)
        del self.runs[run.pid]
        with contextlib.suppress(KeyError, ValueError):
            self.selector.unregister(run.conn)
        with contextlib.suppress(OSError):
            run.conn.setblocking(True)
            code = os.waitstatus_to_exitcode(status)
            client.send(run.conn, {"exit": code, "started": run.started})
        run.conn.close()
        self.last_request = time.monotonic()

    # --- the child --------------------------------------------------------------------------

    def _child(self, request: dict, fds: list[int], also_close: list[int], started: int) -> int:
        """Become the cold run the client would have started, then run its command. Says so on
        `started` (the write end of the `ended` pipe, open until this process exits); if it
        cannot, the server's log gets the reason and the client runs the command cold."""
        for fd in [*self._parent_fds(), *also_close]:
            with contextlib.suppress(OSError):
                os.close(fd)
        log = os.dup(2)
        try:
            become_the_client(request, fds)
        except BaseException:
            with open(log, "w", closefd=False) as stream:
                traceback.print_exc(file=stream)
            return 70
        os.close(log)
        os.write(started, b"1")
        code = 1
        try:
            code = command.call(request["target"], list(request["rest"]))
        except SystemExit as leaving:
            code = exit_code(leaving)
        except BaseException:
            traceback.print_exc()
        try:
            atexit._run_exitfuncs()  # what a Python that ends normally does last
        finally:
            for stream in (sys.stdout, sys.stderr):
                with contextlib.suppress(Exception):
                    stream.flush()
        return code

    def _parent_fds(self) -> list[int]:
        fds = [self.listener.fileno(), self.lock.fileno()]
        with contextlib.suppress(Exception):
            fds.append(self.selector.fileno())  # epoll's own descriptor on Linux
        for run in self.runs.values():
            fds += [run.conn.fileno(), run.ended]
        return [fd for fd in fds if fd >= 0]


def become_the_client(request: dict, fds: list[int]) -> None:
    """In the child: the client's process group of its own, signals as in a new Python, the
    client's terminal as stdin, stdout and stderr, its environment, folder, umask and argv."""
    os.setpgid(0, 0)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    for number in (signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT, signal.SIGCHLD):
        signal.signal(number, signal.SIG_DFL)
    for target, fd in enumerate(fds):
        os.dup2(fd, target)
    for fd in fds:
        if fd > 2:
            os.close(fd)
    os.environ.clear()
    os.environ.update(request["env"])
    os.chdir(request["cwd"])
    os.umask(int(request["umask"]))
    sys.argv = list(request["argv"])
    fresh_stdio()


def exit_code(leaving: SystemExit) -> int:
    """What Python does with sys.exit(x) at the top: None is 0, a number is itself, anything
    else is printed and means 1."""
    if leaving.code is None:
        return 0
    if isinstance(leaving.code, int):
        return leaving.code
    print(leaving.code, file=sys.stderr)
    return 1


_replaced_streams: list = []  # the server's own std streams, kept so they never close 0, 1, 2


def fresh_stdio() -> None:
    """sys.stdin/stdout/stderr over the client's terminal, buffered as Python buffers them at
    start-up: stdout line by line on a terminal (else in blocks), stderr line by line."""
    old = (sys.stdin, sys.stdout, sys.stderr)
    _replaced_streams.append(old)
    new = []
    for fd, mode, template in zip((0, 1, 2), ("r", "w", "w"), old):
        stream = open(  # noqa: SIM115 (lives as long as the child)
            fd,
            mode,
            encoding=template.encoding if template else None,
            errors=template.errors if template else None,
            newline="\n",
            closefd=False,
        )
        if mode == "w":
            tty = os.isatty(fd)
            stream.reconfigure(line_buffering=fd == 2 or tty, write_through=template.write_through)
        new.append(stream)
    sys.stdin, sys.stdout, sys.stderr = new
    sys.__stdin__, sys.__stdout__, sys.__stderr__ = new


def same_user(conn: socket.socket) -> bool:
    """The peer runs as this user (Linux tells; elsewhere the 0700 folder must do)."""
    if not hasattr(socket, "SO_PEERCRED"):
        return True
    credentials = conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    _, uid, _ = struct.unpack("3i", credentials)
    return uid == os.getuid()


def receive(conn: socket.socket) -> tuple[dict, list[int]]:
    """One request and the descriptors that came with it."""
    data, fds, _, _ = socket.recv_fds(conn, 1 << 20, 3)
    fds = list(fds)
    try:
        while not data.endswith(b"\n"):
            more = conn.recv(1 << 20)
            if not more:
                raise ConnectionError("the request was cut short")
            data += more
        return json.loads(data), fds
    except BaseException:
        for fd in fds:
            os.close(fd)
        raise


def listen(directory: Path) -> socket.socket:
    """The socket, owner-only from the moment it exists (umask), at its place."""
    path = directory / client.SOCKET
    with contextlib.suppress(FileNotFoundError):
        path.unlink()  # a crashed server's leftover; the lock says no server owns it
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    mask = os.umask(0o077)
    try:
        with client.short_path(path) as address:
            listener.bind(address)
    finally:
        os.umask(mask)
    os.chmod(path, 0o600)
    listener.listen(16)
    return listener


def main() -> int:
    directory = client.private_dir(client.server_dir())
    lock = open(directory / client.LOCK, "a+")  # noqa: SIM115 (held for the server's life)
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        print("another server holds the lock", flush=True)
        return 0
    lock.seek(0)
    lock.truncate()
    lock.write(f"{os.getpid()}\n")
    lock.flush()
    signal.signal(signal.SIGTERM, signal.default_int_handler)  # until serve() takes over
    started = time.perf_counter()
    print(f"pid {os.getpid()}: importing torch, pytest and the coach", flush=True)
    listener = listen(directory)  # clients wait in the backlog while torch loads
    server = None
    try:
        server = Server(directory, listener, lock)
        warm.load_test_machinery(PRELOADED)
        print(f"ready after {time.perf_counter() - started:.2f} s", flush=True)
        server.serve()
    except KeyboardInterrupt:
        pass
    finally:
        if server is not None:
            server.stop("exiting")
        else:
            listener.close()
    print("stopped", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
