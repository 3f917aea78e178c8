"""What the benchmarks that reproduce a fresh clone of this checkout share: the clone, and the data mirror it reads."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MIRROR_ENV = "MOVIEREC_DATA_MIRROR"  # as movierec.data reads it


def require_mirror() -> None:
    """Exit unless the mirror is set, and make it absolute: the clones run in other folders, where a
    path like ../shared/data would name nothing."""
    if not os.environ.get(MIRROR_ENV):
        sys.exit(f"set {MIRROR_ENV} to a folder holding ml-latest-small.zip")
    os.environ[MIRROR_ENV] = str(Path(os.environ[MIRROR_ENV]).resolve())


def clone(target: Path, rev: str = "HEAD") -> Path:
    """A fresh clone of this checkout at `rev`: no DVC cache, no outputs."""
    subprocess.run(["git", "clone", "--quiet", str(ROOT), str(target)], check=True)
    subprocess.run(["git", "checkout", "--quiet", rev], cwd=target, check=True)
    return target


def own_code(repo: Path) -> dict:
    """The environment that runs a clone's own code, not the installed project's."""
    return {**os.environ, "PYTHONPATH": str(repo / "src")}
