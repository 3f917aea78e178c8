"""Linear algebra whose results are the same bits on every x86-64 CPU.

BLAS and LAPACK choose their kernels at run time from the CPU (OpenBLAS's Haswell, SkylakeX, Zen...),
and each kernel adds a dot product's terms in its own order, with or without fused multiply-adds, so
the last bits of numpy's `@`, of `numpy.linalg` and of scikit-learn's SVD depend on the machine
(measured in benchmarks/results/cpu_kernels.md); a model trained on them then drifts further. Here:

- a product is split (Ozaki's scheme) into slices of whole numbers small enough that every partial
  sum of a slice product is below 2^53: BLAS computes those exactly, whatever kernel, order or FMA it
  uses, and the slice products are added in a fixed order;
- everything else is elementwise + - * / sqrt, which IEEE 754 rounds the same at any SIMD width, one
  numpy call per operation (so no compiler can fuse a multiply-add), and numpy sums along an axis,
  whose order numpy's own code fixes.
"""

from __future__ import annotations

import functools
import math
import os

import numpy as np

MATMUL_BLOCK_BYTES = 32 * 2**20  # a block's slices and temporaries at most about this big (see matmul)
BASE = 64  # below this size the triangular factorisations run column by column
slice_product = np.matmul  # BLAS; any summation order gives the same bits here (tests swap in others)


@functools.cache
def _blas():
    """threadpoolctl's view of the loaded BLAS, made at the first product."""
    from threadpoolctl import ThreadpoolController

    return ThreadpoolController()


def _every_core():
    """BLAS on every core this process may use, for the slice products only: their bits do not depend on
    how BLAS splits them over threads (everything else keeps the one thread `environment.pin_kernels` sets)."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return _blas().limit(limits=cores or 1, user_api="blas")


def _times_power_of_two(x: np.ndarray, k) -> np.ndarray:
    """x * 2^k, the same bits as np.ldexp(x, k) (exact, or correctly rounded at the ends of the range),
    by one multiplication when every 2^k is a float64: np.ldexp takes about six times as long."""
    k = np.asarray(k)
    if k.size and (k.min() < -1074 or k.max() > 1023):  # 2^k would round to 0 or overflow
        return np.ldexp(x, k)
    return x * np.ldexp(1.0, k)


def _slices(x: np.ndarray, axis: int, bits: int, count: int) -> tuple[list[np.ndarray], np.ndarray]:
    """x = 2^(e - bits) * sum_s slice_s * 2^(-s bits), e per row (axis=1) or column (axis=0), where each
    slice holds whole numbers of magnitude at most 2^bits. Returns the slices and e (what is left after
    `count` slices, below 2^-(count bits) of the row's largest entry, is dropped)."""
    largest = np.max(np.abs(x), axis=axis, keepdims=True) if x.size else np.zeros((1, 1))
    exponent = np.frexp(largest)[1]  # |x| < 2^e along the row or column
    rest = _times_power_of_two(x, bits - exponent)
    out = []
    for _ in range(count):
        whole = np.rint(rest)
        out.append(whole)
        rest = _times_power_of_two(rest - whole, bits)  # exact: a number minus its nearest integer, then a power of two
    return out, exponent


def matmul(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """a @ b, the same bits on any CPU: float32 if both are float32 (accurate to float32), else float64.

    Works through blocks of a's rows and b's columns, each block's slices and temporaries within
    MATMUL_BLOCK_BYTES: memory beyond the inputs and the result stays bounded, and the bits do not
    depend on the blocks (each row's and column's scale is its own).
    """
    a, b = np.asarray(a), np.asarray(b)
    single = a.dtype == np.float32 and b.dtype == np.float32
    if a.ndim != 2 or b.ndim != 2 or a.shape[1] != b.shape[0]:
        raise ValueError(f"matmul: shapes {a.shape} and {b.shape} do not chain")
    depth = a.shape[1]
    bits = (53 - max(depth - 1, 1).bit_length()) // 2  # depth products of two slices sum below 2^53
    count = math.ceil(((24 if single else 53) + 4) / bits)
    out = np.empty((a.shape[0], b.shape[1]), dtype=np.float32 if single else np.float64)
    row_step = max(1, MATMUL_BLOCK_BYTES // (8 * count * max(depth, 1)))
    with _every_core():
        for row in range(0, a.shape[0], row_step):
            a_slices, a_exp = _slices(a[row : row + row_step].astype(np.float64), 1, bits, count)
            rows = len(a_slices[0])
            col_step = max(1, MATMUL_BLOCK_BYTES // (8 * (count * depth + 3 * rows)))
            for col in range(0, b.shape[1], col_step):
                b_slices, b_exp = _slices(b[:, col : col + col_step].astype(np.float64), 0, bits, count)
                total = None
                for order in reversed(range(count)):  # smallest terms first; each order's products are exact
                    term = None
                    for s in range(order + 1):
                        product = slice_product(a_slices[s], b_slices[order - s])
                        term = product if term is None else term + product
                    total = term if total is None else term + _times_power_of_two(total, -bits)
                out[row : row + row_step, col : col + col_step] = _times_power_of_two(_times_power_of_two(total, a_exp - bits), b_exp - bits)
    return out


def _cholesky_base(g: np.ndarray) -> np.ndarray:
    n = len(g)
    low = np.zeros_like(g)
    for j in range(n):
        pivot = g[j, j] - np.sum(low[j, :j] * low[j, :j])
        if not pivot > 0:
            raise np.linalg.LinAlgError(f"not positive definite (pivot {j})")
        low[j, j] = np.sqrt(pivot)
        low[j + 1 :, j] = (g[j + 1 :, j] - np.sum(low[j + 1 :, :j] * low[j, :j], axis=1)) / low[j, j]
    return low


def _lower_inverse_base(low: np.ndarray) -> np.ndarray:
    n = len(low)
    inv = np.zeros_like(low)
    for i in range(n):
        inv[i, i] = 1.0 / low[i, i]
        if i:
            inv[i, :i] = -np.sum(low[i, :i, None] * inv[:i, :i], axis=0) / low[i, i]
    return inv


def lower_inverse(low: np.ndarray) -> np.ndarray:
    """The inverse of a lower-triangular matrix, by halves: [[A, 0], [C, D]]^-1 = [[A^-1, 0], [-D^-1 C A^-1, D^-1]]."""
    low = np.asarray(low, dtype=np.float64)
    n = len(low)
    if n <= BASE:
        return _lower_inverse_base(low)
    h = n // 2
    top, bottom = lower_inverse(low[:h, :h]), lower_inverse(low[h:, h:])
    inv = np.zeros_like(low)
    inv[:h, :h], inv[h:, h:] = top, bottom
    inv[h:, :h] = -matmul(bottom, matmul(low[h:, :h], top))
    return inv


def cholesky(g: np.ndarray) -> np.ndarray:
    """Lower L with L L^T = g (symmetric positive definite), by halves; raises numpy's LinAlgError otherwise."""
    g = np.asarray(g, dtype=np.float64)
    n = len(g)
    if n <= BASE:
        return _cholesky_base(g)
    h = n // 2
    top = cholesky(g[:h, :h])
    left = matmul(g[h:, :h], lower_inverse(top).T)
    low = np.zeros_like(g)
    low[:h, :h], low[h:, :h] = top, left
    low[h:, h:] = cholesky(g[h:, h:] - matmul(left, left.T))
    return low


def spd_inverse(g: np.ndarray) -> np.ndarray:
    """g^-1 for symmetric positive definite g, as (L^-1)^T L^-1."""
    inv = lower_inverse(cholesky(g))
    return matmul(inv.T, inv)


def spd_inverse_stack(a: np.ndarray) -> np.ndarray:
    """The inverses of a stack (k, n, n) of small symmetric positive definite matrices (a Bayesian model's
    posteriors, one per user), as `spd_inverse` computes one: Cholesky column by column, the triangular
    inverse, then L^-T L^-1. Laid out for the stack: each step is one elementwise operation over all k
    matrices at once and each sum runs over n in index order (`rowwise_dot`), so the cost is n^3 numpy
    calls on k-long vectors, whatever k."""
    k, n, _ = a.shape
    low = np.zeros_like(a)
    for j in range(n):
        pivot = a[:, j, j] - rowwise_dot(low[:, j, :j], low[:, j, :j])
        if not np.all(pivot > 0):
            raise np.linalg.LinAlgError(f"not positive definite (pivot {j})")
        low[:, j, j] = np.sqrt(pivot)
        for i in range(j + 1, n):
            low[:, i, j] = (a[:, i, j] - rowwise_dot(low[:, i, :j], low[:, j, :j])) / low[:, j, j]
    inv = np.zeros_like(a)
    for i in range(n):
        inv[:, i, i] = 1.0 / low[:, i, i]
        for j in range(i):
            inv[:, i, j] = -rowwise_dot(low[:, i, j:i], inv[:, j:i, j]) / low[:, i, i]
    out = np.empty_like(a)
    for r in range(n):
        for c in range(r, n):
            out[:, r, c] = out[:, c, r] = rowwise_dot(inv[:, c:, r], inv[:, c:, c])  # (L^-T L^-1)[r, c], L^-1 lower
    return out


def rowwise_dot(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Row by row dot products of two (k, n) arrays, added in index order: n elementwise steps over
    k-long vectors (numpy's own sum of a short row costs a call per row)."""
    total = np.zeros(x.shape[0])
    for t in range(x.shape[-1]):
        total = total + x[:, t] * y[:, t]
    return total


def _round_robin(n: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """n - 1 rounds of n/2 disjoint pairs (n even) that together pair every index with every other once."""
    players = np.arange(n)
    rounds = []
    for _ in range(n - 1):
        rounds.append((players[: n // 2].copy(), players[n // 2 :][::-1].copy()))
        players = np.concatenate([players[:1], players[-1:], players[1:-1]])
    return rounds


def symmetric_eigen(g: np.ndarray, max_sweeps: int = 30) -> tuple[np.ndarray, np.ndarray]:
    """Eigenvalues (descending) and eigenvectors (columns) of a symmetric matrix by Jacobi rotations.

    Each round rotates n/2 disjoint index pairs at once (round-robin order), so a sweep is n - 1
    vectorised rounds; an entry already below float64's resolution against its diagonal is not
    rotated, and the sweeps stop when none is left. For small matrices (the SVD's last step).
    """
    g = np.asarray(g, dtype=np.float64)
    n = len(g)
    size = n + n % 2  # an odd size gets a zero row and column, which no rotation touches
    a = np.zeros((size, size))
    a[:n, :n] = (g + g.T) / 2
    vectors = np.eye(size)
    rounds = _round_robin(size)
    for _ in range(max_sweeps):
        rotated = False
        for p, q in rounds:
            apq, app, aqq = a[p, q], a[p, p], a[q, q]
            rotate = np.abs(apq) > 1e-17 * np.sqrt(np.abs(app) * np.abs(aqq))
            if not rotate.any():
                continue
            rotated = True
            tau = (aqq - app) / np.where(rotate, 2 * apq, 1.0)
            t = np.where(tau >= 0, 1.0, -1.0) / (np.abs(tau) + np.sqrt(1.0 + tau * tau))
            t = np.where(rotate, t, 0.0)
            c = 1.0 / np.sqrt(1.0 + t * t)
            s = t * c
            rows_p, rows_q = a[p, :], a[q, :]
            a[p, :], a[q, :] = c[:, None] * rows_p - s[:, None] * rows_q, s[:, None] * rows_p + c[:, None] * rows_q
            cols_p, cols_q = a[:, p], a[:, q]
            a[:, p], a[:, q] = cols_p * c - cols_q * s, cols_p * s + cols_q * c
            cols_p, cols_q = vectors[:, p], vectors[:, q]
            vectors[:, p], vectors[:, q] = cols_p * c - cols_q * s, cols_p * s + cols_q * c
        if not rotated:
            break
    values = np.diag(a)[:n]
    order = np.argsort(-values, kind="stable")
    return values[order], vectors[:n, :n][:, order]


def sign_fixed(columns: np.ndarray) -> np.ndarray:
    """`columns` with each column's largest-|.| entry made positive (the first, on ties): a sign rule,
    as scikit-learn's, so that signs never fall as a solver's rounding does."""
    largest = np.argmax(np.abs(columns), axis=0)
    return columns * np.where(columns[largest, np.arange(columns.shape[1])] < 0, -1.0, 1.0)


def normalize_rows(x: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length, as scikit-learn's `normalize` (a zero row stays zero), without BLAS."""
    norms = np.sqrt(np.sum(x * x, axis=1, keepdims=True))
    return x / np.where(norms > 0, norms, 1.0)


def _orthonormal_columns(y: np.ndarray, passes: int = 1) -> np.ndarray:
    """Columns spanning y's by Cholesky QR (twice: orthonormal to float64; once: well-conditioned enough
    between power iterations), shifted so that a rank-deficient y passes. Keeps y's dtype."""
    for _ in range(passes):
        gram = matmul(y.T, y).astype(np.float64)
        # larger than the Gram's rounding errors (each at most eps * its largest diagonal entry), so the
        # factorisation never fails; y R^-1 spans y's columns whatever R is, and a second pass orthonormalises
        shift = 2 * len(gram) * np.finfo(y.dtype).eps * max(float(np.max(np.diag(gram))), np.finfo(np.float64).tiny)
        gram[np.diag_indices_from(gram)] += shift
        y = matmul(y, lower_inverse(cholesky(gram)).T.astype(y.dtype))
    return y


def truncated_svd(matrix, dim: int, seed: int, n_iter: int = 5, oversamples: int = 10) -> np.ndarray:
    """The rows of `matrix` (scipy.sparse or dense) in its top `dim` singular directions: U_dim * S_dim.

    Halko et al.'s randomized SVD, as scikit-learn's TruncatedSVD (a seeded Gaussian start, `n_iter`
    power iterations in float32, `oversamples` extra columns), every product portable: scipy.sparse's
    sparse x dense products never call BLAS, dense ones go through `matmul`, and the last, small SVD
    is an eigen-decomposition by `symmetric_eigen` in float64. The last step reads a dense matrix at
    its own precision (a sparse one as float32). Returns float64.
    """
    import scipy.sparse

    sparse = scipy.sparse.issparse(matrix)
    given = None if sparse else np.asarray(matrix)
    matrix = matrix.tocsr().astype(np.float32) if sparse else given.astype(np.float32)
    transposed = matrix.T.tocsr() if sparse else np.ascontiguousarray(matrix.T)

    def times(m, x):
        return m @ x if sparse else matmul(m, x)

    n_rows, n_cols = matrix.shape
    width = min(dim + oversamples, n_rows, n_cols)
    q = np.random.default_rng(seed).standard_normal((n_cols, width), dtype=np.float32)
    q = _orthonormal_columns(times(matrix, q))
    for _ in range(n_iter):
        q = _orthonormal_columns(times(matrix, times(transposed, q)))
    q = _orthonormal_columns(q.astype(np.float64), passes=2)
    small = (transposed.astype(np.float64) @ q).T if sparse else matmul(q.T, given.astype(np.float64))
    values, vectors = symmetric_eigen(matmul(small, small.T))  # small = (rows' coordinates in q's basis)^T
    singular = np.sqrt(np.maximum(values[:dim], 0.0))
    left = matmul(q, vectors[:, :dim])
    return sign_fixed(left) * singular
