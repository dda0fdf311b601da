"""What the GitHub Classroom workflow and the Classroom 50 bundle share.

Both instructor routes install the CPU-only torch pinned in requirements/learner.txt once,
before the graders (a grading run downloads about 200 MB instead of several GB of CUDA
libraries), name each kata's grader the same way, and compare each kata's run with the same
expected tests, collected from the pristine tests by the grader's own pytest. The route files
themselves come from coach/grading/workflow.py (GitHub Classroom, Codespaces) and
coach/grading/classroom50.py (Classroom 50).
"""

from __future__ import annotations

import functools
import json
import re
import subprocess
import tempfile
from pathlib import Path

from coach.core import registry
from coach.core.registry import ROOT
from coach.grading import kata_runner

PYTHON_VERSION = "3.11"
TORCH_CPU_INDEX = "https://download.pytorch.org/whl/cpu"
LEARNER_REQUIREMENTS = "requirements/learner.txt"
# A grading job's time (GitHub Classroom's `timeout-minutes`; Classroom 50's 15 minutes).
JOB_TIMEOUT_MINUTES = 15


def torch_pin(requirements: Path = ROOT / LEARNER_REQUIREMENTS) -> str:
    """The `torch==X` line of the learner's requirements: the one place torch is pinned."""
    for line in requirements.read_text(encoding="utf-8").splitlines():
        if re.fullmatch(r"torch==\S+", line.split("#")[0].strip()):
            return line.split("#")[0].strip()
    raise LookupError(f"{LEARNER_REQUIREMENTS} pins no torch==VERSION")


def install_commands(python: str, requirements: str) -> list[str]:
    """Torch from PyTorch's CPU index (no CUDA), then every other pin from PyPI.

    `-I`: nothing in the working folder (a `pip/` folder, say) is imported by pip.
    `--no-deps` keeps the CPU index to torch alone; the second command installs torch's
    dependencies at the versions pinned in the requirements file, and finds torch==X already
    satisfied by the X+cpu build.
    """
    pip = f"{python} -I -m pip install --disable-pip-version-check"
    return [
        f"{pip} --no-deps {torch_pin()} --index-url {TORCH_CPU_INDEX}",
        f"{pip} -r {requirements}",
    ]


def step_id(kata: registry.Kata) -> str:
    """`k01`: the grader's step id. Letters and digits only, as the reporter's runners want."""
    return f"k{kata.number:02d}"


def test_name(kata: registry.Kata) -> str:
    return f"{kata.name}: {kata.title}"


@functools.cache
def expected_tests() -> dict[str, list[str]]:
    """Every kata's test ids, as the grader's own pytest collects them (no kata imported).

    Recorded from the pristine tests into what a grader reads (the export's manifest, which
    the workflow's commands read, and the Classroom 50 files): a test missing from a report
    counts as failed.
    """
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "expected.json"
        run = subprocess.run(
            kata_runner.command("collect", "--out", str(out)),
            cwd=ROOT, env=kata_runner.clean_env(), capture_output=True, text=True,
            check=False, timeout=300,
        )  # fmt: skip
        if run.returncode != 0 or not out.is_file():
            raise RuntimeError(f"could not collect the kata tests:\n{run.stdout}{run.stderr}")
        return json.loads(out.read_text(encoding="utf-8"))
