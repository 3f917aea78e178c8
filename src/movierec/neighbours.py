"""An item-neighbour rating model in NumPy: Surprise's KNNBaseline, item-based, pearson_baseline similarity.

A rating is a baseline (mu + b_u + b_i, the bias model's ALS) plus what the user's ratings of the k
movies most like this one say beyond their own baselines:

    r(u, i) = b(u, i) + sum_j s(i, j) (r(u, j) - b(u, j)) / sum_j s(i, j)

over the k movies j the user rated with the largest positive similarity s to i (Koren 2010, eq. 3).
s is the Pearson correlation of the two movies' baseline residuals over the users who rated both,
shrunk towards 0 by (n - 1) / (n - 1 + shrinkage) for n common raters.

It looks at the data differently from the factor models (local, pair by pair), which is what a blend
gains from. Memory: the similarities are computed a block of movies at a time, each block only for the
pairs to predict on those movies, so nothing is movies x movies; `max_movies` caps the catalogue it
uses (the others get the baseline alone). Every step is a sparse product (scipy's ordered loops),
elementwise arithmetic, a sort or an ordered `np.bincount`, so the bits are the same on any x86-64 CPU.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse

from movierec.biases import fit_biases
from movierec.params.blend import NeighbourParams
from movierec.prepare import Split
from movierec.scoring import Catalogue

BLOCK_BYTES = 48 * 2**20  # a block's dense similarity temporaries at most about this big
GATHER = 2**22  # (pair, rated movie) candidates looked at per step


def predict(train: Split, users: np.ndarray, movies: np.ndarray, n_users: int, n_movies: int, p: NeighbourParams) -> np.ndarray:
    """The model fitted on `train`, predicting the pairs (users[r], movies[r]): float64."""
    users, movies = np.asarray(users, dtype=np.int64), np.asarray(movies, dtype=np.int64)
    base = fit_biases(train, n_users, n_movies, reg_user=p.reg_user, reg_item=p.reg_item, n_iters=p.iters)
    estimate = base.predict(users, movies)
    catalogue = Catalogue.most_rated_in(train, n_movies, p.max_movies)
    inside, column = catalogue.columns(np.asarray(train.movie))
    residual = (np.asarray(train.rating, dtype=np.float64) - base.predict_rows(train))[inside]
    shape = (n_users, len(catalogue.movies))
    rated = scipy.sparse.csr_matrix((residual, (np.asarray(train.user)[inside], column)), shape=shape)
    rated.sum_duplicates()
    rated.sort_indices()
    ones = scipy.sparse.csr_matrix((np.ones_like(rated.data), rated.indices, rated.indptr), shape=shape)
    squares = scipy.sparse.csr_matrix((rated.data * rated.data, rated.indices, rated.indptr), shape=shape)
    by_movie = rated.tocsc()  # a block's columns; its ones and squares are made from them

    wanted, wanted_column = catalogue.columns(movies)
    order = np.argsort(wanted_column, kind="stable")
    pairs, wanted_column = np.flatnonzero(wanted)[order], wanted_column[order]  # by column
    block = max(1, BLOCK_BYTES // (8 * 6 * max(shape[1], 1)))
    starts = np.searchsorted(wanted_column, np.arange(0, shape[1], block))
    ends = np.append(starts[1:], len(pairs))
    for first, start, end in zip(range(0, shape[1], block), starts, ends):
        if start == end:
            continue
        block_rated = by_movie[:, first : first + block].T.tocsr()
        block_ones, block_squares = (scipy.sparse.csr_matrix((values, block_rated.indices, block_rated.indptr), shape=block_rated.shape)
                                     for values in (np.ones_like(block_rated.data), block_rated.data * block_rated.data))
        similarity = _similarities(block_rated, block_ones, block_squares, rated, ones, squares, p.shrinkage)
        mine = pairs[start:end]
        estimate[mine] += _neighbourhood(similarity, wanted_column[start:end] - first, users[mine], rated, p.neighbours)
    return estimate


def _similarities(block_rated, block_ones, block_squares, rated, ones, squares, shrinkage: float) -> np.ndarray:
    """(block movies, catalogue) shrunk Pearson correlations of the baseline residuals over common raters."""
    products = (block_rated @ rated).toarray()
    common = (block_ones @ ones).toarray()
    spread = (block_squares @ ones).toarray()  # sum of the block movie's squared residuals over common raters
    spread *= (block_ones @ squares).toarray()  # times the other movie's
    np.sqrt(spread, out=spread)
    similarity = np.divide(products, spread, out=np.zeros_like(products), where=spread > 0)
    del products, spread
    common -= 1.0
    shrink = common / (common + shrinkage) if shrinkage > 0 else np.ones_like(common)
    shrink[common < 0] = 0.0  # no common rater (Surprise's min_support 1)
    similarity *= shrink
    return similarity


def _neighbourhood(similarity: np.ndarray, rows: np.ndarray, users: np.ndarray, rated, k: int) -> np.ndarray:
    """For each pair (similarity row rows[r], user users[r]): the similarity-weighted mean residual of
    the user's k most similar rated movies with positive similarity (0 with none), in steps of GATHER
    candidates."""
    counts = rated.indptr[users + 1] - rated.indptr[users]
    out = np.zeros(len(users))
    ends = np.cumsum(counts)
    first = 0
    while first < len(users):
        last = max(first + 1, int(np.searchsorted(ends, ends[first] - counts[first] + GATHER, side="right")))
        step = slice(first, last)
        pair = np.repeat(np.arange(last - first), counts[step])
        offset = np.cumsum(counts[step]) - counts[step]  # where each pair's candidates start in this step
        at = np.arange(len(pair)) - offset[pair] + rated.indptr[users[step]][pair]  # into the user's rated movies
        weight = similarity[rows[step][pair], rated.indices[at]]
        keep = weight > 0
        pair, weight, residual = pair[keep], weight[keep], rated.data[at[keep]]
        order = np.lexsort((-weight, pair))  # within a pair, most similar first (ties: the movie order)
        pair, weight, residual = pair[order], weight[order], residual[order]
        rank = np.arange(len(pair)) - np.searchsorted(pair, pair)
        near = rank < k
        n = last - first
        total = np.bincount(pair[near], weights=weight[near], minlength=n)
        out[step] = np.divide(np.bincount(pair[near], weights=(weight * residual)[near], minlength=n), total,
                              out=np.zeros(n), where=total > 0)
        first = last
    return out
