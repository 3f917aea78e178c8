"""Top-k ranking metrics, computed the way the recommender literature does.

Every model (neural or baseline) is judged the same way: score every movie for a user, drop the movies
the user rated in train, keep the k best (`scoring.top_k_of_users`, in chunks of users), and compare
them with the movies the user rated highly in test.
Rating RMSE says how close the predicted numbers are; these say whether the list a user would see is good.
"""

from __future__ import annotations

import math

import numpy as np

from movierec.scoring import PAD


def ranking_metrics(
    top_k_items: np.ndarray,
    test_users: np.ndarray,
    test_movies: np.ndarray,
    test_ratings: np.ndarray,
    relevance_threshold: float,
    k: int,
    n_movies: int,
    users: np.ndarray | None = None,
) -> tuple[dict[str, float], dict[str, np.ndarray]]:
    """Precision, recall, NDCG, MAP and hit rate at k averaged over users, plus catalogue coverage;
    and each user's values ({"user": the users measured, sorted, metric: values}, for `per_user`).

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
    discount = 1.0 / np.array([math.log2(r) for r in range(2, k + 2)])  # math's: numpy's AVX-512 log2 rounds otherwise
    dcg = (hits * discount).sum(axis=1)
    ideal = np.cumsum(discount)[np.minimum(n_rel, k) - 1]
    precision_at_pos = np.cumsum(hits, axis=1) / np.arange(1, k + 1)
    ap = (hits * precision_at_pos).sum(axis=1) / np.minimum(n_rel, k)
    shown = np.unique(lists[lists != PAD])
    per_user = {
        f"precision_at_{k}": n_hits / k,
        f"recall_at_{k}": n_hits / n_rel,
        f"ndcg_at_{k}": dcg / ideal,
        f"map_at_{k}": ap,
        f"hit_rate_at_{k}": (n_hits > 0).astype(np.float64),
    }
    return {
        **{name: float(np.mean(values)) if len(values) else 0.0 for name, values in per_user.items()},
        "coverage": len(shown) / n_movies,
        "n_users_evaluated": int(len(eval_users)),
    }, {"user": eval_users, **per_user}


def measure_lists(
    lists: np.ndarray, users: np.ndarray, n_eligible: int, test, *, k: int, relevance_threshold: float, n_movies: int
) -> tuple[dict, dict[str, np.ndarray]]:
    """Ranking metrics of the top-k `lists` of `users` (from `scoring.ranking_users`) against the `test` split,
    and each measured user's values (`ranking_metrics`).

    Only the test rows of `users` count, so a sample of users is measured on its own rows. Adds how many
    users were eligible and whether the measured ones are a sample, for the report to say next to the figures.
    """
    users = np.asarray(users, dtype=np.int64)
    mine = np.isin(test.user, users)
    metrics, per_user = ranking_metrics(
        lists, test.user[mine], test.movie[mine], test.rating[mine], relevance_threshold, k, n_movies, users=users
    )
    return {**metrics, "n_users_eligible": int(n_eligible), "users_sampled": bool(len(users) < n_eligible)}, per_user


def ranking_curve(lists: np.ndarray, users: np.ndarray, test, *, relevance_threshold: float, n_movies: int) -> dict[str, list[float]]:
    """Precision, recall and NDCG at every list length k = 1 .. lists' width, for the report's plot."""
    users = np.asarray(users, dtype=np.int64)
    mine = np.isin(test.user, users)
    args = (test.user[mine], test.movie[mine], test.rating[mine], relevance_threshold)
    curve = {"k": [], "precision": [], "recall": [], "ndcg": []}
    for k in range(1, np.asarray(lists).shape[1] + 1):
        m, _ = ranking_metrics(lists, *args, k, n_movies, users=users)
        for name in ("precision", "recall", "ndcg"):
            curve[name].append(m[f"{name}_at_{k}"])
        curve["k"].append(k)
    return curve
