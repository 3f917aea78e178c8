"""blend: `blend.variant`'s predicted ratings combined with an item-neighbour model's (`movierec.neighbours`)
and the Bayesian factor model's (`movierec.bayes_mf`, with `baselines.bayes_mf`), by least squares on the
variant's validation carve; the neighbour model (`item_knn`) and the blend are evaluated on the test split
like the variants (metrics/eval/<name>.json); the baselines stage evaluates `bayes_mf`."""

from __future__ import annotations

import numpy as np

from movierec import bayes_mf, blend, per_user, predictions
from movierec.errors import MovierecError
from movierec.evaluate import evaluate_ratings, write_evaluation
from movierec.params import baselines as baselines_params
from movierec.params import blend as blend_params
from movierec.params import core
from movierec.params import data as data_params
from movierec.params import evaluate as evaluate_params
from movierec.paths import PREPARED_DIR
from movierec.prepare import load_prepared
from movierec.scoring import Catalogue
from movierec.stages import arguments, one_line_errors


def main(args) -> None:
    raw = core.read(args.params)
    b, e = blend_params.load(raw, args.params), evaluate_params.load(raw, args.params)
    rating_range = data_params.load(raw, args.params).rating_range
    source = predictions.path(b.variant)
    stored = predictions.read(source, "n_params", optional=("test_predictions", "carve_rows", "carve_predictions"))
    if "carve_predictions" not in stored:
        raise MovierecError(
            f"{source}: no predictions of a validation carve to learn the blend's weights on; set blend.variant to a "
            "rating variant that stops early (train.early_stopping_patience > 0), such as mf_content"
        )
    prepared = load_prepared(PREPARED_DIR)
    factors = baselines_params.load(raw, args.params).bayes_mf
    result = blend.fit(prepared, stored["carve_rows"], stored["carve_predictions"], stored["test_predictions"], b.neighbours, factors, rating_range)
    n_users, n_movies = len(prepared.user_ids), len(prepared.movie_ids)
    catalogue = len(Catalogue.most_rated_in(prepared.train, n_movies, b.neighbours.max_movies).movies)
    neighbour_params = 1 + n_users + n_movies + catalogue * (catalogue - 1) // 2  # baseline, and a similarity per movie pair
    named = lambda feature: b.variant if feature == "variant" else feature  # noqa: E731
    weights = dict(zip(map(named, blend.FEATURES), np.round(result.weights, 6).tolist()))
    carve_rmse = {named(k): round(v, 6) for k, v in result.carve_rmse.items()}
    rated = per_user.rating_users(prepared.test.user, e.max_users, e.seed)
    blend_params_count = int(stored["n_params"]) + neighbour_params + bayes_mf.parameter_count(n_users, n_movies, factors.rank) + len(result.weights)
    for name, predicted, extra in (
        ("item_knn", result.partner_test["item_knn"], {"n_params": neighbour_params}),
        ("blend", result.test, {"n_params": blend_params_count, "weights": weights, "carve_rmse": carve_rmse}),
    ):
        metrics, sample, errors = evaluate_ratings(predicted, prepared, rating_range, rated)
        write_evaluation(name, {**metrics, **extra}, sample, None, per_user.table(prepared.user_ids, errors, None))


if __name__ == "__main__":
    with one_line_errors():
        main(arguments(__doc__))
