"""What `movierec recommend` and `movierec similar` do, from the files the pipeline wrote.

`recommend` serves a variant, or EASE (the `baselines` stage stores it the same way), from the top list
stored for the user when it holds k movies the user has not rated (in train or test); otherwise it
scores that one user against every movie on demand, as the variant's architecture says (`on_demand`:
NumPy from the stored tables for matrix factorisation, else the Keras model, the only path that
imports TensorFlow), or from EASE's memory-mapped weights. A rating model ranks by its score plus
`ranking_prior` where the rank stage stored one. Predicted ratings are clipped to the rating scale.
`similar` needs the movie vectors only. Neither holds anything users x movies.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from movierec import explore, predictions
from movierec.errors import MovierecError, did_you_mean
from movierec.prepare import Prepared
from movierec.scoring import PAD, Catalogue, clip_ratings, top_k_block, user_histories


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


def best_space(explorations: dict[str, dict | None]) -> tuple[str, float] | None:
    """The variant whose learned movie vectors put same-genre movies nearest (the best learned genre
    coherence in metrics/explore, the committed results), and that coherence: what `similar` answers
    from. None where no variant's coherence could be measured (too few movies with enough ratings)."""
    scores = {name: m["learned"]["genre_coherence"] for name, m in explorations.items() if m and isinstance(m.get("learned", {}).get("genre_coherence"), (int, float))}
    if not scores:
        return None
    name = max(scores, key=scores.get)
    return name, scores[name]


def check_model_name(name: str, variants, baselines: tuple[str, ...] = ()) -> None:
    """`--variant` names a variant of params.yaml, or one of the `baselines` the command serves."""
    names = [*variants, *baselines]
    if name not in names:
        raise MovierecError(f"--variant {name}: no such model; choose one of {', '.join(names)}{did_you_mean(name.lower(), names)}")


def encoded_user(prepared: Prepared, user_id: int) -> int:
    row = int(np.searchsorted(prepared.user_ids, user_id))
    if row >= len(prepared.user_ids) or prepared.user_ids[row] != user_id:
        raise MovierecError(f"--user {user_id}: unknown userId; known ids run from {prepared.user_ids[0]} to {prepared.user_ids[-1]}")
    return row


def rated_movies(prepared: Prepared, user: int) -> np.ndarray:
    """Every movie the encoded `user` rated, in train or test: recommend never shows one again."""
    return np.unique(np.concatenate([split.movie[split.user == user] for split in (prepared.train, prepared.test)]))


@dataclass(frozen=True)
class Served:
    """A model `recommend` serves: a variant (its architecture, settings and the popularity prior its
    lists were ranked with) or EASE (no architecture)."""

    name: str
    architecture: object | None = None
    settings: object | None = None
    prior_weight: float = 0.0

    @property
    def predicts_ratings(self) -> bool:
        return self.architecture is not None and self.architecture.PREDICTS_RATINGS


def served_model(raw_params: dict, name: str, lists_dir: Path) -> Served:
    """`name` as `recommend` serves it, from params.yaml and the prior the rank stage recorded in `lists_dir`."""
    if name in SERVED_BASELINES:
        return Served(name)
    import json

    from movierec.params import variants

    v = variants.load(raw_params, name)
    chosen = lists_dir / f"{name}.json"
    weight = json.loads(chosen.read_text())["popularity_prior"] if chosen.is_file() else v.popularity_prior[0]
    return Served(name, v.module, v.settings, weight)


def recommend(prepared: Prepared, user: int, k: int, served: Served, rating_range: tuple[float, float]) -> tuple[np.ndarray, np.ndarray]:
    """The k best-scored movies that `user` (encoded) has not rated: (movies, scores); fewer if the
    model scores fewer (a catalogue capped by `max_movies`). A rating model's scores are predicted
    ratings, clipped to `rating_range`; a ranker's are relevance scores."""
    rated = rated_movies(prepared, user)
    rating_range = rating_range if served.predicts_ratings else None
    path = predictions.path(served.name)
    stored = predictions.read(path, "top_users", "top_movies", "top_scores")
    row = int(np.searchsorted(stored["top_users"], user))
    if row < len(stored["top_users"]) and stored["top_users"][row] == user:
        movies, scores = stored["top_movies"][row], stored["top_scores"][row]
        scored = (movies != PAD) & ~np.isnan(scores)  # past them: no candidate left, or none the model scores
        keep = scored & ~np.isin(movies, rated)
        if keep.sum() >= k or not scored.all():  # k left, or the list already holds every candidate
            return movies[keep][:k], _shown(scores[keep][:k], rating_range)
    everything = predictions.read(path)
    block = np.asarray(_on_demand_scorer(served, everything, prepared, user)(np.array([user])), dtype=np.float32)
    ranked = block + everything["ranking_prior"] if "ranking_prior" in everything else block
    top = top_k_block(ranked, k, (np.zeros(len(rated), dtype=np.int64), rated))[0]
    top = top[top != PAD]
    top = top[~np.isnan(block[0, top])]  # outside a capped catalogue (`max_movies`): not scored, not shown
    return top, _shown(block[0, top], rating_range)


def _shown(scores: np.ndarray, rating_range: tuple[float, float] | None) -> np.ndarray:
    return scores if rating_range is None else clip_ratings(scores, rating_range)


def _on_demand_scorer(served: Served, stored: dict, prepared: Prepared, user: int):
    """Scores `user` against every movie, as the served model's architecture says (EASE: its weights)."""
    if served.architecture is None:
        return _ease_scorer(stored, prepared, user)
    model = None
    if served.architecture.ON_DEMAND_NEEDS_MODEL:  # the only path that imports TensorFlow
        from movierec import fitted
        from movierec.quiet import import_tensorflow

        import_tensorflow()
        model = fitted.load_model(fitted.folder(served.name))
    return served.architecture.on_demand(stored, model, prepared, user, served.settings, served.prior_weight)


def _ease_scorer(stored: dict, prepared: Prepared, user: int):
    """EASE's scores for `user`, from its memory-mapped weights: only the rows of the user's movies are read."""
    from movierec.baselines import EASE_WEIGHTS, Ease

    weights_path = EASE_WEIGHTS
    if not weights_path.is_file():
        raise MovierecError(f"{weights_path}: not found; run `dvc repro` first (or `dvc pull` if a remote is set up)")
    catalogue = Catalogue.from_stored(stored, len(prepared.movie_ids))
    threshold, low_weight = (float(w) for w in stored["history_weighting"])
    rows = prepared.train.take(np.flatnonzero(prepared.train.user == user))
    history = user_histories(rows, len(prepared.user_ids), catalogue, threshold, low_weight)
    return Ease(history, np.load(weights_path, mmap_mode="r"), catalogue).score_users


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
