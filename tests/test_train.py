import numpy as np
import pytest

from movierec.prepare import Split
from movierec.examples import rating_batches as batches


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


@pytest.mark.parametrize("held_movies, chosen", [((0, 1), 5.0), ((10, 11), 0.0)])
def test_the_popularity_prior_is_chosen_by_validation_ndcg(held_movies, chosen, capsys):
    """The scorer prefers the rarely rated movies 10 and 11; movies 0 and 1 are rated by users 0-3.
    When the held-out relevant movies are the popular ones, a large prior wins; when they are the
    scorer's favourites, none does."""
    from movierec.lists import choose_popularity_prior
    from movierec.params.evaluate import EvaluateParams
    from movierec.prepare import Prepared

    n_users, n_movies = 6, 12
    fit_user = np.array([0, 0, 1, 1, 2, 2, 3, 3, 4, 5])
    fit_movie = np.array([0, 1, 0, 1, 0, 1, 0, 1, 2, 3])
    held = Split(np.array([4, 5, 4, 5]), np.array([held_movies[0], held_movies[1], 5, 6]), np.array([5.0, 4.5, 2.0, 1.0]))
    carve = Prepared(np.arange(n_users), np.arange(n_movies), Split(fit_user, fit_movie, np.full(10, 4.0)), held)
    score = lambda users: np.tile(np.linspace(3.0, 4.0, n_movies), (len(users), 1))  # noqa: E731
    e = EvaluateParams(k=2, relevance_threshold=4.0, top_n=2, max_users=0, seed=0)
    result = choose_popularity_prior(score, carve, [0.0, 5.0], e)
    assert result["popularity_prior"] == chosen
    ndcg = result["popularity_prior_validation_ndcg_at_2"]
    assert len(ndcg) == 2 and min(ndcg) == 0.0 and max(ndcg) > 0.8  # the other choice finds nothing
    assert "popularity_prior 5: validation NDCG@2" in capsys.readouterr().out
