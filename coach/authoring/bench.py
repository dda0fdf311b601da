"""`make bench`: what a verdict costs, cold and warm, against what torch alone costs.

In one run, side by side:
- the floor: `python -c "import torch"`, and import torch plus what torch imports on first use
  (sympy, torch._dynamo), which katas teaching y.backward(v) and torch.func.grad cannot avoid;
- the whole suite on solutions/ the way pytest runs it cold, and its ratio to the floor (aim 2.0);
- every kata as `make test K=N` runs it: cold (COACH_NO_SERVER=1: a fresh Python each time) and
  warm (answered by a coach server, coach/learner/server.py; aim: 0.3 s and within 1.2 times
  the watcher's save-to-verdict), and the whole suite warm;
- `make watch`'s save-to-verdict (coach/authoring/bench_watch.py).
Wall times are medians; the CPU time (user + sys of the command; for a warm run the client's
plus the server's child's) tells a busy machine from a slow command. A run that fails prints
its command and output, and the bench stops. The server runs on a scratch .coach/ folder and is
stopped at the end.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import statistics
import sys
import tempfile

from coach.authoring.bench_watch import RunFailed, timed_run, watch_latency
from coach.core import registry
from coach.learner import client

AIM = 2.0  # the whole suite, against a bare `import torch`
AIM_ONE_KATA = 1.5  # one kata's tests cold, against the same
AIM_WARM = 0.3  # seconds for a warm `make test K=N`
AIM_WARM_OVER_WATCH = 1.2  # a warm `make test K=N` against the watcher's save-to-verdict
LAZY_TORCH = "import torch, torch._dynamo, torch.fx.experimental.symbolic_shapes"


def median_times(command: list[str], runs: int, env=None) -> tuple[float, float]:
    """(median wall seconds, median user+sys CPU seconds) over `runs` runs; for a warm run the
    CPU time of the server's child (from the server's log) is added to the client's."""
    walls, cpus = [], []
    for _ in range(runs):
        wall, cpu = timed_run(command, env)
        walls.append(wall)
        cpus.append(cpu + (last_served_cpu() if env and env.get("COACH_SERVER") else 0.0))
    return statistics.median(walls), statistics.median(cpus)


def last_served_cpu() -> float:
    """The CPU seconds of the server's last child, as its log says ("pid N: exit 0 cpu 0.1")."""
    log = (client.server_dir() / client.LOG).read_text(errors="replace")
    found = re.findall(r"^pid \d+: exit -?\d+ cpu ([\d.]+)$", log, flags=re.MULTILINE)
    return float(found[-1]) if found else 0.0


def coach_test(*args: str) -> list[str]:
    return [sys.executable, "-m", "coach", "test", *args, "--impl=solutions"]


@contextlib.contextmanager
def warm_server():
    """An environment whose `python -m coach` commands a coach server answers (a scratch
    state folder, so that the learner's own server is left alone); the server stops after."""
    with tempfile.TemporaryDirectory(prefix="coach-bench-") as state:
        env = dict(os.environ, COACH_NO_VENV="1", COACH_STATE_DIR=state, COACH_SERVER="1")
        env.pop("COACH_NO_SERVER", None)
        saved = {name: os.environ.get(name) for name in env}
        os.environ.update(env)  # for client.start_server and client.ping, here
        try:
            client.start_server()
            if client.ping(timeout=300) is None:
                log = client.server_dir() / client.LOG
                raise RunFailed(["the coach server"], 1, log.read_text(errors="replace"))
            yield env
        finally:
            with contextlib.redirect_stdout(None):
                client.stop()
            holder = client.lock_holder(client.server_dir())
            if holder and holder > 0:
                with contextlib.suppress(OSError):
                    os.kill(holder, signal.SIGKILL)
            for name, value in saved.items():
                if value is None:
                    os.environ.pop(name, None)
                else:
                    os.environ[name] = value


def main(rest: list[str]) -> int:
    """`make bench [RUNS]`: time the suite and every kata, cold and warm (RUNS: runs per median)."""
    import argparse

    parser = argparse.ArgumentParser(prog="make bench", description=main.__doc__)
    parser.add_argument("runs", nargs="?", type=int, default=7, help="runs per median (7)")
    runs = parser.parse_args(rest).runs
    try:
        return bench(runs)
    except RunFailed as failure:
        print(failure, file=sys.stderr)
        return 1


def bench(runs: int) -> int:
    cold_env = dict(os.environ, COACH_NO_VENV="1", COACH_NO_SERVER="1")
    floor = [sys.executable, "-c", "import torch"]
    suite = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--impl=solutions"]
    suite += [kata.test_file for kata in registry.KATAS]
    timed_run(floor)  # warm the file cache before measuring
    floor_times, suite_times = [], []
    for _ in range(runs):  # alternating, so that a busy moment slows both alike
        floor_times.append(timed_run(floor)[0])
        suite_times.append(timed_run(suite)[0])
    floor_median = statistics.median(floor_times)
    suite_median = statistics.median(suite_times)
    lazy_median, _ = median_times([sys.executable, "-c", LAZY_TORCH], runs)
    ratio = suite_median / floor_median
    print(f"import torch                          median {floor_median:.3f} s over {runs} runs")
    print(
        f"import torch + first-use imports      median {lazy_median:.3f} s "
        f"(torch._dynamo, sympy: what torch.func.grad and y.backward(v) import)"
    )
    verdict = "within" if ratio <= AIM else "ABOVE"
    print(
        f"suite on solutions/ (pytest, cold)    median {suite_median:.3f} s: {ratio:.2f} x "
        f"import torch ({verdict} the aim of {AIM:.1f}), {suite_median / lazy_median:.2f} x "
        f"the floor with first-use imports"
    )

    watch, _ = watch_latency("1", runs)
    print(f"make watch K=1: save -> verdict       median {watch:.3f} s over {runs} saves")

    cold_runs = max(3, runs // 2)
    print(
        f"\nmake test K=N   cold: median of {cold_runs}, warm: median of {runs}; "
        f"wall s (user+sys CPU s)"
    )
    print(f"  {'kata':<22} {'cold':>14} {'warm':>14}  {'cold/torch':>10}  warm/watch K=1")
    warm_walls, cold_ratios = {}, {}
    with warm_server() as warm_env:
        for kata in registry.KATAS:
            command = coach_test(str(kata.number))
            cold, cold_cpu = median_times(command, cold_runs, cold_env)
            warm, warm_cpu = median_times(command, runs, warm_env)
            warm_walls[kata.name] = warm
            cold_ratios[kata.name] = cold / floor_median
            print(
                f"  {kata.name:<22} {cold:6.3f} ({cold_cpu:5.2f}) {warm:6.3f} ({warm_cpu:5.2f})"
                f"  {cold / floor_median:10.2f}  {warm / watch:10.2f}"
            )
        suite_warm, suite_warm_cpu = median_times(coach_test(), runs, warm_env)
    suite_cold, suite_cold_cpu = median_times(coach_test(), cold_runs, cold_env)
    print(
        f"  {'every kata (make test)':<22} {suite_cold:6.3f} ({suite_cold_cpu:5.2f}) "
        f"{suite_warm:6.3f} ({suite_warm_cpu:5.2f})"
    )

    slowest = max(warm_walls, key=warm_walls.get)
    worst_cold = max(cold_ratios, key=cold_ratios.get)
    # The slowest kata warm against the watcher on that same kata (more tests take longer).
    watch_slowest, _ = watch_latency(slowest, runs, compare_cold=False)
    print(
        f"make watch K={registry.find(slowest).number}: save -> verdict     median "
        f"{watch_slowest:.3f} s over {runs} saves"
    )
    met = warm_walls[slowest] <= min(AIM_WARM, AIM_WARM_OVER_WATCH * watch_slowest)
    print(
        f"\nwarm make test K=N: slowest {warm_walls[slowest]:.3f} s ({slowest}), median "
        f"{statistics.median(warm_walls.values()):.3f} s; aim {AIM_WARM} s and "
        f"{AIM_WARM_OVER_WATCH} x watch on the same kata "
        f"({AIM_WARM_OVER_WATCH * watch_slowest:.3f} s): {'met' if met else 'NOT met'}"
    )
    print(
        f"cold make test K=N: worst {cold_ratios[worst_cold]:.2f} x import torch ({worst_cold}); "
        f"aim {AIM_ONE_KATA}: {'met' if cold_ratios[worst_cold] <= AIM_ONE_KATA else 'NOT met'}"
    )
    return 0
