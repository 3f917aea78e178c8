"""portable_linalg: results that do not depend on how BLAS orders its sums, and the stages built on it.

Another CPU makes OpenBLAS (and oneDNN) pick other kernels, which add a product's terms in another
order. These tests swap the one BLAS call portable_linalg makes for products that sum in other orders,
and check that nothing changes by a bit; and that the same swap does change a plain product, so they
could fail.
"""

import os

import numpy as np
import pandas as pd
import pytest
import scipy.linalg

from movierec import baselines, content, portable_linalg
from movierec.prepare import Split
from movierec.scoring import factor_scorer, popularity_prior


def reversed_order(a, b):
    """a @ b with the depth summed backwards."""
    return np.ascontiguousarray(a[:, ::-1]) @ np.ascontiguousarray(b[::-1, :])


def in_halves(a, b):
    """a @ b as the sum of the products over the two halves of the depth."""
    h = a.shape[1] // 2
    return a[:, :h] @ b[:h] + a[:, h:] @ b[h:]


def one_at_a_time(a, b):
    """a @ b term by term, in index order, without BLAS."""
    out = np.zeros((a.shape[0], b.shape[1]))
    for j in range(a.shape[1]):
        out += a[:, j, None] * b[None, j, :]
    return out


OTHER_ORDERS = [reversed_order, in_halves, one_at_a_time]


@pytest.fixture
def rng():
    return np.random.default_rng(7)


def test_scaling_by_a_power_of_two_gives_ldexps_bits_at_every_scale(rng):
    """The multiplication that replaces np.ldexp rounds as it does, down to subnormal results and past
    the ends of float64's range (where it hands over to np.ldexp itself)."""
    x = rng.standard_normal((50, 40)) * np.exp2(rng.integers(-60, 60, (50, 40)))
    for k in (0, 26, -26, -1000, -1070, 1000, -1100, 1100):
        exponents = k + rng.integers(-30, 30, (50, 1))
        np.testing.assert_array_equal(portable_linalg._times_power_of_two(x, exponents), np.ldexp(x, exponents))
    assert np.any(np.ldexp(x, -1070 + np.zeros((50, 1), dtype=int)) != 0)  # the subnormal range was reached


def test_a_plain_product_changes_with_the_summation_order(rng):
    """What the rest guards against: the same product summed in another order gives other bits."""
    a, b = rng.standard_normal((40, 500)), rng.standard_normal((500, 30))
    assert any(not np.array_equal(a @ b, other(a, b)) for other in OTHER_ORDERS)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_matmul_gives_the_same_bits_whatever_the_summation_order(rng, monkeypatch, dtype):
    scales = np.exp(rng.uniform(-8, 8, (60, 1)))  # rows of very different magnitudes, and tiny entries among large
    a = (rng.standard_normal((60, 700)) * scales * np.exp(rng.uniform(-20, 0, (60, 700)))).astype(dtype)
    b = rng.standard_normal((700, 50)).astype(dtype)
    b[:, 3] = 0.0  # a zero column
    reference = portable_linalg.matmul(a, b)
    assert reference.dtype == dtype
    for other in OTHER_ORDERS:
        monkeypatch.setattr(portable_linalg, "slice_product", other)
        np.testing.assert_array_equal(portable_linalg.matmul(a, b), reference)
    # as accurate as a float product: within a few units of rounding of sum |a_ij b_jk|
    a64, b64 = a.astype(np.float64), b.astype(np.float64)
    bound = 4 * np.finfo(dtype).eps * (np.abs(a64) @ np.abs(b64))
    assert np.all(np.abs(reference - a64 @ b64) <= bound)


def test_matmul_works_in_column_blocks_without_changing_a_bit(rng, monkeypatch):
    a, b = rng.standard_normal((30, 200)), rng.standard_normal((200, 77))
    whole = portable_linalg.matmul(a, b)
    monkeypatch.setattr(portable_linalg, "MATMUL_BLOCK_BYTES", 8 * 30 * 10)  # ten columns at a time, the last short
    np.testing.assert_array_equal(portable_linalg.matmul(a, b), whole)


def test_matmul_uses_every_core_for_its_slice_products_and_the_bits_stay(rng, monkeypatch):
    from threadpoolctl import threadpool_info, threadpool_limits

    def blas_threads():
        return {lib["num_threads"] for lib in threadpool_info() if lib["user_api"] == "blas"}

    seen = []

    def recording(x, y):
        seen.append(blas_threads())
        return np.matmul(x, y)

    a, b = rng.standard_normal((300, 500)), rng.standard_normal((500, 200))
    monkeypatch.setattr(portable_linalg, "slice_product", recording)
    with threadpool_limits(limits=1, user_api="blas"):  # what the stages set (environment.pin_kernels)
        many = portable_linalg.matmul(a, b)
        assert blas_threads() == {1}  # given back afterwards
    cores = len(os.sched_getaffinity(0))
    assert seen and all(threads == {cores} for threads in seen)
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0})  # as under `taskset -c 0`
    seen.clear()
    np.testing.assert_array_equal(portable_linalg.matmul(a, b), many)
    assert seen and all(threads == {1} for threads in seen)


def test_cholesky_inverse_and_eigen_match_lapack_to_rounding_without_calling_it(rng, monkeypatch):
    x = rng.standard_normal((300, 150))
    g = x.T @ x + 3 * np.eye(150)  # 150 > BASE: the halving path
    expected_low, expected_inv, expected_values = np.linalg.cholesky(g), np.linalg.inv(g), np.linalg.eigvalsh(g[:51, :51])[::-1]

    def refuse(*args, **kwargs):
        raise AssertionError("called LAPACK")

    for module, name in [(np.linalg, "cholesky"), (np.linalg, "inv"), (np.linalg, "eigh"), (np.linalg, "svd"),
                         (np.linalg, "eigvalsh"), (np.linalg, "solve"), (scipy.linalg, "cholesky"), (scipy.linalg, "eigh"),
                         (scipy.linalg, "lapack"), (np, "dot")]:
        monkeypatch.setattr(module, name, refuse)
    low = portable_linalg.cholesky(g)
    np.testing.assert_allclose(low, expected_low, atol=1e-12)
    inverse = portable_linalg.spd_inverse(g)
    np.testing.assert_allclose(inverse, expected_inv, atol=1e-12)
    values, vectors = portable_linalg.symmetric_eigen(g[:51, :51])  # odd: padded
    np.testing.assert_allclose(values, expected_values, rtol=1e-12)
    np.testing.assert_allclose(portable_linalg.matmul(vectors * values, vectors.T), g[:51, :51], atol=1e-9)
    np.testing.assert_allclose(portable_linalg.matmul(vectors.T, vectors), np.eye(51), atol=1e-12)
    with pytest.raises(np.linalg.LinAlgError):
        portable_linalg.cholesky(-g)


def test_a_stack_of_small_matrices_inverts_like_lapack_and_like_one_matrix(rng):
    """The Bayesian model's per-user posteriors: one call over the stack."""
    x = rng.standard_normal((50, 11, 20))
    a = x @ np.swapaxes(x, 1, 2) + 0.1 * np.eye(11)
    inverse = portable_linalg.spd_inverse_stack(a)
    np.testing.assert_allclose(inverse, np.linalg.inv(a), rtol=1e-10, atol=1e-12)
    for k in (0, 17, 49):
        np.testing.assert_allclose(inverse[k], portable_linalg.spd_inverse(a[k]), rtol=1e-12, atol=1e-14)
    with pytest.raises(np.linalg.LinAlgError):
        portable_linalg.spd_inverse_stack(-a)


def test_eigenvalues_are_lapacks(rng):
    s = rng.standard_normal((120, 120))
    s = s + s.T
    values, vectors = portable_linalg.symmetric_eigen(s)
    np.testing.assert_allclose(values, np.linalg.eigvalsh(s)[::-1], atol=1e-10)
    assert np.all(np.diff(values) <= 0)


def test_truncated_svd_finds_the_leading_singular_values_and_is_order_independent(rng, monkeypatch):
    import scipy.sparse

    dense = rng.standard_normal((400, 12)) @ rng.standard_normal((12, 300)) + 0.01 * rng.standard_normal((400, 300))
    matrix = scipy.sparse.csr_matrix(np.where(np.abs(dense) > 0.5, dense, 0.0))
    top = np.linalg.svd(matrix.toarray(), compute_uv=False)[:12]
    coords = portable_linalg.truncated_svd(matrix, 12, seed=0)
    np.testing.assert_allclose(np.sqrt(np.sum(coords * coords, axis=0)), top, rtol=1e-4)
    monkeypatch.setattr(portable_linalg, "slice_product", reversed_order)
    np.testing.assert_array_equal(portable_linalg.truncated_svd(matrix, 12, seed=0), coords)
    dense_coords = portable_linalg.truncated_svd(matrix.toarray(), 12, seed=0)  # the dense path (tag genome)
    np.testing.assert_allclose(np.abs(dense_coords), np.abs(coords), atol=1e-4)


def test_content_vectors_ease_and_factor_scores_do_not_depend_on_the_summation_order(rng, monkeypatch):
    words = ["drama", "comedy", "space", "war", "love", "robot", "heist", "ghost", "horse", "music", "city", "sea"]
    texts = pd.Series([" ".join(rng.choice(words, 5)) for _ in range(80)], index=np.arange(80) + 1)
    users, movies = rng.integers(0, 60, 1500), rng.integers(0, 90, 1500)
    train = Split(users, movies, rng.choice([1.0, 3.0, 4.5], 1500))
    factors = [rng.standard_normal((60, 8)).astype(np.float32), rng.standard_normal((90, 8)).astype(np.float32)]

    def outputs():
        vectors = content.build_content_vectors(texts, dim=6, min_df=1, seed=0)
        ease = baselines.fit_ease(train, 60, 90, reg=20.0, positive_threshold=4.0, score_low_weight=0.5)
        scores = factor_scorer(3.5, np.zeros(60, np.float32), np.zeros(90, np.float32), *factors)(np.arange(60))
        return np.stack(list(vectors.values())), ease.weights, ease.score_users(np.arange(60)), scores

    reference = outputs()
    for other in (reversed_order, one_at_a_time):
        monkeypatch.setattr(portable_linalg, "slice_product", other)
        for got, want in zip(outputs(), reference):
            np.testing.assert_array_equal(got, want)


def test_the_popularity_prior_uses_the_c_librarys_log1p():
    counts = np.array([0, 1, 2, 7, 7, 1000, 123456])
    import math

    np.testing.assert_array_equal(popularity_prior(counts, 0.5), [0.5 * math.log1p(c) for c in counts])
