"""Speed users feel: whole `movierec` commands, each a fresh process as a user would run it.

    python benchmarks/cli_speed.py        (after `dvc repro`)

Prints, per command, the median wall time over 5 runs and whether the command imported TensorFlow
(none of these should: `recommend` and `similar` read data/predictions, which `train` writes).
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import time

COMMANDS = {
    "movierec --help": ["--help"],
    "movierec recommend --user 1": ["recommend", "--user", "1"],
    'movierec similar "toy story"': ["similar", "toy story"],
}
PROBE = "import sys; from movierec.cli import cli; cli.main(sys.argv[1:], standalone_mode=False); print('tensorflow' in sys.modules)"


def main() -> None:
    for label, args in COMMANDS.items():
        times = []
        for _ in range(5):
            start = time.perf_counter()
            subprocess.run(["movierec", *args], check=True, capture_output=True)
            times.append(time.perf_counter() - start)
        probe = subprocess.run([sys.executable, "-c", PROBE, *args], capture_output=True, text=True, check=True)
        imports_tf = probe.stdout.strip().splitlines()[-1]
        print(f"{label:32s} median {statistics.median(times):.2f} s over 5 runs; imports TensorFlow: {imports_tf}")


if __name__ == "__main__":
    main()
