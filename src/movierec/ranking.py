"""Top-k ranking metrics, computed the way the recommender literature does.

Every model (neural or baseline) is judged the same way: score every movie for a user, drop the movies
the user rated in train, keep the k best, and compare them with the movies the user rated highly in test.
Rating RMSE says how close the predicted numbers are; these say whether the list a user would see is good.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from movierec.prepare import Prepared

PredictFn = Callable[[np.ndarray, np.ndarray], np.ndarray]
PAD = -1  # top-k slot with no candidate left (the user rated almost every movie in train)


def score_all(
    predict_fn: PredictFn, n_users: int, n_movies: int, users: np.ndarray | None = None, batch_rows: int = 256
) -> np.ndarray:
    """Scores of `users` (default: all) × all movies, as a (len(users), n_movies) float32 matrix.

    Pairs are built `batch_rows` users at a time, so one predict call sees batch_rows × n_movies pairs:
    large enough for a Keras model to run at full speed, small enough to keep memory bounded.
    """
    users = np.arange(n_users) if users is None else np.asarray(users, dtype=np.int64)
    if users.size and (users.min() < 0 or users.max() >= n_users):
        raise ValueError(f"users must lie in [0, {n_users}); got {users.min()}..{users.max()}")
    if batch_rows < 1:
        raise ValueError(f"batch_rows must be >= 1; got {batch_rows}")
    out = np.empty((len(users), n_movies), dtype=np.float32)
    movies = np.arange(n_movies, dtype=np.int64)
    for start in range(0, len(users), batch_rows):
        chunk = users[start : start + batch_rows]
        pred = np.asarray(predict_fn(np.repeat(chunk, n_movies), np.tile(movies, len(chunk))))
        out[start : start + len(chunk)] = pred.reshape(len(chunk), n_movies)
    return out


def seen_mask(users: np.ndarray, movies: np.ndarray, n_users: int, n_movies: int) -> np.ndarray:
    """Dense (n_users, n_movies) boolean mask of the rated pairs: the movies top-k must not recommend again."""
    mask = np.zeros((n_users, n_movies), dtype=bool)
    mask[np.asarray(users), np.asarray(movies)] = True
    return mask


def top_k(scores: np.ndarray, exclude_train, k: int) -> np.ndarray:
    """Per row, the k highest-scoring movies not in `exclude_train`, best first; (rows, k) int64.

    `exclude_train` is a boolean mask (dense or scipy sparse) shaped like `scores`. Ties go to the lower
    movie index (stable sort), so the lists never depend on the sort algorithm. When a row has fewer than
    k candidates the remaining slots hold PAD (-1). NaN scores rank last.
    """
    if k < 1:
        raise ValueError(f"k must be >= 1; got {k}")
    exclude = (exclude_train.toarray() if hasattr(exclude_train, "toarray") else np.asarray(exclude_train)).astype(bool)
    scores = np.asarray(scores)
    if exclude.shape != scores.shape:
        raise ValueError(f"exclude_train has shape {exclude.shape}; scores have {scores.shape}")
    # Sort on (excluded, -score, index): excluded movies go after every candidate, even -inf ones.
    key = np.where(exclude, np.nan, -scores.astype(np.float64))
    key[~exclude & np.isnan(key)] = np.inf  # NaN scores rank last among candidates
    order = np.argsort(key, axis=1, kind="stable")[:, :k]
    n_candidates = (~exclude).sum(axis=1, keepdims=True)
    order = np.where(np.arange(order.shape[1]) < n_candidates, order, PAD)
    if order.shape[1] < k:  # k beyond the number of movies
        order = np.pad(order, ((0, 0), (0, k - order.shape[1])), constant_values=PAD)
    return order


def ranking_metrics(
    top_k_items: np.ndarray,
    test_users: np.ndarray,
    test_movies: np.ndarray,
    test_ratings: np.ndarray,
    relevance_threshold: float,
    k: int,
    n_movies: int,
    users: np.ndarray | None = None,
) -> dict[str, float]:
    """Precision, recall, NDCG, MAP and hit rate at k, plus catalogue coverage, averaged over users.

    Row r of `top_k_items` is the list for user `users[r]` (default: user r). A movie is relevant when
    its test rating >= relevance_threshold; only users with a relevant test movie count, since the
    metrics are undefined (or trivially zero) for the others. Binary relevance, log2 discount; MAP@k and
    ideal DCG normalise by min(#relevant, k) so a perfect list scores 1.
    """
    top = np.asarray(top_k_items)
    if top.ndim != 2 or top.shape[1] < k:
        raise ValueError(f"top_k_items must be (users, >= {k}) ; got shape {top.shape}")
    top = top[:, :k]
    rows_user = np.arange(len(top)) if users is None else np.asarray(users, dtype=np.int64)
    relevant = np.asarray(test_ratings) >= relevance_threshold
    rel_keys = np.unique(np.asarray(test_users, dtype=np.int64)[relevant] * n_movies + np.asarray(test_movies)[relevant])
    eval_users, n_rel = np.unique(rel_keys // n_movies, return_counts=True)

    sorter = np.argsort(rows_user, kind="stable")
    pos = np.minimum(np.searchsorted(rows_user[sorter], eval_users), max(len(rows_user) - 1, 0))
    found = (rows_user[sorter][pos] == eval_users) if len(rows_user) else np.zeros(len(eval_users), dtype=bool)
    if not found.all():
        raise ValueError(f"no top-k list for {np.sum(~found)} test users with relevant movies (e.g. user {eval_users[~found][0]})")
    lists = top[sorter[pos]] if len(eval_users) else np.empty((0, top.shape[1]), dtype=np.int64)

    hits = (lists != PAD) & np.isin(eval_users[:, None] * n_movies + lists, rel_keys)
    n_hits = hits.sum(axis=1)
    discount = 1.0 / np.log2(np.arange(2, k + 2))
    dcg = (hits * discount).sum(axis=1)
    ideal = np.cumsum(discount)[np.minimum(n_rel, k) - 1]
    precision_at_pos = np.cumsum(hits, axis=1) / np.arange(1, k + 1)
    ap = (hits * precision_at_pos).sum(axis=1) / np.minimum(n_rel, k)
    shown = np.unique(lists[lists != PAD])

    def mean(x):
        return float(np.mean(x)) if len(x) else 0.0

    return {
        f"precision_at_{k}": mean(n_hits / k),
        f"recall_at_{k}": mean(n_hits / n_rel),
        f"ndcg_at_{k}": mean(dcg / ideal),
        f"map_at_{k}": mean(ap),
        f"hit_rate_at_{k}": mean(n_hits > 0),
        "coverage": len(shown) / n_movies,
        "n_users_evaluated": int(len(eval_users)),
    }


def evaluate_ranking(
    predict_fn: PredictFn, prepared: Prepared, *, k: int, relevance_threshold: float, batch_rows: int = 256
) -> dict[str, float]:
    """The whole protocol for one model: score the evaluated users, exclude their train movies, measure."""
    n_users, n_movies = len(prepared.user_ids), len(prepared.movie_ids)
    test = prepared.test
    users = np.unique(test.user[test.rating >= relevance_threshold])
    scores = score_all(predict_fn, n_users, n_movies, users, batch_rows=batch_rows)
    seen = seen_mask(prepared.train.user, prepared.train.movie, n_users, n_movies)[users]
    lists = top_k(scores, seen, k)
    return ranking_metrics(lists, test.user, test.movie, test.rating, relevance_threshold, k, n_movies, users=users)
