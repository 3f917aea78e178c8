"""The blend stage's core: a rating variant's predicted ratings and the item-neighbour model's, combined by
least squares, with weights learned on the variant's validation carve.

The factor models the pipeline trains make much the same errors (a least-squares blend of all of them,
fitted on the test split itself, gains 0.002 RMSE on latest-small); an item-neighbour model looks at the
data pair by pair and errs differently. The weights come from the training rows the variant's carve
model never saw (`carve_predictions`), with the neighbour model fitted on the same carve rows; then the
neighbour model is refitted on every training row and the weights applied to the test pairs. The test
split is read only to measure the result (benchmarks/results/tuning_latest_small.md has how it was found).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from movierec import neighbours
from movierec.evaluate import rating_metrics
from movierec.params.blend import NeighbourParams
from movierec.portable_linalg import spd_inverse
from movierec.prepare import Prepared, Split
from movierec.scoring import clip_ratings

FEATURES = ("intercept", "variant", "item_knn")


@dataclass(frozen=True)
class Blended:
    weights: np.ndarray  # per FEATURES
    carve_rmse: dict[str, float]  # on the carve's held-out rows: the variant's, the neighbour model's, the blend's
    neighbour_test: np.ndarray  # the neighbour model's predictions of the test pairs (fitted on every training row)
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
        p: NeighbourParams, rating_range: tuple[float, float]) -> Blended:
    """The blend of a variant whose carve model predicted `carve_predictions` for the training rows
    `carve_rows`, and predicted `test_predictions` for the test pairs once refitted. Its carve RMSEs are
    of predictions clipped to `rating_range`, as the test split's are measured."""
    sizes = len(prepared.user_ids), len(prepared.movie_ids)
    carve = prepared.carve(carve_rows)
    held_ratings = np.asarray(carve.test.rating, dtype=np.float64)
    neighbour_carve = _neighbour(carve.train, carve.test, sizes, p)
    features = np.column_stack([np.ones(len(held_ratings)), np.asarray(carve_predictions, dtype=np.float64), neighbour_carve])
    weights = least_squares(features, held_ratings)
    columns = {"variant": features[:, 1], "item_knn": features[:, 2], "blend": np.sum(features * weights[None, :], axis=1)}
    rmse = {name: rating_metrics(held_ratings, clip_ratings(column, rating_range))["rmse"] for name, column in columns.items()}
    neighbour_test = _neighbour(prepared.train, prepared.test, sizes, p)
    test = weights[0] + weights[1] * np.asarray(test_predictions, dtype=np.float64) + weights[2] * neighbour_test
    return Blended(weights, rmse, neighbour_test, test)


def _neighbour(train: Split, pairs: Split, sizes: tuple[int, int], p: NeighbourParams) -> np.ndarray:
    return neighbours.predict(train, pairs.user, pairs.movie, *sizes, p)
