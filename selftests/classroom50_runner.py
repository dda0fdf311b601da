"""Classroom 50's runner, as the grading selftests emulate it (not a test file)."""

from __future__ import annotations

import json
import shlex
import subprocess
from pathlib import Path


def classroom50_points(spec: dict, checkout: Path, report: Path, env: dict) -> tuple[int, str]:
    """Classroom 50's runner.py `_grade_python`, as read from its source: the command with
    `--json-report --json-report-file=F` appended, in a shell in the learner's checkout; then
    round(points * passed / total), capped at points - 1 unless every case passed; with no
    report, all or nothing on the exit code. Returns (points, the run's stdout)."""
    command = f"{spec['run']} --json-report --json-report-file={shlex.quote(str(report))}"
    run = subprocess.run(
        command, shell=True, cwd=checkout, env=env, capture_output=True, text=True,
        check=False, timeout=spec["timeout"],
    )  # fmt: skip
    points = spec["points"]
    if report.is_file():
        summary = json.loads(report.read_text()).get("summary") or {}
        total, passed = int(summary.get("total") or 0), int(summary.get("passed") or 0)
        if total:
            score = max(0, min(points, round(points * passed / total)))
            return (score if passed == total else min(score, max(0, points - 1))), run.stdout
    return (points if run.returncode == 0 else 0), run.stdout
