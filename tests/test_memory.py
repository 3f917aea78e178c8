"""No stage after train allocates a users x movies array: peak memory on a set where one would not fit.

60,000 users x 40,000 movies: a dense float32 score matrix alone is 9.6 GB (a boolean rated-mask 2.4 GB),
against a cap of 1.5 GB on each command's peak resident memory (ru_maxrss, read in the subprocess
launcher). The prepared split and train's predictions file are written directly: training is not the
subject here. `evaluate.max_users` keeps the baselines' scoring of every movie short enough for a test.
"""

import json
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
import yaml

from conftest import REPO
from movierec import scoring
from movierec.prepare import Prepared, Split, save_prepared

N_USERS, N_MOVIES, N_POPULAR, FACTORS = 60_000, 40_000, 60, 16  # few popular movies: explore's map stays quick
CAP_MB = 1500
MAX_USERS = 500
# A small launcher runs the command as its child and reads RUSAGE_CHILDREN: a process's own ru_maxrss
# would start from pytest's, since Linux carries the high-water mark across fork and exec.
RUN_AND_MEASURE = """
import resource, subprocess, sys
command = "import sys; from movierec.cli import cli; cli.main(sys.argv[1:], standalone_mode=False)"
result = subprocess.run([sys.executable, "-c", command, *sys.argv[1:]], capture_output=True, text=True)
sys.stderr.write(result.stderr)
print(result.stdout)
print("peak_kb", resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)
sys.exit(result.returncode)
"""


def synthetic_prepared(rng) -> Prepared:
    """Each user rates 15 of the N_POPULAR popular movies and 5 of the rest: few movies reach explore's threshold."""
    popular = np.argsort(rng.random((N_USERS, N_POPULAR)), axis=1)[:, :15]
    rest = N_POPULAR + rng.integers(0, N_MOVIES - N_POPULAR, (N_USERS, 5))
    users = np.repeat(np.arange(N_USERS), 20)
    movies = np.concatenate([popular, rest], axis=1).reshape(-1)
    keys = np.unique(users * N_MOVIES + movies)
    rng.shuffle(keys)
    users, movies = keys // N_MOVIES, keys % N_MOVIES
    ratings = rng.integers(1, 11, len(keys)) / 2
    cut = int(len(keys) * 0.85)
    split = lambda rows: Split(users[rows].astype(np.int64), movies[rows].astype(np.int64), ratings[rows])  # noqa: E731
    return Prepared(np.arange(N_USERS) + 1, np.arange(N_MOVIES) + 1, split(slice(None, cut)), split(slice(cut, None)))


@pytest.fixture(scope="module")
def big_project(tmp_path_factory):
    root = tmp_path_factory.mktemp("big")
    rng = np.random.default_rng(0)
    prepared = synthetic_prepared(rng)
    save_prepared(prepared, root / "data" / "prepared")
    folder = root / "movielens"
    folder.mkdir()
    genres = np.array(["Action", "Comedy", "Drama|Romance", "Animation|Children", "Thriller"])
    pd.DataFrame({
        "movieId": prepared.movie_ids, "title": [f"Movie {i} ({1950 + i % 70})" for i in prepared.movie_ids],
        "genres": genres[np.arange(N_MOVIES) % len(genres)],
    }).to_csv(folder / "movies.csv", index=False)
    (root / "data" / "features").mkdir(parents=True)
    np.save(root / "data" / "features" / "content.npy", rng.normal(size=(N_MOVIES, 8)).astype(np.float32))

    params = yaml.safe_load((REPO / "params.yaml").read_text())
    params["data"]["path"] = str(folder)
    params["evaluate"]["max_users"] = MAX_USERS
    params["variants"] = {"mf_content": params["variants"]["mf_content"]}
    (root / "params.yaml").write_text(yaml.safe_dump(params))

    # What train would write for a factor model: lists for the users evaluate picks, and factor tables.
    e = params["evaluate"]
    users, _ = scoring.ranking_users(prepared.test.user, prepared.test.rating, e["relevance_threshold"], e["max_users"], e["seed"])
    user_factors = rng.normal(0, 0.3, (N_USERS, FACTORS)).astype(np.float32)
    movie_vectors = rng.normal(0, 0.3, (N_MOVIES, FACTORS)).astype(np.float32)
    user_bias = rng.normal(0, 0.3, N_USERS).astype(np.float32)
    movie_bias = rng.normal(0, 0.3, N_MOVIES).astype(np.float32)
    score = scoring.factor_scorer(3.5, user_bias, movie_bias, user_factors, movie_vectors)
    rated = scoring.RatedIndex.from_pairs(prepared.train.user, prepared.train.movie, N_USERS)
    top_movies, top_scores = scoring.top_k_of_users(score, users, N_MOVIES, rated, e["top_n"])
    test = prepared.test
    test_predictions = 3.5 + user_bias[test.user] + movie_bias[test.movie] + np.einsum("ij,ij->i", user_factors[test.user], movie_vectors[test.movie])
    carve_rows = np.sort(rng.choice(len(prepared.train), len(prepared.train) // 10, replace=False))
    held = prepared.train.take(carve_rows)
    carve_predictions = 3.5 + user_bias[held.user] + movie_bias[held.movie]
    (root / "data" / "predictions").mkdir()
    np.savez(
        root / "data" / "predictions" / "mf_content.npz",
        test_predictions=test_predictions.astype(np.float32),
        carve_rows=carve_rows.astype(np.int64), carve_predictions=carve_predictions.astype(np.float32),
        top_users=users.astype(np.int32), top_movies=top_movies, top_scores=top_scores, movie_vectors=movie_vectors,
        n_params=np.int64(0), offset=np.float32(3.5), user_bias=user_bias, movie_bias=movie_bias, user_factors=user_factors,
    )
    return root, prepared, set(users.tolist())


def peak_mb(args, root) -> tuple[float, str]:
    result = subprocess.run([sys.executable, "-c", RUN_AND_MEASURE, *args], cwd=root, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    *output, last = result.stdout.strip().splitlines()
    assert last.startswith("peak_kb ")
    return int(last.split()[1]) / 1024, "\n".join(output)


@pytest.mark.e2e
def test_no_stage_after_train_allocates_users_by_movies(big_project):
    root, prepared, listed = big_project
    assert N_USERS * N_MOVIES * 4 / 2**20 > 6 * CAP_MB  # a dense float32 matrix alone is far above the cap
    peaks = {}
    for name, args in {
        "evaluate": ["evaluate", "mf_content"],
        "baselines": ["baselines"],
        "blend": ["blend"],
        "explore": ["explore", "mf_content"],
    }.items():
        peaks[name], _ = peak_mb(args, root)
    evaluated = json.loads((root / "metrics/eval/mf_content.json").read_text())
    assert evaluated["n_users_evaluated"] == MAX_USERS and evaluated["users_sampled"] is True
    assert json.loads((root / "metrics/eval/most_popular.json").read_text())["n_users_evaluated"] == MAX_USERS
    assert 0 < json.loads((root / "metrics/eval/blend.json").read_text())["rmse"] < 2
    assert 0 < json.loads((root / "metrics/eval/bayes_mf.json").read_text())["rmse"] < 2  # fitted at this size too

    in_list = min(listed)
    not_listed = next(u for u in range(N_USERS) if u not in listed)
    for user in (in_list, not_listed):  # served from the stored list, then scored on demand from the factors
        peaks[f"recommend {user}"], out = peak_mb(["recommend", "--user", str(user + 1), "-k", "20", "--variant", "mf_content", "--json"], root)
        rows = json.loads(out)
        rated = {int(prepared.movie_ids[m]) for s in (prepared.train, prepared.test) for m in s.movie[s.user == user]}
        assert len(rows) == 20 and not rated & {r["movieId"] for r in rows}
        assert all(0.0 <= r["predicted_rating"] <= 5.0 for r in rows)
    peaks["similar"], out = peak_mb(["similar", "Movie 7 (1957)", "--variant", "mf_content", "--json"], root)
    assert "Movie 7 (1957)" not in {r["title"] for r in json.loads(out)}
    assert max(peaks.values()) < CAP_MB, peaks
