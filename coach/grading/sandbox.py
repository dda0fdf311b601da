"""Who runs kata code, and what it may leave behind: the grader's side of the kata user.

coach/grading/kata_runner.py runs kata code as an unprivileged OS user (KATA_USER) wherever
it is root, after checking as that user that it can read the Python, torch, the tests and the
katas and write none of them, nor site-packages; each kata's child gets a scratch HOME and
TMPDIR and a process limit. After each kata every process of that user is killed, and every
descendant of the runner (the subreaper of its children's orphans, on Linux). Python's
start-up files (`*.pth`, site/usercustomize) are compared before and after each kata and put
back. Standard library only: imported by the runner, which runs by path with -I.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

KATA_USER = "coach-kata"  # the unprivileged OS user kata code runs as, where there can be one
NPROC_LIMIT = 512  # processes (threads count) the kata user may have at once


def limit_processes() -> None:
    """At most NPROC_LIMIT processes for the kata user (never set for the grader's own user)."""
    import resource

    with contextlib.suppress(ValueError, OSError):
        resource.setrlimit(resource.RLIMIT_NPROC, (NPROC_LIMIT, NPROC_LIMIT))


def become(account: dict | None, home: str | None) -> None:
    """Drop to the kata user (when there is one), with a scratch HOME and TMPDIR of its own."""
    import resource
    import tempfile as tempfile_module

    with contextlib.suppress(ValueError, OSError):
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    if account:
        os.setgroups([])
        os.setgid(account["gid"])
        os.setuid(account["uid"])
        limit_processes()
        os.environ["USER"] = os.environ["LOGNAME"] = account["name"]
    if home:
        tmp = str(Path(home) / "tmp")
        os.environ.update(HOME=home, TMPDIR=tmp, TMP=tmp, TEMP=tmp)
        tempfile_module.tempdir = None
        os.chdir(home)


class Subreaper:
    """On Linux, orphans of our children come back to us, so none can outlive its kata."""

    def __init__(self):
        self.active = False
        if sys.platform.startswith("linux"):
            with contextlib.suppress(Exception):
                import ctypes

                libc = ctypes.CDLL(None, use_errno=True)
                self.active = libc.prctl(36, 1, 0, 0, 0) == 0  # PR_SET_CHILD_SUBREAPER

    def stop_strays(self) -> int:
        """SIGKILL every process descended from us (a kata's leftovers, however deep the
        chain), round after round until none is left; how many."""
        if not self.active:
            return 0
        me, stopped = os.getpid(), 0
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            found = _descendants(me)
            if not found:
                break
            for pid in found:  # all at once: a chain cannot hand itself on to a new parent
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.kill(pid, signal.SIGKILL)
            for pid in found:
                with contextlib.suppress(ChildProcessError, OSError):
                    os.waitpid(pid, 0)
            stopped += len(found)
        return stopped


def _processes() -> dict[int, tuple[int, int]]:
    """pid -> (parent pid, real uid) of every process, from /proc."""
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError, IndexError, ValueError):
            ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            found[int(entry.name)] = (ppid, entry.stat().st_uid)
    return found


def _descendants(root: int) -> list[int]:
    table = _processes()
    children: dict[int, list[int]] = {}
    for pid, (ppid, _) in table.items():
        children.setdefault(ppid, []).append(pid)
    found, todo = [], list(children.get(root, []))
    while todo:
        pid = todo.pop()
        found.append(pid)
        todo += children.get(pid, [])
    return found


def kill_user(uid: int) -> int:
    """SIGKILL every process of the kata user, as that user (kill(-1) reaches exactly its own
    processes), until /proc lists none; how many were found."""
    found = 0
    for _ in range(50):
        left = [pid for pid, (_, owner) in _processes().items() if owner == uid]
        if not left:
            return found
        found += len(left)
        pid = os.fork()
        if pid == 0:
            try:
                os.setgroups([])
                os.setuid(uid)
                os.kill(-1, signal.SIGKILL)
            finally:
                os._exit(0)
        os.waitpid(pid, 0)
        for other in left:  # reap those that were our own children
            with contextlib.suppress(ChildProcessError, OSError):
                os.waitpid(other, os.WNOHANG)
        time.sleep(0.01)
    return found


def kata_account(name: str = KATA_USER) -> dict | None:
    """The unprivileged user kata code runs as (created when missing); None if there is none."""
    import pwd

    try:
        entry = pwd.getpwnam(name)
    except KeyError:
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            subprocess.run(
                ["useradd", "--system", "--user-group", "--no-create-home",
                 "--home-dir", "/nonexistent", "--shell", "/usr/sbin/nologin", name],
                capture_output=True, check=False, timeout=30,
            )  # fmt: skip
        try:
            entry = pwd.getpwnam(name)
        except KeyError:
            try:
                entry = pwd.getpwnam("nobody")
            except KeyError:
                return None
    if entry.pw_uid == 0:
        return None
    return {"uid": entry.pw_uid, "gid": entry.pw_gid, "name": entry.pw_name}


def _probe(account: dict, readable: list[str], unwritable: list[str]) -> str:
    """Why the kata user cannot grade here ("" when it can): a forked check as that user."""
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            os.close(read)
            os.setgroups([])
            os.setgid(account["gid"])
            os.setuid(account["uid"])
            problems = [f"cannot read {p}" for p in readable if not os.access(p, os.R_OK)]
            problems += [f"can write {p}" for p in unwritable if os.access(p, os.W_OK)]
            os.write(write, "; ".join(problems).encode()[:4000])
        finally:
            os._exit(0)
    os.close(write)
    with os.fdopen(read, "rb") as handle:
        said = handle.read().decode()
    os.waitpid(pid, 0)
    return said


def site_dirs() -> list[Path]:
    import site

    found = [*site.getsitepackages(), site.getusersitepackages()]
    found += [p for p in sys.path if p.endswith("site-packages")]
    return sorted({Path(p) for p in found if p})


def choose_sandbox(mode: str, impl: str, root: Path) -> tuple[dict | None, str]:
    """(kata account or None, why there is none). `auto`: a kata user when this is root."""
    if mode == "none":
        return None, "asked for none (--sandbox none)"
    if not hasattr(os, "setuid") or os.geteuid() != 0:
        return None, "the grader is not root (no second OS user to run kata code as)"
    account = kata_account()
    if account is None:
        return None, "no unprivileged user exists for kata code"
    import importlib.util

    torch = importlib.util.find_spec("torch")  # the kata user must reach the packages
    where = torch.origin if torch and torch.origin else sys.executable
    readable = [sys.executable, os.__file__, where, str(root / "tests"), impl]
    unwritable = [str(root), impl, *map(str, site_dirs())]
    why = _probe(account, readable, unwritable)
    if why:
        return None, f"the kata user {account['name']} {why}"
    return account, ""


def sudo_works() -> bool:
    if shutil.which("sudo") is None:
        return False
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        check = subprocess.run(["sudo", "-n", "true"], capture_output=True, timeout=30, check=False)
        return check.returncode == 0
    return False


SITE_HOOKS = ("sitecustomize.py", "usercustomize.py")


def site_state() -> dict[str, bytes]:
    """The files Python runs at start-up (`*.pth`, site/usercustomize) and their bytes."""
    found = {}
    for folder in site_dirs():
        with contextlib.suppress(OSError):
            for entry in folder.iterdir():
                if entry.suffix == ".pth" or entry.name in SITE_HOOKS:
                    with contextlib.suppress(OSError):
                        found[str(entry)] = entry.read_bytes()
    return found


def undo_site_changes(before: dict[str, bytes]) -> list[str]:
    """Put the start-up files back as they were; the paths that had changed."""
    after = site_state()
    changed = sorted(p for p in set(before) | set(after) if before.get(p) != after.get(p))
    for path in changed:
        with contextlib.suppress(OSError):
            if path in before:
                Path(path).write_bytes(before[path])
            else:
                Path(path).unlink()
    return changed
