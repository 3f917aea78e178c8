"""train: fit one variant from its recipe (data/recipes/<variant>.json) into data/models/<variant>/.

It reads no params.yaml key: the recipe stage resolved them. With train.distribute=multi_worker and no
TF_CONFIG, it launches train.workers local worker processes, of which only the chief writes.
"""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path

import numpy as np

from movierec import distribute, fitted, recipes
from movierec.atomic import write_json
from movierec.environment import environment_record
from movierec.errors import MovierecError
from movierec.params.train import TrainParams
from movierec.paths import CONTENT_MATRIX, METRICS_DIR, PREPARED_DIR, recipe
from movierec.prepare import load_prepared
from movierec.quiet import import_tensorflow
from movierec.stages import arguments, one_line_errors
from movierec.training import regime


def with_workers(module, t: TrainParams, workers: int) -> TrainParams:
    """`--workers N`: N local multi_worker processes (1: one process, as train.distribute says otherwise)."""
    single = "none" if t.distribute == "multi_worker" else t.distribute
    t = dataclasses.replace(t, distribute="multi_worker" if workers > 1 else single, workers=workers)
    if t.distribute != "none" and not module.DISTRIBUTABLE:
        raise MovierecError("train --workers: this variant's architecture trains in one process only; drop --workers")
    if t.distribute == "multi_worker" and t.tensorboard:
        raise MovierecError("train --workers: train.tensorboard is not supported with multi_worker; set it off")
    return t


def main(args) -> None:
    r = recipes.read(recipe(args.variant))
    module, settings, t = r.architecture, r.settings, r.train
    if args.workers is not None:
        if args.workers < 1:
            raise MovierecError(f"--workers {args.workers}: give 1 or more")
        t = with_workers(module, t, args.workers)
    if distribute.should_launch(t.distribute, t.workers):
        argv = [sys.executable, "-m", "movierec.stages.train", "--params", args.params, args.variant]
        if args.workers is not None:
            argv += ["--workers", str(args.workers)]
        distribute.launch(argv, t.workers)
        return
    distribute.make_strategy(t.distribute, t.threads)  # first: a strategy must start TF's runtime itself
    import_tensorflow(threads=t.threads)
    content = np.load(CONTENT_MATRIX, allow_pickle=False) if module.uses_content(settings) else None
    tensorboard_dir = Path("logs") / args.variant if t.tensorboard else None
    fit = regime.fit(
        module, settings, r.shared, t, load_prepared(PREPARED_DIR), content, r.rating_range,
        live_dir=METRICS_DIR / "train" / args.variant, tensorboard_dir=tensorboard_dir, time_terms=r.time_terms,
    )
    if not distribute.is_chief(t.distribute):
        return  # every worker holds the same model; the chief writes it and everything else
    fitted.save(fitted.folder(args.variant), fit.model, fit.carve_model, fit.held_rows, fit.time_terms)
    # git-tracked, kept out of the metrics since neither is a result; read by `movierec check-drift`
    write_json(METRICS_DIR / "timing" / f"{args.variant}.json", fit.summary)
    write_json(METRICS_DIR / "environment" / f"{args.variant}.json", environment_record(tf_threads=t.threads))


if __name__ == "__main__":
    with one_line_errors():
        main(arguments(__doc__, variant=True, workers=True))
