"""Test-split metrics for a ranked model, from its predictions file: the only place that reads the test ratings' values.

Also the metrics files every evaluated model gets (`write_evaluation`): metrics/eval/<name>.json, its
per-user results in metrics/users (`per_user.py`), and the plot data in metrics/predictions and metrics/ranking."""

from __future__ import annotations

import numpy as np

from movierec import per_user
from movierec.errors import MovierecError
from movierec.params.evaluate import EvaluateParams
from movierec.paths import METRICS_DIR
from movierec.prepare import Prepared
from movierec.ranking import measure_lists, ranking_curve
from movierec.scoring import clip_ratings, ranking_users


def rating_metrics(y_true: np.ndarray, y_pred: np.ndarray) -> dict[str, float]:
    err = np.asarray(y_pred, dtype=np.float64) - np.asarray(y_true, dtype=np.float64)
    return {"rmse": float(np.sqrt(np.mean(err**2))), "mae": float(np.mean(np.abs(err)))}


MOVIE_BUCKETS = (0, 1, 5, 20, 100)  # the movie's training ratings: 0 is cold start
USER_BUCKETS = (0, 20, 50, 100, 250)


def evaluate_ratings(predicted: np.ndarray, prepared: Prepared, rating_range: tuple[float, float], users: np.ndarray | None = None):
    """RMSE, MAE and RMSE by popularity of the test pairs' predictions (clipped to the scale), a
    sample of (actual, predicted) pairs for the scatter plot, and the errors of `users` (default:
    every test user) for the per-user file."""
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
    users = per_user.rating_users(test.user, 0, 0) if users is None else users
    errors = per_user.rating_errors(test.user, pred - np.asarray(test.rating, dtype=np.float64), users)
    return metrics, {"actual": test.rating[:n_sample], "predicted": pred[:n_sample]}, errors


def evaluate_variant(predictions: dict, prepared: Prepared, e: EvaluateParams, rating_range: tuple[float, float]):
    """All test metrics of a ranked variant from its predictions file: its test-pair predictions and
    the top lists the rank stage stored (checked to be for the users these params pick, and long enough for k),
    a sample for the scatter plot, the ranking metrics at every k up to top_n, and the per-user table. A
    ranker (no `test_predictions`) gets the ranking metrics only, and an empty sample (its dvc.yaml plot
    file exists, with a header only)."""
    users, n_eligible = ranking_users(prepared.test.user, prepared.test.rating, e.relevance_threshold, e.max_users, e.seed)
    stored = predictions["top_movies"]
    if not np.array_equal(predictions["top_users"], users):
        raise MovierecError("the predictions file ranks other users than evaluate's params pick; run `dvc repro` to rank again")
    if stored.shape[1] < e.k:
        raise MovierecError(f"evaluate.k={e.k} is above the {stored.shape[1]} movies per user the rank stage stored; raise evaluate.top_n and run `dvc repro`")
    metrics, sample, errors = {}, {"actual": np.empty(0), "predicted": np.empty(0)}, None
    if "test_predictions" in predictions:
        rated = per_user.rating_users(prepared.test.user, e.max_users, e.seed)
        metrics, sample, errors = evaluate_ratings(predictions["test_predictions"], prepared, rating_range, rated)
    measured = dict(test=prepared.test, relevance_threshold=e.relevance_threshold, n_movies=len(prepared.movie_ids))
    list_metrics, ranked = measure_lists(stored, users, n_eligible, k=e.k, **measured)
    metrics.update(list_metrics)
    return metrics, sample, ranking_curve(stored, users, **measured), per_user.table(prepared.user_ids, errors, ranked)


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


def write_evaluation(name: str, metrics: dict, sample: dict | None, curve: dict | None, users: dict[str, np.ndarray]) -> None:
    """metrics/eval/<name>.json, metrics/users/<name>.csv (`per_user`), and the plot data: a
    predicted-vs-actual sample, the ranking at every k."""
    from movierec.atomic import write_json, write_text

    write_text(per_user.path(name), per_user.to_csv(users))
    if sample is not None:
        rows = "".join(f"{a:g},{p:.4f}\n" for a, p in zip(sample["actual"], sample["predicted"]))
        write_text(METRICS_DIR / "predictions" / f"{name}.csv", "actual,predicted\n" + rows)
    if curve is not None:
        rows = "".join(f"{k},{p:.6f},{r:.6f},{n:.6f}\n" for k, p, r, n in zip(curve["k"], curve["precision"], curve["recall"], curve["ndcg"]))
        write_text(METRICS_DIR / "ranking" / f"{name}.csv", "k,precision,recall,ndcg\n" + rows)
    write_json(METRICS_DIR / "eval" / f"{name}.json", metrics)
    shown = {k: v for k, v in metrics.items() if isinstance(v, float)}
    print(f"{name}: " + ", ".join(f"{k}={v:.4f}" for k, v in shown.items()))


def read_evaluation(name: str) -> dict | None:
    """metrics/eval/<name>.json, or None if that model was never evaluated."""
    import json

    path = METRICS_DIR / "eval" / f"{name}.json"
    return json.loads(path.read_text()) if path.is_file() else None
