"""One entry per dvc.yaml stage: `python -m movierec.stages.<stage> [variant]`.

Each entry reads the params blocks its stage declares, does its I/O around a pure core, and imports
nothing else, so dvc.yaml can list exactly the code a stage runs (tests/test_stage_deps.py checks it).
`movierec <stage>` runs the same entries for people.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
from pathlib import Path

from movierec.errors import MovierecError


def arguments(description: str, variant: bool = False, workers: bool = False) -> argparse.Namespace:
    """The stage's command line: `--params FILE`, a VARIANT if the stage takes one, `--workers` for train.
    Pins BLAS to one thread and oneDNN to AVX2 first: same bits on any core count and x86-64 CPU (environment.py)."""
    from movierec.environment import pin_kernels

    parser = argparse.ArgumentParser(prog=f"python -m movierec.stages.{Path(sys.argv[0]).stem}", description=description)
    parser.add_argument("--params", default="params.yaml", help="params file to read (default: params.yaml)")
    if variant:
        parser.add_argument("variant", help="a variant of params.yaml's `variants`")
    if workers:
        parser.add_argument("--workers", type=int, default=None, help="train on N local worker processes (multi_worker); default: train.workers")
    args = parser.parse_args()
    pin_kernels()
    return args


@contextlib.contextmanager
def one_line_errors():
    """An expected mistake prints one line and exits 1, with no traceback."""
    try:
        yield
    except MovierecError as exc:
        print(f"Error: {exc}", file=sys.stderr)
        sys.exit(1)
