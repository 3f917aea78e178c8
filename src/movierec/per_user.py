"""The per-user results file, metrics/users/<model>.csv: one schema, one writer, one reader.

Every headline metric is a sum or a mean over users, so keeping each user's share lets two models
(or one model at two revisions) be compared pairwise, user by user, with intervals
(`significance.py`, `movierec compare`). The file is git-tracked beside metrics/eval, and small: one
row per evaluated user (a seeded sample of `evaluate.max_users` at scale), never per rating or movie.

Columns: `user` (the original userId), then, for a rating model, `n_ratings`, `sse` and `sae` (the
user's test ratings, sum of squared and of absolute errors of the clipped predictions), then, for a
ranked model, the user's `ndcg_at_k`, `precision_at_k`, `recall_at_k`, `map_at_k` and `hit_rate_at_k`
(users with a relevant test movie only). A cell is empty where the user has no such value.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from movierec.errors import MovierecError
from movierec.paths import METRICS_DIR
from movierec.scoring import sample_users

USERS_DIR = METRICS_DIR / "users"

RANKING_METRICS = ("ndcg", "precision", "recall", "map", "hit_rate")  # each as <name>_at_<k>


def path(model: str) -> Path:
    return USERS_DIR / f"{model}.csv"


def rating_users(test_user: np.ndarray, max_users: int, seed: int) -> np.ndarray:
    """The users whose rating errors are kept: every test user, or a seeded sample of `max_users` (sorted)."""
    return sample_users(np.unique(np.asarray(test_user, dtype=np.int64)), max_users, seed)


def rating_errors(test_user: np.ndarray, errors: np.ndarray, users: np.ndarray) -> dict[str, np.ndarray]:
    """{user, n_ratings, sse, sae} of `users` from each test row's error (predicted - actual)."""
    n = int(max(np.max(test_user, initial=-1), np.max(users, initial=-1))) + 1
    errors = np.asarray(errors, dtype=np.float64)
    count = np.bincount(test_user, minlength=n)
    sse = np.bincount(test_user, weights=errors**2, minlength=n)
    sae = np.bincount(test_user, weights=np.abs(errors), minlength=n)
    return {"user": users, "n_ratings": count[users], "sse": sse[users], "sae": sae[users]}


def table(user_ids: np.ndarray, *parts: dict[str, np.ndarray] | None) -> dict[str, np.ndarray]:
    """One table from per-user parts keyed by encoded user (`rating_errors`, `ranking.measure_lists`):
    rows for every user in any part, sorted, with the original ids; NaN where a part lacks the user."""
    parts = [p for p in parts if p is not None]
    encoded = np.unique(np.concatenate([np.asarray(p["user"], dtype=np.int64) for p in parts])) if parts else np.empty(0, np.int64)
    out = {"user": np.asarray(user_ids)[encoded]}
    for part in parts:
        rows = np.searchsorted(encoded, np.asarray(part["user"], dtype=np.int64))
        for name, values in part.items():
            if name != "user":
                column = np.full(len(encoded), np.nan)
                column[rows] = values
                out[name] = column
    return out


def to_csv(columns: dict[str, np.ndarray]) -> str:
    """The file's text: integers as integers, floats to 10 significant digits, NaN as an empty cell."""
    names = list(columns)
    cells = []
    for name in names:
        values = np.asarray(columns[name])
        if name in ("user", "n_ratings"):
            cells.append(["" if np.isnan(v) else str(int(v)) for v in values.astype(np.float64)])
        else:
            cells.append(["" if np.isnan(v) else f"{v:.10g}" for v in values])
    return ",".join(names) + "\n" + "".join(",".join(row) + "\n" for row in zip(*cells))


def from_csv(text: str, source: str) -> dict[str, np.ndarray]:
    """Columns of a per-user file's text (float64, NaN where empty); `source` names it in errors."""
    lines = [line for line in text.splitlines() if line]
    if not lines or lines[0].split(",")[0] != "user":
        raise MovierecError(f"{source}: not a per-user results file (its header must start with `user`); run `dvc repro` to rewrite it")
    names = lines[0].split(",")
    rows = [line.split(",") for line in lines[1:]]
    if any(len(row) != len(names) for row in rows):
        raise MovierecError(f"{source}: a row has other than {len(names)} cells; run `dvc repro` to rewrite it")
    return {name: np.array([float(row[j]) if row[j] else np.nan for row in rows]) for j, name in enumerate(names)}


def read(model: str) -> dict[str, np.ndarray]:
    """metrics/users/<model>.csv, as `from_csv` reads it; one line if it is missing."""
    source = path(model)
    if not source.is_file():
        raise MovierecError(f"{source}: missing; run `dvc repro` to evaluate {model} first")
    return from_csv(source.read_text(encoding="utf-8"), str(source))


def ranking_columns(columns: dict) -> list[str]:
    """The ranking metrics a file holds (at its k)."""
    return [name for name in columns if any(name.startswith(f"{m}_at_") for m in RANKING_METRICS)]


def parts(columns: dict[str, np.ndarray], metric: str) -> tuple[np.ndarray, np.ndarray, np.ndarray, bool] | None:
    """(users, weight, value sum, take the square root) such that the metric over any set of those users
    is sqrt?(sum(value sum) / sum(weight)): RMSE and MAE weigh users by their test ratings, the ranking
    metrics are plain means over users. None if the file does not hold the metric."""
    if metric in ("rmse", "mae"):
        if "sse" not in columns:
            return None
        has = ~np.isnan(columns["n_ratings"])
        value = columns["sse" if metric == "rmse" else "sae"][has]
        return columns["user"][has], columns["n_ratings"][has], value, metric == "rmse"
    if metric not in columns:
        return None
    has = ~np.isnan(columns[metric])
    return columns["user"][has], np.ones(int(has.sum())), columns[metric][has], False
