"""Non-neural baselines, scored by the same metrics as the Keras variants so their numbers mean something.

Three are `mu + user_bias[u] + item_bias[m]` with different fits: the global mean (no biases), the
regularised user + item bias model (what a neural recommender must beat to have learned any taste),
and most-popular (item "bias" = training-rating count; for ranking only, its predictions are not ratings).
The fourth, `time_bias`, adds what the day of a rating says (a user's drift, the day's session, a
movie's time bin): next to `bias`, what the timestamps the notebook dropped are worth. The fifth, EASE,
is a closed-form item-item ranker: what a model trained for the list must beat. The sixth, `bayes_mf`,
is matrix factorisation fitted by variational Bayes (`movierec.bayes_mf`): what a factor model with
nothing to tune reaches on the data at hand.
Their rankings go through the same chunked scoring as the neural variants (`scoring.top_k_of_users`).
EASE is also stored as the rank stage stores a variant (`save_ease`): `recommend` serves it where its lists rank best.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from movierec import bayes_mf, per_user, predictions
from movierec.atomic import atomic_path
from movierec.biases import fit_biases, fit_global_mean, fit_most_popular
from movierec.evaluate import evaluate_ratings
from movierec.params.baselines import BaselineParams
from movierec.params.core import BASELINES
from movierec.params.evaluate import EvaluateParams
from movierec.portable_linalg import MATMUL_BLOCK_BYTES, spd_inverse
from movierec.prepare import Prepared, Split
from movierec.ranking import measure_lists, ranking_curve
from movierec.scoring import Catalogue, RatedIndex, ranking_users, top_k_of_users, user_histories
from movierec.time_bias import TimeBias, fit_time_biases


EASE_WEIGHTS = Path("data/models/ease.npy")


def fit_time_bias_as(b: BaselineParams, train: Split, n_users: int, n_movies: int) -> TimeBias:
    """`time_bias` as params.yaml's `baselines` says: `bias`'s user and item terms plus `time_bias`'s."""
    return fit_time_biases(train, n_users, n_movies, b.time_bias, reg_user=b.bias_reg_user, reg_item=b.bias_reg_item)


@dataclass(frozen=True)
class ServedEase:
    """EASE as `recommend` serves it, like a variant: each ranked user's top list (as evaluated) and the model."""

    model: Ease
    users: np.ndarray
    top_movies: np.ndarray
    top_scores: np.ndarray


def evaluate_baselines(
    prepared: Prepared, b: BaselineParams, e: EvaluateParams, rating_range: tuple[float, float]
) -> tuple[dict[str, tuple[dict, dict | None, dict | None]], ServedEase]:
    """{name: (metrics, scatter sample, ranking curve, per-user table)} for the BASELINES, measured like the variants,
    and EASE with its lists for serving.

    The global mean ranks nothing (one big tie); most-popular's and EASE's scores are not ratings.
    """
    train, test = prepared.train, prepared.test
    n_users, n_movies = sizes = (len(prepared.user_ids), len(prepared.movie_ids))
    bias = fit_biases(train, *sizes, reg_user=b.bias_reg_user, reg_item=b.bias_reg_item, n_iters=b.bias_iters)
    ease = fit_ease(
        train, *sizes, reg=b.ease_reg, max_movies=b.ease_max_movies,
        positive_threshold=b.ease_positive_threshold, score_low_weight=b.ease_score_low_weight,
    )
    timed = fit_time_bias_as(b, train, *sizes)
    bayes = bayes_mf.fit(train, *sizes, b.bayes_mf)
    # name: (model, is a rating predictor, is a ranking, parameter count)
    models = {
        "global_mean": (fit_global_mean(train, *sizes), True, False, 1),
        "bias": (bias, True, True, 1 + n_users + n_movies),
        "time_bias": (timed, True, False, 1 + n_users + n_movies + timed.time_params),
        "bayes_mf": (bayes, True, True, bayes.n_params),
        "most_popular": (fit_most_popular(train, *sizes), False, True, n_movies),
        "ease": (ease, False, True, ease.n_params),
    }
    users, n_eligible = ranking_users(test.user, test.rating, e.relevance_threshold, e.max_users, e.seed)
    rated = RatedIndex.from_pairs(train.user, train.movie, n_users)
    rated_users = per_user.rating_users(test.user, e.max_users, e.seed)
    out, served = {}, None
    for name, (model, ratings, ranking, n_params) in models.items():
        metrics, sample, errors, curve, ranked = {}, None, None, None, None
        if ratings:
            metrics, sample, errors = evaluate_ratings(model.predict_rows(test), prepared, rating_range, rated_users)
        if ranking:
            lists, scores = top_k_of_users(model.score_users, users, n_movies, rated, max(e.k, e.top_n), what=f"{name}: users scored")
            measured = dict(test=test, relevance_threshold=e.relevance_threshold, n_movies=n_movies)
            list_metrics, ranked = measure_lists(lists, users, n_eligible, k=e.k, **measured)
            metrics.update(list_metrics)
            curve = ranking_curve(lists, users, **measured)
            if model is ease:
                served = ServedEase(ease, users, lists, scores)
        out[name] = ({**metrics, "n_params": n_params}, sample, curve, per_user.table(prepared.user_ids, errors, ranked))
    return {name: out[name] for name in BASELINES}, served


def save_ease(served: ServedEase, predictions_path: Path, weights_path: Path) -> None:
    """Write EASE like a variant, for `recommend`: its lists in the predictions file (`movierec.predictions`,
    with its catalogue where `ease_max_movies` capped it), and its weights as .npy, which `recommend`
    memory-maps to score a user on demand (reading only the rows of the movies they rated)."""
    model = served.model
    with atomic_path(weights_path) as tmp, open(tmp, "wb") as f:
        np.save(f, model.weights)
    predictions.write(predictions_path, {
        "top_users": served.users.astype(np.int32), "top_movies": served.top_movies, "top_scores": served.top_scores,
        **model.catalogue.stored(), "n_params": np.int64(model.n_params),
        "history_weighting": np.array(model.history_weighting, dtype=np.float32),
    })


@dataclass(frozen=True)
class Ease:
    """EASE (Steck 2019): an item-item linear model of who-rated-what, scores = H · B, a ranking only.

    B (zero diagonal, so a movie never recommends itself) is fitted on the binary who-rated-what
    matrix over its `catalogue`: every movie, or the `ease_max_movies` most-rated, which bounds the
    dense solve at any data size; it ranks the others last. H, the users' histories it scores
    (sparse, users × catalogue), may weigh low ratings down, as the `dae` does: a low rating is weaker
    evidence of taste. `score_users` works on a chunk of users.
    """

    history: "scipy.sparse.csr_matrix"  # noqa: F821
    weights: np.ndarray  # float32, catalogue × catalogue; memory-mapped when `recommend` loads it
    catalogue: Catalogue
    history_weighting: tuple[float, float] = (0.0, 1.0)  # H's (positive_threshold, score_low_weight)

    @property
    def n_params(self) -> int:
        return len(self.weights) * (len(self.weights) - 1)

    def score_users(self, users: np.ndarray) -> np.ndarray:
        """(len(users), n_movies) float32; NaN (ranked last) outside the catalogue."""
        return self.catalogue.scatter(self.history[np.asarray(users)] @ self.weights)


EASE_BLOCK = 256  # movies per block of the Gram product (its sparse temporaries), the mirroring and the division


def ease_bytes(n_movies: int) -> int:
    """Peak memory of the fit over `n_movies`: the float64 Gram matrix, its Cholesky factor and that
    factor's inverse, the halving steps' temporaries (about three more matrices' worth, measured), and
    the portable products' blocks; then the float32 weights."""
    return n_movies * n_movies * 8 * 6 + 2 * MATMUL_BLOCK_BYTES


def fit_ease(
    train: Split,
    n_users: int,
    n_movies: int,
    *,
    reg: float,
    max_movies: int = 0,
    positive_threshold: float = 0.0,
    score_low_weight: float = 1.0,
) -> Ease:
    """Closed form: P = (XᵀX + reg·I)⁻¹, B = I − P · diag(1/diag(P)), via one Cholesky factorisation
    (portable_linalg: the same bits on any CPU).

    X is binary (a repeated pair counts once), over every movie (`max_movies` 0) or the `max_movies`
    most-rated in `train`. The history it scores (`user_histories`) weighs a movie 1 if its rating is
    at least `positive_threshold` and `score_low_weight` otherwise (the defaults: binary, Steck's original).

    One dense solve over the catalogue (n³ flops, six times over in slices): 2,000 movies take seconds.
    Memory is `ease_bytes` of the catalogue.
    """
    if reg <= 0:
        raise ValueError(f"reg must be > 0; got {reg}")
    catalogue = Catalogue.most_rated_in(train, n_movies, max_movies)
    scored = user_histories(train, n_users, catalogue, positive_threshold, score_low_weight)
    history = scored.copy()
    history.data[:] = 1.0  # who rated what: B is fitted on this
    n = len(catalogue.movies)
    blocks = [slice(start, min(start + EASE_BLOCK, n)) for start in range(0, n, EASE_BLOCK)]
    gram = np.empty((n, n), dtype=np.float64)
    by_movie = history.tocsc()
    for block in blocks:  # co-rating counts: whole numbers, exact in float32
        gram[:, block] = (history.T @ by_movie[:, block]).toarray()
    gram[np.diag_indices(n)] += reg
    try:
        inverse = spd_inverse(gram)  # portable: the same bits on any CPU, unlike LAPACK's
    except np.linalg.LinAlgError:
        raise ValueError("EASE: the regularised Gram matrix is not positive definite; raise reg") from None
    del gram
    diagonal = np.diag(inverse).copy()
    weights = np.empty((n, n), dtype=np.float32)
    for block in blocks:
        inverse[:, block] /= -diagonal[None, block]  # in place: no whole-matrix temporary
        weights[:, block] = inverse[:, block]
    weights[np.diag_indices(n)] = 0.0
    return Ease(scored, weights, catalogue, (positive_threshold, score_low_weight))
