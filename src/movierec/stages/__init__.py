"""One entry per dvc.yaml stage: `python -m movierec.stages.<stage> [variant]`.

Each entry reads the params blocks its stage declares, does its I/O around a pure core, and imports
nothing else, so dvc.yaml can list exactly the code a stage runs (tests/test_stage_deps.py checks it).
`movierec <stage>` runs the same entries for people.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from movierec.errors import MovierecError


def command(main, description: str, variant: bool = False, extra=None) -> None:
    """Parse the command line (`--params FILE`, a VARIANT if the stage takes one) and run `main(args)`:
    an expected mistake prints one line and exits 1, with no traceback."""
    from movierec.environment import pin_threads

    parser = argparse.ArgumentParser(prog=f"python -m movierec.stages.{Path(sys.argv[0]).stem}", description=description)
    parser.add_argument("--params", default="params.yaml", help="params file to read (default: params.yaml)")
    if variant:
        parser.add_argument("variant", help="a variant of params.yaml's `variants`")
    if extra is not None:
        extra(parser)
    args = parser.parse_args()
    pin_threads()  # same bits on any number of cores: see environment.py
    try:
        main(args)
    except MovierecError as exc:
        print(f"Error: {exc}", file=sys.stderr)
        sys.exit(1)
