"""A fresh grading tree: the grader's own sources and the learner's kata files, nothing else.

    python -I coach/grading/tree.py build --source SRC --katas DIR --out TREE
    sha256sum -c --quiet --strict TREE/.tree.sha256      # right before each use

Every route grades from such a tree, never from the learner's checkout: `coach/`, `tests/`,
`lessons/` (`*.py` files) and `requirements/` come from SRC (the pristine template on the
instructor's routes), and only `katas/*.py` (regular files, not links) from the learner. So no
folder, `*.dist-info`, `pip/`, module or configuration file of the learner's is ever on a path
a grading Python searches, and the tree's root is the only folder the runner adds to
`sys.path`. The tree is readable by everyone and writable only by whoever built it (the kata
user of coach/grading/kata_runner.py cannot change it); `.tree.sha256` lists every file's
SHA-256 for `sha256sum -c`, and `digest()` lets the runner check the tree before each kata.

Standard library only, and run by path with `-I`.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import stat
import sys
from pathlib import Path

GRADER_FOLDERS = ("coach", "tests", "lessons")  # their *.py files, from the pristine source
REQUIREMENTS = "requirements"  # its *.txt files
MANIFEST = "grading-manifest.json"
KATAS = "katas"
CHECKSUMS = ".tree.sha256"
MAX_KATA_BYTES = 1 << 20  # a kata file larger than this is not a kata file


def _grader_files(source: Path) -> list[str]:
    found = []
    for folder in GRADER_FOLDERS:
        base = source / folder
        if not base.is_dir():
            continue
        for path in sorted(base.rglob("*.py")):
            relative = path.relative_to(source)
            if "__pycache__" in relative.parts or path.is_symlink() or not path.is_file():
                continue
            found.append(relative.as_posix())
    base = source / REQUIREMENTS
    if base.is_dir():
        found += sorted(
            p.relative_to(source).as_posix()
            for p in base.glob("*.txt")
            if p.is_file() and not p.is_symlink()
        )
    if (source / MANIFEST).is_file() and not (source / MANIFEST).is_symlink():
        found.append(MANIFEST)
    return found


def kata_files(katas: Path) -> list[Path]:
    """The learner's graded files: regular `*.py` files directly in `katas` (no links)."""
    if not katas.is_dir():
        return []
    files = []
    for path in sorted(katas.glob("*.py")):
        info = os.lstat(path)
        if stat.S_ISREG(info.st_mode) and info.st_size <= MAX_KATA_BYTES:
            files.append(path)
    return files


def _write(target: Path, data: bytes) -> None:
    target.parent.mkdir(parents=True, exist_ok=True, mode=0o755)
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o644)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def build(source: Path, katas: Path, out: Path) -> dict[str, str]:
    """Write the tree into `out` (which must not exist yet); {relative path: SHA-256}."""
    source, out = Path(source).resolve(), Path(out)
    old = os.umask(0o022)
    try:
        out.mkdir(parents=True, mode=0o755)
        os.chmod(out, 0o755)
        hashes = {}
        for relative in _grader_files(source):
            data = (source / relative).read_bytes()
            _write(out / relative, data)
            hashes[relative] = sha256(data)
        (out / KATAS).mkdir(mode=0o755, exist_ok=True)
        for path in kata_files(Path(katas)):
            data = path.read_bytes()
            _write(out / KATAS / path.name, data)
            hashes[f"{KATAS}/{path.name}"] = sha256(data)
        lines = "".join(f"{digest}  {relative}\n" for relative, digest in sorted(hashes.items()))
        _write(out / CHECKSUMS, lines.encode())
    finally:
        os.umask(old)
    return hashes


def snapshot(tree: Path) -> dict[str, bytes]:
    """The tree's files as bytes, by relative path (what `changed` compares with): every file
    below the grader's folders and katas/ (compiled `.pyc` files included: the runner writes
    none), and every entry at the top (a folder there by its name alone: nothing may appear
    next to coach/ on the runner's path)."""
    tree = Path(tree)
    found: dict[str, bytes] = {}
    for entry in sorted(tree.iterdir()):
        if entry.name.endswith(".json") and entry.name != MANIFEST:
            continue  # a run's own results (the workflow's .grade-kNN.json): never imported
        if entry.is_symlink() or entry.is_file():
            found[entry.name] = _read(entry)
        elif entry.name not in (*GRADER_FOLDERS, KATAS, REQUIREMENTS):
            found[entry.name + "/"] = b"<folder>"
    for folder in (*GRADER_FOLDERS, KATAS, REQUIREMENTS):
        for top, dirs, files in os.walk(tree / folder):  # never into linked folders
            for name in files:  # __pycache__ too: a forged .pyc would be imported
                path = Path(top) / name
                found[path.relative_to(tree).as_posix()] = _read(path)
            for name in dirs:
                if (Path(top) / name).is_symlink():
                    found[(Path(top) / name).relative_to(tree).as_posix()] = b"<link>"
    return found


def _read(path: Path) -> bytes:
    if path.is_symlink():
        return b"<link>"
    try:
        return path.read_bytes()
    except OSError:
        return b"<unreadable>"


def changed(tree: Path, before: dict[str, bytes]) -> list[str]:
    """Files that differ from `before` (changed, added or missing), sorted."""
    now = snapshot(tree)
    return sorted(name for name in set(now) | set(before) if now.get(name) != before.get(name))


def restore(tree: Path, before: dict[str, bytes], names: list[str]) -> None:
    """Put `names` back as they were in `before` (and delete what was added)."""
    tree = Path(tree)
    for name in names:
        target = tree / name.rstrip("/")
        if target.is_symlink() or target.is_file():
            target.unlink()
        elif target.is_dir():
            shutil.rmtree(target)
        if name in before:
            _write(target, before[name])


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -I coach/grading/tree.py")
    sub = parser.add_subparsers(dest="action", required=True)
    make = sub.add_parser("build", help="write a fresh grading tree")
    make.add_argument("--source", required=True, help="the pristine sources (template)")
    make.add_argument("--katas", required=True, help="the learner's katas/ folder")
    make.add_argument("--out", required=True, help="the new tree (must not exist)")
    args = parser.parse_args(argv)
    hashes = build(Path(args.source), Path(args.katas), Path(args.out))
    count = sum(name.startswith(f"{KATAS}/") for name in hashes)
    print(f"Grading tree {args.out}: {len(hashes) - count} grader files, {count} kata files.")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
