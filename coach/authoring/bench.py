"""`make bench`: how much the suite costs beyond importing torch.

Times `python -c "import torch"` (the floor) and the whole suite on solutions/ the way a
learner runs it, several times each, alternating, and reports the medians and their ratio
(aim: 2.0). Then each kata alone, as `make test K=N` runs it (aim: 1.5 for every one), and
the watch loop's save-to-verdict latency.
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import time

from coach.core import registry
from coach.core.bootstrap import ROOT

AIM = 2.0  # the whole suite, against a bare `import torch`
AIM_ONE_KATA = 1.5  # one kata's tests, against the same
LAZY_TORCH = "import torch, torch._dynamo, torch.fx.experimental.symbolic_shapes"


def wall_time(command: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(command, cwd=ROOT, check=True, capture_output=True)
    return time.perf_counter() - start


def one_kata_ratios(floor: list[str], runs: int) -> dict[str, float]:
    """kata name -> median time of its tests alone on solutions/ over the floor's median."""
    ratios = {}
    for kata in registry.KATAS:
        one = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"]
        one += ["--impl=solutions", kata.test_file]
        floors, times = [], []
        for _ in range(runs):
            floors.append(wall_time(floor))
            times.append(wall_time(one))
        ratios[kata.name] = statistics.median(times) / statistics.median(floors)
    return ratios


def main(rest: list[str]) -> int:
    runs = int(rest[0]) if rest else 7
    floor = [sys.executable, "-c", "import torch"]
    suite = [
        sys.executable,
        "-m",
        "pytest",
        "-q",
        "-p",
        "no:cacheprovider",
        "--impl=solutions",
        *[kata.test_file for kata in registry.KATAS],
    ]
    wall_time(floor)  # warm the file cache before measuring
    floor_times, suite_times = [], []
    for _ in range(runs):
        floor_times.append(wall_time(floor))
        suite_times.append(wall_time(suite))
    floor_median = statistics.median(floor_times)
    suite_median = statistics.median(suite_times)
    ratio = suite_median / floor_median
    print(f"import torch          median {floor_median:.3f} s over {runs} runs")
    print(f"suite on solutions/   median {suite_median:.3f} s over {runs} runs")
    verdict = "within" if ratio <= AIM else "ABOVE"
    print(f"ratio                 {ratio:.2f} ({verdict} the aim of {AIM:.1f})")

    # torch 2.13 imports sympy and dynamo (as much again as `import torch`) the first time
    # torch.func.grad runs or a backward pass is given its output gradient. Katas 7 and 19
    # teach exactly those calls, so part of the suite's cost is torch's, not the course's.
    lazy_floor = [sys.executable, "-c", LAZY_TORCH]
    lazy_times = [wall_time(lazy_floor) for _ in range(runs)]
    lazy_median = statistics.median(lazy_times)
    print(
        f"import torch + what torch.func.grad and y.backward(v) import on first use "
        f"(torch._dynamo, sympy): median {lazy_median:.3f} s; the suite is "
        f"{suite_median / lazy_median:.2f} times that"
    )

    per_kata = one_kata_ratios(floor, max(3, runs // 2))
    worst = max(per_kata, key=per_kata.get)
    verdict = "within" if per_kata[worst] <= AIM_ONE_KATA else "ABOVE"
    print(
        f"one kata (make test K=N): worst ratio {per_kata[worst]:.2f}, {worst} "
        f"({verdict} the aim of {AIM_ONE_KATA:.1f}); median ratio "
        f"{statistics.median(per_kata.values()):.2f}"
    )
    above = {name: ratio for name, ratio in per_kata.items() if ratio > AIM_ONE_KATA}
    for name, ratio in sorted(above.items()):
        print(f"  above the aim: {name} {ratio:.2f}")

    from coach.authoring.bench_watch import watch_latency

    watch, cold = watch_latency("1", runs)
    print(f"make watch K=1        median {watch:.3f} s from save to verdict (aim: 0.5 s)")
    print(f"cold pytest of k01    median {cold:.3f} s")
    return 0
