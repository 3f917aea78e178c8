"""Would averaging fits of several seeds lower a rating variant's RMSE? Measured on the validation carve only.

    python benchmarks/seed_ensemble.py [--variant mf_content] [--seeds 42 1 2 3 4 5]   # after `dvc repro`

The carve is the one `dvc repro` uses (the variant's `validation_fraction` and `seed`): each seed fits
the variant's recipe on the carve's rows for the best epoch count early stopping found there
(metrics/timing/<variant>.json), with its time terms, and predicts the held-out rows. It prints each
fit's RMSE there (clipped to the scale, as evaluate does) and that of the mean of the fits so far. The
test split is never read. A fit costs what one `train@<variant>` fit costs, so k seeds cost k fits.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import tempfile
from pathlib import Path

import numpy as np

from movierec import recipes
from movierec.environment import pin_kernels
from movierec.paths import CONTENT_MATRIX, METRICS_DIR, PREPARED_DIR, recipe
from movierec.prepare import load_prepared
from movierec.quiet import import_tensorflow
from movierec.scoring import clip_ratings
from movierec.training import regime


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--variant", default="mf_content")
    ap.add_argument("--seeds", type=int, nargs="+", default=[42, 1, 2, 3, 4, 5])
    args = ap.parse_args()
    pin_kernels()
    r = recipes.read(recipe(args.variant))
    if not r.architecture.PREDICTS_RATINGS or r.train.early_stopping_patience == 0:
        raise SystemExit(f"{args.variant}: needs a rating variant trained with early stopping (its carve and best epoch)")
    import_tensorflow(threads=r.train.threads)
    prepared = load_prepared(PREPARED_DIR)
    content = np.load(CONTENT_MATRIX, allow_pickle=False) if r.architecture.uses_content(r.settings) else None
    _, held_rows = regime.carve_rows(len(prepared.train), r.train.validation_fraction, r.train.seed)
    carve = prepared.carve(held_rows)
    epochs = json.loads((METRICS_DIR / "timing" / f"{args.variant}.json").read_text())["best_epoch"]
    print(f"{args.variant}: {len(carve.train)} carve rows, {len(carve.test)} held out, {epochs} epochs per fit")
    rmse = lambda p: float(np.sqrt(np.mean((p - carve.test.rating) ** 2)))  # noqa: E731
    fits = []
    for seed in args.seeds:
        t = dataclasses.replace(r.train, early_stopping_patience=0, epochs=epochs, seed=seed, refit=False)
        with tempfile.TemporaryDirectory() as tmp:  # the curves of a fit nobody keeps
            fit = regime.fit(r.architecture, r.settings, r.shared, t, carve, content, r.rating_range,
                             live_dir=Path(tmp) / "live", time_terms=r.time_terms)
        predicted = np.asarray(r.architecture.predictor(fit.model)(carve.test.user, carve.test.movie), dtype=np.float64)
        if fit.time_terms is not None:
            predicted = predicted + fit.time_terms.predict_rows(carve.test)
        fits.append(clip_ratings(predicted, r.rating_range))
        print(f"seed {seed:>3}: its fit {rmse(fits[-1]):.4f}; mean of the {len(fits)} fits so far {rmse(np.mean(fits, axis=0)):.4f}", flush=True)


if __name__ == "__main__":
    main()
