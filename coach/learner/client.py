"""The learner's side of the coach server: send a command to the warm server, or say "run it
cold" (None), and start a server in the background for next time.

Standard library only, and nothing heavy: this runs before every served command, so that a
warm answer costs a Python start-up and a connect, not `import torch`. The command's output
never passes through here: the terminal itself (stdin, stdout, stderr) is handed to the
server's child over the Unix socket (SCM_RIGHTS), so the child prints, colours and reads input
exactly as a cold run in the same terminal would. Ctrl-C (and SIGTERM, SIGHUP, SIGQUIT, Ctrl-Z)
are passed on to the child; its exit status comes back and becomes this process's.

See coach/learner/server.py for the other side and for when a server starts and stops.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import sys
from pathlib import Path

from coach.core.bootstrap import ROOT

# Commands a server answers; `hint` only when it must run the tests to choose the kata.
SERVED = {"test", "next", "progress", "hint", "predict", "graph"}
SOCKET, LOCK, LOG = "socket", "lock", "log"
CONNECT_WAIT = 60.0  # seconds to wait for a server still importing torch before running cold
# Environment variables read when torch, numpy, Python or the locale start: a server started
# with other values would not behave as a cold run does, so it makes way for a new one.
IDENTITY_ENV = ("PYTHON", "TORCH", "PYTORCH", "OMP_", "MKL_", "KMP_", "OPENBLAS_", "CUDA")
NOT_IDENTITY_ENV = ("PYTHON",)  # `make PYTHON=python3.12 test` puts it there; Python ignores it
IDENTITY_ENV_EXACT = ("LANG", "LANGUAGE", "LC_ALL", "LC_CTYPE", "LD_PRELOAD", "LD_LIBRARY_PATH")
# Files the server has in memory: when one changes, the server stops and a new one starts.
SOURCES = ("coach/**/*.py", "lessons/**/*.py", "conftest.py", "pyproject.toml", "requirements/*")
FORWARDED = ("SIGINT", "SIGTERM", "SIGHUP", "SIGQUIT")
INTERRUPTS_BEFORE_GIVING_UP = 3  # Ctrl-C this often and the client stops waiting for the child


def server_dir() -> Path:
    return Path(os.environ.get("COACH_STATE_DIR", ROOT / ".coach")) / "server"


def supported() -> bool:
    """Unix sockets that pass file descriptors, and a platform where forking after torch is
    safe (see coach/learner/warm.py: not Windows, not macOS)."""
    return (
        hasattr(socket, "AF_UNIX")
        and hasattr(socket, "send_fds")
        and hasattr(os, "fork")
        and sys.platform not in ("darwin", "win32")
    )


def may_use() -> bool:
    return supported() and not os.environ.get("COACH_NO_SERVER")


def may_start() -> bool:
    """A server is started only for someone at a terminal (or when COACH_SERVER=1 asks): CI,
    scripts and tests that run a command get its cold run and leave no process behind."""
    if not may_use() or os.environ.get("CI"):
        return False
    if os.environ.get("COACH_SERVER"):
        return True
    return any(os.isatty(fd) for fd in (1, 2))


def wanted(command: str, rest: list[str]) -> bool:
    if command not in SERVED or not may_use():
        return False
    if command == "hint":  # with a kata named, a hint needs no torch: cold is as fast
        return not any(not word.startswith("-") for word in rest)
    return True


def identity() -> dict:
    """What a server must share with its clients: the same Python, checkout and start-up
    environment (PYTHONPATH without the checkout itself, which `python -m coach` adds)."""
    env = {
        name: value
        for name, value in os.environ.items()
        if (name.startswith(IDENTITY_ENV) and name not in NOT_IDENTITY_ENV)
        or name in IDENTITY_ENV_EXACT
    }
    if "PYTHONPATH" in env:
        kept = [p for p in env["PYTHONPATH"].split(os.pathsep) if p and Path(p).resolve() != ROOT]
        env["PYTHONPATH"] = os.pathsep.join(kept)
        if not kept:
            del env["PYTHONPATH"]
    return {"python": sys.executable, "version": sys.version, "root": str(ROOT), "env": env}


def source_fingerprint(root: Path = ROOT) -> str:
    """Changes when coach's source, the lessons or the requirements change (names, sizes and
    modification times: a hundred stat calls, about a millisecond)."""
    import hashlib

    digest = hashlib.sha256()
    for pattern in SOURCES:
        for path in sorted(root.glob(pattern)):
            with contextlib.suppress(OSError):
                info = path.stat()
                digest.update(
                    f"{path.relative_to(root)}:{info.st_size}:{info.st_mtime_ns}\n".encode()
                )
    return digest.hexdigest()


def private_dir(directory: Path) -> Path:
    """The server's folder: created 0700, and refused unless this user owns it alone."""
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    info = directory.stat()
    if info.st_uid != os.getuid():
        raise PermissionError(f"{directory} belongs to another user")
    if info.st_mode & 0o077:
        os.chmod(directory, 0o700)
    return directory


@contextlib.contextmanager
def short_path(path: Path):
    """A name for `path` that fits a Unix socket address (about 100 bytes): the path itself, or
    its file name from inside its folder when the checkout lies deep."""
    if len(os.fsencode(str(path))) < 100:
        yield str(path)
        return
    with contextlib.chdir(path.parent):
        yield path.name


def send(sock: socket.socket, message: dict, fds: list[int] | None = None) -> None:
    data = json.dumps(message).encode() + b"\n"
    if fds:
        sent = socket.send_fds(sock, [data], fds)
        data = data[sent:]
    if data:
        sock.sendall(data)


class Lines:
    """Newline-separated JSON messages read from a socket."""

    def __init__(self, sock: socket.socket):
        self.sock = sock
        self.buffer = b""

    def next(self) -> dict | None:
        while b"\n" not in self.buffer:
            chunk = self.sock.recv(65536)
            if not chunk:
                return None
            self.buffer += chunk
        line, self.buffer = self.buffer.split(b"\n", 1)
        return json.loads(line)


def connect(timeout: float = CONNECT_WAIT) -> socket.socket:
    """A connection to this checkout's server; OSError when none is listening."""
    directory = server_dir()
    info = directory.stat()
    if info.st_uid != os.getuid() or info.st_mode & 0o077:
        raise PermissionError(f"{directory} is not private to this user")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.settimeout(timeout)
        with short_path(directory / SOCKET) as address:
            sock.connect(address)
    except BaseException:
        sock.close()
        raise
    return sock


class Client:
    """One served command: answer() runs it on the server, or returns None (run it cold);
    start_if_wanted() then starts a server in the background when there was none."""

    def __init__(self) -> None:
        self.start_wanted = False
        self.interrupts = 0

    def answer(self, command: str, target: str, rest: list[str]) -> int | None:
        if not all(_is_open(fd) for fd in (0, 1, 2)):
            return None  # nothing to hand over: a cold run copes with closed descriptors
        try:
            sock = connect()
        except OSError:
            self.start_wanted = True
            return None
        with sock:
            try:
                request = {
                    "command": command,
                    "target": target,
                    "rest": rest,
                    "argv": sys.argv,
                    "cwd": os.getcwd(),  # gone if the folder was deleted: then run cold
                    "env": dict(os.environ),
                    "umask": _umask(),
                    "identity": identity(),
                }
                send(sock, request, [0, 1, 2])
                lines = Lines(sock)
                reply = lines.next()  # waits while a new server finishes importing torch
            except (OSError, ValueError):
                return None
            except KeyboardInterrupt:  # as a cold run stopped while importing torch ends
                print("\nStopped.")
                return 130
            if not reply or "accepted" not in reply:  # gone, or making way for a new server
                self.start_wanted = not reply or bool(reply.get("restart"))
                return None
            sock.settimeout(None)
            return self._wait(sock, lines)

    def _wait(self, sock: socket.socket, lines: Lines) -> int | None:
        """Pass signals on until the child's exit status arrives; then mirror it. None when the
        child could not even take over this terminal (the server's log says why): run cold."""
        previous = {}

        def forward(signum, frame):
            with contextlib.suppress(OSError):
                send(sock, {"signal": signum})
            if signum == signal.SIGINT:
                self.interrupts += 1
                if self.interrupts >= INTERRUPTS_BEFORE_GIVING_UP:
                    raise KeyboardInterrupt

        def pause(signum, frame):  # Ctrl-Z: the child stops too, and goes on with us
            with contextlib.suppress(OSError):
                send(sock, {"signal": signal.SIGTSTP})
            signal.signal(signal.SIGTSTP, signal.SIG_DFL)
            os.kill(os.getpid(), signal.SIGTSTP)
            signal.signal(signal.SIGTSTP, pause)
            with contextlib.suppress(OSError):
                send(sock, {"signal": signal.SIGCONT})

        try:
            for name in FORWARDED:
                number = getattr(signal, name)
                previous[number] = signal.signal(number, forward)
            previous[signal.SIGTSTP] = signal.signal(signal.SIGTSTP, pause)
            try:
                while True:
                    message = lines.next()
                    if message is None:
                        print("The coach server stopped during this run.", file=sys.stderr)
                        return 1
                    if "exit" in message:
                        break
            except KeyboardInterrupt:  # Ctrl-C again and again: the server ends the child
                return 130
        finally:
            for number, handler in previous.items():
                signal.signal(number, handler)
        if not message.get("started", True):
            return None
        return _mirror(int(message["exit"]))

    def start_if_wanted(self) -> None:
        if self.start_wanted and may_start():
            with contextlib.suppress(OSError):
                start_server()


def _mirror(code: int) -> int:
    """The exit status of the child as ours: a child killed by a signal kills us by the same
    signal, so that make and the shell see what they would have seen from a cold run."""
    if code >= 0:
        return code
    sys.stdout.flush()
    with contextlib.suppress(OSError, ValueError):
        signal.signal(-code, signal.SIG_DFL)
        os.kill(os.getpid(), -code)
    return 128 - code


def _is_open(fd: int) -> bool:
    try:
        os.fstat(fd)
    except OSError:
        return False
    return True


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def lock_holder(directory: Path) -> int | None:
    """The pid of the server holding the folder's lock (running or starting), else None."""
    import fcntl  # POSIX only, like the server

    try:
        with open(directory / LOCK, "a+") as lock:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                lock.seek(0)
                text = lock.read().strip()
                return int(text) if text.isdigit() else -1
            fcntl.flock(lock, fcntl.LOCK_UN)
    except OSError:
        return None
    return None


def start_server() -> bool:
    """Start `python -m coach.learner.server` in the background, in its own session (no
    terminal: Ctrl-C in this one never reaches it); False when one is there already."""
    import subprocess

    directory = private_dir(server_dir())
    if lock_holder(directory) is not None:
        return False
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    with contextlib.suppress(OSError):
        (directory / LOG).replace(directory / f"{LOG}.previous")  # why the last one stopped
    with open(directory / LOG, "wb") as log:
        subprocess.Popen(
            [sys.executable, "-m", "coach.learner.server"],
            cwd=ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    return True


def ping(timeout: float = CONNECT_WAIT) -> int | None:
    """The pid of this checkout's server once it answers (torch loaded); None if none does.
    Waits for one that is starting (just spawned, or importing torch)."""
    import time

    deadline = time.monotonic() + timeout
    while True:
        try:
            with connect(timeout=max(0.1, deadline - time.monotonic())) as sock:
                send(sock, {"op": "ping"})
                return (Lines(sock).next() or {}).get("pong")
        except (OSError, ValueError):
            if time.monotonic() > deadline:
                return None
        time.sleep(0.05)


def stop(rest: list[str] | None = None) -> int:
    """`make stop`: stop this checkout's coach server, if one runs."""
    if not supported():
        print("No coach server here: this platform runs every command cold.")
        return 0
    try:
        sock = connect(timeout=CONNECT_WAIT)
    except OSError:
        holder = lock_holder(server_dir())
        if holder and holder > 0:  # still starting: not listening yet
            with contextlib.suppress(OSError):
                os.kill(holder, signal.SIGTERM)
            print(f"Stopped the coach server (pid {holder}) while it was starting.")
            return 0
        print("No coach server is running.")
        return 0
    with sock:
        try:
            send(sock, {"op": "stop"})
            reply = Lines(sock).next() or {}
        except (OSError, ValueError) as error:
            print(f"The coach server did not answer: {error}", file=sys.stderr)
            return 1
    print(f"Stopped the coach server (pid {reply.get('pid', '?')}).")
    return 0
