"""What `movierec recommend` and `movierec similar` do, from the files the pipeline wrote.

`recommend` serves a variant, or EASE (the `baselines` stage stores it the same way), from the top list
stored for the user when it holds k movies the user has not rated (in train or test); otherwise it
scores that one user against every movie on demand: with the factor tables for matrix factorisation
or EASE's memory-mapped weights (NumPy), or by loading the Keras model (the only path that imports
TensorFlow). A history ranker (the dae, EASE) is fed the user's training history, weighted as it was
for evaluation (`history_weighting`); a rating model ranks by its score plus `ranking_prior` where
train stored one. Predicted ratings are clipped to the rating scale. `similar` needs the movie vectors
only. Neither holds anything users x movies.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from movierec import explore
from movierec.errors import MovierecError, did_you_mean
from movierec.evaluate import FACTOR_KEYS, ON_DEMAND_KEYS, load_predictions
from movierec.prepare import Prepared, Split
from movierec.scoring import PAD, Catalogue, clip_ratings, factor_scorer, top_k_block, user_histories


SELECT_BY = {"ndcg": ("ndcg_at_{k}", max), "rmse": ("rmse", min)}  # --by: (metric key, which end is best)
SERVED_BASELINES = ("ease",)  # baselines `recommend` can serve: the baselines stage stores them as train stores a variant


def best_variant(evaluations: dict[str, dict | None], by: str = "ndcg", k: int = 10) -> str:
    """The evaluated variant with the best test NDCG@k (the list users see) or the best RMSE
    (the predicted ratings), from metrics/eval: the committed results."""
    key, best = SELECT_BY[by]
    key = key.format(k=k)
    scores = {name: m[key] for name, m in evaluations.items() if m is not None and isinstance(m.get(key), (int, float))}
    if not scores:
        raise MovierecError(f"no evaluated model with {key} in metrics/eval; run `dvc repro` first")
    return best(scores, key=scores.get)


def check_model_name(name: str, variants, baselines: tuple[str, ...] = ()) -> None:
    """`--variant` names a variant of params.yaml, or one of the `baselines` the command serves."""
    names = [*variants, *baselines]
    if name not in names:
        raise MovierecError(f"--variant {name}: no such model; choose one of {', '.join(names)}{did_you_mean(name.lower(), names)}")


def is_rating_model(evaluation: dict | None) -> bool:
    """Rating predictors are evaluated on RMSE; rankers' scores are relevance scores, not ratings."""
    return evaluation is not None and "rmse" in evaluation


def encoded_user(prepared: Prepared, user_id: int) -> int:
    row = int(np.searchsorted(prepared.user_ids, user_id))
    if row >= len(prepared.user_ids) or prepared.user_ids[row] != user_id:
        raise MovierecError(f"--user {user_id}: unknown userId; known ids run from {prepared.user_ids[0]} to {prepared.user_ids[-1]}")
    return row


def rated_movies(prepared: Prepared, user: int) -> np.ndarray:
    """Every movie the encoded `user` rated, in train or test: recommend never shows one again."""
    return np.unique(np.concatenate([split.movie[split.user == user] for split in (prepared.train, prepared.test)]))


def recommend(
    prepared: Prepared, user: int, k: int, predictions_path: Path, model_path: Path, rating_range: tuple[float, float] | None
) -> tuple[np.ndarray, np.ndarray]:
    """The k best-scored movies that `user` (encoded) has not rated: (movies, scores); fewer if the
    model scores fewer (a catalogue capped by `max_movies`). With a `rating_range` the scores are
    predicted ratings, clipped to it; without, a ranker's relevance scores."""
    rated = rated_movies(prepared, user)
    stored = load_predictions(predictions_path, "top_users", "top_movies", "top_scores", optional=(*FACTOR_KEYS, *ON_DEMAND_KEYS))
    row = int(np.searchsorted(stored["top_users"], user))
    if row < len(stored["top_users"]) and stored["top_users"][row] == user:
        movies, scores = stored["top_movies"][row], stored["top_scores"][row]
        scored = (movies != PAD) & ~np.isnan(scores)  # past them: no candidate left, or none the model scores
        keep = scored & ~np.isin(movies, rated)
        if keep.sum() >= k or not scored.all():  # k left, or the list already holds every candidate
            return movies[keep][:k], _shown(scores[keep][:k], rating_range)
    score = _on_demand_scorer(stored, predictions_path, model_path, prepared, user)
    block = np.asarray(score(np.array([user])), dtype=np.float32)
    ranked = block + stored["ranking_prior"] if "ranking_prior" in stored else block
    top = top_k_block(ranked, k, (np.zeros(len(rated), dtype=np.int64), rated))[0]
    top = top[top != PAD]
    top = top[~np.isnan(block[0, top])]  # outside a capped catalogue (`max_movies`): not scored, not shown
    return top, _shown(block[0, top], rating_range)


def _shown(scores: np.ndarray, rating_range: tuple[float, float] | None) -> np.ndarray:
    return scores if rating_range is None else clip_ratings(scores, rating_range)


def _on_demand_scorer(stored: dict, predictions_path: Path, model_path: Path, prepared: Prepared, user: int):
    """Scores `user` against every movie: NumPy for factor models and EASE, else the Keras model (TensorFlow)."""
    n_movies = len(prepared.movie_ids)
    if all(key in stored for key in FACTOR_KEYS):
        vectors = load_predictions(predictions_path, "movie_vectors")["movie_vectors"]
        return factor_scorer(float(stored["offset"]), stored["user_bias"], stored["movie_bias"], stored["user_factors"], vectors)
    if not Path(model_path).is_file():
        raise MovierecError(f"{model_path}: not found; run `dvc repro` first (or `dvc pull` if a remote is set up)")
    catalogue = Catalogue.from_stored(stored, n_movies)
    if Path(model_path).suffix == ".npy":  # EASE's weights, memory-mapped: only the rows of the user's movies are read
        from movierec.baselines import Ease

        return Ease(_history(stored, prepared, user, catalogue), np.load(model_path, mmap_mode="r"), catalogue).score_users
    from movierec.quiet import import_tensorflow
    from movierec.scoring import pair_scorer
    from movierec.train import history_scorer, keras_predictor

    import_tensorflow()
    import keras

    model = keras.saving.load_model(model_path)
    if "history_weighting" in stored:
        return history_scorer(model, _history(stored, prepared, user, catalogue), catalogue)
    return pair_scorer(keras_predictor(model), n_movies)


def _history(stored: dict, prepared: Prepared, user: int, catalogue: Catalogue):
    """`user`'s training history, weighted as the model weighed the histories it was evaluated on
    (only their row is filled: nobody else is scored here)."""
    threshold, low_weight = (float(w) for w in stored["history_weighting"])
    mine = prepared.train.user == user
    rows = Split(prepared.train.user[mine], prepared.train.movie[mine], prepared.train.rating[mine])
    return user_histories(rows, len(prepared.user_ids), catalogue, threshold, low_weight)


def similar(
    vectors: np.ndarray, movies: pd.DataFrame, query: str, k: int, counts: np.ndarray, min_ratings: int
) -> tuple[int, np.ndarray, np.ndarray]:
    """The movie `query` names (its row in encoder order, `movies` rows in that order), and its k most
    cosine-similar movies (never itself) with their similarities, from movie vectors alone.

    Only movies with at least `min_ratings` training ratings (`counts`) are candidates: a movie rated
    once or twice has a vector trained on almost nothing, and led the lists before this filter.
    """
    index = int(np.flatnonzero(movies["movieId"].to_numpy() == explore.match_title(query, movies))[0])
    picks, sims = explore.nearest(vectors, index, k, candidates=np.asarray(counts) >= min_ratings)
    return index, picks, sims


def movie_rows(movies: pd.DataFrame, picks: np.ndarray, values: np.ndarray, value_name: str, counts: np.ndarray | None = None) -> list[dict]:
    """One printable row per picked movie (rows of `movies` are in encoder order)."""
    rows = []
    for i, value in zip(picks, values):
        row = {"movieId": int(movies.movieId[i]), "title": movies.title[i], "genres": movies.genres[i], value_name: float(value)}
        if counts is not None:
            row["n_ratings"] = int(counts[i])
        rows.append(row)
    return rows
