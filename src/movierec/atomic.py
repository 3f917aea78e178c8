"""Write outputs to a temporary sibling path, then rename: a killed stage never leaves a complete-looking file."""

from __future__ import annotations

import contextlib
import glob
import json
import os
import shutil
import tempfile
from pathlib import Path


@contextlib.contextmanager
def atomic_path(target: str | Path, *, directory: bool = False):
    """Yield a temporary path next to `target` (an empty folder if `directory`); on success it replaces `target`."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    for stale in target.parent.glob(f".{glob.escape(target.name)}.*.tmp"):  # left by a killed run
        shutil.rmtree(stale, ignore_errors=True)
    suffix = "" if directory else target.suffix  # keep the suffix: Keras and NumPy pick formats by it
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent))
    work = tmp if directory else tmp / f"out{suffix}"
    try:
        yield work
        if target.is_dir() and not target.is_symlink():
            shutil.rmtree(target)
        os.replace(work, target)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def write_json(path: str | Path, data) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n", encoding="utf-8")


def write_text(path: str | Path, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
