"""What the ratings' days could add to the best rating model, measured on the validation carve only.

    python benchmarks/time_terms.py [--variant mf_content]   # after `dvc repro` (needs its carve model)

The variant's carve model (data/models/<variant>/carve.keras, fitted without the held-out training
rows) predicts the held rows, and three ways of adding time are scored there, never on the test split:

- blend: a least-squares blend of the model and `time_bias` (fitted on the carve's rows), its weights
  fitted on one half of the held rows and scored on the other, both ways (2-fold);
- time terms (`variants.<name>.time_terms`, as `dvc repro` fits them): `time_bias`'s time terms fitted
  on what the model leaves of the rows it trained on, added to its predictions; over a grid of their
  settings (GRID), to choose them.

It prints the held rows' RMSE of each, and the best settings of the grid.
"""

from __future__ import annotations

import argparse
import dataclasses
import itertools

import numpy as np

from movierec import fitted
from movierec.baselines import fit_time_bias_as
from movierec.params import baselines as baselines_params
from movierec.params import core
from movierec.paths import PREPARED_DIR
from movierec.prepare import load_prepared
from movierec.quiet import import_tensorflow
from movierec.scoring import keras_predictor
from movierec.time_bias import fit_residual_terms

GRID = {"bins": [7, 14, 30], "reg_drift": [5.0, 15.0, 50.0], "reg_session": [3.0, 9.0, 27.0], "reg_bin": [10.0, 25.0, 75.0]}


def rmse(predicted: np.ndarray, rating: np.ndarray) -> float:
    return float(np.sqrt(np.mean((np.clip(predicted, 0.0, 5.0) - rating) ** 2)))


def two_fold_blend(columns: list[np.ndarray], rating: np.ndarray, seed: int = 0) -> np.ndarray:
    """Each half's predictions from least-squares weights (with an intercept) fitted on the other half."""
    x = np.stack([np.ones_like(rating), *columns], axis=1).astype(np.float64)
    half = np.random.default_rng(seed).integers(0, 2, len(rating))
    out = np.empty(len(rating))
    for fold in (0, 1):
        weights = np.linalg.lstsq(x[half != fold], rating[half != fold], rcond=None)[0]
        out[half == fold] = x[half == fold] @ weights
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--variant", default="mf_content")
    args = parser.parse_args()
    import_tensorflow(threads=2)
    prepared, b = load_prepared(PREPARED_DIR), baselines_params.load(core.read(core.PARAMS_FILE))
    carve = fitted.load_carve(fitted.folder(args.variant))
    if carve is None:
        raise SystemExit(f"{args.variant}: no carve model (it needs early stopping); pick a variant with one")
    model, held_rows = carve
    split = prepared.carve(held_rows)
    sizes = len(prepared.user_ids), len(prepared.movie_ids)
    predict = keras_predictor(model)
    on_held = predict(split.test.user, split.test.movie)
    time_bias = fit_time_bias_as(b, split.train, *sizes)
    on_fit = predict(split.train.user, split.train.movie)
    held = split.test.rating
    scores = {}
    for values in itertools.product(*GRID.values()):
        settings = dataclasses.replace(b.time_bias, **dict(zip(GRID, values)))
        terms = fit_residual_terms(split.train, on_fit, *sizes, settings)
        scores[settings] = rmse(on_held + terms.predict_rows(split.test), held)
    best = min(scores, key=scores.get)
    print(f"{args.variant} carve model, {len(held):,} held-out training rows (validation RMSE):")
    print(f"  {args.variant:<32} {rmse(on_held, held):.4f}")
    print(f"  {'time_bias':<32} {rmse(time_bias.predict_rows(split.test), held):.4f}")
    print(f"  {'blend of the two (2-fold)':<32} {rmse(two_fold_blend([on_held, time_bias.predict_rows(split.test)], held), held):.4f}")
    print(f"  {'+ time terms, best of the grid':<32} {scores[best]:.4f}  ({len(scores)} settings; worst {max(scores.values()):.4f})")
    print(f"  best: {dataclasses.asdict(best)}")


if __name__ == "__main__":
    main()
