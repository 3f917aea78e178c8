"""Data-parallel training: 1 worker against 2 workers on this machine, and what moves over the network.

    MOVIEREC_DATA_MIRROR=../shared/data python benchmarks/distributed.py [--variants collab mf_content]

Clones HEAD into a temporary folder, runs the stages before training there (latest-small from the
mirror), then trains each variant with `train.distribute: none` (one process, Keras' fit) and with
`movierec train VARIANT --workers 2` (two processes on 127.0.0.1, MultiWorkerMirroredStrategy, the
same global batch and seed), and prints for each: training samples/s (rows trained on / train_seconds,
graph tracing and mf_content's refit included), the ratio, and the test RMSE (goal: within 0.002).
On a 2-core machine the two workers compete for the same cores, so the ratio is what one machine
gives, not what a cluster would.

It also prints the gradient payload of one step, computed from the real models' variables: embedding
tables send only the rows of the batch (IndexedSlices: values + int32 indices) when the gradient stays
sparse (`fused_adam`, `lazy_adam`), the whole table when it is dense (Keras' `adam` adds the L2
penalty's dense gradient before the all-reduce); other weights are dense. Shown for this data and for
ml-32m-sized tables (200,948 users, 87,585 movies).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

from clones import ROOT, clone, own_code, require_mirror
ML_32M = (200_948, 87_585)


def gradient_bytes_per_step(model, batch_size: int) -> tuple[int, int]:
    """(sparse, dense) bytes of one step's gradients for the whole global batch."""
    sparse = dense = 0
    for v in model.trainable_variables:
        size = int(np.prod(v.shape)) * 4
        dense += size
        if "embedding" in v.path:  # a looked-up table: the batch's rows and their indices
            sparse += batch_size * (int(v.shape[1]) * 4 + 4)
        else:
            sparse += size
    return sparse, dense


def communication(params, variant_name: str, n_users: int, n_movies: int) -> tuple[int, int]:
    from movierec.quiet import import_tensorflow

    import_tensorflow()  # quietly, before anything imports Keras
    from movierec.examples import ModelInputs

    variant = params.variant(variant_name)
    content = np.zeros((n_movies, params.embed.dim), np.float32) if variant.module.uses_content(variant.settings) else None
    inputs = ModelInputs(n_users, n_movies, (params.data.min_rating, params.data.max_rating), content, 3.5)
    model = variant.module.build(variant.settings, params.shared(variant), inputs)
    return gradient_bytes_per_step(model, variant.train.batch_size)


def human(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.1f} {unit}" if unit != "B" else f"{int(n)} B"
        n /= 1024


def train(repo: Path, variant: str, workers: int) -> dict:
    extra = ["--workers", str(workers)] if workers > 1 else []
    for cmd in (["movierec", "train", variant, *extra], ["movierec", "rank", variant], ["movierec", "evaluate", variant]):
        done = subprocess.run(cmd, cwd=repo, capture_output=True, text=True, env=own_code(repo))
        if done.returncode:
            sys.exit(f"{' '.join(cmd)} failed:\n{done.stdout[-3000:]}{done.stderr[-3000:]}")
    timing = json.loads((repo / "metrics/timing" / f"{variant}.json").read_text())
    rmse = json.loads((repo / "metrics/eval" / f"{variant}.json").read_text())["rmse"]
    return {**timing, "rmse": rmse}


def rows_trained(params, variant: str, n_train: int, timing: dict) -> int:
    t = params.variant(variant).train
    if t.early_stopping_patience == 0:
        return timing["epochs_run"] * n_train
    fit_rows = n_train - int(np.ceil(t.validation_fraction * n_train))
    return timing["epochs_run"] * fit_rows + (timing["best_epoch"] * n_train if t.refit else 0)


def cap_epochs(path: Path, epochs: int) -> None:
    import yaml

    params = yaml.safe_load(path.read_text())
    params["train"]["epochs"] = epochs
    for variant in params["variants"].values():
        variant.get("train", {}).pop("epochs", None)
    path.write_text(yaml.safe_dump(params, sort_keys=False))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--variants", nargs="+", default=["collab", "mf_content"])
    ap.add_argument("--epochs", type=int, help="cap every variant's epochs (a quick check; figures then differ)")
    args = ap.parse_args()
    require_mirror()
    sys.path.insert(0, str(ROOT / "src"))
    from movierec.params.project import load_params

    with tempfile.TemporaryDirectory() as tmp:
        repo = Path(tmp) / "repo"
        clone(repo)
        if args.epochs:
            cap_epochs(repo / "params.yaml", args.epochs)
        subprocess.run(["dvc", "repro", "--quiet", "align"], cwd=repo, check=True, capture_output=True, env=own_code(repo))
        params = load_params(repo / "params.yaml")
        counts = json.loads((repo / "metrics/data.json").read_text())
        print(f"{'variant':12s} {'workers':>7s} {'samples/s':>10s} {'ratio':>6s} {'test RMSE':>9s} {'diff':>8s}  epochs (best)")
        for variant in args.variants:
            base = None
            for workers in (1, 2):
                result = train(repo, variant, workers)
                speed = rows_trained(params, variant, counts["n_train"], result) / result["train_seconds"]
                base = base or {**result, "speed": speed}
                print(f"{variant:12s} {workers:7d} {speed:10.0f} {speed / base['speed']:6.2f} {result['rmse']:9.4f} "
                      f"{result['rmse'] - base['rmse']:+8.4f}  {result['epochs_run']} ({result['best_epoch']})", flush=True)
        print("\ngradient payload of one step, whole global batch (per worker a ring all-reduce sends ~2(N-1)/N of it, an all-gather ~(N-1)/N).")
        print("sparse: tables send the batch's rows (IndexedSlices). dense: whole tables, what collab and hybrid send with Keras'")
        print("`adam` (its L2 weight penalty makes the table gradients dense); mf_content's L2 is per example, so it stays sparse.")
        for variant in args.variants:
            batch = params.variant(variant).train.batch_size
            for label, (users, movies) in (("this data", (counts["n_users"], counts["n_movies"])), ("ml-32m", ML_32M)):
                sparse, dense = communication(params, variant, users, movies)
                print(f"{variant:12s} batch {batch:4d} {label:10s} sparse {human(sparse):>9s}   dense {human(dense):>9s}")


if __name__ == "__main__":
    main()
