"""The blend stage's core: a rating variant's predicted ratings, an item-neighbour model's and the Bayesian
factor model's, combined by least squares, with weights learned on the variant's validation carve.

The factor models the pipeline trains make much the same errors (a least-squares blend of all of them,
fitted on the test split itself, gains 0.002 RMSE on latest-small); an item-neighbour model looks at the
data pair by pair and errs differently, and the Bayesian factor model (`movierec.bayes_mf`) is the one
whose fit does not depend on a recipe chosen for other data (on a synthetic set it is well ahead of the
variant, on latest-small behind it: the weights follow whichever is better on the carve). The weights
come from the training rows the variant's carve model never saw (`carve_predictions`), with the other
two models fitted on the same carve rows; then those are refitted on every training row and the weights
applied to the test pairs. The test split is read only to measure the result
(benchmarks/results/tuning_latest_small.md has how it was found).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from movierec import bayes_mf, neighbours
from movierec.evaluate import rating_metrics
from movierec.params.baselines import BayesMFParams
from movierec.params.blend import NeighbourParams
from movierec.portable_linalg import spd_inverse
from movierec.prepare import Prepared
from movierec.scoring import clip_ratings

PARTNERS = ("item_knn", "bayes_mf")  # the models the blend fits itself, on the carve and on every training row
FEATURES = ("intercept", "variant", *PARTNERS)


@dataclass(frozen=True)
class Blended:
    weights: np.ndarray  # per FEATURES
    carve_rmse: dict[str, float]  # on the carve's held-out rows: the variant's, each partner's, the blend's
    partner_test: dict[str, np.ndarray]  # each partner's predictions of the test pairs (fitted on every training row)
    test: np.ndarray  # the blend's


def least_squares(features: np.ndarray, target: np.ndarray) -> np.ndarray:
    """argmin_w |features w - target|² (a vanishing ridge), from the normal equations: elementwise products, numpy's ordered
    sums and a portable inverse, so the same bits on any CPU (a few columns: nothing to gain from LAPACK)."""
    columns = [np.asarray(c, dtype=np.float64) for c in features.T]
    gram = np.array([[np.sum(a * b) for b in columns] for a in columns])
    gram[np.diag_indices(len(gram))] *= 1 + 1e-9  # a ridge too small to matter, so collinear columns still solve
    moments = np.array([np.sum(a * target) for a in columns])
    return np.sum(spd_inverse(gram) * moments[None, :], axis=1)


def fit(prepared: Prepared, carve_rows: np.ndarray, carve_predictions: np.ndarray, test_predictions: np.ndarray,
        p: NeighbourParams, factors: BayesMFParams, rating_range: tuple[float, float]) -> Blended:
    """The blend of a variant whose carve model predicted `carve_predictions` for the training rows
    `carve_rows`, and predicted `test_predictions` for the test pairs once refitted. Its carve RMSEs are
    of predictions clipped to `rating_range`, as the test split's are measured."""
    sizes = len(prepared.user_ids), len(prepared.movie_ids)
    partners = {
        "item_knn": lambda train, pairs: neighbours.predict(train, pairs.user, pairs.movie, *sizes, p),
        "bayes_mf": lambda train, pairs: bayes_mf.fit(train, *sizes, factors).predict_rows(pairs),
    }
    carve = prepared.carve(carve_rows)
    held_ratings = np.asarray(carve.test.rating, dtype=np.float64)
    columns = {"variant": np.asarray(carve_predictions, dtype=np.float64), **{n: f(carve.train, carve.test) for n, f in partners.items()}}
    features = np.column_stack([np.ones(len(held_ratings)), *columns.values()])
    weights = least_squares(features, held_ratings)
    columns["blend"] = np.sum(features * weights[None, :], axis=1)
    rmse = {name: rating_metrics(held_ratings, clip_ratings(column, rating_range))["rmse"] for name, column in columns.items()}
    partner_test = {n: f(prepared.train, prepared.test) for n, f in partners.items()}
    test_features = np.column_stack([np.ones(len(prepared.test)), np.asarray(test_predictions, dtype=np.float64), *partner_test.values()])
    return Blended(weights, rmse, partner_test, np.sum(test_features * weights[None, :], axis=1))
