#!/usr/bin/env bash
# Reproduce the current commit from scratch and compare its metrics with the committed ones.
#
#   MOVIEREC_DATA_MIRROR=../shared/data scripts/check_reproducible.sh [TOLERANCE]
#
# Clones HEAD into a temporary folder, runs `dvc repro` there (data from the mirror, or the network),
# then `dvc metrics diff HEAD` and exits non-zero if any metric moved by more than TOLERANCE (default 1e-4).
set -euo pipefail
tolerance="${1:-1e-4}"
repo="$(git rev-parse --show-toplevel)"
if [ -n "${MOVIEREC_DATA_MIRROR:-}" ]; then  # the clone runs elsewhere: a relative mirror must not move with it
  MOVIEREC_DATA_MIRROR="$(cd "$MOVIEREC_DATA_MIRROR" && pwd)"
  export MOVIEREC_DATA_MIRROR
fi
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
git clone --quiet "$repo" "$work/repo"
cd "$work/repo"
export PYTHONPATH="$work/repo/src"  # the clone's own code, not the installed project's (which may hold uncommitted edits)
echo "Reproducing $(git rev-parse --short HEAD) in $work/repo" >&2
dvc repro --quiet
movierec check-drift --tolerance "$tolerance"
