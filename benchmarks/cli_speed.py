"""Speed users feel: whole `movierec` commands, each a fresh process as a user would run it.

    python benchmarks/cli_speed.py [A B]   (after `dvc repro`; A and B default to HEAD~1 and HEAD)

Prints, per command, the median wall time over 5 runs, its ratio to the floor measured in the same run
(a bare `import numpy, pandas`: machines and hours differ by 2x here), and whether it imported TensorFlow
(none of these should: `recommend` and `similar` read data/predictions, which `train` and `baselines`
write; `-k 60`, beyond the stored lists, scores the user on demand from EASE's memory-mapped weights).
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import time

COMMANDS = {
    "movierec --help": ["--help"],
    "movierec recommend --user 1": ["recommend", "--user", "1"],
    "movierec recommend --user 1 -k 60": ["recommend", "--user", "1", "-k", "60"],
    'movierec similar "toy story"': ["similar", "toy story"],
}
PROBE = "import sys; from movierec.cli import cli; cli.main(sys.argv[1:], standalone_mode=False); print('tensorflow' in sys.modules)"


FLOOR = [sys.executable, "-c", "import numpy, pandas"]  # what any of these commands pays before its own work


def median_wall(argv: list[str]) -> float:
    times = []
    for _ in range(5):
        start = time.perf_counter()
        subprocess.run(argv, check=True, capture_output=True)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    floor = median_wall(FLOOR)
    label = 'python -c "import numpy, pandas"'
    print(f"{label:36s} median {floor:.2f} s over 5 runs: the floor (this machine's speed now)")
    for label, args in COMMANDS.items():
        wall = median_wall(["movierec", *args])
        probe = subprocess.run([sys.executable, "-c", PROBE, *args], capture_output=True, text=True, check=True)
        imports_tf = probe.stdout.strip().splitlines()[-1]
        print(f"{label:36s} median {wall:.2f} s over 5 runs, {wall / floor:.1f}x the floor; imports TensorFlow: {imports_tf}")
    a, b = sys.argv[1:3] if len(sys.argv) >= 3 else ("HEAD~1", "HEAD")
    diff = median_wall(["dvc", "metrics", "diff", a, b])
    compare = median_wall(["movierec", "compare", a, b])
    print(f"{'dvc metrics diff ' + a + ' ' + b:36s} median {diff:.2f} s over 5 runs")
    print(f"{'movierec compare ' + a + ' ' + b:36s} median {compare:.2f} s over 5 runs, {compare / diff:.2f}x dvc metrics diff (goal: at most 3x)")


if __name__ == "__main__":
    main()
