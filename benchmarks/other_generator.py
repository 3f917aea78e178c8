"""A MovieLens-format rating set from a generator that is not `movierec synth`, for issue 29's "sets from
other generators": does the default recipe travel to data the project was never shaped on?

    python benchmarks/other_generator.py OUT [--users 20000] [--movies 5000] [--ratings 600000] [--seed 0]

then `dvc exp run -S data.path=OUT` (or `dvc repro` with data.path: OUT) and `python benchmarks/oracle_gap.py OUT`.

It follows the set the issue describes (user and movie biases, rank-8 factors, noise sigma 0.8, half
stars), and differs from `movierec synth` wherever that one made a choice: movie popularity is
log-normal rather than a power law over ranks, user activity is log-normal rather than a Pareto tail,
the factors are Gaussian with no link to the genres (which are drawn independently, so content carries
no signal), there are no tags, and the timestamps are uniform. It writes ratings.csv, movies.csv and
planted.npz in `movierec synth`'s schema, so the oracle (`movierec.synth.Planted.expected_rating`: the
expected observed rating, rounding and clipping included) is computed the same way. It holds everything
in memory: meant for sets of up to a few million ratings.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd

from movierec.synth import GENRES, MIN_RATINGS, Planted

RANK, SIGMA, MEAN = 8, 0.8, 3.5
BIAS_STD = {"user": 0.35, "movie": 0.45}
FACTOR_STD = 0.3  # each entry: p . q has std 8 ** 0.5 * 0.3 ** 2 = 0.25


def generate(out: Path, users: int, movies: int, ratings: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    user_ids, movie_ids = np.arange(1, users + 1), np.arange(1, movies + 1) * 3  # movieIds with gaps, as MovieLens'
    planted = Planted(
        user_ids, movie_ids, MEAN, rng.normal(0, BIAS_STD["user"], users), rng.normal(0, BIAS_STD["movie"], movies),
        rng.normal(0, FACTOR_STD, (users, RANK)), rng.normal(0, FACTOR_STD, (movies, RANK)), SIGMA,
    )
    activity = rng.lognormal(0, 1.0, users)
    counts = np.minimum(MIN_RATINGS + np.floor(activity / activity.sum() * (ratings - MIN_RATINGS * users)).astype(int), movies // 2)
    popularity = rng.lognormal(0, 1.5, movies)
    keys = [np.sort(rng.choice(movies, size=n, replace=False, p=popularity / popularity.sum())) for n in counts]
    users_of = np.repeat(np.arange(users), counts)
    movies_of = np.concatenate(keys)
    latent = planted.latent_rating(users_of, movies_of) + rng.normal(0, SIGMA, len(users_of))
    rating = np.clip(np.round(latent * 2) / 2, 0.5, 5.0)
    out.mkdir(parents=True, exist_ok=True)
    pd.DataFrame({
        "userId": user_ids[users_of], "movieId": movie_ids[movies_of], "rating": rating,
        "timestamp": rng.integers(946_684_800, 1_700_000_000, len(users_of)),
    }).to_csv(out / "ratings.csv", index=False)
    names = list(GENRES)
    genres = ["|".join(rng.choice(names, size=rng.integers(1, 4), replace=False)) for _ in range(movies)]
    pd.DataFrame({"movieId": movie_ids, "title": [f"Movie {m} (2001)" for m in movie_ids], "genres": genres}).to_csv(out / "movies.csv", index=False)
    planted.save(out / "planted.npz")
    print(f"{out}: {len(users_of):,} ratings, {users:,} users, {movies:,} movies, rank {RANK}, noise sigma {SIGMA}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out", type=Path)
    ap.add_argument("--users", type=int, default=20_000)
    ap.add_argument("--movies", type=int, default=5_000)
    ap.add_argument("--ratings", type=int, default=600_000)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    generate(args.out, args.users, args.movies, args.ratings, args.seed)


if __name__ == "__main__":
    main()
