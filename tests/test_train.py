import numpy as np

from movierec.prepare import Split
from movierec.train import batches


def _rows(n=10):
    return Split(np.arange(n), np.arange(n) + 100, np.arange(n, dtype=np.float64) / 2)


def _passes(dataset, n):
    return [np.concatenate([u.numpy().ravel() for (u, _), _ in dataset]) for _ in range(n)]


def test_batches_keep_rows_together_and_cover_each_row_once_per_pass():
    dataset = batches(_rows(), batch_size=4, seed=7)
    sizes = [len(y) for _, y in dataset]
    assert sizes == [4, 4, 2]
    for (user, movie), rating in dataset:
        assert user.shape == (len(rating), 1) and user.dtype.name == "int32" and rating.dtype.name == "float32"
        np.testing.assert_array_equal(movie.numpy(), user.numpy() + 100)
        np.testing.assert_array_equal(rating.numpy(), user.numpy() / 2)
    for order in _passes(dataset, 3):
        assert sorted(order) == list(range(10))


def test_batches_reshuffle_every_pass_reproducibly_for_a_seed():
    first, second, third = _passes(batches(_rows(50), batch_size=8, seed=7), 3)
    assert not np.array_equal(first, second) and not np.array_equal(second, third)
    again = _passes(batches(_rows(50), batch_size=8, seed=7), 3)
    assert all(np.array_equal(a, b) for a, b in zip([first, second, third], again))
    other_seed = _passes(batches(_rows(50), batch_size=8, seed=8), 1)[0]
    assert not np.array_equal(first, other_seed)


def test_batches_without_a_seed_keep_row_order():
    (order,) = _passes(batches(_rows(), batch_size=3), 1)
    np.testing.assert_array_equal(order, np.arange(10))


def test_batches_tell_keras_how_many_steps_an_epoch_has():
    assert batches(_rows(10), batch_size=4, seed=1).cardinality().numpy() == 3
    assert batches(_rows(10), batch_size=4).cardinality().numpy() == 3


def test_batches_larger_than_the_data_give_one_short_batch():
    (batch,) = list(batches(_rows(10), batch_size=16, seed=3))
    (user, movie), rating = batch
    assert sorted(user.numpy().ravel()) == list(range(10)) and rating.shape == (10, 1)
