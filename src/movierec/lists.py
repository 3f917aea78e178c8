"""The rank stage's core: a fitted model's lists and the rest of its predictions file, and the ranking
settings chosen on the validation carve. Nothing here fits: changing how lists are made or judged reruns
this, never a fit.
"""

from __future__ import annotations

import numpy as np

from movierec.params.evaluate import EvaluateParams
from movierec.params.time_terms import TimeTerms
from movierec.prepare import Prepared
from movierec.ranking import measure_lists
from movierec.scoring import PAD, BlockScorer, RatedIndex, evaluation_lists, popularity_prior, ranking_users, top_k_with_offsets
from movierec.time_bias import held_out_terms


def rank(architecture, model, settings, prepared: Prepared, e: EvaluateParams, prior_weight: float, time_terms=None) -> dict[str, np.ndarray]:
    """The predictions file's arrays (`movierec.predictions`) of `model`, a fitted `architecture`:
    each ranked user's top `evaluate.top_n` (scored in chunks of users: users x top_n, never users x
    movies) ranked with `prior_weight`, its movie vectors and what scores any user on demand; for a
    rating model also the test pairs' predictions, and its lists keep the predicted ratings.

    `time_terms` (a rating variant's, `movierec.time_bias.TimeBias`) are added to the test pairs'
    predictions, each on its own day. The lists are a user's ratings at no particular day: a user's
    own terms would move all their movies alike, and a movie's bias in the latest time bin is not
    what a list for any later day should assume."""
    n_users, n_movies = len(prepared.user_ids), len(prepared.movie_ids)
    score = architecture.scorer(model, settings, prepared, prior_weight)
    test_pairs = {}
    if architecture.PREDICTS_RATINGS:
        predict = architecture.predictor(model)
        predicted = predict(prepared.test.user, prepared.test.movie)
        if time_terms is not None:
            predicted = np.asarray(predicted, dtype=np.float64) + time_terms.predict_rows(prepared.test)
        test_pairs = {"test_predictions": np.asarray(predicted).astype(np.float32)}
    users, top_movies, top_scores = evaluation_lists(
        score, prepared.train, prepared.test, n_users, n_movies,
        n=e.top_n, relevance_threshold=e.relevance_threshold, max_users=e.max_users, seed=e.seed,
    )
    if architecture.PREDICTS_RATINGS and prior_weight:  # the lists keep the model's own predicted ratings, not the ranking scores
        listed = top_movies != PAD
        top_scores[listed] = predict(np.broadcast_to(users[:, None], top_movies.shape)[listed], top_movies[listed])
    return {
        **test_pairs,
        "top_users": users.astype(np.int32),
        "top_movies": top_movies,
        "top_scores": top_scores,
        "movie_vectors": architecture.movie_vectors(model, settings, prepared),
        "n_params": np.int64(model.count_params() + (1 + time_terms.time_params if time_terms is not None else 0)),
        **architecture.serving(model, settings, prepared, prior_weight),
    }


def carve_predictions(architecture, carve_model, carve: Prepared, held_rows: np.ndarray, terms: TimeTerms | None) -> dict[str, np.ndarray]:
    """The predictions file's `carve_rows` and `carve_predictions`: a rating model's predictions of its
    validation carve's held-out rows by the model that never saw them, plus its time terms (`terms`, if
    the train stage kept them), fitted on what that model leaves of the carve's other rows. The blend
    stage learns its weights on them, so the test split is not read to choose them."""
    predict = architecture.predictor(carve_model)
    predicted = np.asarray(predict(carve.test.user, carve.test.movie), dtype=np.float64)
    if terms is not None:
        predicted += held_out_terms(predict, carve.train, carve.test, len(carve.user_ids), len(carve.movie_ids), terms)
    return {"carve_rows": np.asarray(held_rows, dtype=np.int64), "carve_predictions": predicted.astype(np.float32)}


def choose_popularity_prior(score: BlockScorer, carve: Prepared, grid: list[float], e: EvaluateParams) -> dict:
    """The value of `grid` whose lists rank the validation carve best (NDCG@k, ties to the first):
    `score` is the model trained on `carve.train` only, `carve.test` the training rows held out from it,
    ranked as `evaluate` ranks the test split. Why here: how much popularity should count depends on
    the data (on synthetic data whose exposure ignores taste it is several times latest-small's)."""
    ndcg = validation_ndcg(score, carve, grid, e)
    for weight, value in zip(grid, ndcg):
        print(f"popularity_prior {weight:g}: validation NDCG@{e.k} {value:.4f}", flush=True)
    return {"popularity_prior": float(grid[int(np.argmax(ndcg))]), f"popularity_prior_validation_ndcg_at_{e.k}": ndcg}


def validation_ndcg(score: BlockScorer, carve: Prepared, priors: list[float], e: EvaluateParams) -> list[float]:
    """NDCG@k of the lists `score` (fitted on `carve.train`) makes for `carve.test`'s users, once per
    popularity prior weight, ranked as `evaluate` ranks the test split: one model pass for them all."""
    n_users, n_movies = len(carve.user_ids), len(carve.movie_ids)
    counts = np.bincount(carve.train.movie, minlength=n_movies)
    users, _ = ranking_users(carve.test.user, carve.test.rating, e.relevance_threshold, e.max_users, e.seed)
    rated = RatedIndex.from_pairs(carve.train.user, carve.train.movie, n_users)
    offsets = [popularity_prior(counts, weight).astype(np.float32) for weight in priors]
    ndcg = []
    for lists in top_k_with_offsets(score, users, n_movies, rated, e.k, offsets):
        metrics, _ = measure_lists(lists, users, len(users), carve.test, k=e.k, relevance_threshold=e.relevance_threshold, n_movies=n_movies)
        ndcg.append(metrics[f"ndcg_at_{e.k}"])
    return ndcg
