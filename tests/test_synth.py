"""The synthetic data generator: seeded, the sizes asked for, MovieLens' shape, and a known oracle RMSE."""

import hashlib
import json

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from movierec import data, prepare, synth
from movierec.cli import cli
from movierec.errors import MovierecError

SIZES = {"users": 400, "movies": 2_000, "ratings": 40_000}


def digests(folder):
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir())}


@pytest.fixture(scope="module")
def generated(tmp_path_factory):
    folder = tmp_path_factory.mktemp("synth") / "a"
    summary = synth.generate(folder, **SIZES, seed=7, log=lambda _: None)
    return folder, summary


def test_same_seed_same_files_other_seed_other_files(generated, tmp_path):
    folder, _ = generated
    again = synth.generate(tmp_path / "b", **SIZES, seed=7, log=lambda _: None)
    assert digests(tmp_path / "b") == digests(folder)
    assert again["oracle_rmse_all_ratings"] == generated[1]["oracle_rmse_all_ratings"]
    synth.generate(tmp_path / "c", **SIZES, seed=8, log=lambda _: None)
    assert digests(tmp_path / "c")["ratings.csv"] != digests(folder)["ratings.csv"]


def test_sizes_floor_half_stars_and_the_pipeline_reads_it(generated):
    folder, summary = generated
    ratings = data.load_ratings(folder, min_rating=0.5, max_rating=5)  # also checks no duplicate pairs
    movies = data.load_movies(folder)
    assert len(ratings) == SIZES["ratings"] and ratings.userId.nunique() == SIZES["users"]
    assert len(movies) == SIZES["movies"] and movies.movieId.is_unique
    assert set(ratings.movieId) <= set(movies.movieId)
    per_user = ratings.groupby("userId").size()
    assert per_user.min() >= synth.MIN_RATINGS
    assert per_user.max() > 4 * per_user.median()  # a heavy tail of very active users
    assert set(np.unique(ratings.rating)) <= set(np.arange(1, 11) / 2)
    per_movie = ratings.groupby("movieId").size()
    assert per_movie.max() > 10 * per_movie.median()  # power-law popularity
    assert summary["movies_rated"] == ratings.movieId.nunique()
    assert len(data.load_tags(folder)) > 0 and movies.genres.str.contains("Drama").any()


def test_oracle_rmse_recovers_the_planted_noise(generated):
    folder, summary = generated
    planted = synth.load_planted(folder)
    ratings = data.load_ratings(folder, min_rating=0.5, max_rating=5)
    split = prepare.prepare(ratings, test_size=0.2, seed=1)
    test_users, test_movies = split.user_ids[split.test.user], split.movie_ids[split.test.movie]
    oracle = synth.oracle_rmse(planted, test_users, test_movies, split.test.rating)
    # Rounding to half stars adds about 0.5**2/12 of variance and clipping at 0.5 and 5 removes some.
    assert 0.85 * planted.sigma < oracle < np.sqrt(planted.sigma**2 + 0.5**2 / 12) + 0.03
    assert abs(oracle - summary["oracle_rmse_all_ratings"]) < 0.03
    # The oracle is the best predictor: the noise-free latent rating does worse, and so does the mean.
    latent = planted.latent_rating(np.searchsorted(planted.user_ids, test_users), np.searchsorted(planted.movie_ids, test_movies))
    assert oracle < np.sqrt(np.mean((latent - split.test.rating) ** 2))
    assert oracle < np.std(split.test.rating) - 0.1


def test_genres_follow_the_planted_factors(generated):
    folder, _ = generated
    planted = synth.load_planted(folder)
    movies = data.load_movies(folder)
    drama = movies.genres.str.contains("Drama").to_numpy()
    factors = planted.movie_factors
    # Drama movies sit together in factor space: nearer their own centroid than the rest do.
    centre = factors[drama].mean(axis=0)
    assert np.linalg.norm(factors[drama] - centre, axis=1).mean() < np.linalg.norm(factors[~drama] - centre, axis=1).mean()


def test_csv_writer_matches_pandas():
    values = np.array([0, 7, 10, 99, 100, 123456789, 2**40])
    half = np.array([1, 2, 3, 9, 10, 5, 8])
    got = synth._csv_bytes([(values, False), (half, True), (values[::-1].copy(), False)]).decode()
    want = pd.DataFrame({"a": values, "b": half / 2, "c": values[::-1]}).to_csv(index=False, header=False)
    assert got == want


def test_oracle_refuses_ids_outside_the_data(generated):
    planted = synth.load_planted(generated[0])
    with pytest.raises(MovierecError, match="userId is not in the synthetic data"):
        planted.expected_rating(np.array([10**9]), planted.movie_ids[:1])


@pytest.mark.parametrize(
    "args, fragment",
    [
        (["--users", "10", "--movies", "50", "--ratings", "100"], "must lie in [200, 250]"),
        (["--preset", "ml-2m"], "unknown; use one of ml-1m, ml-10m, ml-25m, ml-32m"),
        (["--users", "10"], "give --preset, or all of"),
    ],
)
def test_impossible_sizes_are_one_line_errors(tmp_path, args, fragment):
    result = CliRunner().invoke(cli, ["synth", str(tmp_path / "out"), *args], catch_exceptions=False)
    assert result.exit_code != 0 and fragment in result.output and "Traceback" not in result.output
    assert not (tmp_path / "out").exists()


def test_cli_writes_the_summary_and_refuses_to_overwrite_other_folders(tmp_path):
    out = tmp_path / "out"
    args = ["synth", str(out), "--users", "50", "--movies", "100", "--ratings", "2000", "--no-tags"]
    result = CliRunner().invoke(cli, args, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in out.iterdir()) == ["movies.csv", "planted.json", "planted.npz", "ratings.csv"]
    assert json.loads((out / "planted.json").read_text())["ratings"] == 2000
    assert CliRunner().invoke(cli, args, catch_exceptions=False).exit_code == 0  # a synth folder may be replaced
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "ratings.csv").write_text("keep me")
    result = CliRunner().invoke(cli, ["synth", str(mine), "--preset", "ml-1m"], catch_exceptions=False)
    assert result.exit_code != 0 and "was not written by `movierec synth`" in result.output
    assert (mine / "ratings.csv").read_text() == "keep me"
