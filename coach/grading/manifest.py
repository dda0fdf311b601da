"""Tamper evidence: SHA-256 hashes of every file that decides a grade.

An exported copy of the katas ships `grading-manifest.json`, written by `write_manifest`. When
`make grade` runs, `verify` compares the files on disk with it and reports each file that
changed, went missing or was added (a new test file or conftest.py changes what is graded as
surely as an edited one). The maintainers' repository has no manifest: there the check says
"no manifest" and nothing else.

The manifest also records the EXPECTED tests of every kata (their ids, collected from the
pristine tests at export): every grader counts a test missing from a kata's report as failed,
so deselecting or deleting tests cannot raise a score.

This is evidence, not a lock: whoever can edit the tests can also rewrite the manifest. So the
grade reports the manifest's own hash too, for a grader to compare with the exported one.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path

if __name__ == "__main__":  # by path with -I, as the workflow runs it: its own tree's coach
    sys.path.append(str(Path(__file__).resolve().parents[2]))

from coach.core.registry import ROOT

MANIFEST_NAME = "grading-manifest.json"

# What decides a grade, as glob patterns relative to the repository root (`**` crosses folders).
# pytest reads its configuration from the first pytest.ini, .pytest.ini, pyproject.toml, tox.ini
# or setup.cfg it finds from the tests' folder upwards, so adding one of those is a change too.
GRADED_PATTERNS = (
    "tests/**/*",  # the tests, and any conftest.py or configuration file among them
    "lessons/**/*",  # each kata's teaching material, and its points
    "conftest.py",
    "pyproject.toml",
    "pytest.ini",
    ".pytest.ini",
    "tox.ini",
    "setup.cfg",
    "Makefile",  # `make grade` runs whatever its recipe says
    ".github/workflows/classroom.yml",  # the grading workflow only (not the maintainers' CI)
    # Every coach module, not a hand-kept list of those a grading run imports: a new module
    # (coach/core/paths.py, imported by the loader) would otherwise be editable with a clean check.
    "coach/**/*",
    # The pinned packages a grading run installs, and any root-level module: `python -m`
    # puts the working folder first on sys.path, so a root pytest_timeout.py shadowed the
    # real plugin, and pytest puts the root there too when it loads conftest.py.
    "requirements/**/*",
    "*.py",
)

# Never graded, and different on every machine.
IGNORED_PARTS = {"__pycache__", ".pytest_cache"}
IGNORED_SUFFIXES = {".pyc", ".pyo"}

EXPLANATIONS = {
    "changed": "changed since the export",
    "missing": "deleted since the export",
    "added": "added since the export",
    "no manifest": "nothing to compare against (normal in the maintainers' repository)",
    "unreadable": f"{MANIFEST_NAME} is not a manifest this tool wrote",
}


@dataclass(frozen=True, order=True)
class Mismatch:
    path: str  # relative to the repository root, with forward slashes
    kind: str  # a key of EXPLANATIONS

    def __str__(self) -> str:
        return f"{self.path}: {EXPLANATIONS[self.kind]}"

    @property
    def is_tampering(self) -> bool:
        """A missing manifest is the normal state of the maintainers' repository."""
        return self.kind != "no manifest"


def file_hash(path: Path) -> str:
    """SHA-256 of the file with CRLF read as LF: a Windows checkout is not a change."""
    return hashlib.sha256(path.read_bytes().replace(b"\r\n", b"\n")).hexdigest()


def _is_ignored(relative: str) -> bool:
    ignored_folder = IGNORED_PARTS.intersection(relative.split("/"))
    return bool(ignored_folder) or Path(relative).suffix in IGNORED_SUFFIXES


def graded_files(root: Path) -> list[str]:
    """The graded files present under `root`, as sorted relative paths."""
    found = set()
    for pattern in GRADED_PATTERNS:
        for path in root.glob(pattern):
            if path.is_file():
                relative = path.relative_to(root).as_posix()
                if not _is_ignored(relative):
                    found.add(relative)
    return sorted(found)


def hashes(root: Path) -> dict[str, str]:
    return {relative: file_hash(root / relative) for relative in graded_files(root)}


def write_manifest(root: Path = ROOT, expected: dict[str, list[str]] | None = None) -> Path:
    """Record the graded files of an export, and each kata's expected test ids."""
    target = Path(root) / MANIFEST_NAME
    record: dict = {"sha256": hashes(Path(root))}
    if expected is not None:
        record["tests"] = {name: list(ids) for name, ids in expected.items()}
    text = json.dumps(record, indent=2, sort_keys=True)
    target.write_text(text + "\n", encoding="utf-8", newline="\n")
    return target


def expected_tests(root: Path = ROOT) -> dict[str, list[str]] | None:
    """Each kata's expected test ids from the manifest; None without one (or without ids)."""
    try:
        tests = json.loads((Path(root) / MANIFEST_NAME).read_text(encoding="utf-8"))["tests"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if not isinstance(tests, dict):
        return None
    return {str(k): [str(i) for i in v] for k, v in tests.items() if isinstance(v, list)}


def manifest_hash(root: Path = ROOT) -> str | None:
    """The manifest's own SHA-256 (LF line ends), for comparing with the exported one."""
    path = Path(root) / MANIFEST_NAME
    return file_hash(path) if path.is_file() else None


def verify(root: Path = ROOT, manifest_path: Path | None = None) -> list[Mismatch]:
    """Every graded file that differs from the manifest, sorted by path.

    `manifest_path` defaults to the one in `root`; the workflow passes the template's copy
    instead, which the learner cannot have rewritten.
    """
    root = Path(root)
    path = Path(manifest_path) if manifest_path else root / MANIFEST_NAME
    if not path.is_file():
        return [Mismatch(MANIFEST_NAME, "no manifest")]
    try:
        recorded = json.loads(path.read_text(encoding="utf-8"))["sha256"]
        if not isinstance(recorded, dict):
            raise TypeError(type(recorded).__name__)
    except (OSError, ValueError, KeyError, TypeError):
        return [Mismatch(MANIFEST_NAME, "unreadable")]
    present = hashes(root)
    mismatches = [
        Mismatch(relative, "missing" if relative not in present else "changed")
        for relative, digest in recorded.items()
        if present.get(relative) != digest
    ]
    mismatches += [Mismatch(relative, "added") for relative in present if relative not in recorded]
    return sorted(mismatches)


def status(mismatches: list[Mismatch]) -> str:
    """One word for the whole check: clean, tampered or "no manifest"."""
    if any(mismatch.is_tampering for mismatch in mismatches):
        return "tampered"
    return "no manifest" if mismatches else "clean"


def describe(mismatches: list[Mismatch]) -> list[str]:
    """Lines for people: the verdict, then one line per file."""
    verdict = status(mismatches)
    if verdict == "clean":
        return [f"Tamper check: clean (every graded file matches {MANIFEST_NAME})."]
    if verdict == "no manifest":
        return [f"Tamper check: no {MANIFEST_NAME}, {EXPLANATIONS['no manifest']}."]
    count = sum(mismatch.is_tampering for mismatch in mismatches)
    noun = "file differs" if count == 1 else "files differ"
    lines = [f"Tamper check: {count} graded {noun} from {MANIFEST_NAME}:"]
    lines += [f"  {mismatch.kind:<10} {mismatch.path}" for mismatch in mismatches]
    return lines


def github_annotations(mismatches: list[Mismatch]) -> list[str]:
    """GitHub Actions workflow commands: one `::warning::` per mismatch, shown on the run."""
    return [
        f"::warning title=Tamper check::{mismatch.path}: {EXPLANATIONS[mismatch.kind]}"
        for mismatch in mismatches
        if mismatch.is_tampering
    ]


def hash_line(root: Path = ROOT) -> str:
    sha = manifest_hash(root)
    if sha is None:
        return f"Manifest SHA-256: none ({MANIFEST_NAME} is absent)."
    return f"Manifest SHA-256: {sha} (compare with the one `make student-repo` printed)."


def step_summary(mismatches: list[Mismatch], manifest_path: Path | None = None) -> str:
    """Markdown for $GITHUB_STEP_SUMMARY: the verdict an instructor sees on the run's page."""
    lines = ["### Tamper check", "", *describe(mismatches)[:1]]
    if manifest_path is not None:
        sha = file_hash(manifest_path) if Path(manifest_path).is_file() else "none"
        lines += ["", f"Manifest SHA-256: `{sha}` (`{Path(manifest_path).as_posix()}`)"]
    rows = [f"| `{m.path}` | {EXPLANATIONS[m.kind]} |" for m in mismatches if m.is_tampering]
    if rows:
        lines += ["", "| file | what |", "|------|------|", *rows]
    return "\n".join(lines) + "\n"


def _report_to_github(mismatches: list[Mismatch], manifest_path: Path) -> None:
    for line in github_annotations(mismatches):
        print(line)
    summary = os.environ.get("GITHUB_STEP_SUMMARY")
    if summary:
        with open(summary, "a", encoding="utf-8") as handle:
            handle.write(step_summary(mismatches, manifest_path))


def main(rest: list[str]) -> int:
    """`python -m coach manifest [write|verify]`: write writes; verify exits 1 on a mismatch.

    verify takes `--root DIR` (the tree to check), `--manifest FILE` (the manifest to trust)
    and `--github` (annotations and a job summary, for the classroom workflow).
    """
    parser = argparse.ArgumentParser(prog="python -m coach manifest")
    parser.add_argument("action", nargs="?", default="verify")
    parser.add_argument("--root", default=None, help="the tree to check (default: this one)")
    parser.add_argument("--manifest", default=None, help="the manifest to compare with")
    parser.add_argument("--github", action="store_true", help="GitHub Actions annotations")
    args = parser.parse_args(rest)
    root = Path(args.root) if args.root else ROOT
    if args.action == "write":
        path = write_manifest(root)
        count = len(json.loads(path.read_text(encoding="utf-8"))["sha256"])
        print(f"Wrote {path.name}: the SHA-256 of {count} graded files.")
        return 0
    if args.action == "verify":
        trusted = Path(args.manifest) if args.manifest else root / MANIFEST_NAME
        mismatches = verify(root, trusted)
        for line in describe(mismatches):
            print(line)
        sha = file_hash(trusted) if trusted.is_file() else None
        print(f"Manifest SHA-256: {sha or 'none'} ({trusted.as_posix()}).")
        if args.github:
            _report_to_github(mismatches, trusted)
        return 1 if status(mismatches) == "tampered" else 0
    print(f"Unknown action {args.action!r}: use `write` or `verify`.", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
