"""Score users against every movie in chunks and keep each user's top-k: never a users x movies array.

Every model (a Keras model in `train`, the baselines, a factor model in `recommend`) is a *block scorer*:
`score(users) -> (len(users), n_movies)` scores. `top_k_of_users` calls it on a few users at a time
(`chunk_rows` caps one block at about PAIRS_PER_BLOCK scores), drops the movies each user rated in train
via a CSR-like `RatedIndex` (no dense mask), and keeps the k best by partial sort. Memory grows with
users + movies + ratings and the block size, never with users x movies (ml-32m: 200,948 x 87,585).

The order is fixed: higher score first, ties to the lower movie index, NaN scores after every other
candidate, excluded movies never; slots beyond a user's candidates hold PAD (-1). So the lists never
depend on the sort algorithm or the chunk size.

The history rankers (the `dae`, EASE) score a user from their training history (`user_histories`),
over a `Catalogue` of movies.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable

import numpy as np

from movierec.portable_linalg import matmul
from movierec.progress import Progress

if TYPE_CHECKING:
    from movierec.prepare import Split

PAD = -1  # a top-k slot with no candidate left (the user rated almost every movie)
PAIRS_PER_BLOCK = 1 << 22  # scores per block (4M: 16 MB float32) -> 256 users at a time on latest-small
MAX_BLOCK_ROWS = 256

BlockScorer = Callable[[np.ndarray], np.ndarray]
PredictFn = Callable[[np.ndarray, np.ndarray], np.ndarray]


@dataclass(frozen=True)
class RatedIndex:
    """Each user's rated movies, CSR-style: user u's are `movies[indptr[u]:indptr[u + 1]]`, sorted."""

    indptr: np.ndarray
    movies: np.ndarray

    @classmethod
    def from_pairs(cls, users: np.ndarray, movies: np.ndarray, n_users: int) -> RatedIndex:
        users, movies = np.asarray(users, dtype=np.int64), np.asarray(movies, dtype=np.int64)
        order = np.lexsort((movies, users))
        indptr = np.zeros(n_users + 1, dtype=np.int64)
        np.cumsum(np.bincount(users, minlength=n_users), out=indptr[1:])
        return cls(indptr, movies[order].astype(np.int32))

    def of(self, user: int) -> np.ndarray:
        return self.movies[self.indptr[user] : self.indptr[user + 1]]

    def pairs(self, users: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(row in `users`, movie) of every rated pair of `users`, for marking a block of scores."""
        users = np.asarray(users, dtype=np.int64)
        starts, counts = self.indptr[users], self.indptr[users + 1] - self.indptr[users]
        rows = np.repeat(np.arange(len(users)), counts)
        offsets = np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts)
        return rows, self.movies[np.repeat(starts, counts) + offsets]


def chunk_rows(n_movies: int) -> int:
    """Users per block: MAX_BLOCK_ROWS on small catalogues, fewer where a block would grow past PAIRS_PER_BLOCK."""
    return max(1, min(MAX_BLOCK_ROWS, PAIRS_PER_BLOCK // max(n_movies, 1)))


def top_k_block(scores: np.ndarray, k: int, exclude: tuple[np.ndarray, np.ndarray] | None = None) -> np.ndarray:
    """Per row of `scores`, the k best movies not in `exclude` (rows, movies pairs), best first; (rows, k) int32.

    Partial sort: np.argpartition finds each row's k-th smallest sort key, then only the keys up to it
    (ties at the boundary included, so the lower index still wins) are sorted stably.
    """
    if k < 1:
        raise ValueError(f"k must be >= 1; got {k}")
    key = -np.asarray(scores, dtype=np.float64)  # ascending key = best first
    n_rows, n_movies = key.shape
    key[np.isnan(key)] = np.inf  # NaN scores rank after every other candidate
    if exclude is not None:
        key[exclude] = np.nan  # excluded: after everything, never returned
    out = np.full((n_rows, k), PAD, dtype=np.int32)
    kk = min(k, n_movies)
    if n_rows == 0 or kk == 0:
        return out
    kth = np.take_along_axis(key, np.argpartition(key, kk - 1, axis=1)[:, kk - 1 : kk], axis=1)  # NaN sorts last
    keep = (key <= kth) | (np.isnan(kth) & ~np.isnan(key))  # NaN kth: fewer than kk candidates, keep them all
    rows, cols = np.nonzero(keep)
    order = np.lexsort((cols, key[rows, cols], rows))
    rows, cols = rows[order], cols[order]
    rank = np.arange(len(rows)) - np.searchsorted(rows, rows)  # position within its row
    first = rank < k
    out[rows[first], rank[first]] = cols[first]
    return out


def scored_chunks(score: BlockScorer, users: np.ndarray, n_movies: int, what: str):
    """(start, users, float32 scores) for each chunk of `users` in order, with progress on stderr.

    Scores are taken as float32 (what a model outputs and what was stored before), so a baseline's
    float64 ties resolve the same way whatever computes them.
    """
    step = chunk_rows(n_movies)
    with Progress(len(users), what) as progress:
        for start in range(0, len(users), step):
            chunk = users[start : start + step]
            yield start, chunk, np.asarray(score(chunk), dtype=np.float32).reshape(len(chunk), n_movies)
            progress.advance(len(chunk))


def top_k_of_users(
    score: BlockScorer, users: np.ndarray, n_movies: int, rated: RatedIndex | None, k: int, *, what: str = "users scored"
) -> tuple[np.ndarray, np.ndarray]:
    """Each of `users`' k best movies they did not rate (per `rated`), and those scores: ((n, k) int32, (n, k) float32)."""
    users = np.asarray(users, dtype=np.int64)
    movies = np.empty((len(users), k), dtype=np.int32)
    values = np.full((len(users), k), np.nan, dtype=np.float32)
    for start, chunk, block in scored_chunks(score, users, n_movies, what):
        lists = top_k_block(block, k, rated.pairs(chunk) if rated is not None else None)
        movies[start : start + len(chunk)] = lists
        found = lists != PAD
        values[start : start + len(chunk)][found] = block[np.nonzero(found)[0], lists[found]]
    return movies, values


def top_k_with_offsets(
    score: BlockScorer, users: np.ndarray, n_movies: int, rated: RatedIndex | None, k: int, offsets: list[np.ndarray]
) -> list[np.ndarray]:
    """For each per-movie float32 offset, the movies `top_k_of_users` would list for `score` plus it
    (`with_prior(score, offset)`), scoring each chunk once: one model pass for a whole grid of priors."""
    users = np.asarray(users, dtype=np.int64)
    lists = [np.empty((len(users), k), dtype=np.int32) for _ in offsets]
    for start, chunk, block in scored_chunks(score, users, n_movies, "users scored"):
        exclude = rated.pairs(chunk) if rated is not None else None
        for out, offset in zip(lists, offsets):
            out[start : start + len(chunk)] = top_k_block(block + offset, k, exclude)
    return lists


def pair_scorer(predict: PredictFn, n_movies: int) -> BlockScorer:
    """A block scorer from predict(users, movies) -> scores over pairs (a Keras model's interface)."""
    all_movies = np.arange(n_movies, dtype=np.int64)

    def score(users: np.ndarray) -> np.ndarray:
        users = np.asarray(users, dtype=np.int64)
        return np.asarray(predict(np.repeat(users, n_movies), np.tile(all_movies, len(users)))).reshape(len(users), n_movies)

    return score


def keras_predictor(model, batch_size: int = 65536):
    """Wrap a two-input Keras model as predict(users, movies) -> ratings, the interface every scorer uses.

    It calls the model on fixed-size chunks rather than using `model.predict`, whose multi-step loop
    gave run-to-run differences of up to 5e-7 on mf_content's content projection here (and was slower
    on the notebook models): the same model and pairs must give the same bits, hence the same metrics.
    """
    return _chunked(lambda users, movies: model([users, movies], training=False), batch_size)


def traced_predictor(model, batch_size: int = 8192):
    """`keras_predictor` with the model traced once into a TensorFlow graph: what the pair models'
    lists score, every user x movie pair. Called eagerly, `hybrid`'s lists spent most of their time in
    Python and in copying 65,536-pair blocks of 400-wide inputs through memory; traced, on 8,192-pair
    blocks, they take less than half as long. For `collab` and `hybrid` the bits equal the eager
    call's (tests/test_models.py); not for `mf`, whose graph TensorFlow's constant folding rounds
    otherwise: so the test pairs, whatever the model, stay with `keras_predictor`."""
    import tensorflow as tf

    pairs = tf.TensorSpec((None, 1), tf.int32)
    return _chunked(tf.function(lambda users, movies: model([users, movies], training=False), input_signature=[pairs, pairs]), batch_size)


def _chunked(call, batch_size: int):
    """predict(users, movies) from call(users, movies) on (n, 1) int32 blocks of at most `batch_size` pairs."""

    def predict(users, movies):
        users = np.asarray(users, dtype=np.int32).reshape(-1, 1)
        movies = np.asarray(movies, dtype=np.int32).reshape(-1, 1)
        chunks = [np.asarray(call(users[i : i + batch_size], movies[i : i + batch_size])).reshape(-1) for i in range(0, len(users), batch_size)]
        return np.concatenate(chunks) if chunks else np.empty(0, dtype=np.float32)

    return predict


def unit_rows(histories):
    """A history model's input: each CSR row (`user_histories`) scaled to unit L2 norm; an empty row stays empty.

    Training and scoring both take it from here, so the model sees the same bits in both. Not
    tf.math.l2_normalize: its reciprocal square root starts from the CPU's approximate instruction,
    whose bits differ between Intel and AMD. Here each norm is an ordered `np.bincount` sum, a square
    root and a division, all correctly rounded: the same bits on any CPU."""
    rows = np.repeat(np.arange(histories.shape[0]), np.diff(histories.indptr))
    data = histories.data.astype(np.float64)
    norms = np.sqrt(np.bincount(rows, weights=data * data, minlength=histories.shape[0]))
    unit = histories.copy()
    unit.data = (data / norms[rows]).astype(np.float32)
    return unit


def factor_scorer(offset: float, user_bias: np.ndarray, movie_bias: np.ndarray, user_factors=None, movie_factors=None) -> BlockScorer:
    """offset + b_u + b_i (+ p_u . q_i): the bias baselines (no factors) and matrix factorisation."""

    def score(users: np.ndarray) -> np.ndarray:
        out = (offset + user_bias[users])[:, None] + movie_bias[None, :]
        if user_factors is not None:
            out = out + matmul(user_factors[users], movie_factors.T)  # portable: the same bits on any CPU
        return out

    return score


def popularity_prior(ratings_per_movie: np.ndarray, weight: float) -> np.ndarray:
    """`weight * log(1 + a movie's training ratings)` (float64, one per movie): added to a model's scores
    to rank, it lifts movies many people rated. Why: a user's next relevant movie is one they will both
    watch and like; a rating model predicts only the liking, and ranked alone it fills the list with
    movies few people ever see (`variants.<name>.popularity_prior`, chosen on validation)."""
    counts, position = np.unique(np.asarray(ratings_per_movie, dtype=np.int64), return_inverse=True)
    # math.log1p (the C library's, as on any x86-64) rather than numpy's, whose AVX-512 code rounds otherwise
    return weight * np.array([math.log1p(c) for c in counts], dtype=np.float64)[position.reshape(-1)]


def rating_prior(prepared, weight: float) -> np.ndarray | None:
    """A rating model's float32 `popularity_prior` per movie by its training ratings; None for weight 0."""
    if not weight:
        return None
    return popularity_prior(np.bincount(prepared.train.movie, minlength=len(prepared.movie_ids)), weight).astype(np.float32)


# An architecture whose Keras model maps (user, movie) pairs to ratings can take these three as its
# `scorer`, `serving` and `on_demand` (see movierec.architectures), and `keras_predictor` as its `predictor`.
# Their lists and on-demand scores come from `traced_predictor`.


def pair_model_scorer(model, settings, prepared, prior_weight: float) -> BlockScorer:
    """Its predicted ratings of every movie, plus its popularity prior when it ranks with one."""
    return ranked_with_prior(pair_scorer(traced_predictor(model), len(prepared.movie_ids)), prepared, prior_weight)


def ranked_with_prior(score: BlockScorer, prepared, prior_weight: float) -> BlockScorer:
    """A rating model's `score` as it ranks: plus its popularity prior (`rating_prior`), or as is for weight 0."""
    prior = rating_prior(prepared, prior_weight)
    return score if prior is None else with_prior(score, prior)


def pair_model_serving(model, settings, prepared, prior_weight: float) -> dict[str, np.ndarray]:
    """Its `ranking_prior` for the predictions file (none for weight 0): `recommend` adds it to rank."""
    prior = rating_prior(prepared, prior_weight)
    return {} if prior is None else {"ranking_prior": prior}


def pair_model_on_demand(stored: dict, model, prepared, user: int, settings, prior_weight: float) -> BlockScorer:
    """A scorer of any user from the loaded model (`recommend` adds the stored prior itself), as its lists were scored."""
    return pair_scorer(traced_predictor(model), len(prepared.movie_ids))


def with_prior(score: BlockScorer, prior: np.ndarray) -> BlockScorer:
    """`score` plus a per-movie float32 `prior`, in float32 as every block is ranked (`recommend` adds it the same way)."""
    return lambda users: np.asarray(score(users), dtype=np.float32) + prior


def ranking_users(test_user: np.ndarray, test_rating: np.ndarray, relevance_threshold: float, max_users: int, seed: int) -> tuple[np.ndarray, int]:
    """The users whose lists are measured (sorted) and how many were eligible (a relevant test movie).

    All of them by default; with `max_users` > 0 and more eligible users than that, a sample of
    `max_users` drawn with `seed`, for speed on huge data (the metrics and the report say so).
    """
    eligible = np.unique(np.asarray(test_user, dtype=np.int64)[np.asarray(test_rating) >= relevance_threshold])
    return sample_users(eligible, max_users, seed), len(eligible)


def sample_users(users: np.ndarray, max_users: int, seed: int) -> np.ndarray:
    """`users` (sorted, distinct), or with 0 < `max_users` < their number a sorted sample of that many drawn with `seed`."""
    if 0 < max_users < len(users):
        return np.sort(np.random.default_rng(seed).choice(users, size=max_users, replace=False))
    return users


def evaluation_lists(
    score: BlockScorer, train, test, n_users: int, n_movies: int, *, n: int, relevance_threshold: float, max_users: int, seed: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(users, their top-n movies not rated in `train`, those scores) for the users `ranking_users` picks."""
    users, _ = ranking_users(test.user, test.rating, relevance_threshold, max_users, seed)
    rated = RatedIndex.from_pairs(train.user, train.movie, n_users)
    movies, scores = top_k_of_users(score, users, n_movies, rated, n)
    return users, movies, scores


def clip_ratings(predicted: np.ndarray, rating_range: tuple[float, float]) -> np.ndarray:
    """Predicted ratings within the scale (data.min_rating, data.max_rating): what users see and RMSE measures."""
    low, high = rating_range
    return np.clip(predicted, low, high)


@dataclass(frozen=True)
class Catalogue:
    """The movies a history model scores, `movies` (sorted encoded ids) out of `n_movies`: its input and
    output columns. Every movie by default; with `variants.<name>.max_movies`, the most-rated ones, so a
    training epoch costs users x max_movies, not users x movies (the large-data override)."""

    movies: np.ndarray
    n_movies: int

    @classmethod
    def every(cls, n_movies: int) -> Catalogue:
        return cls(np.arange(n_movies, dtype=np.int32), n_movies)

    @classmethod
    def most_rated(cls, ratings_per_movie: np.ndarray, max_movies: int) -> Catalogue:
        """All movies when `max_movies` is 0 or covers them; else the `max_movies` most-rated (ties to the lower id)."""
        n = len(ratings_per_movie)
        if max_movies == 0 or max_movies >= n:
            return cls.every(n)
        picked = np.lexsort((np.arange(n), -np.asarray(ratings_per_movie)))[:max_movies]
        return cls(np.sort(picked).astype(np.int32), n)

    @classmethod
    def most_rated_in(cls, train: Split, n_movies: int, max_movies: int) -> Catalogue:
        """`most_rated` by the training ratings: what a ranker capped at `max_movies` scores."""
        return cls.most_rated(np.bincount(train.movie, minlength=n_movies), max_movies)

    @classmethod
    def from_stored(cls, stored: dict, n_movies: int) -> Catalogue:
        """The catalogue a predictions file holds (`stored`'s inverse): every movie if it holds none."""
        return cls(stored["catalogue"], n_movies) if "catalogue" in stored else cls.every(n_movies)

    @property
    def capped(self) -> bool:
        return len(self.movies) < self.n_movies

    def stored(self) -> dict:
        """The predictions file's `catalogue` key, written only when capped (no key: every movie)."""
        return {"catalogue": self.movies} if self.capped else {}

    def columns(self, movies: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(which of `movies` are in the catalogue, their columns)."""
        at = np.minimum(np.searchsorted(self.movies, movies), len(self.movies) - 1)
        inside = self.movies[at] == movies
        return inside, at[inside]

    def scatter(self, scores: np.ndarray) -> np.ndarray:
        """(rows, n_movies) float32: the catalogue's scores in place, NaN (ranked last) for every other movie."""
        if not self.capped:
            return np.asarray(scores, dtype=np.float32)
        out = np.full((len(scores), self.n_movies), np.nan, dtype=np.float32)
        out[:, self.movies] = scores
        return out


def user_histories(rows: Split, n_users: int, catalogue: Catalogue, positive_threshold: float, low_weight: float):
    """Each user's rated catalogue movies as one CSR row (users x catalogue, sparse), weighted 1 for a
    rating at or above `positive_threshold` and `low_weight` below it: the history model's input and target."""
    import scipy.sparse as sp

    inside, columns = catalogue.columns(np.asarray(rows.movie))
    weights = np.where(np.asarray(rows.rating)[inside] >= positive_threshold, 1.0, low_weight).astype(np.float32)
    shape = (n_users, len(catalogue.movies))
    histories = sp.csr_matrix((weights, (np.asarray(rows.user)[inside], columns)), shape=shape, dtype=np.float32)
    histories.sum_duplicates()
    histories.sort_indices()
    return histories
