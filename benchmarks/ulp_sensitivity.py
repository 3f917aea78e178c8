"""How far a one-ulp change of input moves each variant's test metrics: what a drift means.

    python benchmarks/ulp_sensitivity.py [--variants collab hybrid mf_content]   # default: every rating model

Each variant of params.yaml is trained as `dvc repro` trains it (data/prepared and data/features
must exist: run `dvc repro align` first), then again with one input changed by one unit in the last
place, the size of a rounding difference between two BLAS builds or thread counts:
- one training rating (the first row) moved to the next float32 up;
- the learning rate moved to the next float32 up: every update then rounds a little differently,
  as it does with another kernel or summation order;
- every content vector component moved to the next float32 up (variants that read them).
It prints each run's test RMSE and MAE, and the change against the unperturbed run. A drift of this
size between two machines is rounding amplified by training, not a bug.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import dataclasses
import os
import tempfile
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--variants", nargs="*", default=None)
    args = parser.parse_args()

    from movierec.environment import pin_kernels

    pin_kernels()
    from movierec.params.project import load_params
    from movierec.quiet import import_tensorflow

    params = load_params()
    import_tensorflow(threads=params.train.threads)  # before anything imports Keras
    from movierec.evaluate import rating_metrics
    from movierec.prepare import Split, load_prepared
    from movierec.scoring import keras_predictor
    from movierec.training import regime

    prepared = load_prepared(Path("data/prepared"))
    content = np.load("data/features/content.npy")
    names = args.variants or [n for n in params.variants if params.variant(n).module.PREDICTS_RATINGS]  # RMSE needs ratings

    def test_metrics(name: str, prepared, content, nudge_lr: bool = False) -> dict[str, float]:
        variant = params.variant(name)
        t = variant.train
        if nudge_lr:
            t = dataclasses.replace(t, learning_rate=float(np.nextafter(np.float32(t.learning_rate), np.float32(np.inf))))

        vectors = content if variant.module.uses_content(variant.settings) else None
        with tempfile.TemporaryDirectory() as live, contextlib.redirect_stdout(io.StringIO()):
            model = regime.fit(variant.module, variant.settings, params.shared(variant), t, prepared, vectors,
                               (params.data.min_rating, params.data.max_rating), Path(live) / "live").model
        predicted = keras_predictor(model)(prepared.test.user, prepared.test.movie)
        return rating_metrics(np.clip(predicted, params.data.min_rating, params.data.max_rating), prepared.test.rating)

    ratings = prepared.train.rating.astype(np.float32).copy()
    ratings[0] = np.nextafter(ratings[0], np.float32(np.inf))
    one_rating = dataclasses.replace(prepared, train=Split(prepared.train.user, prepared.train.movie, ratings))
    one_ulp_content = np.nextafter(content, np.float32(np.inf)).astype(content.dtype)

    print(f"{'variant':12} {'input':24} {'test RMSE':>10} {'MAE':>8} {'ΔRMSE':>10} {'ΔMAE':>10}")
    for name in names:
        runs = {
            "as committed": (prepared, content, False),
            "one rating +1 ulp": (one_rating, content, False),
            "learning rate +1 ulp": (prepared, content, True),
        }
        if params.variant(name).module.uses_content(params.variant(name).settings):
            runs["content +1 ulp"] = (prepared, one_ulp_content, False)
        base = None
        for label, (data, vectors, nudge_lr) in runs.items():
            m = test_metrics(name, data, vectors, nudge_lr)
            base = base or m
            print(f"{name:12} {label:24} {m['rmse']:10.6f} {m['mae']:8.6f} {m['rmse'] - base['rmse']:+10.6f} {m['mae'] - base['mae']:+10.6f}", flush=True)


if __name__ == "__main__":
    main()
