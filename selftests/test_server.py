"""The coach server answers `make test` as a cold run would, and only to its owner.

Everything happens in a scratch copy of the project (its own coach/, requirements/, katas/ and
.coach/), so that the server found there is this test's alone, and changing a requirements
file or coach's source changes nothing real. Its katas/: kata 1 the stub (red), kata 2 partly
written, kata 3 solved (green), kata 4 with an endless loop, kata 5 that Python cannot read.
Every server started here is stopped at the end, by `python -m coach stop` and, should that
fail, by its pid.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

from coach.core import registry
from coach.learner import client

if not client.supported():  # Windows, macOS: every command runs cold, there is no server
    pytest.skip("no coach server on this platform", allow_module_level=True)

import pty  # POSIX only

ROOT = Path(__file__).resolve().parent.parent
K1, K2, K3, K4, K5 = registry.KATAS[:5]
COPIED = ("coach", "lessons", "tests", "solutions", "katas", "requirements")
SELECTED = ["1", "2", "3", "4", "5", "--randomly-seed=1", "-o", "timeout=1"]
TIMING = re.compile(r"\d+\.\d+ ?s\b")  # "7 passed in 0.08s", "(0.31 s)"
INTERRUPT_ARGS = ["--randomly-seed=1", "-o", "timeout=60"]
LOOP_LINE = re.compile(r":[34] \((while True:|pass)\)")  # where Ctrl-C found the loop

pytestmark = pytest.mark.timeout(300)


def solution(kata: registry.Kata) -> str:
    return (ROOT / "solutions" / f"{kata.name}.py").read_text(encoding="utf-8")


def redefine(source: str, name: str, *body: str) -> str:
    """`source` with function `name` defined again at its end, as `body` (lines)."""
    lines = "".join(f"    {line}\n" for line in body)
    return f"{source}\n\ndef {name}(*args, **kwargs):\n{lines}"


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    """A scratch copy of the project with five katas in five states; stops its servers."""
    project = tmp_path_factory.mktemp("server") / "project"
    ignore = shutil.ignore_patterns("__pycache__", ".coach")
    for name in COPIED:
        shutil.copytree(ROOT / name, project / name, ignore=ignore)
    for name in ("conftest.py", "pyproject.toml"):
        shutil.copy(ROOT / name, project / name)
    katas = project / "katas"
    partly, looping = registry.functions(K2.name)[-1], registry.functions(K4.name)[0]
    body = "raise NotImplementedError('not written yet')"
    (katas / f"{K2.name}.py").write_text(redefine(solution(K2), partly, body))
    (katas / f"{K3.name}.py").write_text(solution(K3))
    (katas / f"{K4.name}.py").write_text(redefine(solution(K4), looping, "while True:", "    pass"))
    (katas / f"{K5.name}.py").write_text("import torch\n\ndef broken(:\n    pass\n")
    yield project
    coach(project, "stop")
    holder = server_pid(project)
    if holder:
        with contextlib.suppress(OSError):
            os.kill(holder, signal.SIGKILL)


def environment(project: Path, served: bool = True) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("COACH_STATE_DIR", "CI")}
    env.update(COACH_NO_VENV="1", PYTHONPATH=str(project), COACH_SERVER="1")
    env["COACH_SERVER_IDLE"] = "300"  # should this test be killed, its server ends soon after
    env.pop("COACH_NO_SERVER", None)
    if not served:
        env["COACH_NO_SERVER"] = "1"
    return env


def coach(project: Path, *args: str, served: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "coach", *args],
        cwd=project,
        env=environment(project, served),
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )


def server_dir(project: Path) -> Path:
    return project / ".coach" / "server"


def server_log(project: Path) -> str:
    try:
        return (server_dir(project) / "log").read_text()
    except OSError:
        return ""


def server_pid(project: Path) -> int | None:
    """The pid of the server holding the lock, None when no server runs."""
    return client.lock_holder(server_dir(project))


def wait_until_ready(project: Path, timeout: float = 90) -> int:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        pid = server_pid(project)
        if pid and "ready after" in server_log(project):
            return pid
        time.sleep(0.1)
    raise AssertionError(f"no server became ready; its log:\n{server_log(project)}")


def served_runs(project: Path) -> int:
    return len(re.findall(r"^pid \d+: exit ", server_log(project), flags=re.MULTILINE))


def same(text: str) -> str:
    return TIMING.sub("T s", text)


@pytest.fixture(scope="module")
def cold_then_warm(project):
    """`make test K=1..5` cold (no server yet; this run starts one), then served by it."""
    start = "from coach.learner import client; client.start_server()"
    subprocess.run([sys.executable, "-c", start], cwd=project, env=environment(project), check=True)
    cold = coach(project, "test", *SELECTED, served=False)  # while the server loads torch
    pid = wait_until_ready(project)
    before = served_runs(project)
    warm = coach(project, "test", *SELECTED)
    assert served_runs(project) == before + 1, server_log(project)
    return cold, warm, pid


def test_warm_and_cold_runs_print_the_same_and_exit_alike(cold_then_warm):
    cold, warm, _ = cold_then_warm
    assert cold.returncode == warm.returncode == 1
    assert same(warm.stdout) == same(cold.stdout)
    assert same(warm.stderr) == same(cold.stderr)
    for kata in (K1, K2, K3, K4, K5):  # every state is in the output: red, partly, green, ...
        assert kata.name in cold.stdout
    assert "more failing tests not shown" in cold.stdout  # k05's syntax error among them
    assert "still running after 1" in cold.stdout  # the endless loop, stopped


def test_on_a_terminal_the_colours_match_a_cold_run(project, cold_then_warm):
    def on_terminal(served: bool) -> str:
        main, terminal = pty.openpty()
        process = subprocess.Popen(
            [sys.executable, "-m", "coach", "test", "3", "--randomly-seed=1"],
            cwd=project,
            env=dict(environment(project, served), TERM="xterm"),
            stdin=terminal,
            stdout=terminal,
            stderr=terminal,
        )
        os.close(terminal)
        output = b""
        with contextlib.suppress(OSError):  # EIO once the last writer is gone
            while chunk := os.read(main, 65536):
                output += chunk
        os.close(main)
        assert process.wait(timeout=120) == 0
        return output.decode()

    before = served_runs(project)
    cold, warm = on_terminal(served=False), on_terminal(served=True)
    assert served_runs(project) == before + 1
    assert "\x1b[" in cold  # colour, since this is a terminal
    assert same(warm) == same(cold)


def test_the_socket_is_its_owners_alone(project, cold_then_warm):
    folder = server_dir(project)
    assert stat.S_IMODE(os.stat(folder).st_mode) == 0o700
    socket_file = os.stat(folder / "socket")
    assert stat.S_ISSOCK(socket_file.st_mode)
    assert stat.S_IMODE(socket_file.st_mode) == 0o600
    assert socket_file.st_uid == os.getuid()


def test_coach_no_server_runs_cold(project, cold_then_warm):
    before = served_runs(project)
    cold = coach(project, "test", "3", served=False)
    assert cold.returncode == 0, cold
    assert served_runs(project) == before


@pytest.mark.parametrize("changed", ["requirements/learner.txt", "coach/learner/hints.py"])
def test_a_changed_requirement_or_coach_source_restarts_the_server(
    project, cold_then_warm, changed
):
    old = wait_until_ready(project)
    path = project / changed
    later = path.stat().st_mtime_ns + 10**9
    os.utime(path, ns=(later, later))
    result = coach(project, "test", "3")  # refused: runs cold, then starts a fresh server
    assert result.returncode == 0, result
    assert "green" in result.stdout
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and _alive(old):
        time.sleep(0.1)
    assert not _alive(old), "the old server is still running"
    new = wait_until_ready(project)
    assert new != old
    assert "coach's source or the requirements changed" in _previous_logs(project, old)


def _alive(pid: int) -> bool:
    """Running (a zombie nobody has reaped yet, in a container without init, is not)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with contextlib.suppress(OSError):
        return Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0] != "Z"
    return True


def _previous_logs(project: Path, old: int) -> str:
    return (server_dir(project) / "log.previous").read_text()


def test_ctrl_c_stops_a_warm_run_as_it_stops_a_cold_one(project, cold_then_warm, tmp_path):
    """Ctrl-C while the learner's code loops: the client passes it on; same output, same code."""

    def interrupted(served: bool) -> tuple[int, str]:
        folder = tmp_path / ("warm" if served else "cold")
        folder.mkdir()
        marker = folder / "looping"
        (folder / f"{K1.name}.py").write_text(
            f"import pathlib\npathlib.Path({str(marker)!r}).touch()\nwhile True:\n    pass\n"
        )
        process = subprocess.Popen(
            [sys.executable, "-m", "coach", "test", "1", f"--impl={folder}", *INTERRUPT_ARGS],
            cwd=project,
            env=environment(project, served),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        deadline = time.monotonic() + 60
        while not marker.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        process.send_signal(signal.SIGINT)  # what a terminal sends its foreground process
        output, _ = process.communicate(timeout=60)
        output = LOOP_LINE.sub("LOOP", output.replace(str(folder), "IMPL"))
        return process.returncode, same(output)

    before = served_runs(project)
    cold, warm = interrupted(served=False), interrupted(served=True)
    assert served_runs(project) == before + 1
    assert warm == cold
