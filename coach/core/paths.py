"""Paths as the learner knows them (standard library only, safe to import anywhere)."""

from __future__ import annotations

import os
from pathlib import Path


def display_path(path: Path) -> str:
    """Relative to where the learner stands when the file is below it; absolute otherwise."""
    try:
        relative = os.path.relpath(path)
    except ValueError:  # another drive on Windows
        return str(path)
    return str(path) if relative.startswith("..") else relative


class ImplFolderMissing(LookupError):
    """--impl (or $KATAS_IMPL) names a folder that does not exist."""


def resolve_impl_path(chosen: str | None, rootpath: Path) -> Path:
    """The implementation folder: --impl, else $KATAS_IMPL, else katas/ (cwd, then root)."""
    chosen = chosen or os.environ.get("KATAS_IMPL") or "katas"
    candidates = [Path(chosen)]
    if not Path(chosen).is_absolute():
        candidates.append(Path(rootpath) / chosen)
    for candidate in candidates:
        if candidate.is_dir():
            return candidate.resolve()
    raise ImplFolderMissing(
        f"--impl {chosen}: no such folder (looked in {Path.cwd()} and {rootpath})."
    )
