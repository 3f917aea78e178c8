"""How `variants.<name>.popularity_prior` was chosen for a rating model: on validation, never on test.

    python benchmarks/popularity_prior.py [--variant mf_content]

A rating model ranks by predicted rating + w x log(1 + the movie's training ratings). This trains the
variant as `dvc repro` would (data/prepared and data/features must exist: run `dvc repro align`
first), but on 90% of the training rows, and ranks the other 10% (a seeded carve, every movie the
user has not rated in the 90% ranked, relevant = rating >= evaluate.relevance_threshold) for each w
of a grid. w = 1000 is most-popular with the predicted rating as tie-break. The test split is not read.
Results: benchmarks/results/popularity_prior.txt.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import tempfile
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402

from movierec import models  # noqa: E402
from movierec.params import load_params  # noqa: E402
from movierec.prepare import Prepared, load_prepared  # noqa: E402
from movierec.quiet import import_tensorflow  # noqa: E402
from movierec.ranking import measure_lists  # noqa: E402
from movierec.scoring import evaluation_lists, pair_scorer, popularity_prior, with_prior  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
GRID = (0.0, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 5.0, 1000.0)
CARVE_SEED = 0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--variant", default="mf_content")
    args = ap.parse_args()
    os.chdir(ROOT)
    params = load_params()
    variant = params.variant(args.variant)
    import_tensorflow(threads=variant.train.threads)
    from movierec.train import carve_validation, fit, keras_predictor

    prepared = load_prepared(Path("data/prepared"))
    fit_rows, val = carve_validation(prepared.train, params.train.validation_fraction, CARVE_SEED)
    carved = Prepared(prepared.user_ids, prepared.movie_ids, fit_rows, val)
    n_users, n_movies = len(prepared.user_ids), len(prepared.movie_ids)
    content = np.load("data/features/content.npy") if models.uses_content(variant) else None

    def build(global_mean: float):
        return models.build(variant, params.model, n_users=n_users, n_movies=n_movies,
                            rating_range=(params.data.min_rating, params.data.max_rating), content=content, global_mean=global_mean)

    model, summary = fit(build, carved, variant.train, Path(tempfile.mkdtemp()))
    score = pair_scorer(keras_predictor(model), n_movies)
    counts = np.bincount(fit_rows.movie, minlength=n_movies)
    e = params.evaluate
    lines = [f"{args.variant} trained on {len(fit_rows)} of the training rows ({summary['epochs_run']} epochs, best {summary['best_epoch']}); "
             f"ranked on the other {len(val)} (carve seed {CARVE_SEED}), every unrated movie, relevant = rating >= {e.relevance_threshold}",
             "", f"{'w':>7}  NDCG@{e.k}  P@{e.k}    R@{e.k}    HR@{e.k}"]
    for w in GRID:
        ranked = with_prior(score, popularity_prior(counts, w).astype(np.float32))
        users, lists, _ = evaluation_lists(ranked, fit_rows, val, n_users, n_movies, n=e.k,
                                           relevance_threshold=e.relevance_threshold, max_users=e.max_users, seed=e.seed)
        m = measure_lists(lists, users, len(users), val, k=e.k, relevance_threshold=e.relevance_threshold, n_movies=n_movies)
        lines.append(f"{w:>7g}  {m[f'ndcg_at_{e.k}']:.4f}   {m[f'precision_at_{e.k}']:.4f}  {m[f'recall_at_{e.k}']:.4f}  {m[f'hit_rate_at_{e.k}']:.4f}")
    text = "\n".join(lines) + "\n"
    print(text, end="")
    (ROOT / "benchmarks" / "results" / "popularity_prior.txt").write_text(text)


if __name__ == "__main__":
    main()
