"""Unit tests of each stage's core on tiny synthetic data."""

import numpy as np
import pytest
from sklearn.model_selection import train_test_split

from movierec import content, data
from movierec.align import align, load_archive
from movierec.errors import MovierecError
from movierec.prepare import load_prepared, prepare, save_prepared


@pytest.fixture
def ratings(movielens):
    return data.load_ratings(movielens, min_rating=0.0, max_rating=5.0)


def test_prepare_encodes_by_sorted_id_and_splits_like_the_notebook(ratings):
    p = prepare(ratings, test_size=0.15, seed=2137)
    assert list(p.user_ids) == sorted(ratings["userId"].unique())
    assert list(p.movie_ids) == sorted(ratings["movieId"].unique())
    # Same rows as sklearn's split of the file-order rows, computed independently.
    idx_train, idx_test = train_test_split(np.arange(len(ratings)), test_size=0.15, random_state=2137)
    assert np.array_equal(p.user_ids[p.test.user], ratings["userId"].to_numpy()[idx_test])
    assert np.array_equal(p.movie_ids[p.train.movie], ratings["movieId"].to_numpy()[idx_train])
    assert np.array_equal(p.train.rating, ratings["rating"].to_numpy()[idx_train])
    assert np.array_equal(p.test.day, ratings["timestamp"].to_numpy()[idx_test] // 86_400)  # whole days since 1970, UTC
    assert p.counts()["n_test"] == int(np.ceil(0.15 * len(ratings)))


def test_prepare_round_trips_through_disk(ratings, tmp_path):
    p = prepare(ratings, test_size=0.2, seed=1)
    save_prepared(p, tmp_path / "prepared")
    q = load_prepared(tmp_path / "prepared")
    assert q.counts() == p.counts()
    assert np.array_equal(q.test.movie, p.test.movie)
    assert q.train.day.dtype == np.int32 and np.array_equal(q.train.day, p.train.day)


def test_a_prepared_folder_without_days_says_to_prepare_again(ratings, tmp_path):
    save_prepared(prepare(ratings, test_size=0.2, seed=1), tmp_path / "prepared")
    with np.load(tmp_path / "prepared/test.npz") as test:
        np.savez(tmp_path / "prepared/test.npz", **{k: test[k] for k in ("user", "movie", "rating")})
    with pytest.raises(MovierecError, match=r"^\S*prepared/test.npz: no 'day' array .*run `dvc repro prepare`$"):
        load_prepared(tmp_path / "prepared")


def test_ratings_without_a_timestamp_column_read_as_day_zero(movielens):
    frame = data.load_ratings(movielens, min_rating=0.0, max_rating=5.0)
    frame.drop(columns="timestamp").to_csv(movielens / "ratings.csv", index=False)
    timeless = data.load_ratings(movielens, min_rating=0.0, max_rating=5.0)
    assert (timeless["timestamp"] == 0).all()
    assert timeless.drop(columns="timestamp").equals(frame.drop(columns="timestamp"))
    p = prepare(timeless, test_size=0.2, seed=1)
    assert not p.train.day.any() and not p.test.day.any()


def test_split_depends_on_seed(ratings):
    a = prepare(ratings, test_size=0.15, seed=1)
    b = prepare(ratings, test_size=0.15, seed=2)
    assert not np.array_equal(a.test.user, b.test.user)


def test_content_vectors_are_deterministic_and_cluster_by_text(movielens):
    texts = content.movie_texts(data.load_movies(movielens), data.load_tags(movielens))
    a = content.build_content_vectors(texts, dim=6, min_df=1, seed=0)
    b = content.build_content_vectors(texts, dim=6, min_df=1, seed=0)
    assert all(np.array_equal(a[k], b[k]) for k in a)
    assert all(v.dtype == np.float32 and v.shape == (6,) for v in a.values())
    movies = data.load_movies(movielens)
    ids = movies["movieId"].astype(str).to_numpy()
    same = a[ids[0]] @ a[ids[3]]  # both in cluster 0 (Animation)
    other = a[ids[0]] @ a[ids[1]]  # cluster 0 vs cluster 1
    assert same > other


def test_content_dim_larger_than_vocabulary_is_a_clear_error(movielens):
    texts = content.movie_texts(data.load_movies(movielens), data.load_tags(movielens))
    with pytest.raises(Exception, match="embed.dim=500 must be below"):
        content.build_content_vectors(texts, dim=500, min_df=1, seed=0)


def test_texts_work_without_tags(movielens):
    (movielens / "tags.csv").unlink()
    texts = content.movie_texts(data.load_movies(movielens), data.load_tags(movielens))
    assert texts.iloc[0].startswith("Film 0, The 1980s Animation Children Comedy")


def test_align_orders_by_encoder_and_fills_zeros(tmp_path):
    archive = {"10": np.ones(3, np.float32), "30": np.full(3, 2.0, np.float32), "99": np.zeros(3, np.float32)}
    np.savez(tmp_path / "a.npz", **archive)
    matrix, coverage = align(load_archive(tmp_path / "a.npz", 3), np.array([10, 20, 30]), 3)
    assert matrix.tolist() == [[1, 1, 1], [0, 0, 0], [2, 2, 2]]
    assert coverage == {"movies": 3, "with_vector": 2, "coverage": pytest.approx(2 / 3)}
