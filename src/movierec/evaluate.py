"""Test-split metrics for a trained model: the only place that reads the test ratings' values."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from movierec.errors import MovierecError
from movierec.params import EvaluateParams
from movierec.prepare import Prepared
from movierec.ranking import measure_lists, ranking_curve
from movierec.scoring import clip_ratings, ranking_users

FACTOR_KEYS = ("offset", "user_bias", "movie_bias", "user_factors")  # matrix factorisation models only
ON_DEMAND_KEYS = ("history_weighting", "catalogue", "ranking_prior")  # how to rank one user on demand as train ranked them


def load_predictions(path: Path, *keys: str, optional: tuple[str, ...] = ()) -> dict[str, np.ndarray]:
    """The `keys` (default: all there are) of a train stage's predictions file, read without TensorFlow.

    Only the arrays asked for are read (plus those of `optional` the file has). The file, written by
    `train.export_predictions` (and for EASE by `baselines.save_ease`, with the lists, `n_params` and
    `history_weighting` only), is small: users x top_n at most, never users x movies. It holds:
    - `test_predictions` (n_test,) float32: the model's raw prediction for each test pair, in
      data/prepared/test.npz order (clipped to the rating scale where used); rating models only;
    - `top_users` (n,) int32: the encoded users `scoring.ranking_users` picks for ranking, sorted;
    - `top_movies` (n, evaluate.top_n) int32: their best movies not rated in train, best first, PAD = -1;
    - `top_scores` (n, evaluate.top_n) float32: the raw scores of those movies (NaN at PAD): a rating
      model's predicted ratings, a ranker's relevance scores;
    - `movie_vectors` (n_movies, d) float32: the learned movie representation (explore, similar);
    - `n_params`: the model's parameter count;
    - for matrix factorisation only, the FACTOR_KEYS that score any user on demand:
      rating = offset + user_bias[u] + movie_bias[m] + user_factors[u] . movie_vectors[m];
    - for history rankers (multdae, EASE) only, `history_weighting` (2,) float32: (positive_threshold,
      score_low_weight), how to build a user's input history from the training rows to score them on demand;
      and where `max_movies` capped what it scores, `catalogue` (n,) int32: the movies it scores, sorted
      (the others have zero `movie_vectors` and rank after all of these, as NaN scores);
    - for rating models with a `popularity_prior`, `ranking_prior` (n_movies,) float32: added to the
      predicted ratings to rank (the lists are in that order), never to the ratings shown or measured.
    """
    path = Path(path)
    if not path.is_file():
        raise MovierecError(f"{path}: not found; run `dvc repro` first (or `dvc pull` if a remote is set up)")
    with np.load(path, allow_pickle=False) as archive:
        missing = [key for key in keys if key not in archive.files]
        if missing:
            raise MovierecError(f"{path}: no {missing[0]!r} array (written by an older version?); run `dvc repro` to retrain")
        wanted = [*keys, *(key for key in optional if key in archive.files)] if keys or optional else archive.files
        return {key: archive[key] for key in wanted}


def rating_metrics(y_true: np.ndarray, y_pred: np.ndarray) -> dict[str, float]:
    err = np.asarray(y_pred, dtype=np.float64) - np.asarray(y_true, dtype=np.float64)
    return {"rmse": float(np.sqrt(np.mean(err**2))), "mae": float(np.mean(np.abs(err)))}


MOVIE_BUCKETS = (0, 1, 5, 20, 100)  # the movie's training ratings: 0 is cold start
USER_BUCKETS = (0, 20, 50, 100, 250)


def evaluate_ratings(predicted: np.ndarray, prepared: Prepared, rating_range: tuple[float, float]):
    """RMSE, MAE and RMSE by popularity of the test pairs' predictions (clipped to the scale), and a
    sample of (actual, predicted) pairs for the scatter plot."""
    train, test = prepared.train, prepared.test
    pred = clip_ratings(np.asarray(predicted, dtype=np.float64).reshape(-1), rating_range)
    if pred.shape != test.rating.shape:
        raise MovierecError(f"{len(pred)} test predictions for {len(test)} test ratings; run `dvc repro` to retrain on this split")
    metrics = rating_metrics(test.rating, pred)
    for name, index, n, edges in (
        ("movie", test.movie, len(prepared.movie_ids), MOVIE_BUCKETS),
        ("user", test.user, len(prepared.user_ids), USER_BUCKETS),
    ):
        counts = np.bincount(getattr(train, name), minlength=n)[index]
        buckets = rmse_by_bucket(test.rating, pred, counts, edges)
        metrics[f"rmse_by_{name}_ratings"] = {label: b["rmse"] for label, b in buckets.items()}
    n_sample = min(PREDICTION_SAMPLE, len(test))
    return metrics, {"actual": test.rating[:n_sample], "predicted": pred[:n_sample]}


def evaluate_variant(predictions: dict, prepared: Prepared, e: EvaluateParams, rating_range: tuple[float, float]):
    """All test metrics of a trained variant from its predictions file: its test-pair predictions and
    the top lists train stored (checked to be for the users these params pick, and long enough for k),
    a sample for the scatter plot, and the ranking metrics at every k up to top_n. A ranker (no
    `test_predictions`) gets the ranking metrics only, and an empty sample (its dvc.yaml plot file
    exists, with a header only)."""
    users, n_eligible = ranking_users(prepared.test.user, prepared.test.rating, e.relevance_threshold, e.max_users, e.seed)
    stored = predictions["top_movies"]
    if not np.array_equal(predictions["top_users"], users):
        raise MovierecError("the predictions file ranks other users than evaluate's params pick; run `dvc repro` to retrain")
    if stored.shape[1] < e.k:
        raise MovierecError(f"evaluate.k={e.k} is above the {stored.shape[1]} movies per user train stored; raise evaluate.top_n and retrain")
    metrics, sample = {}, {"actual": np.empty(0), "predicted": np.empty(0)}
    if "test_predictions" in predictions:
        metrics, sample = evaluate_ratings(predictions["test_predictions"], prepared, rating_range)
    measured = dict(test=prepared.test, relevance_threshold=e.relevance_threshold, n_movies=len(prepared.movie_ids))
    metrics.update(measure_lists(stored, users, n_eligible, k=e.k, **measured))
    return metrics, sample, ranking_curve(stored, users, **measured)


PREDICTION_SAMPLE = 2000  # test rows (already shuffled by the split) kept for the predicted-vs-actual plot


def rmse_by_bucket(y_true: np.ndarray, y_pred: np.ndarray, counts: np.ndarray, edges=(0, 1, 5, 20, 100)) -> dict[str, dict]:
    """RMSE per bucket of each row's training-rating count (of its movie or its user), with the row count.

    One overall RMSE hides that cold and rare movies are where models differ most. Buckets are
    [edges[i], edges[i+1]) plus a last open one, labelled "0", "1-4", ..., "100+"; empty buckets are
    omitted. For movies: `counts = np.bincount(train.movie, minlength=n_movies)[test.movie]`.
    """
    edges = np.asarray(edges)
    counts = np.asarray(counts)
    if len(edges) < 1 or np.any(np.diff(edges) <= 0):
        raise ValueError(f"edges must be strictly increasing; got {edges.tolist()}")
    if counts.size and counts.min() < edges[0]:
        raise ValueError(f"counts below the first edge {edges[0]}: {counts.min()}")
    sq = (np.asarray(y_pred, dtype=np.float64) - np.asarray(y_true, dtype=np.float64)) ** 2
    bucket = np.searchsorted(edges, counts, side="right") - 1
    n = np.bincount(bucket, minlength=len(edges))
    sums = np.bincount(bucket, weights=sq, minlength=len(edges))
    out = {}
    for i, lo in enumerate(edges.tolist()):
        if n[i]:
            hi = edges[i + 1] - 1 if i + 1 < len(edges) else None
            label = f"{lo}+" if hi is None else (str(lo) if hi == lo else f"{lo}-{hi}")
            out[label] = {"rmse": float(np.sqrt(sums[i] / n[i])), "n": int(n[i])}
    return out
